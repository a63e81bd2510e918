// Where every account stands, read from the state stores (the batch's and each account's,
// read-only): what `batch status`, the batch report and the dashboard show. Nothing here
// selects upload sessions or staged handles.

import fs from 'node:fs';
import Database from 'better-sqlite3';
import type { DB } from '../../state/db.ts';
import { NEEDS_ATTENTION, OUTCOMES, outcomeOf } from '../report/outcomes.ts';
import type { Outcome } from '../report/outcomes.ts';
import { accountStateFile, getBatchMeta, listAccounts, openBatch } from './store.ts';
import type { AccountRecord, AccountStatus } from './store.ts';

export interface AccountView {
  account: string;
  slug: string;
  source: string;
  destination: string;
  status: AccountStatus;
  reason: string | null;
  todo: string | null;
  lastError: string | null;
  priority: number;
  outcomes: Record<Outcome, { items: number; bytes: number }>;
  items: number;
  bytes: number;
  /** Items safely at the destination (verified, deleted at the source, or the same bytes already there); not those in the library from another app. */
  doneItems: number;
  doneBytes: number;
  attentionItems: number;
  listingComplete: boolean;
  /** Bytes per second over the account's active run time. */
  rate: number | null;
  /** Seconds to finish at that rate, or null. */
  eta: number | null;
  runs: number;
  startedAt: string | null;
  endedAt: string | null;
  plannedFinish: string | null;
  makesDeadline: boolean | null;
  /** Queue mode only: the worker holding the account's lease (or that held it last). */
  holder?: HolderView | null;
}

/** Who holds an account in queue mode. Ages are measured on the database's clock. */
export interface HolderView {
  worker: string;
  epoch: number;
  /** The lease is unreleased and not expired. */
  live: boolean;
  acquiredAt: string;
  renewedAt: string;
  expiresAt: string;
  releasedAt: string | null;
  /** The holder's last heartbeat, and seconds since it. */
  heartbeatAt: string | null;
  heartbeatAge: number | null;
}

export interface WorkerView {
  name: string;
  host: string;
  pid: number;
  slots: number;
  startedAt: string;
  heartbeatAt: string;
  heartbeatAge: number;
  stoppedAt: string | null;
  /** alive: heartbeat within the lease time; silent: not stopped but no heartbeat (dead, paused or cut off). */
  state: 'alive' | 'silent' | 'stopped';
  accounts: string[];
}

export interface TakeoverView {
  account: string;
  at: string;
  oldWorker: string;
  oldEpoch: number;
  newWorker: string;
  newEpoch: number;
  reason: string;
}

export interface QueueInfo {
  /** The queue URL without its password. */
  url: string;
  schemaVersion: number | null;
  leaseSeconds: number | null;
  workers: WorkerView[];
  takeovers: TakeoverView[];
  /**
   * Per account with any: items deleted at its source as recorded in the queue database before
   * each deletion (deleted: the source confirmed; unconfirmed: the intent only, its worker stopped
   * before the answer).
   */
  deletions: Array<{ account: string; deleted: number; unconfirmed: number }>;
}

export interface BatchView {
  generatedAt: string;
  dir: string;
  manifest: string | null;
  deadline: string | null;
  startedAt: string | null;
  running: boolean;
  accounts: AccountView[];
  totals: {
    accounts: number;
    byStatus: Record<string, number>;
    items: number;
    bytes: number;
    doneItems: number;
    doneBytes: number;
    attentionItems: number;
    rate: number | null;
  };
  notes: string[];
  /** Queue mode only: the workers and every takeover. */
  queue?: QueueInfo;
}

const empty = () => Object.fromEntries(OUTCOMES.map((o) => [o, { items: 0, bytes: 0 }])) as Record<Outcome, { items: number; bytes: number }>;

export type StateProgress = Pick<
  AccountView,
  'outcomes' | 'items' | 'bytes' | 'doneItems' | 'doneBytes' | 'attentionItems' | 'listingComplete' | 'rate' | 'eta'
> & { lastError: string | null };

/** Counts, bytes and rate of one state store, opened read-only. */
export function stateProgress(file: string): StateProgress {
  if (!fs.existsSync(file)) return progressOf(null);
  let db: DB | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return progressOf(db);
  } catch {
    // A store being created right now reads as empty; the next refresh sees it.
    return progressOf(null);
  } finally {
    db?.close();
  }
}

/** Counts, bytes and rate of an open state store (a file, or a snapshot in memory); null reads as empty. */
export function progressOf(db: DB | null): StateProgress {
  const outcomes = empty();
  let listingComplete = false;
  let rate: number | null = null;
  let lastError: string | null = null;
  if (db) {
    try {
      // By kind too: an item the destination's library held from another app is not a duplicate
      // within the source, and it stays at the source (in-library, not done).
      for (const r of db
        .prepare('SELECT state, reason_kind AS kind, count(*) AS n, sum(coalesce(bytes_read, size, 0)) AS b FROM items GROUP BY state, reason_kind')
        .all() as Array<{
        state: string;
        kind: string | null;
        n: number;
        b: number | null;
      }>) {
        const o = outcomes[outcomeOf(r.state, r.kind)];
        o.items += r.n;
        o.bytes += r.b ?? 0;
      }
      listingComplete = (db.prepare(`SELECT value FROM meta WHERE key = 'list_state'`).get() as { value: string } | undefined)?.value === 'complete';
      const runs = db.prepare('SELECT started_at, ended_at FROM runs').all() as Array<{ started_at: string; ended_at: string | null }>;
      const activeMs = runs.reduce((ms, r) => ms + Math.max(0, (r.ended_at ? Date.parse(r.ended_at) : Date.now()) - Date.parse(r.started_at)), 0);
      const moved = outcomes.verified.bytes + outcomes.deleted.bytes + outcomes.awaiting.bytes + outcomes.duplicate.bytes;
      rate = activeMs > 1000 && moved > 0 ? moved / (activeMs / 1000) : null;
      lastError =
        (
          db.prepare(`SELECT coalesce(last_error, reason) AS e FROM items WHERE state IN ('failed','rejected') ORDER BY updated_at DESC LIMIT 1`).get() as
            | { e: string | null }
            | undefined
        )?.e ?? null;
    } catch {
      // A store whose tables are not created yet reads as empty.
    }
  }
  const items = OUTCOMES.reduce((n, o) => n + outcomes[o].items, 0);
  const bytes = OUTCOMES.reduce((n, o) => n + outcomes[o].bytes, 0);
  const doneItems = outcomes.verified.items + outcomes.deleted.items + outcomes.duplicate.items;
  const doneBytes = outcomes.verified.bytes + outcomes.deleted.bytes + outcomes.duplicate.bytes;
  const attentionItems = NEEDS_ATTENTION.reduce((n, o) => n + outcomes[o].items, 0);
  const left = outcomes.failed.bytes + outcomes['not-started'].bytes;
  const eta = rate && listingComplete ? left / rate : null;
  return { outcomes, items, bytes, doneItems, doneBytes, attentionItems, listingComplete, rate, eta, lastError };
}

export function accountView(dir: string, a: AccountRecord): AccountView {
  const p = stateProgress(accountStateFile(dir, a.slug));
  return {
    account: a.account,
    slug: a.slug,
    source: a.source,
    destination: a.destination,
    status: a.status,
    reason: a.reason,
    todo: a.todo,
    priority: a.priority,
    ...p,
    lastError: a.last_error ?? p.lastError,
    eta: a.status === 'done' ? 0 : p.eta,
    runs: a.runs,
    startedAt: a.started_at,
    endedAt: a.ended_at,
    plannedFinish: a.planned_finish,
    makesDeadline: a.makes_deadline === null ? null : !!a.makes_deadline,
  };
}

export function batchView(dir: string): BatchView {
  const db = openBatch(dir, { readonly: true });
  try {
    const accounts = listAccounts(db)
      .filter((a) => a.status !== 'removed')
      .map((a) => accountView(dir, a));
    const notes = JSON.parse(getBatchMeta(db, 'notes') ?? '[]') as string[];
    return {
      generatedAt: new Date().toISOString(),
      dir,
      manifest: getBatchMeta(db, 'manifest') ?? null,
      deadline: getBatchMeta(db, 'deadline') ?? null,
      startedAt: getBatchMeta(db, 'started_at') ?? null,
      running: getBatchMeta(db, 'running_pid') !== undefined && isAlive(Number(getBatchMeta(db, 'running_pid'))),
      accounts,
      totals: totalsOf(accounts),
      notes,
    };
  } finally {
    db.close();
  }
}

export function totalsOf(accounts: AccountView[]): BatchView['totals'] {
  const byStatus: Record<string, number> = {};
  for (const a of accounts) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
  const sum = (f: (a: AccountView) => number) => accounts.reduce((n, a) => n + f(a), 0);
  const rates = accounts.filter((a) => a.status === 'running' && a.rate).map((a) => a.rate!);
  return {
    accounts: accounts.length,
    byStatus,
    items: sum((a) => a.items),
    bytes: sum((a) => a.bytes),
    doneItems: sum((a) => a.doneItems),
    doneBytes: sum((a) => a.doneBytes),
    attentionItems: sum((a) => a.attentionItems),
    rate: rates.length ? rates.reduce((x, y) => x + y, 0) : null,
  };
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
