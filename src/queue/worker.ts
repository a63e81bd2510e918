// A worker: takes accounts from the queue (pg-boss jobs) and runs each as today's batch does,
// as a `migrate` child with its own state store, under a lease it renews every few seconds.
// - pg-boss decides who gets an account next (priority order, one active job per account,
//   retries); the lease decides whether this worker may touch it.
// - A lease that cannot be renewed (taken over, expired while paused, database out of reach for
//   longer than the lease) ends the account's child at once, and this worker writes nothing
//   more for it: every write it makes names its epoch.
// - The account's state store goes to PostgreSQL every 30 s and when the run ends; the next
//   holder restores it. Its credentials come sealed from PostgreSQL into a home of this worker's.
// - Expired leases of dead workers are noticed here too: their job is failed, so pg-boss's retry
//   hands the account to a worker.

import fs from 'node:fs';
import type Database from 'better-sqlite3';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type PgBoss from 'pg-boss';
import pg from 'pg';
import type { BatchRunOptions, Running } from '../batch/runner.ts';
import { CLI, finishAccount, startAccount } from '../batch/runner.ts';
import { nextPacificMidnight } from '../batch/schedule.ts';
import { accountStateFile, addSample, listAccounts, openBatch, setAccount } from '../batch/store.ts';
import type { AccountRecord } from '../batch/store.ts';
import { stateProgress } from '../batch/view.ts';
import { sleep } from '../lib/backoff.ts';
import { redact } from '../lib/redact.ts';
import type { DB } from '../../state/db.ts';
import { holdLockFile } from '../../state/lock.ts';
import type { AccountJob } from './boss.ts';
import { providersOf, queueFor, sendAccount, startBoss } from './boss.ts';
import { EXIT_FENCED, QUEUE_ENV, queueEnv } from './child.ts';
import { AccountPool } from '../batch/pool.ts';
import { afterCrash, crashOf } from './crash.ts';
import type { Queue } from './db.ts';
import { QueueError, SESSION_OPTIONS, getMeta, openQueue } from './db.ts';
import type { Lease } from './lease.ts';
import { acquireLease, limitProblem, liveAccounts, reapExpired, renewLease, setAccountFields, underLease } from './lease.ts';
import { credentialPairs, readSettings } from './load.ts';
import type { QueueSettings } from './load.ts';
import { BOSS_SCHEMA, QUEUE_PREFIX, SCHEMA } from './schema.ts';
import { materializeCredentials, saveRefreshedCredentials, unseal } from './secrets.ts';
import { orphanedJobs } from './orphans.ts';
import { saveSnapshot, restoreSnapshot } from './snapshot.ts';

export interface WorkerOptions {
  url: string;
  name: string;
  slots: number;
  /** Keep waiting for work when the queue is empty (accounts loaded later, quota days). */
  follow: boolean;
  /** This worker's own folder: account state stores while they run, reports, a private home for credentials. */
  dir: string;
  /** Overrides the batch's lease length (seconds). */
  leaseSeconds?: number;
  key: Buffer | null;
  say: (line: string) => void;
  json: boolean;
  signal: AbortSignal;
}

/** How often the state store goes to PostgreSQL while an account runs. */
export const SNAPSHOT_EVERY_MS = 30_000;
/**
 * After a deletion at the source, the state goes to PostgreSQL within this long instead of at the
 * next 30-second copy: a deletion is the one thing a takeover cannot redo, and its record (the
 * item, its proof) would otherwise live only on this machine's disk until then.
 */
export const SNAPSHOT_AFTER_DELETION_MS = 2_000;
const POLL_MS = 2_000;
/**
 * Said (NOTIFY) in the transaction that ends an account's job, so delivered only once it commits:
 * the other workers' idle slots look at the queue again at once instead of at their next poll
 * (a worker without --follow leaves when the last account ends anywhere, not up to 2 s later).
 */
const JOB_ENDED = 'gallery_bridge_job_ended';
/** Waits before an account refused by a limit is offered again. */
const LIMIT_WAIT_S = 5;

interface Held {
  lease: Lease;
  account: string;
  run: Running | null;
  lost: string | null;
  lastRenewed: number;
}

export const defaultWorkerName = () => `${os.hostname()}-${process.pid}`;

/** Fence margin: a child commits only while at least this much of the lease is left. */
export const fenceMargin = (leaseSeconds: number) => Math.max(1, Math.floor(leaseSeconds / 3));
const renewEvery = (leaseSeconds: number) => Math.max(0.5, Math.min(5, leaseSeconds / 6));

/**
 * A wait that `ring()` cuts short. An idle slot waits on one for the next poll and the upkeep loop
 * between renewals: when a slot's account ends, the idle slots look again at once (the queue may
 * now be empty, or a limit have room), and the last slot's end lets the worker leave at once
 * instead of after the rest of a 2-second poll and a 5-second renewal wait.
 */
class Alarm {
  private readonly waiters = new Set<() => void>();

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  ring(): void {
    for (const w of [...this.waiters]) w();
  }
}

export async function runWorker(o: WorkerOptions): Promise<number> {
  // The slots' warm processes start first: their start (Node, the migrate code) overlaps this
  // worker's connection, pg-boss and registration instead of following the first lease. A new
  // worker's first account waited for both in turn (measured in the 4-worker bench: 1.2-1.6 s
  // from a worker's start to its registration, then 4.1-4.3 s for its first account against
  // 2.6-2.7 s for its next ones).
  const pool = workerPool(o);
  pool?.prestart(o.slots);
  let q: Queue | null = null;
  let boss: PgBoss | null = null;
  let folderLock: Database.Database | null = null;
  try {
    q = await openQueue(o.url, { migrate: false, max: o.slots + 4 });
    const settings = await readSettings(q);
    await verifyKey(q, o.key);
    folderLock = lockFolder(o.dir);
    boss = await startBoss(o.url);
    await registerWorker(q, o.name, o.slots, o.leaseSeconds ?? settings.leaseSeconds);
    const w = new Worker(q, boss, o, settings, pool);
    return await w.run();
  } finally {
    await q?.query(`UPDATE ${SCHEMA}.workers SET stopped_at = now() WHERE name = $1 AND pid = $2`, [o.name, process.pid]).catch(() => undefined);
    await boss?.stop({ graceful: false, wait: true }).catch(() => undefined);
    await q?.end().catch(() => undefined);
    // Idle warm processes end (a worker that could not join never gave them an account).
    await pool?.close();
    folderLock?.close();
  }
}

/** What every account's run gets in its environment from this worker (besides its lease). */
function childEnv(dir: string): Record<string, string> {
  return {
    // The workers' key opens every account's sign-in: an account's run never needs it.
    GALLERY_BRIDGE_QUEUE_KEY: '',
    GALLERY_BRIDGE_QUEUE_KEY_FILE: '',
    GALLERY_BRIDGE_HOME: path.join(dir, 'home'),
  };
}

/**
 * Warm processes as on one machine: their environment is this worker's home without its key;
 * each account's lease goes with its job as values, read by migrate in place of its environment.
 */
function workerPool(o: WorkerOptions): AccountPool | undefined {
  if (process.env.GALLERY_BRIDGE_BATCH_PROCESS_PER_ACCOUNT === '1') return undefined;
  return new AccountPool(CLI, { ...process.env, ...childEnv(o.dir) }, Object.values(QUEUE_ENV));
}

/**
 * One worker per folder: two would restore account state stores over each other's. A SQLite lock
 * (an OS file lock, see holdLockFile) is held for the worker's life; the kernel drops it however
 * the process ends, so a killed worker's folder is free again at once.
 */
function lockFolder(dir: string): Database.Database {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'worker.lock');
  const lock = holdLockFile(file);
  if (!lock) throw new QueueError(`the folder ${dir} is in use by another worker on this machine: give each worker its own --state folder`);
  return lock;
}

async function verifyKey(q: Queue, key: Buffer | null): Promise<void> {
  const stored = await getMeta(q, 'key_check');
  if (!stored || !key) return;
  try {
    unseal(key, 'key-check', Buffer.from(stored, 'base64'));
  } catch {
    throw new QueueError('GALLERY_BRIDGE_QUEUE_KEY is not the key this batch was loaded with: give every worker the same key');
  }
}

/** Joins the batch under `name`; refuses a name a live worker uses (a heartbeat within the lease). */
async function registerWorker(q: Queue, name: string, slots: number, leaseSeconds: number): Promise<void> {
  const r = await q.query(
    `INSERT INTO ${SCHEMA}.workers (name, host, pid, slots) VALUES ($1, $2, $3, $4)
     ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, slots = excluded.slots, started_at = now(), heartbeat_at = now(), stopped_at = NULL
       WHERE ${SCHEMA}.workers.stopped_at IS NOT NULL OR ${SCHEMA}.workers.heartbeat_at < now() - make_interval(secs => $5)
     RETURNING name`,
    [name, os.hostname(), process.pid, slots, leaseSeconds],
  );
  if (r.rowCount !== 1) throw new QueueError(`a worker named "${name}" is already running (its heartbeat is recent): give this one another --name`);
}

class Worker {
  private readonly held = new Map<string, Held>();
  private stopping = false;
  private readonly idle = new Alarm();
  private readonly upkeepWait = new Alarm();
  private readonly batch: DB;
  private readonly home: string;
  private readonly bo: BatchRunOptions;
  private readonly leaseSeconds: number;

  constructor(
    private readonly q: Queue,
    private readonly boss: PgBoss,
    private readonly o: WorkerOptions,
    private readonly settings: QueueSettings,
    pool: AccountPool | undefined,
  ) {
    this.leaseSeconds = o.leaseSeconds ?? settings.leaseSeconds;
    this.batch = openBatch(o.dir);
    this.home = childEnv(o.dir).GALLERY_BRIDGE_HOME!;
    fs.mkdirSync(this.home, { recursive: true, mode: 0o700 });
    this.bo = {
      dir: o.dir,
      manifestFile: '',
      rows: [],
      deadline: settings.deadline ? new Date(settings.deadline) : null,
      limits: settings.limits,
      deleteSource: settings.deleteSource,
      googleDailyBudget: settings.googleDailyBudget,
      assumedRate: settings.assumedRate,
      passThrough: settings.passThrough,
      failStreak: settings.failStreak,
      say: o.say,
      json: o.json,
      signal: o.signal,
      pool,
    };
  }

  async run(): Promise<number> {
    const onAbort = () => {
      this.stopping = true;
      for (const h of this.held.values()) h.run?.child.kill('SIGTERM');
    };
    this.o.signal.addEventListener('abort', onAbort, { once: true });
    this.o.say(
      `worker ${this.o.name}: ${this.o.slots} slot${this.o.slots > 1 ? 's' : ''}, lease ${this.leaseSeconds} s${this.o.follow ? ', following the queue' : ''}`,
    );
    const upkeep = this.upkeep();
    const listener = await this.listenForJobEnds();
    await Promise.all(Array.from({ length: this.o.slots }, () => this.slot()));
    this.stopping = true;
    this.upkeepWait.ring();
    await listener?.end().catch(() => undefined);
    await upkeep;
    this.o.signal.removeEventListener('abort', onAbort);
    this.batch.close();
    this.o.say(`worker ${this.o.name}: ${this.o.signal.aborted ? 'stopped' : 'no accounts left'}`);
    return this.o.signal.aborted ? 130 : 0;
  }

  /** null when it cannot listen: the idle slots then only poll. */
  private async listenForJobEnds(): Promise<pg.Client | null> {
    const c = new pg.Client({ connectionString: this.o.url, application_name: 'gallery-bridge worker listen', options: SESSION_OPTIONS });
    c.on('error', () => undefined);
    c.on('notification', () => this.idle.ring());
    try {
      await c.connect();
      await c.query(`LISTEN ${JOB_ENDED}`);
      return c;
    } catch {
      await c.end().catch(() => undefined);
      return null;
    }
  }

  private async slot(): Promise<void> {
    while (!this.stopping) {
      let job: PgBoss.JobWithMetadata<AccountJob> | undefined;
      try {
        job = await this.nextJob();
        if (!job && !this.o.follow && (await this.nothingLeft())) return;
      } catch (err) {
        // The database out of reach for a moment: the running accounts' leases say whether they may go on.
        this.o.say(`worker ${this.o.name}: the queue database did not answer (${redact((err as Error).message)}); trying again`);
      }
      if (!job) {
        await this.idle.wait(POLL_MS, this.o.signal);
        continue;
      }
      try {
        await this.runJob(job);
      } catch (err) {
        this.o.say(`worker ${this.o.name}: account job ${job.data.slug}: ${redact((err as Error).message)}`);
        await sleep(POLL_MS, this.o.signal).catch(() => undefined);
      } finally {
        this.idle.ring();
      }
    }
  }

  /**
   * The highest-priority account whose providers have room under the batch's limits: queues are
   * looked at best first, and one at its limit is skipped without taking its jobs, so accounts
   * of other providers start at once (as on one machine). The lease re-checks the limits.
   */
  private async nextJob(): Promise<PgBoss.JobWithMetadata<AccountJob> | undefined> {
    const ready = (
      await this.q.query(
        `SELECT name, max(priority) AS best FROM ${BOSS_SCHEMA}.job WHERE name LIKE $1 AND state IN ('created', 'retry') AND start_after < now() GROUP BY name ORDER BY best DESC`,
        [`${QUEUE_PREFIX}%`],
      )
    ).rows as Array<{ name: string }>;
    if (!ready.length) return undefined;
    const held = await liveAccounts(this.q);
    for (const { name } of ready) {
      if (limitProblem(held, providersOf(name), this.settings.limits)) continue;
      const [job] = await this.boss.fetch<AccountJob>(name, { batchSize: 1, priority: true, includeMetadata: true });
      if (job) return job;
    }
    return undefined;
  }

  /** True when every account is finished or waits for the next Google day (that wait is for a --follow worker). */
  private async nothingLeft(): Promise<boolean> {
    const r = await this.q.query(
      `SELECT count(*) AS n FROM ${BOSS_SCHEMA}.job WHERE name LIKE $1 AND state IN ('created', 'retry', 'active') AND (data->>'wait') IS DISTINCT FROM 'quota'`,
      [`${QUEUE_PREFIX}%`],
    );
    return Number(r.rows[0].n) === 0;
  }

  private async runJob(job: PgBoss.JobWithMetadata<AccountJob>): Promise<void> {
    const { slug } = job.data;
    const got = await acquireLease(this.q, slug, this.o.name, job.id, this.leaseSeconds, this.settings.limits);
    if (got.kind === 'done') {
      await this.boss.complete(job.name, job.id);
      return;
    }
    if (got.kind === 'held') return; // its holder completes this very job
    if (got.kind === 'limit') {
      // Another worker took the last room between the look and the lease: offered again shortly.
      await sendAccount(this.boss, job.name, slug, job.priority, LIMIT_WAIT_S);
      await this.boss.complete(job.name, job.id);
      return;
    }
    const rec = await this.localRecord(slug);
    if (got.takeover) this.o.say(`${rec.account}: taken over from ${got.takeover.oldWorker} (${got.takeover.reason})`);
    const h: Held = { lease: got.lease, account: rec.account, run: null, lost: null, lastRenewed: Date.now() };
    this.held.set(slug, h);
    try {
      await this.runAccount(h, rec, job);
    } finally {
      this.held.delete(slug);
    }
  }

  private async runAccount(h: Held, rec: AccountRecord, job: PgBoss.JobWithMetadata<AccountJob>): Promise<void> {
    const { lease } = h;
    const stateFile = accountStateFile(this.o.dir, rec.slug);
    const pairs = credentialPairs(rec);
    let prints: Map<string, string>;
    try {
      await restoreSnapshot(this.q, rec.slug, stateFile);
      prints = await materializeCredentials(this.q, this.o.key, this.home, pairs);
    } catch (err) {
      // Nothing started: the account is paused with the reason, not left held by a lease nobody renews.
      return this.handBack(h, job, 'paused', `this worker could not prepare the account: ${redact((err as Error).message)}`);
    }
    if (h.lost) return;
    const env = {
      ...childEnv(this.o.dir),
      ...queueEnv({
        url: this.o.url,
        slug: rec.slug,
        epoch: lease.epoch,
        worker: this.o.name,
        marginSeconds: fenceMargin(this.leaseSeconds),
        googleBudget: this.settings.googleDailyBudget,
      }),
    };
    if (this.stopping) return this.handBack(h, job, 'waiting', 'its worker stopped before starting it');
    const run = startAccount(this.bo, this.batch, rec, null, env);
    h.run = run;
    let ended = false;
    let deletedSinceCopy = false;
    let summarized = false;
    readline.createInterface({ input: run.child.stdout! }).on('line', (l) => {
      if (l.includes('"state":"source-deleted"')) deletedSinceCopy = true;
      if (l.startsWith('{"type":"summary"')) summarized = true;
    });
    const copier = (async () => {
      let copiedAt = Date.now();
      while (!ended && !h.lost) {
        await Promise.race([sleep(SNAPSHOT_AFTER_DELETION_MS), run.done]);
        if (ended || h.lost) break;
        if (!deletedSinceCopy && Date.now() - copiedAt < SNAPSHOT_EVERY_MS) continue;
        deletedSinceCopy = false;
        copiedAt = Date.now();
        await this.checkpoint(h, stateFile, prints, pairs).catch((err) =>
          this.o.say(`${rec.account}: could not copy its state to the queue database: ${redact((err as Error).message)}`),
        );
      }
    })();
    const code = await run.done;
    ended = true;
    await copier;
    if (h.lost) return;
    let status = await finishAccount(this.bo, this.batch, run, code);
    const crash = crashOf(run.child, code, summarized, run.lastWarn);
    if (code === EXIT_FENCED) {
      status = 'waiting';
      setAccount(this.batch, rec.slug, { status, reason: 'its run could not confirm the lease in time; the account continues', todo: null });
    } else if (crash) {
      const next = afterCrash(crash, job.retryCount);
      status = next.status;
      setAccount(this.batch, rec.slug, next);
      this.o.say(`${rec.account}: ${next.status} — ${next.reason}`);
    }
    if (!(await this.checkpoint(h, stateFile, prints, pairs))) return;
    const local = listAccounts(this.batch).find((a) => a.slug === rec.slug)!;
    const p = stateProgress(stateFile);
    this.held.delete(rec.slug);
    const released = await underLease(this.q, lease, async (c) => {
      await setAccountFields(c, rec.slug, {
        status,
        reason: local.reason,
        todo:
          status === 'waiting-quota' ? 'It continues after midnight Pacific time on a worker started with --follow (or any worker started then).' : local.todo,
        last_error: local.last_error,
        exit_code: local.exit_code,
        ended_at: new Date(),
        ...progressFields(p),
      });
      await c.query(`UPDATE ${SCHEMA}.leases SET released_at = now() WHERE slug = $1 AND epoch = $2`, [lease.slug, lease.epoch]);
      await this.endJob(c, job, status);
    });
    if (!released) this.lose(h, 'the lease expired before the account was handed back');
  }

  /** What happens to the account's pg-boss job, in the same transaction as the lease's release. */
  private async endJob(c: pg.PoolClient, job: PgBoss.JobWithMetadata<AccountJob>, status: string): Promise<void> {
    const db = { executeSql: (text: string, values: unknown[]) => c.query(text, values) };
    await c.query(`NOTIFY ${JOB_ENDED}`);
    if (status === 'waiting') {
      // Interrupted (this worker stops) or crashed: pg-boss's retry hands it to a worker.
      await this.boss.fail(job.name, job.id, { message: 'interrupted; continues on a worker' }, { db });
      return;
    }
    if (status === 'waiting-quota')
      await sendAccount(this.boss, job.name, job.data.slug, job.priority, new Date(nextPacificMidnight().getTime() + 60_000), db, 'quota');
    await this.boss.complete(job.name, job.id, { status }, { db });
  }

  /** Lets go of an account whose run never started: waiting goes back to the queue, paused waits for the admin. */
  private async handBack(h: Held, job: PgBoss.JobWithMetadata<AccountJob>, status: 'waiting' | 'paused', reason: string): Promise<void> {
    this.held.delete(h.lease.slug);
    this.o.say(`${h.account}: ${status} — ${reason}`);
    await underLease(this.q, h.lease, async (c) => {
      await setAccountFields(c, h.lease.slug, {
        status,
        reason,
        todo: status === 'paused' ? 'Fix what the reason says, then load the batch again (batch run --queue): the account resumes.' : null,
        ended_at: new Date(),
      });
      await c.query(`UPDATE ${SCHEMA}.leases SET released_at = now() WHERE slug = $1 AND epoch = $2`, [h.lease.slug, h.lease.epoch]);
      await this.endJob(c, job, status);
    });
  }

  /** Copies the state store, progress and any refreshed sign-in under the lease; false when the lease is gone. */
  private async checkpoint(h: Held, stateFile: string, prints: Map<string, string>, pairs: Array<{ provider: string; account: string }>): Promise<boolean> {
    if (h.lost) return false;
    if (!(await saveSnapshot(this.q, h.lease, stateFile))) {
      this.lose(h, 'the lease was gone when its state was to be copied');
      return false;
    }
    const p = stateProgress(stateFile);
    await underLease(this.q, h.lease, async (c) => {
      await setAccountFields(c, h.lease.slug, progressFields(p));
      await c.query(`INSERT INTO ${SCHEMA}.samples (slug, done_items, done_bytes, total_items) VALUES ($1, $2, $3, $4)`, [
        h.lease.slug,
        p.doneItems,
        p.doneBytes,
        p.items,
      ]);
    });
    addSample(this.batch, h.lease.slug, { doneItems: p.doneItems, doneBytes: p.doneBytes, totalItems: p.items });
    await saveRefreshedCredentials(this.q, this.o.key, h.lease, this.home, prints, pairs);
    return true;
  }

  /** The lease is gone: the account's child ends at once and nothing more is written for it. */
  private lose(h: Held, why: string): void {
    if (h.lost) return;
    h.lost = why;
    h.run?.child.kill('SIGKILL');
    this.o.say(`${h.account}: lost its lease (${why}); its run was stopped at once and another worker continues it`);
  }

  /** Renews the leases, beats the heart, and hands dead workers' accounts back to the queue. */
  private async upkeep(): Promise<void> {
    const every = renewEvery(this.leaseSeconds) * 1000;
    while (!this.stopping || this.held.size) {
      for (const h of [...this.held.values()]) {
        if (h.lost) continue;
        let ok: boolean | null;
        try {
          ok = await renewLease(this.q, h.lease);
        } catch {
          ok = null;
        }
        if (ok) h.lastRenewed = Date.now();
        else if (ok === false && this.held.get(h.lease.slug) === h) this.lose(h, 'it could not be renewed: it expired or another worker holds it now');
        else if (Date.now() - h.lastRenewed > (this.leaseSeconds - fenceMargin(this.leaseSeconds)) * 1000)
          this.lose(h, 'the queue database was out of reach for longer than the lease');
      }
      await this.q.query(`UPDATE ${SCHEMA}.workers SET heartbeat_at = now() WHERE name = $1`, [this.o.name]).catch(() => undefined);
      await this.reap().catch(() => undefined);
      if (!this.stopping || this.held.size) await this.upkeepWait.wait(every);
    }
  }

  private async reap(): Promise<void> {
    for (const r of await reapExpired(this.q)) {
      if (r.jobId) await this.boss.fail(queueFor(r.source, r.destination), r.jobId, { message: `the lease of worker ${r.worker} expired` });
      this.o.say(`worker ${this.o.name}: the lease of ${r.worker} on ${r.slug} expired; the account goes back to the queue`);
    }
    for (const j of await orphanedJobs(this.q, this.leaseSeconds)) {
      await this.boss.fail(j.queue, j.id, { message: 'its worker stopped before it took the account' });
      this.o.say(`worker ${this.o.name}: ${j.slug} was handed to a worker that stopped before taking it; the account goes back to the queue`);
    }
  }

  /** The account's row in this worker's local batch store (startAccount and finishAccount read and write it). */
  private async localRecord(slug: string): Promise<AccountRecord> {
    const rows = (await this.q.query(`SELECT * FROM ${SCHEMA}.accounts WHERE slug = $1`, [slug])).rows;
    const a = rows[0] as Record<string, unknown>;
    const existing = listAccounts(this.batch).find((x) => x.slug === slug || x.account === a.account);
    if (!existing || existing.source !== a.source || existing.destination !== a.destination) {
      if (existing) this.batch.prepare('DELETE FROM accounts WHERE account = ?').run(a.account);
      this.batch
        .prepare(
          `INSERT INTO accounts (slug, account, line, source, destination, source_account, destination_account, delete_source, delete_evidence, priority) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          slug,
          a.account,
          a.line,
          a.source,
          a.destination,
          a.source_account,
          a.destination_account,
          a.delete_source === null ? null : a.delete_source ? 1 : 0,
          a.delete_evidence,
          a.priority,
        );
    } else {
      setAccount(this.batch, slug, {
        source_account: a.source_account as string,
        destination_account: a.destination_account as string,
        delete_source: a.delete_source === null ? null : a.delete_source ? 1 : 0,
        delete_evidence: a.delete_evidence as string | null,
        priority: a.priority as number,
      });
    }
    return listAccounts(this.batch).find((x) => x.slug === slug)!;
  }
}

function progressFields(p: ReturnType<typeof stateProgress>): Record<string, unknown> {
  return { items: p.items, done_items: p.doneItems, bytes: p.bytes, done_bytes: p.doneBytes, progress_at: new Date() };
}
