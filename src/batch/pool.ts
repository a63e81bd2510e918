// How a batch runs an account's `migrate`: in a warm worker process from a small pool (one
// account at a time in each, see ./account-worker.ts), or in a process of its own. Either way the
// runner sees the same thing: the account's stdout, a way to stop it, and its exit code with the
// tail of its stderr. A pool's processes share one environment; what differs per account (queue
// mode's lease) goes with each job as values that migrate reads in place of its environment, and
// an account needing any other variable of its own gets a process of its own.
//
// Isolation: a worker that crashes or is killed fails only the account it was running, and the
// pool starts a new process for the next one. A worker is used again only after an account
// that ended as a run ends (code 0 or 1) and was not stopped from here; anything else (a stop,
// a signal, a refused sign-in, a crash) retires it, so an odd state never meets another account.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import readline from 'node:readline';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { AccountJob } from './account-worker.ts';

export interface AccountEnd {
  /** The exit code a `migrate` process would have given (143 when ended by SIGTERM, 1 when it could not start). */
  code: number;
  /** The last few kB of what the account wrote on stderr. */
  stderr: string;
  /** Why the process could not start, when it could not. */
  startError?: string;
}

export interface AccountChild {
  /** The account's stdout (its --json lines). */
  stdout: Readable;
  kill(signal: NodeJS.Signals): void;
  ended: Promise<AccountEnd>;
  /** The signal that ended the process under the account, if one did (as ChildProcess.signalCode). */
  readonly signalCode: NodeJS.Signals | null;
}

const STDERR_TAIL = 4000;
const exitCodeOf = (code: number | null, signal: NodeJS.Signals | null) => code ?? (signal === 'SIGTERM' ? 143 : 1);

/** One account in a `migrate` process of its own. */
export function spawnAccount(cli: string, argv: string[], env: NodeJS.ProcessEnv): AccountChild {
  const child = spawn(process.execPath, [cli, 'migrate', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-STDERR_TAIL)));
  const ended = new Promise<AccountEnd>((res) => {
    child.on('error', (err) => res({ code: 1, stderr, startError: `could not start: ${err.message}` }));
    child.on('close', (code, signal) => res({ code: exitCodeOf(code, signal), stderr }));
  });
  return {
    stdout: child.stdout!,
    kill: (s) => void child.kill(s),
    ended,
    get signalCode() {
      return child.signalCode;
    },
  };
}

interface Job {
  end: string;
  out: PassThrough;
  stderr: string;
  code: number | null;
  stderrEnded: boolean;
  stopped: boolean;
  signal: NodeJS.Signals | null;
  done: (e: AccountEnd) => void;
}

/** A long-lived `batch account-worker` process. */
class WarmWorker {
  readonly proc: ChildProcess;
  dead = false;
  readonly exited: Promise<void>;
  private job: Job | null = null;

  constructor(
    cli: string,
    env: NodeJS.ProcessEnv,
    private readonly release: (w: WarmWorker, reusable: boolean) => void,
  ) {
    this.proc = spawn(process.execPath, [cli, 'batch', 'account-worker'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    // A worker that died between accounts: the next write fails, and its close settles the job.
    this.proc.stdin!.on('error', () => undefined);
    readline.createInterface({ input: this.proc.stdout! }).on('line', (line) => this.onStdout(line));
    readline.createInterface({ input: this.proc.stderr! }).on('line', (line) => this.onStderr(line));
    this.exited = new Promise((res) => {
      this.proc.on('error', (err) => {
        this.dead = true;
        this.settle({ code: 1, startError: `could not start: ${err.message}` });
        res();
      });
      this.proc.on('close', (code, signal) => {
        this.dead = true;
        if (this.job) this.job.signal = signal;
        this.settle({ code: exitCodeOf(code, signal) });
        res();
      });
    });
  }

  run(argv: string[], env: Record<string, string>): AccountChild {
    const job: Job = {
      end: `gallery-bridge-account-end-${randomUUID()}`,
      out: new PassThrough(),
      stderr: '',
      code: null,
      stderrEnded: false,
      stopped: false,
      signal: null,
      done: () => undefined,
    };
    const ended = new Promise<AccountEnd>((res) => (job.done = res));
    this.job = job;
    if (this.dead) this.settle({ code: 1, startError: 'its worker process had ended' });
    else this.proc.stdin!.write(`${JSON.stringify({ argv, end: job.end, env } satisfies AccountJob)}\n`);
    return {
      stdout: job.out,
      kill: (s) => {
        job.stopped = true;
        if (this.job === job) this.proc.kill(s);
      },
      ended,
      get signalCode() {
        return job.signal;
      },
    };
  }

  retire(): void {
    if (!this.dead) this.proc.stdin!.end();
  }

  private onStdout(line: string): void {
    const job = this.job;
    if (!job) return;
    if (line.startsWith(`${job.end} `)) {
      job.code = Number(line.slice(job.end.length + 1));
      if (job.stderrEnded) this.settle({ code: job.code });
    } else job.out.write(`${line}\n`);
  }

  private onStderr(line: string): void {
    const job = this.job;
    if (!job) return;
    if (line === job.end) {
      job.stderrEnded = true;
      if (job.code !== null) this.settle({ code: job.code });
    } else if (line) job.stderr = `${job.stderr}${line}\n`.slice(-STDERR_TAIL);
  }

  /** The job's end, once: from its end lines, or from the process ending under it. */
  private settle(e: { code: number; startError?: string }): void {
    const job = this.job;
    if (!job) return;
    this.job = null;
    job.out.end();
    job.done({ ...e, stderr: job.stderr });
    this.release(this, !this.dead && !job.stopped && (e.code === 0 || e.code === 1));
  }
}

/** Warm workers, started when an account finds none idle and kept between accounts (as many as run at once). */
export class AccountPool {
  private readonly idle: WarmWorker[] = [];

  /**
   * `env`: the workers' environment; `perAccount`: the variables an account may set for itself
   * (those migrate reads through its env parameter: queue mode's lease).
   */
  constructor(
    private readonly cli: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly perAccount: readonly string[] = [],
  ) {}

  /** Whether an account with these environment variables can run in this pool's workers. */
  takes(env: Record<string, string>): boolean {
    return Object.entries(env).every(([k, v]) => this.perAccount.includes(k) || this.env[k] === v);
  }

  start(argv: string[], env: Record<string, string> = {}): AccountChild {
    let w = this.idle.pop();
    while (w?.dead) w = this.idle.pop();
    w ??= new WarmWorker(this.cli, this.env, (worker, reusable) => this.release(worker, reusable));
    return w.run(argv, Object.fromEntries(Object.entries(env).filter(([k]) => this.perAccount.includes(k))));
  }

  private release(w: WarmWorker, reusable: boolean): void {
    if (reusable) this.idle.push(w);
    else w.retire();
  }

  /** Ends every worker between accounts (they exit at the end of their input) and waits for them. */
  async close(): Promise<void> {
    const idle = this.idle.splice(0);
    for (const w of idle) w.retire();
    await Promise.all(idle.map((w) => w.exited));
  }
}
