// vitest globalSetup: compile the CLI before any test spawns it, so the tests exercise the same
// dist/ that `npm ci` builds for users. (Should the sources change while the tests run, the bin
// notices that dist/ is stale and runs them through tsx: a stale build is never what is tested.)
import { build } from '../../scripts/build.mjs';

export default async function setup(): Promise<void> {
  await build();
}
