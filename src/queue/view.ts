// The admin's view of a queue-mode batch, read from the queue database on any machine: where
// every account stands, which worker holds it and when that worker was last heard from, every
// worker, and every takeover with its time and reason. Read-only: it writes nothing, and selects
// neither sealed credentials nor anything but item counts from the snapshots.
//
// Item counts come from each account's state snapshot (the same SQLite store a single-machine
// batch keeps, so the numbers are computed by the same code); an account with no snapshot yet
// shows the progress its worker last reported. Ages are computed by PostgreSQL (now() - ...), so a
// viewer whose clock is off still sees how long ago a worker was heard from.

import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import type { DB } from '../../state/db.ts';
import { progressOf, totalsOf } from '../batch/view.ts';
import type { AccountView, BatchView, HolderView, QueueInfo, StateProgress, TakeoverView, WorkerView } from '../batch/view.ts';
import type { AccountStatus } from '../batch/store.ts';
import { getMeta, safeUrl } from './db.ts';
import { deletionCounts } from './deletions.ts';
import type { Queue } from './db.ts';
import { SCHEMA } from './schema.ts';

type Samples = Map<string, Array<{ at: string; done_items: number; total_items: number }>>;

const iso = (d: Date | string | null | undefined): string | null => (d === null || d === undefined ? null : new Date(d).toISOString());
const num = (v: string | number | null | undefined): number | null => (v === null || v === undefined ? null : Number(v));

/** A snapshot's bytes as stored (gzip of the SQLite image, or the image itself) opened in memory. */
export function openSnapshot(stored: Buffer): DB {
  const image = stored[0] === 0x1f && stored[1] === 0x8b ? zlib.gunzipSync(stored) : Buffer.from(stored);
  // A store in WAL mode says so in header bytes 18-19 (2); SQLite opens such an image in memory
  // only once they say rollback journal (1), as the file format documents. The pages are the same.
  if (image.length >= 100 && image[18] === 2 && image[19] === 2) image[18] = image[19] = 1;
  return new Database(image) as DB;
}

// Snapshot counts by slug, kept while the snapshot is unchanged: a dashboard refreshing every
// 2 seconds fetches only the snapshots saved since its last look.
const snapshotCache = new Map<string, { key: string; progress: StateProgress }>();

async function snapshotProgress(q: Queue): Promise<Map<string, StateProgress>> {
  const index = await q.query<{ slug: string; epoch: string; saved_at: Date; size: string }>(`SELECT slug, epoch, saved_at, size FROM ${SCHEMA}.snapshots`);
  const keyOf = (r: { epoch: string; saved_at: Date; size: string }) => `${r.epoch}/${r.saved_at.toISOString()}/${r.size}`;
  const stale = index.rows.filter((r) => snapshotCache.get(r.slug)?.key !== keyOf(r)).map((r) => r.slug);
  if (stale.length) {
    const fresh = await q.query<{ slug: string; epoch: string; saved_at: Date; size: string; sqlite: Buffer }>(
      `SELECT slug, epoch, saved_at, size, sqlite FROM ${SCHEMA}.snapshots WHERE slug = ANY($1)`,
      [stale],
    );
    for (const r of fresh.rows) snapshotCache.set(r.slug, { key: keyOf(r), progress: progressOfSnapshot(r.sqlite) });
  }
  const present = new Set(index.rows.map((r) => r.slug));
  for (const slug of snapshotCache.keys()) if (!present.has(slug)) snapshotCache.delete(slug);
  return new Map([...snapshotCache].map(([slug, v]) => [slug, v.progress]));
}

function progressOfSnapshot(stored: Buffer): StateProgress {
  let db: DB | null = null;
  try {
    db = openSnapshot(stored);
    return progressOf(db);
  } catch {
    // A snapshot that cannot be read shows as empty rather than hiding the whole batch.
    return progressOf(null);
  } finally {
    db?.close();
  }
}

interface AccountRow {
  slug: string;
  account: string;
  source: string;
  destination: string;
  priority: number;
  status: AccountStatus;
  reason: string | null;
  todo: string | null;
  last_error: string | null;
  runs: number;
  started_at: Date | null;
  ended_at: Date | null;
  items: string | null;
  done_items: string | null;
  bytes: string | null;
  done_bytes: string | null;
  planned_finish: Date | null;
  makes_deadline: boolean | null;
  l_worker: string | null;
  l_epoch: string | null;
  l_live: boolean | null;
  l_acquired_at: Date | null;
  l_renewed_at: Date | null;
  l_expires_at: Date | null;
  l_released_at: Date | null;
  w_heartbeat_at: Date | null;
  w_heartbeat_age: number | null;
}

/** What the worker last reported, for an account with no snapshot yet. */
function reportedProgress(r: AccountRow): StateProgress {
  const p = progressOf(null);
  const items = num(r.items) ?? 0;
  const done = num(r.done_items) ?? 0;
  const bytes = num(r.bytes) ?? 0;
  const doneBytes = num(r.done_bytes) ?? 0;
  p.outcomes.verified = { items: done, bytes: doneBytes };
  p.outcomes['not-started'] = { items: Math.max(0, items - done), bytes: Math.max(0, bytes - doneBytes) };
  return { ...p, items, bytes, doneItems: done, doneBytes };
}

function holderOf(r: AccountRow): HolderView | null {
  if (r.l_worker === null) return null;
  return {
    worker: r.l_worker,
    epoch: Number(r.l_epoch),
    live: !!r.l_live,
    acquiredAt: iso(r.l_acquired_at)!,
    renewedAt: iso(r.l_renewed_at)!,
    expiresAt: iso(r.l_expires_at)!,
    releasedAt: iso(r.l_released_at),
    heartbeatAt: iso(r.w_heartbeat_at),
    heartbeatAge: r.w_heartbeat_age === null ? null : Number(r.w_heartbeat_age),
  };
}

function accountViewOf(r: AccountRow, progress: StateProgress | undefined): AccountView {
  const p = progress ?? reportedProgress(r);
  return {
    account: r.account,
    slug: r.slug,
    source: r.source,
    destination: r.destination,
    status: r.status,
    reason: r.reason,
    todo: r.todo,
    priority: r.priority,
    ...p,
    lastError: r.last_error ?? p.lastError,
    eta: r.status === 'done' ? 0 : p.eta,
    runs: r.runs,
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
    plannedFinish: iso(r.planned_finish),
    makesDeadline: r.makes_deadline,
    holder: holderOf(r),
  };
}

async function accountRows(q: Queue): Promise<AccountRow[]> {
  const r = await q.query<AccountRow>(`
    SELECT a.slug, a.account, a.source, a.destination, a.priority, a.status, a.reason, a.todo, a.last_error, a.runs, a.started_at, a.ended_at,
           a.items, a.done_items, a.bytes, a.done_bytes, a.planned_finish, a.makes_deadline,
           l.worker AS l_worker, l.epoch AS l_epoch, (l.released_at IS NULL AND l.expires_at > now()) AS l_live,
           l.acquired_at AS l_acquired_at, l.renewed_at AS l_renewed_at, l.expires_at AS l_expires_at, l.released_at AS l_released_at,
           w.heartbeat_at AS w_heartbeat_at, extract(epoch FROM now() - w.heartbeat_at)::float8 AS w_heartbeat_age
      FROM ${SCHEMA}.accounts a
      LEFT JOIN ${SCHEMA}.leases l ON l.slug = a.slug
      LEFT JOIN ${SCHEMA}.workers w ON w.name = l.worker
     WHERE a.status <> 'removed'
     ORDER BY a.line`);
  return r.rows;
}

async function workerViews(q: Queue, aliveWithin: number): Promise<WorkerView[]> {
  const r = await q.query<{
    name: string;
    host: string;
    pid: number;
    slots: number;
    started_at: Date;
    heartbeat_at: Date;
    age: number;
    stopped_at: Date | null;
    accounts: string[] | null;
  }>(`
    SELECT w.name, w.host, w.pid, w.slots, w.started_at, w.heartbeat_at, extract(epoch FROM now() - w.heartbeat_at)::float8 AS age, w.stopped_at,
           (SELECT array_agg(a.account ORDER BY a.line) FROM ${SCHEMA}.leases l JOIN ${SCHEMA}.accounts a ON a.slug = l.slug
             WHERE l.worker = w.name AND l.released_at IS NULL AND l.expires_at > now()) AS accounts
      FROM ${SCHEMA}.workers w
     ORDER BY w.started_at, w.name`);
  return r.rows.map((w) => ({
    name: w.name,
    host: w.host,
    pid: w.pid,
    slots: w.slots,
    startedAt: iso(w.started_at)!,
    heartbeatAt: iso(w.heartbeat_at)!,
    heartbeatAge: Number(w.age),
    stoppedAt: iso(w.stopped_at),
    state: w.stopped_at ? 'stopped' : Number(w.age) <= aliveWithin ? 'alive' : 'silent',
    accounts: w.accounts ?? [],
  }));
}

async function takeoverViews(q: Queue): Promise<TakeoverView[]> {
  const r = await q.query<{
    account: string | null;
    slug: string;
    at: Date;
    old_worker: string;
    old_epoch: string;
    new_worker: string;
    new_epoch: string;
    reason: string;
  }>(`
    SELECT a.account, t.slug, t.at, t.old_worker, t.old_epoch, t.new_worker, t.new_epoch, t.reason
      FROM ${SCHEMA}.takeovers t LEFT JOIN ${SCHEMA}.accounts a ON a.slug = t.slug
     ORDER BY t.at, t.id`);
  return r.rows.map((t) => ({
    account: t.account ?? t.slug,
    at: iso(t.at)!,
    oldWorker: t.old_worker,
    oldEpoch: Number(t.old_epoch),
    newWorker: t.new_worker,
    newEpoch: Number(t.new_epoch),
    reason: t.reason,
  }));
}

/** The whole batch as `batch status --queue` and `serve --queue` show it. */
export async function queueBatchView(q: Queue, url: string): Promise<BatchView> {
  const [rows, progress, extras, manifest, startedAt, notes] = await Promise.all([
    accountRows(q),
    snapshotProgress(q),
    queueExtras(q, safeUrl(url)),
    getMeta(q, 'manifest'),
    getMeta(q, 'started_at'),
    getMeta(q, 'notes'),
  ]);
  const accounts = rows.map((r) => accountViewOf(r, progress.get(r.slug)));
  return {
    generatedAt: new Date().toISOString(),
    dir: safeUrl(url),
    manifest: manifestName(manifest),
    deadline: extras.deadline,
    startedAt,
    running: extras.info.workers.some((w) => w.state === 'alive'),
    accounts,
    totals: totalsOf(accounts),
    notes: notes ? (JSON.parse(notes) as string[]) : [],
    queue: extras.info,
  };
}

export interface QueueExtras {
  info: QueueInfo;
  /** Each account's holder, by slug. */
  holders: Map<string, HolderView | null>;
  deadline: string | null;
}

/** What queue mode adds to a batch's view: workers, takeovers, and who holds each account. */
export async function queueExtras(q: Queue, label: string): Promise<QueueExtras> {
  const [rows, takeovers, settings, version, deleted] = await Promise.all([
    accountRows(q),
    takeoverViews(q),
    getMeta(q, 'settings'),
    getMeta(q, 'schema_version'),
    deletionCounts(q),
  ]);
  // The batch's settings as `batch run --queue` loaded them (lease length, deadline).
  const s = settings ? (JSON.parse(settings) as { leaseSeconds?: number; deadline?: string | null }) : {};
  const leaseSeconds = s.leaseSeconds ?? null;
  // A worker renews several times per lease; one lease time without a heartbeat means it is not working.
  const workers = await workerViews(q, leaseSeconds ?? 120);
  return {
    info: { url: label, schemaVersion: num(version), leaseSeconds, workers, takeovers, deletions: rows.flatMap((r) => deletionsOf(r, deleted)) },
    holders: new Map(rows.map((r) => [r.slug, holderOf(r)])),
    deadline: s.deadline ?? null,
  };
}

function deletionsOf(r: AccountRow, deleted: Map<string, { deleted: number; unconfirmed: number }>): QueueInfo['deletions'] {
  const d = deleted.get(r.slug);
  return d ? [{ account: r.account, ...d }] : [];
}

/** The manifest meta may be a path or JSON with a path and its hash; the view shows the path. */
function manifestName(v: string | null): string | null {
  if (v === null) return null;
  try {
    const j = JSON.parse(v) as { path?: string; file?: string };
    return j.path ?? j.file ?? v;
  } catch {
    return v;
  }
}

/** Up to `points` progress samples per account (by slug), evenly thinned, for the charts. */
export async function queueSamples(q: Queue, points = 60): Promise<Samples> {
  // Thinned in SQL: a long batch has many samples per account and the page shows 60.
  const r = await q.query<{ slug: string; at: Date; done_items: string; total_items: string }>(
    `
    SELECT slug, at, done_items, total_items FROM (
      SELECT s.*, row_number() OVER w AS i, count(*) OVER (PARTITION BY slug) AS n FROM ${SCHEMA}.samples s WINDOW w AS (PARTITION BY slug ORDER BY at)
    ) x WHERE n <= $1 OR i = n OR (i - 1) % ceil(n::float8 / ($1 - 1))::int = 0 ORDER BY slug, at`,
    [points],
  );
  const out: Samples = new Map();
  for (const s of r.rows) {
    let a = out.get(s.slug);
    if (!a) out.set(s.slug, (a = []));
    a.push({ at: s.at.toISOString(), done_items: Number(s.done_items), total_items: Number(s.total_items) });
  }
  return out;
}

/** An account's state snapshot, opened in memory, or null when it has none (or no such account). */
export async function accountSnapshot(q: Queue, slug: string): Promise<{ account: string; db: DB } | null> {
  const r = await q.query<{ account: string; sqlite: Buffer }>(
    `SELECT a.account, s.sqlite FROM ${SCHEMA}.snapshots s JOIN ${SCHEMA}.accounts a ON a.slug = s.slug WHERE s.slug = $1`,
    [slug],
  );
  if (!r.rows.length) return null;
  return { account: r.rows[0]!.account, db: openSnapshot(r.rows[0]!.sqlite) };
}
