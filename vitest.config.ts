import { defineConfig } from 'vitest/config';
import fs from 'node:fs';

// test/setup/build.ts compiles the CLI into dist/ first. Global setup files are optional per
// provider (the OneDrive one makes a test CA that every forked worker trusts through
// NODE_EXTRA_CA_CERTS, which Node reads only at start-up).
const globalSetup = ['test/setup/build.ts', 'test/setup/global.ts', 'test/setup/tls.ts', 'test/setup/postgres.ts'].filter((f) => fs.existsSync(f));

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    globalSetup,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { GALLERY_BRIDGE_BACKOFF_SCALE: '0.01' },
  },
});
