// Who holds an account: a lease row with an epoch, in plain SQL. pg-boss decides which worker
// gets an account's job next; the lease decides whether that worker may touch the account, and
// fences it out once it stops renewing (paused, cut off, killed). Every write a holder makes
// (renewal, snapshot, status, release) names (slug, epoch, worker) and changes nothing once the
// row has moved on: under READ COMMITTED a conditional UPDATE re-checks its WHERE against the
// newest committed row, so it wins or does nothing.

import type pg from 'pg';
import type { Queue } from './db.ts';
import { SCHEMA } from './schema.ts';

export interface Lease {
  slug: string;
  epoch: number;
  worker: string;
  leaseSeconds: number;
}

export interface Limits {
  accountsAtOnce: number;
  perProvider: Record<string, number>;
}

export type Acquired =
  | { kind: 'ok'; lease: Lease; takeover: null | { oldWorker: string; oldEpoch: number; reason: string } }
  | { kind: 'held'; by: string }
  | { kind: 'limit'; why: string }
  | { kind: 'done' };

const kindOf = (spec: string): string => (spec.includes(':') ? spec.slice(0, spec.indexOf(':')) : spec);

const LIVE = `released_at IS NULL AND expires_at > now()`;

/** Runs `fn` in one transaction; rolls back on any error. */
export async function inTransaction<T>(q: Queue, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await q.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/**
 * Takes the account for `worker` when no live lease holds it and the batch's limits allow one
 * more account of its providers. Acquisitions are serialized by one advisory lock, so two
 * workers never both see room for the last OneDrive slot.
 */
export async function acquireLease(q: Queue, slug: string, worker: string, jobId: string | null, leaseSeconds: number, limits: Limits): Promise<Acquired> {
  return inTransaction(q, async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('gallery_bridge.leases'))`);
    const acc = (await c.query(`SELECT source, destination, status FROM ${SCHEMA}.accounts WHERE slug = $1`, [slug])).rows[0] as
      | { source: string; destination: string; status: string }
      | undefined;
    if (!acc || acc.status === 'done' || acc.status === 'removed') return { kind: 'done' as const };
    const old = (
      await c.query(`SELECT epoch, worker, renewed_at, expires_at, released_at, (${LIVE}) AS live FROM ${SCHEMA}.leases WHERE slug = $1 FOR UPDATE`, [slug])
    ).rows[0] as { epoch: string; worker: string; renewed_at: Date; expires_at: Date; released_at: Date | null; live: boolean } | undefined;
    if (old?.live) return { kind: 'held' as const, by: old.worker };
    const why = await overLimit(c, [kindOf(acc.source), kindOf(acc.destination)], limits);
    if (why) return { kind: 'limit' as const, why };
    const epoch = Number(old?.epoch ?? 0) + 1;
    await c.query(
      `INSERT INTO ${SCHEMA}.leases (slug, epoch, worker, job_id, acquired_at, renewed_at, expires_at)
       VALUES ($1, $2, $3, $4, now(), now(), now() + make_interval(secs => $5))
       ON CONFLICT (slug) DO UPDATE SET epoch = excluded.epoch, worker = excluded.worker, job_id = excluded.job_id, acquired_at = now(),
         renewed_at = now(), expires_at = excluded.expires_at, released_at = NULL, reaped_at = NULL`,
      [slug, epoch, worker, jobId, leaseSeconds],
    );
    let takeover: { oldWorker: string; oldEpoch: number; reason: string } | null = null;
    if (old && old.released_at === null) {
      const reason = `the lease of ${old.worker} expired at ${old.expires_at.toISOString()} (last renewed ${old.renewed_at.toISOString()}): the worker stopped, was paused or lost the database`;
      takeover = { oldWorker: old.worker, oldEpoch: Number(old.epoch), reason };
      await c.query(`INSERT INTO ${SCHEMA}.takeovers (slug, old_worker, old_epoch, new_worker, new_epoch, reason) VALUES ($1, $2, $3, $4, $5, $6)`, [
        slug,
        old.worker,
        Number(old.epoch),
        worker,
        epoch,
        reason,
      ]);
    }
    await c.query(
      `UPDATE ${SCHEMA}.accounts SET status = 'running', runs = runs + 1, started_at = now(), ended_at = NULL, reason = NULL, todo = NULL, exit_code = NULL WHERE slug = $1`,
      [slug],
    );
    return { kind: 'ok' as const, lease: { slug, epoch, worker, leaseSeconds }, takeover };
  });
}

/** Why one more account using `providers` would break a limit, or null. Only live leases count. */
async function overLimit(c: pg.PoolClient, providers: string[], limits: Limits): Promise<string | null> {
  return limitProblem(await liveAccounts(c), providers, limits);
}

/** Source and destination of every account under a live lease, whoever holds it. */
export async function liveAccounts(c: pg.PoolClient | Queue): Promise<Array<{ source: string; destination: string }>> {
  return (
    await c.query(
      `SELECT a.source, a.destination FROM ${SCHEMA}.leases l JOIN ${SCHEMA}.accounts a USING (slug) WHERE l.released_at IS NULL AND l.expires_at > now()`,
    )
  ).rows as Array<{ source: string; destination: string }>;
}

/** Why one more account using `providers`, beside the `held` ones, would break a limit, or null. */
export function limitProblem(held: Array<{ source: string; destination: string }>, providers: string[], limits: Limits): string | null {
  if (held.length >= limits.accountsAtOnce) return `${held.length} accounts already run (--accounts-at-once ${limits.accountsAtOnce})`;
  for (const p of new Set(providers)) {
    const cap = limits.perProvider[p];
    if (cap === undefined) continue;
    const n = held.filter((h) => kindOf(h.source) === p || kindOf(h.destination) === p).length;
    if (n >= cap) return `${n} ${p} accounts already run (--per-provider ${p}=${cap})`;
  }
  return null;
}

/** Extends the lease; false when it is no longer this worker's at this epoch, or it had expired. */
export async function renewLease(q: Queue, l: Lease): Promise<boolean> {
  const r = await q.query(
    `UPDATE ${SCHEMA}.leases SET renewed_at = now(), expires_at = now() + make_interval(secs => $4)
     WHERE slug = $1 AND epoch = $2 AND worker = $3 AND ${LIVE} RETURNING expires_at`,
    [l.slug, l.epoch, l.worker, l.leaseSeconds],
  );
  return r.rowCount === 1;
}

/**
 * Runs `fn` inside a transaction only while the lease is live at its epoch: the lease row is
 * locked for the transaction, so no takeover can slip between the check and `fn`'s writes.
 * Returns false (and writes nothing) when the lease is lost.
 */
export async function underLease(q: Queue, l: Lease, fn: (c: pg.PoolClient) => Promise<void>): Promise<boolean> {
  return inTransaction(q, async (c) => {
    const r = await c.query(`SELECT 1 FROM ${SCHEMA}.leases WHERE slug = $1 AND epoch = $2 AND worker = $3 AND ${LIVE} FOR UPDATE`, [
      l.slug,
      l.epoch,
      l.worker,
    ]);
    if (r.rowCount !== 1) return false;
    await fn(c);
    return true;
  });
}

/** Lets go of the account (after its last snapshot and status were written); false when already lost. */
export async function releaseLease(q: Queue, l: Lease, account: Record<string, unknown>): Promise<boolean> {
  return underLease(q, l, async (c) => {
    await setAccountFields(c, l.slug, account);
    await c.query(`UPDATE ${SCHEMA}.leases SET released_at = now() WHERE slug = $1 AND epoch = $2`, [l.slug, l.epoch]);
  });
}

const ACCOUNT_COLUMNS = new Set([
  'status',
  'reason',
  'todo',
  'last_error',
  'exit_code',
  'ended_at',
  'items',
  'done_items',
  'bytes',
  'done_bytes',
  'progress_at',
  'planned_finish',
  'makes_deadline',
  'est_items',
  'est_bytes',
]);

export async function setAccountFields(c: pg.PoolClient | Queue, slug: string, fields: Record<string, unknown>): Promise<void> {
  const cols = Object.keys(fields).filter((k) => fields[k] !== undefined);
  for (const k of cols) if (!ACCOUNT_COLUMNS.has(k)) throw new Error(`not an account column: ${k}`);
  if (!cols.length) return;
  await c.query(`UPDATE ${SCHEMA}.accounts SET ${cols.map((k, i) => `${k} = $${i + 2}`).join(', ')} WHERE slug = $1`, [slug, ...cols.map((k) => fields[k])]);
}

/**
 * The child's check right before a destination commit or a source deletion: true only while the
 * lease is this worker's at this epoch with at least `marginSeconds` left, so that the commit
 * finishes before anyone could take the account over.
 */
export async function leaseHeld(q: Queue | pg.Client, l: Omit<Lease, 'leaseSeconds'>, marginSeconds: number): Promise<boolean> {
  const r = await q.query(
    `SELECT 1 FROM ${SCHEMA}.leases WHERE slug = $1 AND epoch = $2 AND worker = $3 AND released_at IS NULL AND expires_at > now() + make_interval(secs => $4)`,
    [l.slug, l.epoch, l.worker, marginSeconds],
  );
  return r.rowCount === 1;
}

/**
 * Leases that expired without being released, each claimed once (reaped_at) by whichever worker
 * saw it first: the caller fails their pg-boss job so that pg-boss's retry hands the account to
 * a worker. Their accounts read `waiting` with the reason until then.
 */
export async function reapExpired(
  q: Queue,
): Promise<Array<{ slug: string; jobId: string | null; worker: string; epoch: number; source: string; destination: string }>> {
  return inTransaction(q, async (c) => {
    const r = await c.query(
      `UPDATE ${SCHEMA}.leases l SET reaped_at = now() FROM ${SCHEMA}.accounts a
       WHERE a.slug = l.slug AND l.released_at IS NULL AND l.reaped_at IS NULL AND l.expires_at <= now()
       RETURNING l.slug, l.job_id, l.worker, l.epoch, l.expires_at, a.source, a.destination`,
    );
    for (const row of r.rows) {
      await c.query(`UPDATE ${SCHEMA}.accounts SET status = 'waiting', reason = $2 WHERE slug = $1 AND status = 'running'`, [
        row.slug,
        `worker ${row.worker} stopped renewing its lease (expired ${(row.expires_at as Date).toISOString()}); another worker takes the account over`,
      ]);
    }
    return r.rows.map((x) => ({
      slug: x.slug as string,
      jobId: x.job_id as string | null,
      worker: x.worker as string,
      epoch: Number(x.epoch),
      source: x.source as string,
      destination: x.destination as string,
    }));
  });
}
