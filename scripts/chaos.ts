// `npm run chaos [-- --rounds N --seed S --items N --kills N --pair folder>onedrive --round K --keep]`:
// complete migrations with --delete-source under random kills, every emulator fault and a
// source that keeps changing; prints a table of rounds and exits 1 on any violation.

import { parseArgs } from 'node:util';
import { formatTable, runChaos } from './chaos/suite.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '8' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    items: { type: 'string', default: '14' },
    kills: { type: 'string', default: '6' },
    round: { type: 'string' },
    pair: { type: 'string', multiple: true },
    keep: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    distributed: { type: 'boolean', default: false },
    workers: { type: 'string', default: '3' },
    accounts: { type: 'string', default: '12' },
  },
});
const int = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a whole number\n`);
    process.exit(2);
  }
  return n;
};
const seed = int('seed', values.seed);
const log = values.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
if (values.distributed) {
  // `npm run chaos -- --distributed [--rounds N --accounts N --items N --workers N --kills N --seed S]`: queue mode.
  const { formatDistributed, runDistributedRound } = await import('./chaos/distributed.ts');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  let failed = false;
  for (let round = 1; round <= int('rounds', values.rounds); round++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-chaos-dist-'));
    const r = await runDistributedRound(
      {
        seed: seed + round - 1,
        accounts: int('accounts', values.accounts),
        items: int('items', values.items),
        workers: int('workers', values.workers),
        kills: int('kills', values.kills),
        leaseSeconds: 5,
        dir,
      },
      log,
    );
    process.stdout.write(`\n${formatDistributed(r)}\n`);
    for (const v of r.violations) process.stdout.write(`  - ${v}\n`);
    if (r.violations.length) {
      failed = true;
      process.stdout.write(`kept in ${dir}\n`);
    } else if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
const only = values.round === undefined ? undefined : int('round', values.round);
const results = await runChaos({
  rounds: only ?? int('rounds', values.rounds),
  first: only,
  seed,
  items: int('items', values.items),
  kills: int('kills', values.kills),
  pairs: values.pair,
  keep: values.keep,
  log,
});
process.stdout.write(`\n${formatTable(results, seed)}\n`);
for (const r of results.filter((x) => !x.finished))
  process.stdout.write(`\nround ${r.config.round} did not finish (exit ${r.lastExit}); its last run ended with:\n${r.lastTail}\n`);
const bad = results.filter((r) => r.violations.length > 0);
for (const r of bad) {
  process.stdout.write(
    `\nround ${r.config.round} (${r.config.source} -> ${r.config.dest}, repeat with --seed ${seed} --round ${r.config.round}; kept in ${r.config.dir}):\n`,
  );
  for (const v of r.violations) process.stdout.write(`  - ${v}\n`);
}
process.exit(bad.length ? 1 : 0);
