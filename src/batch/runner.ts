// Runs a batch: every account is its own `gallery-bridge migrate` run with its own state store,
// in a warm worker process shared by a few accounts at most (./pool.ts), so one account's crash,
// expired sign-in, full destination or failing source never touches another's. The runner only
// schedules: it starts accounts in the planned order
// within the limits, hands each Google account its share of the shared daily budget, reads
// their JSON progress, and records why an account stopped. Rerunning the batch resumes every
// account that is not done.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import Database from 'better-sqlite3';
import type { DB } from '../../state/db.ts';
import { openState } from '../../state/db.ts';
import { defaultHome } from '../lib/credentials.ts';
import { redact } from '../lib/redact.ts';
import { writeReport, writeTableReports } from '../report/report.ts';
import { writeBatchReports } from '../report/batch.ts';
import type { AccountRow } from './manifest.ts';
import { GOOGLE_REQUESTS_PER_ITEM, googleNeed, googleShares, kindOf, nextPacificMidnight, orderJobs, pacificDay, planSchedule } from './schedule.ts';
import type { Job, Limits } from './schedule.ts';
import { accountDir, accountStateFile, addSample, listAccounts, openBatch, setAccount, setBatchMeta, syncAccounts } from './store.ts';
import type { AccountRecord, AccountStatus } from './store.ts';
import { progressOf, stateProgress } from './view.ts';
import { AccountPool, spawnAccount } from './pool.ts';
import type { AccountChild } from './pool.ts';

export const CLI = path.resolve(import.meta.dirname, '../../bin/gallery-bridge.js');

export interface BatchRunOptions {
  dir: string;
  manifestFile: string;
  rows: AccountRow[];
  deadline: Date | null;
  limits: Limits;
  deleteSource: boolean;
  /** Google's daily request budget for the project (all accounts share it). */
  googleDailyBudget: number;
  /** Bytes per second assumed for an account before one has been measured. */
  assumedRate: number;
  /** Options passed on to every account's migrate (concurrency, retries, provider options). */
  passThrough: string[];
  /** Consecutive failed items, with nothing succeeding between, that pause an account. */
  failStreak: number;
  say: (line: string) => void;
  json: boolean;
  signal: AbortSignal;
  /** Warm worker processes for the accounts (absent: a process of its own for each). */
  pool?: AccountPool;
  /** How many warm worker processes share the accounts at once (default: the machine's cores). */
  workerProcesses?: number;
}

/**
 * How the accounts at once are spread over warm processes: no more processes than cores, and
 * several accounts in each beyond that. Eight processes on two cores each paid their own start
 * and JIT warm-up, and took turns on the cores: a batch of 24 small accounts took 36-39 s of CPU
 * in 8 processes and 24 s in 2.
 */
export function poolShape(accountsAtOnce: number, workerProcesses = os.availableParallelism()): { processes: number; accountsPerProcess: number } {
  const processes = Math.max(1, Math.min(accountsAtOnce, workerProcesses));
  return { processes, accountsPerProcess: Math.ceil(accountsAtOnce / processes) };
}

export interface Running {
  rec: AccountRecord;
  child: AccountChild;
  /** Requests this account may spend from today's Google budget, or null when it does not use Google. */
  share: number | null;
  used: number;
  stoppedFor: null | { status: AccountStatus; reason: string; todo: string };
  lastWarn: string | null;
  streak: number;
  startedAt: number;
  done: Promise<number>;
}

/** Requests the project already made today (Pacific), as counted by every run on this machine. */
export function googleUsedToday(home = defaultHome()): number {
  const file = path.join(home, 'google-photos', 'quota.sqlite');
  if (!fs.existsSync(file)) return 0;
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const r = db.prepare('SELECT sum(requests) AS n, max(exhausted) AS x FROM usage WHERE day = ?').get(pacificDay()) as { n: number | null; x: number | null };
    return r.x ? Number.POSITIVE_INFINITY : (r.n ?? 0);
  } catch {
    return 0;
  } finally {
    db?.close();
  }
}

function jobFor(dir: string, a: AccountRecord, assumedRate: number, measuredRate: number | null): Job {
  const p = stateProgress(accountStateFile(dir, a.slug));
  const known = p.listingComplete;
  const leftItems = p.outcomes.failed.items + p.outcomes['not-started'].items;
  const leftBytes = p.outcomes.failed.bytes + p.outcomes['not-started'].bytes;
  return {
    slug: a.slug,
    account: a.account,
    priority: a.priority,
    line: a.line,
    providers: [...new Set([kindOf(a.source), kindOf(a.destination)])],
    remainingItems: known ? leftItems : a.est_items !== null ? Math.max(0, a.est_items - p.doneItems) : null,
    remainingBytes: known ? leftBytes : a.est_bytes !== null ? Math.max(0, a.est_bytes - p.doneBytes) : null,
    rate: p.rate ?? measuredRate ?? assumedRate,
    google: kindOf(a.destination) === 'google-photos',
  };
}

const EXIT_STATUS: Record<number, { status: AccountStatus; why: string; todo: string }> = {
  3: {
    status: 'paused',
    why: 'credentials expired or refused',
    todo: 'Sign in again (gallery-bridge auth PROVIDER --account NAME), then run the batch again: the account resumes.',
  },
  5: { status: 'paused', why: 'destination full', todo: 'Free space at the destination or raise its storage, then run the batch again.' },
  4: {
    status: 'waiting-quota',
    why: "the service's request quota is spent",
    todo: 'Run the batch again after the quota resets (Google: midnight Pacific time); nothing is lost.',
  },
  2: {
    status: 'paused',
    why: 'configuration problem',
    todo: 'Fix the manifest row or the stored sign-in, then run the batch again (batch check tells what is wrong).',
  },
};

export async function runBatch(o: BatchRunOptions): Promise<number> {
  const db = openBatch(o.dir);
  const problems = syncAccounts(db, o.rows);
  if (problems.length) {
    for (const p of problems) o.say(`error: ${p}`);
    db.close();
    return 2;
  }
  setBatchMeta(db, 'manifest', path.resolve(o.manifestFile));
  setBatchMeta(db, 'deadline', o.deadline?.toISOString() ?? null);
  setBatchMeta(db, 'running_pid', String(process.pid));
  setBatchMeta(db, 'started_at', new Date().toISOString());

  const accounts = listAccounts(db).filter((a) => a.status !== 'removed');
  // Accounts left 'running' by a killed batch are simply waiting again.
  for (const a of accounts) if (a.status === 'running') setAccount(db, a.slug, { status: 'waiting' });
  const measured = accounts.map((a) => stateProgress(accountStateFile(o.dir, a.slug)).rate).filter((r): r is number => !!r);
  const measuredRate = measured.length ? measured.reduce((x, y) => x + y, 0) / measured.length : null;
  const todo = accounts.filter((a) => a.status !== 'done');
  const ordered = orderJobs(
    todo.map((a) => jobFor(o.dir, a, o.assumedRate, measuredRate)),
    o.deadline,
  );
  const usedToday = googleUsedToday();
  const google = {
    perDay: o.googleDailyBudget,
    remainingToday: Math.max(0, o.googleDailyBudget - (Number.isFinite(usedToday) ? usedToday : o.googleDailyBudget)),
    nextReset: nextPacificMidnight(),
  };
  const plan = planSchedule(ordered, o.limits, google, new Date(), o.deadline);
  const notes: string[] = [];
  for (const p of plan)
    setAccount(db, p.slug, { planned_finish: p.finish?.toISOString() ?? null, makes_deadline: p.makesDeadline === null ? null : p.makesDeadline ? 1 : 0 });
  const done = accounts.length - todo.length;
  notes.push(`${accounts.length} accounts: ${done} done, ${todo.length} to run, ${o.limits.accountsAtOnce} at once.`);
  if (ordered.some((j) => j.google))
    notes.push(
      `Google budget: ${google.remainingToday} of ${google.perDay} requests left today (resets ${google.nextReset.toISOString().slice(0, 16).replace('T', ' ')} UTC), shared ${o.deadline ? 'in schedule order' : 'fairly'} by ${ordered.filter((j) => j.google).length} accounts.`,
    );
  if (o.deadline) {
    const miss = plan.filter((p) => p.makesDeadline === false);
    const unknown = plan.filter((p) => p.makesDeadline === null);
    notes.push(
      `Deadline ${o.deadline.toISOString().slice(0, 16).replace('T', ' ')} UTC: ${plan.length - miss.length - unknown.length} of ${plan.length} accounts finish in time at the measured rates and budgets.`,
    );
    if (miss.length)
      notes.push(
        `The deadline cannot be met for ${miss.length} account${miss.length > 1 ? 's' : ''}: ${miss.map((p) => ordered.find((j) => j.slug === p.slug)!.account).join(', ')}. They run last, so that the others finish.`,
      );
    if (unknown.length)
      notes.push(`${unknown.length} account${unknown.length > 1 ? 's have' : ' has'} never been counted (run batch check first for a complete plan).`);
  }
  setBatchMeta(db, 'notes', JSON.stringify(notes));
  for (const n of notes) o.say(n);

  // A process per account cost a small account most of its CPU (start, module loading, a cold
  // JIT); warm workers pay that once. GALLERY_BRIDGE_BATCH_PROCESS_PER_ACCOUNT=1 goes back to one
  // process each (to measure the difference).
  const pool =
    o.pool ??
    (process.env.GALLERY_BRIDGE_BATCH_PROCESS_PER_ACCOUNT === '1'
      ? undefined
      : new AccountPool(CLI, process.env, [], poolShape(o.limits.accountsAtOnce, o.workerProcesses)));
  const ro = { ...o, pool };
  const running = new Map<string, Running>();
  let googleSpent = false;
  let stopping = false;
  const onAbort = () => {
    stopping = true;
    for (const r of running.values()) r.child.kill('SIGTERM');
  };
  o.signal.addEventListener('abort', onAbort, { once: true });

  const providerCount = (p: string) => [...running.values()].filter((r) => [kindOf(r.rec.source), kindOf(r.rec.destination)].includes(p)).length;
  const fits = (j: Job) =>
    running.size < o.limits.accountsAtOnce && j.providers.every((p) => o.limits.perProvider[p] === undefined || providerCount(p) < o.limits.perProvider[p]!);

  // Samples for the progress charts: about a hundred per account however long it runs (the
  // gap grows with its run time), so the dashboard reads a bounded table on every refresh.
  const lastSample = new Map<string, { at: number; done: number }>();
  const sampler = setInterval(() => {
    const now = Date.now();
    for (const r of running.values()) {
      const began = r.startedAt;
      const last = lastSample.get(r.rec.slug);
      if (last && now - last.at < Math.max(1000, (now - began) / 100)) continue;
      const p = stateProgress(accountStateFile(o.dir, r.rec.slug));
      if (last && last.done === p.doneItems && now - last.at < 60_000) continue;
      lastSample.set(r.rec.slug, { at: now, done: p.doneItems });
      addSample(db, r.rec.slug, { doneItems: p.doneItems, doneBytes: p.doneBytes, totalItems: p.items });
    }
  }, 1000);
  sampler.unref();

  const queue = [...ordered];
  const records = new Map(accounts.map((a) => [a.slug, a]));
  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  while (!stopping && (queue.length || running.size)) {
    // Start what the limits allow, in order; a job that does not fit yet does not block a later one that does.
    for (let i = 0; i < queue.length && !stopping; ) {
      const j = queue[i]!;
      if (j.google && googleSpent) {
        queue.splice(i, 1);
        setAccount(db, j.slug, {
          status: 'waiting-quota',
          reason: "Google's daily request budget for the project is spent",
          todo: 'Run the batch again after midnight Pacific time: the account resumes.',
        });
        continue;
      }
      if (!fits(j)) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      let share: number | null = null;
      if (j.google) {
        const reserved = [...running.values()].reduce((n, r) => n + (r.share !== null ? Math.max(0, r.share - r.used) : 0), 0);
        const left = Math.max(0, google.remainingToday - reserved - [...running.values()].reduce((n, r) => n + (r.share !== null ? r.used : 0), 0));
        const needs = [j, ...queue.filter((q) => q.google)].map((q) => ({
          slug: q.slug,
          need: q.remainingItems === null ? Number.MAX_SAFE_INTEGER : googleNeed(q) || 1,
        }));
        share = googleShares(needs, left, o.deadline ? 'in-order' : 'fair').get(j.slug) ?? 0;
        if (share < GOOGLE_REQUESTS_PER_ITEM) {
          setAccount(db, j.slug, {
            status: 'waiting-quota',
            reason: "no share of today's Google budget is left for this account",
            todo: 'Run the batch again after midnight Pacific time: the account resumes.',
          });
          continue;
        }
      }
      const r = startAccount(ro, db, records.get(j.slug)!, share);
      running.set(j.slug, r);
      void r.done.then(() => wake());
    }
    if (!running.size) break;
    await new Promise<void>((res) => waiters.push(res));
    for (const [slug, r] of [...running]) {
      const code = await Promise.race([r.done, Promise.resolve(null)]);
      if (code === null) continue;
      running.delete(slug);
      const status = await finishAccount(o, db, r, code);
      if (status === 'waiting-quota' && r.stoppedFor === null) googleSpent = googleSpent || kindOf(r.rec.destination) === 'google-photos';
    }
  }
  await Promise.all([...running.values()].map((r) => r.done));
  await pool?.close();
  clearInterval(sampler);
  o.signal.removeEventListener('abort', onAbort);
  setBatchMeta(db, 'running_pid', null);
  setBatchMeta(db, 'ended_at', new Date().toISOString());
  const final = listAccounts(db).filter((a) => a.status !== 'removed');
  db.close();
  await writeBatchReports(o.dir);
  const notDone = final.filter((a) => a.status !== 'done');
  o.say(
    `batch: ${final.length - notDone.length} of ${final.length} accounts done${notDone.length ? `; ${notDone.map((a) => `${a.account} ${a.status}${a.reason ? ` (${a.reason})` : ''}`).join('; ')}` : ''}. Report: ${path.join(o.dir, 'report.html')}`,
  );
  if (o.signal.aborted) return 130;
  return notDone.length ? 1 : 0;
}

/**
 * Starts one account's migrate: in a warm worker of `o.pool`, or in a process of its own when
 * there is no pool or the pool cannot give the account `env` (queue mode: the lease and a worker's own home).
 */
export function startAccount(o: BatchRunOptions, db: DB, a: AccountRecord, share: number | null, env: Record<string, string> = {}): Running {
  const dir = accountDir(o.dir, a.slug);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const deleteSource = a.delete_source === null ? o.deleteSource : a.delete_source === 1;
  const args = [
    '--from',
    a.source,
    '--to',
    a.destination,
    '--state',
    accountStateFile(o.dir, a.slug),
    '--source-account',
    a.source_account,
    '--destination-account',
    a.destination_account,
    '--json',
    '--report',
    path.join(dir, 'report.html'),
    ...(deleteSource ? ['--delete-source'] : []),
    ...(a.delete_evidence ? ['--delete-evidence', a.delete_evidence] : []),
    ...o.passThrough,
  ];
  const child = o.pool?.takes(env) ? o.pool.start(args, env) : spawnAccount(CLI, args, { ...process.env, ...env });
  setAccount(db, a.slug, {
    status: 'running',
    reason: null,
    todo: null,
    last_error: null,
    started_at: new Date().toISOString(),
    ended_at: null,
    exit_code: null,
    runs: a.runs + 1,
  });
  o.say(`${a.account}: started (${a.source} -> ${a.destination}${share !== null ? `, Google share ${share} requests` : ''})`);
  const r: Running = {
    rec: a,
    child,
    share,
    used: 0,
    stoppedFor: null,
    lastWarn: null,
    streak: 0,
    startedAt: Date.now(),
    done: null as unknown as Promise<number>,
  };
  const stop = (why: NonNullable<Running['stoppedFor']>) => {
    if (r.stoppedFor) return;
    r.stoppedFor = why;
    child.kill('SIGTERM');
  };
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    // An item's bytes (a third of the lines) are read by nobody here: not parsed.
    if (line.startsWith('{"type":"bytes",')) return;
    let e: { type?: string; state?: string; level?: string; message?: string; detail?: string };
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    if (e.type === 'log' && e.level === 'warn' && e.message) r.lastWarn = redact(e.message);
    if (e.type !== 'item') return;
    if (e.state === 'uploaded' || e.state === 'skipped') {
      r.streak = 0;
      if (r.share !== null) {
        r.used += GOOGLE_REQUESTS_PER_ITEM;
        if (r.used > r.share)
          stop({
            status: 'waiting-quota',
            reason: `used its share of today's Google budget (${r.share} requests)`,
            todo: 'Run the batch again after midnight Pacific time: the account resumes.',
          });
      }
    } else if (e.state === 'verified') r.streak = 0;
    else if (e.state === 'failed') {
      r.streak++;
      if (e.detail) setAccount(db, a.slug, { last_error: redact(e.detail).slice(0, 300) });
      if (r.streak >= o.failStreak)
        stop({
          status: 'paused',
          reason: `the source or destination keeps answering errors (${r.streak} items failed in a row; last: ${redact(e.detail ?? 'unknown').slice(0, 200)})`,
          todo: 'Check that the service is up and reachable, then run the batch again: the account resumes where it stopped.',
        });
    }
  });
  r.done = child.ended.then((e) => {
    if (e.startError) r.lastWarn = e.startError;
    else if (!r.lastWarn) {
      const m = /error: (.*)/.exec(e.stderr);
      if (m) r.lastWarn = redact(m[1]!);
    }
    return e.code;
  });
  return r;
}

export async function finishAccount(o: BatchRunOptions, db: DB, r: Running, code: number): Promise<AccountStatus> {
  // One read-only connection for its progress and its reports (opening one costs more than the queries on 200 items).
  let sdb: DB | null = null;
  try {
    sdb = openState(accountStateFile(o.dir, r.rec.slug), { readonly: true });
  } catch {
    // An account that never got as far as a state store reads as empty and has no item report; the batch report says why.
  }
  try {
    return await finishOpened(o, db, r, code, sdb);
  } finally {
    sdb?.close();
  }
}

async function finishOpened(o: BatchRunOptions, db: DB, r: Running, code: number, sdb: DB | null): Promise<AccountStatus> {
  const a = r.rec;
  const p = progressOf(sdb);
  addSample(db, a.slug, { doneItems: p.doneItems, doneBytes: p.doneBytes, totalItems: p.items });
  let status: AccountStatus;
  let reason: string | null = null;
  let todo: string | null = null;
  const left = p.outcomes.failed.items + p.outcomes['not-started'].items + p.outcomes.awaiting.items;
  // Done is done, whatever stopped the process last (a share used up on the last item, a streak on the last retry).
  if (code === 0 || (left === 0 && p.listingComplete && p.items > 0 && code !== 2 && code !== 3 && code !== 5)) {
    status = 'done';
    if (p.outcomes.rejected.items) reason = `${p.outcomes.rejected.items} items rejected (they stay at the source; see the account report)`;
  } else if (r.stoppedFor) ({ status, reason, todo } = r.stoppedFor);
  else if (EXIT_STATUS[code]) {
    const e = EXIT_STATUS[code]!;
    status = e.status;
    reason = `${e.why}${r.lastWarn ? `: ${r.lastWarn}` : ''}`;
    todo = e.todo;
  } else if (code === 130 || code === 143) {
    status = 'waiting';
    reason = 'interrupted';
    todo = 'Run the batch again: the account resumes.';
  } else if (!p.listingComplete || p.outcomes.failed.items > 0) {
    status = 'paused';
    reason = `the source answered errors${r.lastWarn ? `: ${r.lastWarn}` : p.lastError ? `: ${p.lastError}` : ''}`;
    todo = 'Check that the source is up and its sign-in works, then run the batch again: the account resumes where it stopped.';
  } else {
    status = 'paused';
    reason = `${left} items not finished (${p.outcomes.awaiting.items} waiting for the destination to process them)`;
    todo = 'Run the batch again later: nothing is uploaded twice.';
  }
  setAccount(db, a.slug, { status, reason: reason ? redact(reason).slice(0, 500) : null, todo, exit_code: code, ended_at: new Date().toISOString() });
  o.say(`${a.account}: ${status}${reason ? ` — ${redact(reason)}` : ''}`);
  // The child wrote the HTML report with thumbnails; the CSV and JSON come from its state store.
  if (!sdb) return status;
  try {
    writeTableReports(sdb, [path.join(accountDir(o.dir, a.slug), 'report.csv'), path.join(accountDir(o.dir, a.slug), 'report.json')]);
    if (!fs.existsSync(path.join(accountDir(o.dir, a.slug), 'report.html')))
      await writeReport(sdb, path.join(accountDir(o.dir, a.slug), 'report.html'), { title: `Migration report: ${a.account}` });
  } catch {
    // A store whose tables are not all there yet has no item report; the batch report says why.
  }
  return status;
}
