// Opening the queue database: one pool per process, the schema created or checked once, and
// every failure to connect said in one line that never shows the password.

import pg from 'pg';
import { DDL, SCHEMA, SCHEMA_VERSION, STEPS } from './schema.ts';

export type Queue = pg.Pool;

export class QueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueError';
  }
}

/**
 * Set on every session the tool opens. A worker paused (SIGSTOP, a frozen VM) in the middle of a
 * transaction keeps its row and advisory locks while the server sees it idle: a lease row locked
 * FOR UPDATE, or pg-boss's maintenance lock, would block every other worker's takeover for as
 * long as the pause lasts. Our transactions last milliseconds, so one idle for 5 s is a stalled
 * holder: the server ends its session and frees its locks, and the paused worker, once resumed,
 * finds its connection gone and its lease lost.
 */
export const SESSION_OPTIONS = '-c idle_in_transaction_session_timeout=5000';

/** The URL without its password, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the --queue URL';
  }
}

function explain(url: string, err: unknown): QueueError {
  const e = err as { code?: string; message?: string };
  const where = safeUrl(url);
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'EHOSTUNREACH' || e.code === 'ETIMEDOUT')
    return new QueueError(`cannot reach the queue database at ${where} (${e.code}): check that PostgreSQL runs there and the address is right`);
  if (e.code === '28P01' || e.code === '28000')
    return new QueueError(`the queue database at ${where} refused the user name or password: check the --queue URL`);
  if (e.code === '3D000') return new QueueError(`the queue database named in ${where} does not exist: create it first (createdb NAME)`);
  return new QueueError(`queue database at ${where}: ${(e.message ?? String(err)).replaceAll(url, where)}`);
}

/** A pool on `url`; with `migrate`, creates the tables on first use and refuses a newer schema. */
export async function openQueue(url: string, opts: { max?: number; migrate?: boolean } = {}): Promise<Queue> {
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new QueueError(`--queue takes a PostgreSQL URL such as postgres://user:password@host:5432/db (got "${safeUrl(url)}")`);
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 4,
    connectionTimeoutMillis: 10_000,
    application_name: 'gallery-bridge',
    options: SESSION_OPTIONS,
  });
  // An idle client's error (the server restarted) must not crash the process; the next query says it.
  pool.on('error', () => undefined);
  // pg-pool listens for errors only on idle clients. A checked-out client whose session the
  // server ends between two statements (the idle-in-transaction limit after a pause, a restart,
  // pg_terminate_backend) would otherwise emit an unheard 'error' and crash the worker; heard
  // here, its next query fails instead, the caller's error path runs, and release() drops it.
  pool.on('connect', (client) => client.on('error', () => undefined));
  try {
    const c = await pool.connect();
    try {
      await checkOrCreate(c, opts.migrate ?? true);
    } finally {
      c.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err instanceof QueueError ? err : explain(url, err);
  }
  return pool;
}

async function checkOrCreate(c: pg.PoolClient, migrate: boolean): Promise<void> {
  const version = await storedVersion(c);
  if (version !== null && version > SCHEMA_VERSION) throw newerDatabase(version);
  if (version === SCHEMA_VERSION) return;
  // An older batch's database is brought up to date by whichever tool opens it first (a worker
  // of this version records its deletions in a table an older one lacked); an empty one only by
  // the command that loads a batch.
  if (version === null && !migrate)
    throw new QueueError('the queue database holds no batch yet: load one with `gallery-bridge batch run MANIFEST.csv --queue URL`');
  await c.query('BEGIN');
  try {
    // Two machines starting at once: one creates, the other waits and finds it done.
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('gallery_bridge.schema'))`);
    // Read again under the lock: another machine may have upgraded it meanwhile, even past us.
    const before = await storedVersion(c);
    if (before !== null && before > SCHEMA_VERSION) throw newerDatabase(before);
    await c.query(DDL);
    for (const step of STEPS) if (step.version > (before ?? 0)) await c.query(step.sql);
    await c.query(`INSERT INTO ${SCHEMA}.meta(key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [
      String(SCHEMA_VERSION),
    ]);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function newerDatabase(version: number): QueueError {
  return new QueueError(
    `the queue database was set up by a newer gallery-bridge (schema ${version}; this one knows ${SCHEMA_VERSION}): upgrade gallery-bridge on this machine`,
  );
}

async function storedVersion(c: pg.PoolClient): Promise<number | null> {
  const t = await c.query(`SELECT to_regclass($1) AS t`, [`${SCHEMA}.meta`]);
  if (!t.rows[0].t) return null;
  const r = await c.query(`SELECT value FROM ${SCHEMA}.meta WHERE key = 'schema_version'`);
  return r.rows.length ? Number(r.rows[0].value) : null;
}

export async function getMeta(q: Queue, key: string): Promise<string | null> {
  const r = await q.query(`SELECT value FROM ${SCHEMA}.meta WHERE key = $1`, [key]);
  return r.rows.length ? (r.rows[0].value as string) : null;
}

export async function setMeta(q: Queue | pg.PoolClient, key: string, value: string): Promise<void> {
  await q.query(`INSERT INTO ${SCHEMA}.meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, value]);
}
