#!/usr/bin/env node
// Compiles the TypeScript sources into dist/ (one ES module bundle plus a chunk per lazily
// loaded provider), so that starting the CLI pays no transpiling. `npm ci` runs it (the
// `prepare` script); `npm test` and `npm run bench` run it first too.
//
// dist/build.json records every source file's size and modification time. bin/gallery-bridge.js
// runs dist/ only while that record still matches the sources, and the TypeScript through tsx
// otherwise: an edited checkout never runs stale code.
//
// Plain JavaScript, so it runs before anything is compiled.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The folders the CLI is built from (tests, benches and scripts run through tsx). */
export const SOURCE_DIRS = ['src', 'providers', 'state'];
const SOURCE_FILE = /\.(ts|json)$/;

/** { "src/cli.ts": [size, mtimeMs], ... } for every source file, in a stable order. */
export function sourceFingerprint(root = ROOT) {
  const out = {};
  // Plain recursion and string paths: this runs at every CLI start, so it stays a few stats.
  const visit = (rel) => {
    let entries;
    try {
      entries = fs.readdirSync(`${root}/${rel}`, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of entries) {
      const child = `${rel}/${d.name}`;
      if (d.isDirectory()) visit(child);
      else if (d.isFile() && SOURCE_FILE.test(d.name)) {
        const st = fs.statSync(`${root}/${child}`);
        out[child] = [st.size, st.mtimeMs];
      }
    }
  };
  for (const dir of SOURCE_DIRS) visit(dir);
  return out;
}

/** Builds into a fresh folder and swaps it in, so a CLI starting meanwhile never sees half a build. */
export async function build(root = ROOT) {
  const esbuild = await import('esbuild');
  const before = sourceFingerprint(root);
  const tmp = path.join(root, `dist.tmp-${process.pid}-${Date.now()}`);
  try {
    await esbuild.build({
      absWorkingDir: root,
      entryPoints: ['src/cli.ts'],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      // Dependencies load from node_modules as usual; only our own code is compiled.
      packages: 'external',
      outdir: tmp,
      chunkNames: 'chunks/[name]-[hash]',
      logLevel: 'warning',
    });
    // Sources edited while esbuild ran: record nothing, so the bin keeps using tsx.
    const after = sourceFingerprint(root);
    if (JSON.stringify(before) !== JSON.stringify(after)) throw new Error('sources changed during the build; run it again');
    fs.writeFileSync(path.join(tmp, 'build.json'), JSON.stringify({ sources: after }));
    const dist = path.join(root, 'dist');
    const old = `${dist}.old-${process.pid}-${Date.now()}`;
    if (fs.existsSync(dist)) fs.renameSync(dist, old);
    fs.renameSync(tmp, dist);
    fs.rmSync(old, { recursive: true, force: true });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  try {
    await build();
  } catch (err) {
    // At install, a failed build must not fail `npm ci`: the CLI then runs the sources through tsx.
    process.stderr.write(`gallery-bridge build: ${err?.message ?? err}\n`);
    if (process.env.npm_lifecycle_event !== 'prepare') process.exitCode = 1;
    else process.stderr.write('gallery-bridge build: the CLI will run the TypeScript sources through tsx (slower start)\n');
  }
}
