import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';
import { UNIT_TESTS } from './test/tiers.ts';

// `npm run test:unit`: the test files that never spawn the CLI (test/tiers.ts says which), so the
// build of dist/ that test/setup/build.ts does for the CLI is left out.
const globalSetup = ([] as string[]).concat(base.test?.globalSetup ?? []).filter((f) => !f.endsWith('/build.ts'));

// Two files at once: vitest's default on two cores is one worker (cores - 1), and these files
// mostly wait on loopback servers and timers, so a second worker halves the tier's time.
export default defineConfig({ ...base, test: { ...base.test, include: UNIT_TESTS, globalSetup, maxWorkers: 2 } });
