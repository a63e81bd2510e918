#!/usr/bin/env node
// Runs the compiled CLI in dist/ (built by `npm ci` through the `prepare` script), so a start
// pays no transpiling. When dist/ is missing or older than the sources (an edited checkout, a
// `git pull` without a rebuild), it runs the TypeScript sources through tsx instead: stale code
// never runs. `npm run build` refreshes dist/.
import fs from 'node:fs';
import { sourceFingerprint } from '../scripts/build.mjs';

function compiledIsFresh() {
  if (process.env.GALLERY_BRIDGE_FROM_SOURCE === '1') return false;
  try {
    const built = JSON.parse(fs.readFileSync(new URL('../dist/build.json', import.meta.url), 'utf8'));
    return JSON.stringify(built.sources) === JSON.stringify(sourceFingerprint());
  } catch {
    return false;
  }
}

if (compiledIsFresh()) {
  await import('../dist/cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
