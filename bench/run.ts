// `npm run bench`: runs every suite in bench/ (a file exporting `suite`) and prints one table.
// Goals are ratios against a peer measured in the same run, never absolute times: the machines
// are shared and noisy. `npm run bench -- core hash` runs only the named suites.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchRow, BenchSuite } from './types.ts';
import { build } from '../scripts/build.mjs';

const dir = import.meta.dirname;
// --quick: smaller trees and fewer repetitions, for a look on a busy machine (suites read BENCH_QUICK).
if (process.argv.includes('--quick')) process.env.BENCH_QUICK = '1';
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
// The CLI is measured as users run it: compiled (the same build `npm ci` makes).
await build();
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'types.ts', 'util.ts'].includes(f))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.ts$/, '')))
  .sort();

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));
const all: Array<BenchRow & { suite: string }> = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as { suite?: BenchSuite };
  if (!mod.suite) continue;
  const name = f.replace(/\.ts$/, '');
  process.stderr.write(`bench: ${name}...\n`);
  try {
    for (const row of await mod.suite()) {
      all.push({ suite: name, ...row });
      process.stderr.write(
        `  ${row.name}: ${fmt(row.value)} ${row.unit}${row.peer ? ` (peer ${row.peer.name}: ${fmt(row.peer.value)} ${row.peer.unit})` : ''}\n`,
      );
    }
  } catch (err) {
    all.push({ suite: name, name: `FAILED: ${(err as Error).message}`, value: NaN, unit: '' });
  }
}

const lines = [
  `gallery-bridge bench${process.env.BENCH_QUICK === '1' ? ' (quick)' : ''}, ${new Date().toISOString()}, load average ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
  '',
  '| suite | measurement | value | peer (same run) | ratio | goal | met |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...all.map(
    (r) =>
      `| ${r.suite} | ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.peer ? `${r.peer.name}: ${fmt(r.peer.value)} ${r.peer.unit}` : ''} | ${r.ratio !== undefined ? fmt(r.ratio) : ''} | ${r.goal ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : 'NO'} |`,
  ),
];
process.stdout.write(lines.join('\n') + '\n');
fs.mkdirSync(path.join(dir, 'out'), { recursive: true });
fs.writeFileSync(path.join(dir, 'out', 'results.json'), JSON.stringify(all, null, 2));
