// The batch's own state: one row per account (its settings from the manifest, where it stands,
// why it is paused) and progress samples for the chart. It lives in DIR/batch.db beside the
// accounts' own state stores (DIR/accounts/SLUG/state.db), which stay the truth about items.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { DB } from '../../state/db.ts';
import type { AccountRow } from './manifest.ts';
import { useWal } from '../lib/sqlite-wal.ts';

export type AccountStatus = 'waiting' | 'running' | 'done' | 'paused' | 'waiting-quota' | 'removed';

export interface AccountRecord {
  slug: string;
  account: string;
  line: number;
  source: string;
  destination: string;
  source_account: string;
  destination_account: string;
  delete_source: number | null;
  delete_evidence: string | null;
  priority: number;
  status: AccountStatus;
  reason: string | null;
  todo: string | null;
  last_error: string | null;
  runs: number;
  started_at: string | null;
  ended_at: string | null;
  exit_code: number | null;
  est_items: number | null;
  est_bytes: number | null;
  planned_finish: string | null;
  makes_deadline: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  slug TEXT PRIMARY KEY, account TEXT NOT NULL UNIQUE, line INTEGER NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL,
  source_account TEXT NOT NULL, destination_account TEXT NOT NULL, delete_source INTEGER, delete_evidence TEXT, priority INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'waiting', reason TEXT, todo TEXT, last_error TEXT, runs INTEGER NOT NULL DEFAULT 0,
  started_at TEXT, ended_at TEXT, exit_code INTEGER, est_items INTEGER, est_bytes INTEGER, planned_finish TEXT, makes_deadline INTEGER
);
CREATE TABLE IF NOT EXISTS samples (slug TEXT NOT NULL, at TEXT NOT NULL, done_items INTEGER NOT NULL, done_bytes INTEGER NOT NULL, total_items INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS samples_slug ON samples(slug, at);
`;

export const batchFile = (dir: string) => path.join(dir, 'batch.db');
export const accountDir = (dir: string, slug: string) => path.join(dir, 'accounts', slug);
export const accountStateFile = (dir: string, slug: string) => path.join(accountDir(dir, slug), 'state.db');

export function openBatch(dir: string, opts: { readonly?: boolean } = {}): DB {
  const file = batchFile(dir);
  if (opts.readonly) {
    if (!fs.existsSync(file)) throw new Error(`no batch at ${dir} (run \`gallery-bridge batch run MANIFEST.csv --state ${dir}\` first)`);
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return db;
  }
  fs.mkdirSync(path.join(dir, 'accounts'), { recursive: true, mode: 0o700 });
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  const db = new Database(file);
  db.pragma('busy_timeout = 10000');
  useWal(db);
  db.pragma('synchronous = NORMAL');
  db.exec(SCHEMA);
  return db;
}

export function getBatchMeta(db: DB, key: string): string | undefined {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

export function setBatchMeta(db: DB, key: string, value: string | null): void {
  if (value === null) db.prepare('DELETE FROM meta WHERE key = ?').run(key);
  else db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
}

/**
 * Brings the accounts table in line with the manifest. An account keeps its slug, state and
 * history across reruns; changing its source or destination is refused (its state store
 * belongs to the old pair), and accounts gone from the manifest are marked, never deleted.
 */
export function syncAccounts(db: DB, rows: AccountRow[]): string[] {
  const problems: string[] = [];
  const byAccount = db.prepare('SELECT * FROM accounts WHERE account = ?');
  const insert =
    db.prepare(`INSERT INTO accounts (slug, account, line, source, destination, source_account, destination_account, delete_source, delete_evidence, priority)
    VALUES (@slug, @account, @line, @source, @destination, @sourceAccount, @destinationAccount, @deleteSource, @deleteEvidence, @priority)`);
  const update =
    db.prepare(`UPDATE accounts SET line=@line, source_account=@sourceAccount, destination_account=@destinationAccount, delete_source=@deleteSource,
    delete_evidence=@deleteEvidence, priority=@priority, status = CASE WHEN status = 'removed' THEN 'waiting' ELSE status END WHERE account=@account`);
  db.transaction(() => {
    const present = new Set<string>();
    for (const r of rows) {
      present.add(r.account);
      const params = { ...r, deleteSource: r.deleteSource === null ? null : r.deleteSource ? 1 : 0 };
      const old = byAccount.get(r.account) as AccountRecord | undefined;
      if (!old) insert.run(params);
      else if (old.source !== r.source || old.destination !== r.destination) {
        problems.push(
          `line ${r.line}: account "${r.account}" was ${old.source} -> ${old.destination} in this batch; its state belongs to that pair (use a new account name or a new --state directory)`,
        );
      } else update.run(params);
    }
    for (const a of db.prepare('SELECT account FROM accounts').all() as Array<{ account: string }>) {
      if (!present.has(a.account)) db.prepare(`UPDATE accounts SET status = 'removed', reason = 'no longer in the manifest' WHERE account = ?`).run(a.account);
    }
  })();
  return problems;
}

export function listAccounts(db: DB): AccountRecord[] {
  return db.prepare(`SELECT * FROM accounts ORDER BY line`).all() as AccountRecord[];
}

export function setAccount(db: DB, slug: string, fields: Partial<AccountRecord>): void {
  const cols = Object.keys(fields);
  if (!cols.length) return;
  db.prepare(`UPDATE accounts SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE slug = @slug`).run({ ...fields, slug });
}

export function addSample(db: DB, slug: string, s: { doneItems: number; doneBytes: number; totalItems: number }): void {
  db.prepare('INSERT INTO samples (slug, at, done_items, done_bytes, total_items) VALUES (?, ?, ?, ?, ?)').run(
    slug,
    new Date().toISOString(),
    s.doneItems,
    s.doneBytes,
    s.totalItems,
  );
}

/** Up to `points` samples per account, evenly thinned, for the progress chart. */
export function samplesFor(db: DB, points = 60): Map<string, Array<{ at: string; done_items: number; total_items: number }>> {
  const out = new Map<string, Array<{ at: string; done_items: number; total_items: number }>>();
  for (const r of db.prepare('SELECT slug, at, done_items, total_items FROM samples ORDER BY slug, at').iterate() as IterableIterator<{
    slug: string;
    at: string;
    done_items: number;
    total_items: number;
  }>) {
    let a = out.get(r.slug);
    if (!a) out.set(r.slug, (a = []));
    a.push(r);
  }
  for (const [k, a] of out) {
    if (a.length > points) {
      const step = a.length / points;
      out.set(k, [...Array.from({ length: points - 1 }, (_, i) => a[Math.floor(i * step)]!), a[a.length - 1]!]);
    }
  }
  return out;
}
