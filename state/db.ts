// Opens the SQLite state database: created with mode 0600 (it holds upload URLs that carry
// temporary credentials), WAL so that readers (status) never block the run, and a numbered
// list of migrations recorded in PRAGMA user_version.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.ts';
import { useWal } from '../src/lib/sqlite-wal.ts';

export type DB = Database.Database;

export class StateFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateFileError';
  }
}

export interface OpenOptions {
  readonly?: boolean;
}

export function openState(file: string, opts: OpenOptions = {}): DB {
  const abs = path.resolve(file);
  if (opts.readonly) {
    if (!fs.existsSync(abs)) throw new StateFileError(`state file ${file} does not exist`);
  } else {
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    // Create it 0600 before SQLite does, so it is never readable by others even for an instant;
    // SQLite gives its -wal and -shm files the same mode as the database file.
    fs.closeSync(fs.openSync(abs, 'a', 0o600));
    fs.chmodSync(abs, 0o600);
  }
  let db: DB;
  try {
    db = new Database(abs, { readonly: !!opts.readonly, fileMustExist: !!opts.readonly });
  } catch (err) {
    throw new StateFileError(`cannot open state file ${file}: ${(err as Error).message}`);
  }
  try {
    db.pragma('busy_timeout = 10000');
    // Read the version before anything writes: a newer tool's file is left exactly as it is.
    refuseOthers(db, file);
    if (!opts.readonly) {
      useWal(db);
      // NORMAL in WAL mode survives a killed process at any instant (the guarantee a resume
      // needs); only a power cut can lose the last transactions, which a rerun redoes safely.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
    } else {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version === 0) throw new StateFileError(`${file} is not a gallery-bridge state file`);
      if (version < MIGRATIONS.length) return migratedCopy(db);
    }
  } catch (err) {
    db.close();
    if (err instanceof StateFileError) throw err;
    throw new StateFileError(
      `${file} is damaged or not a gallery-bridge state file (${(err as Error).message}); it was left untouched: keep it, and give another --state FILE`,
    );
  }
  return db;
}

/** A newer tool's file and someone else's database are refused before anything writes to them. */
function refuseOthers(db: DB, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current === 0) {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type='table'").all() as { name: string }[]).map((t) => t.name);
    if (isBatchStore(tables)) throw new StateFileError(batchStoreGiven(file));
    if (tables.length > 0)
      throw new StateFileError(`${file} is an SQLite database but not a gallery-bridge state file; it was left untouched: give another --state FILE`);
  }
  if (current > MIGRATIONS.length) {
    throw new StateFileError(
      `state file ${file} has schema v${current}, newer than this gallery-bridge (v${MIGRATIONS.length}); it was left untouched: upgrade gallery-bridge to use it`,
    );
  }
}

/**
 * A read-only view (status, report) of a file an older gallery-bridge wrote: the file is left as
 * it is (the next run migrates it) and the view reads a migrated copy in memory.
 */
function migratedCopy(db: DB): DB {
  const image = db.serialize();
  db.close();
  // A file in WAL mode says so in its header (bytes 18 and 19), and an in-memory database
  // cannot read in that mode: the copy says rollback journal. The pages already hold the WAL's.
  image[18] = 1;
  image[19] = 1;
  const copy = new Database(image);
  copy.pragma('foreign_keys = ON');
  migrate(copy);
  return copy;
}

/** The tables of DIR/batch.db (src/batch/store.ts), which keeps no user_version. */
function isBatchStore(tables: string[]): boolean {
  return ['meta', 'accounts', 'samples'].every((t) => tables.includes(t));
}

/** A batch store given where a state file belongs: say what it is and what reads it. */
function batchStoreGiven(file: string): string {
  const dir = path.dirname(file);
  return `${file} is gallery-bridge's batch store (what \`batch run\` keeps about its accounts), not a state file; it was left untouched: read it with \`gallery-bridge batch status --state ${dir}\` or \`gallery-bridge serve --state ${dir}\`, or give report an account's state file, --state ${path.join(dir, 'accounts', 'NAME', 'state.db')}`;
}

/**
 * The steps a file lacks, in one transaction: all of them or none. A new state took a commit
 * per step, and a batch creates one state an account.
 */
function migrate(db: DB): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current >= MIGRATIONS.length) return;
  db.transaction(() => {
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
}

const prepared = new WeakMap<DB, Map<string, Database.Statement>>();

/**
 * The statement for this SQL on this database, prepared once and reused: preparing costs more
 * than running a small statement, and the hot paths run thousands a second. Not for statements
 * that are iterated while another caller could run the same SQL.
 */
export function statement(db: DB, sql: string): Database.Statement {
  let cache = prepared.get(db);
  if (!cache) prepared.set(db, (cache = new Map()));
  let stmt = cache.get(sql);
  if (!stmt) cache.set(sql, (stmt = db.prepare(sql)));
  return stmt;
}

export function getMeta(db: DB, key: string): string | undefined {
  const row = statement(db, 'SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value;
}

export function setMeta(db: DB, key: string, value: string | null): void {
  if (value === null) statement(db, 'DELETE FROM meta WHERE key = ?').run(key);
  else statement(db, 'INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
}

// ---- Write-behind: the commits of a run's hot path, gathered. ----
//
// A folder-to-folder run made about seven commits an item, and each commit costs more than the
// statements in it (WAL frames, locks). During a run, a write whose loss in a kill costs only
// redoing work (an item started, its facts, its hashes, a verification) joins a batch that is
// committed at most MAX_BEHIND_MS later. A write that must survive before the next outside
// action (an upload session the service holds, a deletion's intent, an album created once, a
// commit a rerun would repeat) is durable: it commits the batch with it, at once. A kill loses
// at most the last batch: the same as a kill that came that much earlier, because nothing
// outside depended on it.

interface Behind {
  timer: NodeJS.Timeout | null;
  /** Deferred write functions running now: a durable write may not commit inside one. */
  depth: number;
}

const behind = new WeakMap<DB, Behind>();
export const MAX_BEHIND_MS = 50;

/** From now on, deferred writes on `db` are gathered until commitPending() or MAX_BEHIND_MS. */
export function startWriteBehind(db: DB): void {
  if (!behind.has(db)) behind.set(db, { timer: null, depth: 0 });
}

/** Commits what is gathered and goes back to a commit per write. */
export function stopWriteBehind(db: DB): void {
  try {
    commitPending(db);
  } finally {
    const b = behind.get(db);
    if (b?.timer) clearTimeout(b.timer);
    behind.delete(db);
  }
}

/**
 * A write whose loss in a kill only means redoing work: gathered while a run writes behind, else its own transaction.
 * `oneStatement`: `fn` runs a single statement, which SQLite applies whole or not at all, so it
 * needs no savepoint around it (two statements fewer; a run makes several such writes an item).
 */
export function deferredWrite<T>(db: DB, fn: () => T, oneStatement = false): T {
  const atomic = oneStatement ? fn : () => inSavepoint(db, fn);
  const b = behind.get(db);
  if (!b) return atomic();
  if (!db.inTransaction) statement(db, 'BEGIN').run();
  // Armed again after a commit that failed: the batch is retried, not left to grow.
  if (!b.timer) {
    b.timer = setTimeout(() => {
      b.timer = null;
      // A failed commit stays pending: the next write arms another try, and the end of the run throws it.
      try {
        commitPending(db);
      } catch {
        // See above.
      }
    }, MAX_BEHIND_MS);
    b.timer.unref();
  }
  b.depth++;
  try {
    return atomic();
  } finally {
    b.depth--;
  }
}

/**
 * Runs `fn` atomically inside the open transaction. Cached statements, because better-sqlite3's
 * db.transaction() builds a new wrapper per call: a third of the state store's time in a run.
 */
function inSavepoint<T>(db: DB, fn: () => T): T {
  statement(db, 'SAVEPOINT w').run();
  try {
    const out = fn();
    statement(db, 'RELEASE w').run();
    return out;
  } catch (err) {
    statement(db, 'ROLLBACK TO w').run();
    statement(db, 'RELEASE w').run();
    throw err;
  }
}

/** A write that must be on disk before the run does anything else: it commits everything gathered with it. */
export function durableWrite<T>(db: DB, fn: () => T): T {
  const b = behind.get(db);
  if (!b) return inSavepoint(db, fn);
  if (b.depth > 0) throw new Error('a durable write inside a deferred one would not be durable');
  const out = inSavepoint(db, fn);
  commitPending(db);
  return out;
}

/** Commits the gathered writes now. */
export function commitPending(db: DB): void {
  const b = behind.get(db);
  if (!b || b.depth > 0 || !db.inTransaction) return;
  if (b.timer) clearTimeout(b.timer);
  b.timer = null;
  statement(db, 'COMMIT').run();
}
