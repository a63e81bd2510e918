// Each deletion at a source, recorded in the queue database before the source is asked: the
// account's SQLite state reaches PostgreSQL only with its next snapshot, and a worker killed in
// between must not leave a deletion whose proof exists only on its own disk. The intent is
// written in the same transaction that locks the lease row at (slug, epoch, worker), so a worker
// that lost the account records nothing and deletes nothing.

import type pg from 'pg';
import type { DeletionIntent } from '../engine/context.ts';
import type { Queue } from './db.ts';
import type { Lease } from './lease.ts';
import { SCHEMA } from './schema.ts';

/**
 * Records the intent while the lease is this worker's at its epoch with `marginSeconds` left;
 * returns the row's id, or null (nothing written) when the lease is no longer held.
 */
export async function recordDeletionIntent(c: pg.Client, l: Omit<Lease, 'leaseSeconds'>, marginSeconds: number, d: DeletionIntent): Promise<number | null> {
  await c.query('BEGIN');
  try {
    const held = await c.query(
      `SELECT 1 FROM ${SCHEMA}.leases WHERE slug = $1 AND epoch = $2 AND worker = $3 AND released_at IS NULL AND expires_at > now() + make_interval(secs => $4) FOR UPDATE`,
      [l.slug, l.epoch, l.worker, marginSeconds],
    );
    if (held.rowCount !== 1) {
      await c.query('ROLLBACK');
      return null;
    }
    const r = await c.query(
      `INSERT INTO ${SCHEMA}.deletions (slug, epoch, worker, run_id, source_id, name, sha1, sha256, bytes, evidence, evidence_detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
      [l.slug, l.epoch, l.worker, d.runId, d.sourceId, d.name, d.sha1, d.sha256, d.bytes, d.evidence, d.evidenceDetail],
    );
    await c.query('COMMIT');
    return Number(r.rows[0].id);
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The source answered: the deletion happened. */
export async function markDeletionDone(c: pg.Client, id: number, response: string): Promise<void> {
  await c.query(`UPDATE ${SCHEMA}.deletions SET done_at = now(), response = $2 WHERE id = $1`, [id, response]);
}

/** Per account: items deleted at its source (done) and intents not yet confirmed, distinct by source id. */
export async function deletionCounts(q: Queue): Promise<Map<string, { deleted: number; unconfirmed: number }>> {
  const r = await q.query(
    `SELECT slug, count(DISTINCT source_id) FILTER (WHERE done) AS deleted, count(DISTINCT source_id) FILTER (WHERE NOT done) AS unconfirmed
       FROM (SELECT slug, source_id, bool_or(done_at IS NOT NULL) AS done FROM ${SCHEMA}.deletions GROUP BY slug, source_id) d GROUP BY slug`,
  );
  return new Map(r.rows.map((x) => [x.slug as string, { deleted: Number(x.deleted), unconfirmed: Number(x.unconfirmed) }]));
}
