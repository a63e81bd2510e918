// The fast tier, `npm run test:unit` (vitest.unit.config.ts): the test files that run our code in
// the test process, against in-process emulators, a real PostgreSQL or rclone, and never spawn the
// CLI. They need no dist/ build and together take well under a minute on two cores.
//
// Every other test file spawns bin/gallery-bridge.js (through runCli, directly, or through
// scripts/chaos) and runs only in `npm test`, which runs everything. A new test file that spawns
// no CLI belongs here; test/import-rules.test.ts fails if a file listed here starts using the CLI.
export const UNIT_TESTS = [
  'test/account-scope.test.ts',
  'test/batch-view.test.ts',
  'test/batcher.test.ts',
  'test/capture-dates.test.ts',
  'test/dated-copy-retry.test.ts',
  'test/deletion-intent.test.ts',
  'test/engine-scheduling.test.ts',
  'test/folder-durable.test.ts',
  'test/google-photos-adapter.test.ts',
  'test/hash.test.ts',
  'test/import-rules.test.ts',
  'test/media.test.ts',
  'test/onedrive-adapter.test.ts',
  'test/onedrive-auth.test.ts',
  'test/onedrive-emulator-store.test.ts',
  'test/onedrive-folders.test.ts',
  'test/onedrive-response.test.ts',
  'test/pg-setup.test.ts',
  'test/redact.test.ts',
  'test/queue-core-budget.test.ts',
  'test/queue-core-lease.test.ts',
  'test/queue-core-order.test.ts',
  'test/queue-sessions.test.ts',
  'test/retry.test.ts',
  'test/state.test.ts',
  'test/xiaomi-source.test.ts',
];
