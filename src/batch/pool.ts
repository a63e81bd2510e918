// How a batch runs an account's `migrate`: in a warm worker process from a small pool (see
// ./account-worker.ts), or in a process of its own. Either way the runner sees the same thing:
// the account's stdout, a way to stop it, and its exit code with the tail of its stderr. A pool's
// processes share one environment; what differs per account (queue mode's lease) goes with each
// job as values that migrate reads in place of its environment, and an account needing any other
// variable of its own gets a process of its own.
//
// A pool keeps up to `processes` workers, each running up to `accountsPerProcess` accounts at
// once (one each by default; a batch on a machine with fewer cores than accounts at once puts
// several in each: one process's JIT and caches then serve them all, instead of every process
// warming up on its own while they share the cores).
//
// Isolation: an account's thrown error, refused sign-in or full destination ends that account
// alone (its own exit code; the others in its process go on). A worker is given new accounts only
// while every account it ran ended as a run ends (code 0 or 1) and was not stopped from here;
// anything else (a stop, a signal, a refused sign-in, a crash) retires it once its other accounts
// end, so an odd state never meets a new account. A worker that crashes or is killed under one
// account fails only that account; under several, each of them is run again in a process of its
// own, so the one that brought it down fails alone and the others finish.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import readline from 'node:readline';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { AccountJob, AccountStop } from './account-worker.ts';

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
  argv: string[];
  env: Record<string, string>;
  out: PassThrough;
  stderr: string;
  code: number | null;
  stderrEnded: boolean;
  stopped: boolean;
  signal: NodeJS.Signals | null;
  /** Run again in a process of its own after its shared worker crashed: that process, from then on. */
  alone: AccountChild | null;
  done: (e: AccountEnd) => void;
}

/** A long-lived `batch account-worker` process. */
class WarmWorker {
  readonly proc: ChildProcess;
  dead = false;
  /** Given no new account: one it ran ended otherwise than as a run (see the top of this file). */
  retiring = false;
  readonly exited: Promise<void>;
  readonly jobs = new Map<string, Job>();

  constructor(
    private readonly cli: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly shared: boolean,
    private readonly release: (w: WarmWorker) => void,
  ) {
    this.proc = spawn(process.execPath, [cli, 'batch', 'account-worker'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    // A worker that died between accounts: the next write fails, and its close settles the job.
    this.proc.stdin!.on('error', () => undefined);
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (chunk: string) => this.onStdoutData(chunk));
    this.proc.stdout!.on('end', () => this.onStdoutData('\n'));
    readline.createInterface({ input: this.proc.stderr! }).on('line', (line) => this.onStderr(line));
    this.exited = new Promise((res) => {
      this.proc.on('error', (err) => {
        this.dead = true;
        for (const job of [...this.jobs.values()]) this.settle(job, { code: 1, startError: `could not start: ${err.message}` });
        res();
      });
      this.proc.on('close', (code, signal) => {
        this.dead = true;
        this.ended(exitCodeOf(code, signal), signal);
        res();
      });
    });
  }

  run(argv: string[], env: Record<string, string>): AccountChild {
    const job: Job = {
      end: `gallery-bridge-account-${randomUUID()}`,
      argv,
      env,
      out: new PassThrough(),
      stderr: '',
      code: null,
      stderrEnded: false,
      stopped: false,
      signal: null,
      alone: null,
      done: () => undefined,
    };
    const ended = new Promise<AccountEnd>((res) => (job.done = res));
    this.jobs.set(job.end, job);
    if (this.dead) this.settle(job, { code: 1, startError: 'its worker process had ended' });
    else this.send({ argv, end: job.end, env });
    return {
      stdout: job.out,
      kill: (s) => {
        if (job.alone) return job.alone.kill(s);
        if (job.stopped || this.jobs.get(job.end) !== job) return;
        job.stopped = true;
        // One account of several: stopped alone, as a SIGTERM stops a process of its own; SIGKILL takes the process.
        if (this.shared && s !== 'SIGKILL') this.send({ stop: job.end });
        else this.proc.kill(s);
      },
      ended,
      get signalCode() {
        return job.alone ? job.alone.signalCode : job.signal;
      },
    };
  }

  retire(): void {
    if (!this.dead) this.proc.stdin!.end();
  }

  private send(msg: AccountJob | AccountStop): void {
    if (!this.dead) this.proc.stdin!.write(`${JSON.stringify(msg)}\n`);
  }

  /** The job a line of the worker's belongs to: "TOKEN>LINE" (the account's output) or "TOKEN CODE" / "TOKEN" (its end). */
  private route(line: string): { job: Job; text: string; tagged: boolean } | null {
    const sep = line.search(/[> ]/);
    const job = this.jobs.get(sep < 0 ? line : line.slice(0, sep));
    if (job) return { job, text: sep < 0 ? '' : line.slice(sep + 1), tagged: sep >= 0 && line[sep] === '>' };
    return null;
  }

  private stdoutRest = '';

  /**
   * A chunk of the worker's stdout: each account's lines in it go to its stream in one write,
   * not a line event and a stream write each (three lines an item, 60,000 in a batch of 100 ×
   * 200); an account's end line settles it after the lines before it.
   */
  private onStdoutData(chunk: string): void {
    const lines = (this.stdoutRest + chunk).split('\n');
    this.stdoutRest = lines.pop()!;
    const text = new Map<Job, string>();
    const pass = (job: Job) => {
      const t = text.get(job);
      if (t) job.out.write(t);
      text.delete(job);
    };
    for (const line of lines) {
      const r = line && this.route(line);
      if (!r) continue;
      if (r.tagged) text.set(r.job, `${text.get(r.job) ?? ''}${r.text}\n`);
      else if (/^\d+$/.test(r.text)) {
        pass(r.job);
        r.job.code = Number(r.text);
        if (r.job.stderrEnded) this.settle(r.job, { code: r.job.code });
      }
    }
    for (const job of [...text.keys()]) pass(job);
  }

  private onStderr(line: string): void {
    const r = this.route(line);
    if (!r) {
      // The process's own line (a warning, a crash's trace): every account in it gets it.
      if (line) for (const job of this.jobs.values()) job.stderr = `${job.stderr}${line}\n`.slice(-STDERR_TAIL);
      return;
    }
    if (r.tagged) r.job.stderr = `${r.job.stderr}${r.text}\n`.slice(-STDERR_TAIL);
    else if (r.text === '') {
      r.job.stderrEnded = true;
      if (r.job.code !== null) this.settle(r.job, { code: r.job.code });
    }
  }

  /** The process ended: each account still in it ends with it, or runs again alone when it shared the process. */
  private ended(code: number, signal: NodeJS.Signals | null): void {
    const jobs = [...this.jobs.values()];
    const again = jobs.length > 1;
    for (const job of jobs) {
      if (job.code !== null) this.settle(job, { code: job.code });
      else if (again && !job.stopped) this.runAlone(job, code, signal);
      else {
        job.signal = signal;
        this.settle(job, { code });
      }
    }
  }

  private runAlone(job: Job, code: number, signal: NodeJS.Signals | null): void {
    this.jobs.delete(job.end);
    const child = spawnAccount(this.cli, job.argv, { ...this.env, ...job.env });
    job.alone = child;
    child.stdout.pipe(job.out);
    const why = `note: the worker process it shared with other accounts ended (${signal ?? `code ${code}`}); run again in a process of its own\n`;
    void child.ended.then((e) => job.done({ ...e, stderr: `${why}${e.stderr}`.slice(-STDERR_TAIL) }));
    this.release(this);
  }

  /** The job's end, once: from its end lines, or from the process ending under it. */
  private settle(job: Job, e: { code: number; startError?: string }): void {
    if (this.jobs.get(job.end) !== job) return;
    this.jobs.delete(job.end);
    job.out.end();
    job.done({ ...e, stderr: job.stderr });
    if (this.dead || job.stopped || (e.code !== 0 && e.code !== 1)) this.retiring = true;
    this.release(this);
  }
}

/** Warm workers, started as accounts need them and kept between accounts. */
export class AccountPool {
  private readonly workers = new Set<WarmWorker>();
  private readonly processes: number;
  private readonly perProcess: number;

  /**
   * `env`: the workers' environment; `perAccount`: the variables an account may set for itself
   * (those migrate reads through its env parameter: queue mode's lease); `shape`: at most
   * `processes` workers (beyond it only while retired ones finish), each with up to
   * `accountsPerProcess` accounts at once (default 1: a process per account in flight).
   */
  constructor(
    private readonly cli: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly perAccount: readonly string[] = [],
    shape: { processes?: number; accountsPerProcess?: number } = {},
  ) {
    this.perProcess = Math.max(1, shape.accountsPerProcess ?? 1);
    this.processes = Math.max(1, shape.processes ?? Number.POSITIVE_INFINITY);
  }

  /** Whether an account with these environment variables can run in this pool's workers. */
  takes(env: Record<string, string>): boolean {
    return Object.entries(env).every(([k, v]) => this.perAccount.includes(k) || this.env[k] === v);
  }

  /**
   * Starts workers ahead of their first accounts (up to `count`, within the pool's shape), so
   * that a worker's start (Node, then the migrate code it loads at once) overlaps the caller's
   * own start instead of following it: queue mode's worker connects and registers meanwhile.
   */
  prestart(count: number): void {
    const open = [...this.workers].filter((w) => !w.dead && !w.retiring).length;
    for (let i = open; i < Math.min(count, this.processes); i++) this.workers.add(this.spawn());
  }

  private spawn(): WarmWorker {
    return new WarmWorker(this.cli, this.env, this.perProcess > 1, (worker) => this.release(worker));
  }

  start(argv: string[], env: Record<string, string> = {}): AccountChild {
    const open = [...this.workers].filter((w) => !w.dead && !w.retiring);
    const free = open.filter((w) => w.jobs.size < this.perProcess).sort((a, b) => a.jobs.size - b.jobs.size);
    // Spread over the processes first (each has a core to itself), then fill them.
    let w = free[0] && (free[0].jobs.size === 0 || open.length >= this.processes) ? free[0] : undefined;
    if (!w) {
      w = this.spawn();
      this.workers.add(w);
    }
    return w.run(argv, Object.fromEntries(Object.entries(env).filter(([k]) => this.perAccount.includes(k))));
  }

  private release(w: WarmWorker): void {
    if (w.dead) this.workers.delete(w);
    else if (w.retiring && w.jobs.size === 0) {
      this.workers.delete(w);
      w.retire();
    }
  }

  /** Ends every worker between accounts (they exit at the end of their input) and waits for them. */
  async close(): Promise<void> {
    const idle = [...this.workers].filter((w) => w.jobs.size === 0);
    for (const w of idle) {
      this.workers.delete(w);
      w.retire();
    }
    await Promise.all(idle.map((w) => w.exited));
  }
}
