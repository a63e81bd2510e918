// The worker side of a batch's warm process (`gallery-bridge batch account-worker`, started by
// ./pool.ts): it runs one account's `migrate` at a time, in-process, for as many accounts as
// the batch hands it, so that each account does not pay a process start, the modules' loading
// and a cold JIT (profiled: most of a small account's fixed cost).
//
// Protocol: one job a line on stdin ({"argv": the migrate arguments, "env": the account's own
// values (queue mode's lease), "end": a token}); the
// account writes on stdout and stderr exactly what a `migrate` process would; then the worker
// writes "TOKEN CODE" on stdout and "TOKEN" on stderr, each on its own line, and waits for the
// next job. End of stdin: the worker exits. A signal during an account ends that account as it
// would end a process of its own (the run stops cleanly, code 143 or 130), then the worker
// exits; a signal between accounts exits at once.

import readline from 'node:readline';
import { endAccountScope } from '../lib/account-scope.ts';

export interface AccountJob {
  /** The arguments after `migrate`. */
  argv: string[];
  /** A token the parent made for this job; the end lines carry it. */
  end: string;
  /** Values of this account that a process of its own would find in its environment (queue mode's lease); never put in process.env. */
  env?: Record<string, string>;
}

export async function accountWorker(runMigrate: (argv: string[], env: Record<string, string>) => Promise<number>): Promise<number> {
  let busy = false;
  let signalled: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    signalled = sig;
    if (!busy) process.exit(sig === 'SIGTERM' ? 143 : 130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let last = 0;
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const job = JSON.parse(line) as AccountJob;
    busy = true;
    try {
      last = await runMigrate(job.argv, job.env ?? {});
    } finally {
      endAccountScope();
      busy = false;
    }
    // Pipes are written synchronously on Linux: everything the account wrote is ahead of these.
    process.stderr.write(`\n${job.end}\n`);
    process.stdout.write(`${job.end} ${last}\n`);
    if (signalled) return last;
  }
  return 0;
}
