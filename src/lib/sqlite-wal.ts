// WAL mode for a SQLite file that several processes may open at once (the Google quota file every
// run on a machine shares, a batch's store, a state file).

import type Database from 'better-sqlite3';

/** How long to keep trying: what busy_timeout gives every other lock. */
const TRY_MS = 10_000;
const PAUSE_MS = 10;

/**
 * Switches the file to WAL unless it already is. Two processes opening a new file at once both
 * switch it, and the switch needs an exclusive lock that SQLite does not wait for (busy_timeout
 * does not apply: waiting there could deadlock), so one of them is answered SQLITE_BUSY at once.
 * The mode is kept in the file: the loser tries again shortly and finds it switched.
 */
export function useWal(db: Database.Database): void {
  const deadline = Date.now() + TRY_MS;
  for (;;) {
    try {
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      pauseSync(PAUSE_MS);
    }
  }
}

/** Opening is synchronous here (the callers are constructors): the thread waits without spinning. */
function pauseSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
