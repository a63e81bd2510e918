// The warm account-worker processes (src/batch/pool.ts) a batch or a queue worker starts, seen
// from the outside: in /proc, by their parent and their command line.

import fs from 'node:fs';

/** The account-worker processes whose parent is `pid`. */
export function accountWorkersOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === pid && fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('account-worker')) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** Every account-worker process `pid` starts, looked for every 25 ms until `stop()`. */
export function watchAccountWorkers(pid: number): { seen: Set<number>; stop(): void } {
  const seen = new Set<number>();
  const watch = setInterval(() => {
    for (const p of accountWorkersOf(pid)) seen.add(p);
  }, 25);
  return { seen, stop: () => clearInterval(watch) };
}
