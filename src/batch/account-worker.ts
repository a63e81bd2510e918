// The worker side of a batch's warm process (`gallery-bridge batch account-worker`, started by
// ./pool.ts): it runs accounts' `migrate` in-process, for as many accounts as the batch hands it,
// so that each account does not pay a process start, the modules' loading and a cold JIT
// (profiled: most of a small account's fixed cost). The pool gives it one account at a time, or
// several at once (fewer processes than accounts: one process's JIT and caches serve them all).
//
// Protocol, on stdin, one message a line: a job ({"argv": the migrate arguments, "env": the
// account's own values (queue mode's lease), "end": a token}), or {"stop": TOKEN} to stop that
// account as a SIGTERM would stop a process of its own (it ends with 143). Each line the account
// writes goes out as "TOKEN>LINE" on the stream a `migrate` process would write it to; when it
// ends, the worker writes "TOKEN CODE" on stdout and "TOKEN" on stderr, each on its own line.
// A line without a token is the process's own (a Node warning, a crash). End of stdin: the
// worker exits once its accounts have ended. A signal stops every running account as it would
// stop a process of its own (code 143 or 130), then the worker exits; between accounts, at once.

import readline from 'node:readline';
import { endAccountScope, inAccountScope } from '../lib/account-scope.ts';
import type { LineSink, Output } from '../lib/lines.ts';
import type { AccountRun } from '../commands/migrate.ts';

export interface AccountJob {
  /** The arguments after `migrate`. */
  argv: string[];
  /** A token the parent made for this job; every line of the account and its end lines carry it. */
  end: string;
  /** Values of this account that a process of its own would find in its environment (queue mode's lease); never put in process.env. */
  env?: Record<string, string>;
}

/** Stops the running account with this token. */
export interface AccountStop {
  stop: string;
}

/** Whole lines of `text`, each as TOKEN>LINE, on `stream`; a partial line waits for its end. */
function taggedSink(stream: NodeJS.WritableStream, token: string): LineSink & { flush(): void } {
  let partial = '';
  return {
    write(text: string) {
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      if (lines.length) stream.write(lines.map((l) => `${token}>${l}\n`).join(''));
      return true;
    },
    flush() {
      if (partial) stream.write(`${token}>${partial}\n`);
      partial = '';
    },
  };
}

export async function accountWorker(runMigrate: (argv: string[], env: Record<string, string>, account: AccountRun) => Promise<number>): Promise<number> {
  const running = new Map<string, AbortController>();
  let signalled: NodeJS.Signals | null = null;
  let last = 0;
  let idle: () => void = () => undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    signalled = sig;
    if (!running.size) process.exit(sig === 'SIGTERM' ? 143 : 130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const run = async (job: AccountJob) => {
    const stop = new AbortController();
    running.set(job.end, stop);
    const stdout = taggedSink(process.stdout, job.end);
    const stderr = taggedSink(process.stderr, job.end);
    const out: Output = { stdout, stderr };
    let code = 1;
    try {
      code = await inAccountScope(() => runMigrate(job.argv, job.env ?? {}, { out, stop: stop.signal }));
    } finally {
      running.delete(job.end);
      // What a module kept for the accounts is forgotten once none runs here (see ../lib/account-scope.ts).
      if (!running.size) endAccountScope();
    }
    last = code;
    stdout.flush();
    stderr.flush();
    // Pipes are written synchronously on Linux: everything the account wrote is ahead of these.
    process.stderr.write(`\n${job.end}\n`);
    process.stdout.write(`${job.end} ${code}\n`);
    if (running.size) return;
    if (signalled) process.exit(code);
    idle();
  };

  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const msg = JSON.parse(line) as AccountJob | AccountStop;
    if ('stop' in msg) running.get(msg.stop)?.abort();
    // A job sent after a signal is not begun: the exit ends it as it would have ended a process of its own.
    else if (!signalled) void run(msg);
  }
  while (running.size) await new Promise<void>((res) => (idle = res));
  return signalled ? last : 0;
}
