// Design (b): an account's SQLite state store stays a local file while a worker runs it, and is
// copied into PostgreSQL under the lease (only at the holder's epoch) every 30 seconds and when
// its run ends; the next holder restores it before starting. What a dead worker did after its
// last copy is redone, and redone safely: the destination's own duplicate checks find what was
// already committed, and a deletion needs fresh proof (see docs/batches-distributed.md).

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import type { Queue } from './db.ts';
import type { Lease } from './lease.ts';
import { underLease } from './lease.ts';
import { SCHEMA } from './schema.ts';

/**
 * A consistent copy of a live state store: serialize() reads every page inside one read
 * transaction (WAL included), so a writer in another process never tears it.
 */
export function readSnapshot(stateFile: string): Buffer | null {
  if (!fs.existsSync(stateFile)) return null;
  const db = new Database(stateFile, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    return zlib.gzipSync(db.serialize(), { level: 1 });
  } finally {
    db.close();
  }
}

/** Stores the account's state under the lease; false (nothing written) when the lease is lost. */
export async function saveSnapshot(q: Queue, l: Lease, stateFile: string): Promise<boolean> {
  const snap = readSnapshot(stateFile);
  if (!snap) return underLease(q, l, async () => undefined);
  return underLease(q, l, async (c) => {
    await c.query(
      `INSERT INTO ${SCHEMA}.snapshots (slug, epoch, saved_at, size, sqlite) VALUES ($1, $2, now(), $3, $4)
       ON CONFLICT (slug) DO UPDATE SET epoch = excluded.epoch, saved_at = now(), size = excluded.size, sqlite = excluded.sqlite`,
      [l.slug, l.epoch, snap.length, snap],
    );
  });
}

/**
 * Replaces the local state file with the account's last snapshot (the local file may be an
 * older run's, from before another worker moved the account on). No snapshot: a fresh start.
 */
export async function restoreSnapshot(q: Queue, slug: string, stateFile: string): Promise<{ restored: boolean; epoch: number | null }> {
  const r = await q.query(`SELECT epoch, sqlite FROM ${SCHEMA}.snapshots WHERE slug = $1`, [slug]);
  fs.mkdirSync(path.dirname(stateFile), { recursive: true, mode: 0o700 });
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(stateFile + suffix, { force: true });
  if (!r.rows.length) return { restored: false, epoch: null };
  const tmp = `${stateFile}.restore-${process.pid}`;
  fs.writeFileSync(tmp, zlib.gunzipSync(r.rows[0].sqlite as Buffer), { mode: 0o600 });
  fs.renameSync(tmp, stateFile);
  return { restored: true, epoch: Number(r.rows[0].epoch) };
}
