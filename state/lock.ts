// One run per state file. Two runs on one state race: orphaned .part files, deletions with no
// record, one run removing the other's temp file. A run holds an exclusive SQLite lock (an OS
// file lock) on a small file beside the state for its whole life; the kernel drops it when the
// process ends however it ends, so a lock left by a killed run is simply free again, and taking
// it over needs no guessing about stale pids. Who holds it is written in the state's meta, so a
// second run can say which process it is waiting for.

import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { DB } from './db.ts';
import { StateFileError, getMeta, setMeta } from './db.ts';

interface Holder {
  pid: number;
  host: string;
  since: string;
}

export interface StateLock {
  /**
   * Records this process as the holder in the opened state's meta, so that a second run can name
   * it; returns the run that held the state before and ended without letting go (killed), if any.
   */
  claim(db: DB): Holder | null;
  release(): void;
}

/** How long a refused run waits for the holder to name itself (it does so once its state is open). */
const HOLDER_WAIT_MS = 3000;

/**
 * Takes the state file for this process, or throws StateFileError naming the process that has it.
 * Called before the state is opened: two runs started at once on a new file must not both create
 * its schema (the second used to fail on "table meta already exists" and call the file damaged).
 */
export function lockState(stateFile: string): StateLock {
  const file = `${path.resolve(stateFile)}.lock`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  const lock = holdLockFile(file);
  if (!lock) {
    const h = awaitHolder(stateFile);
    const who = h ? `process ${h.pid}${h.host !== os.hostname() ? ` on ${h.host}` : ''}, running since ${h.since}` : 'another process';
    throw new StateFileError(`the state file ${stateFile} is in use by another run (${who}); wait for it to finish or stop it`);
  }
  let claimed: DB | null = null;
  return {
    claim(db) {
      const before = holder(db);
      setMeta(db, 'run_lock', JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() } satisfies Holder));
      claimed = db;
      return before;
    },
    release() {
      try {
        if (claimed) setMeta(claimed, 'run_lock', null);
      } catch {
        // The state may be closed already; the holder line is only a hint.
      }
      lock.close();
    },
  };
}

/**
 * The file's lock for this connection's life, or null when another process holds it. It is
 * SQLite's RESERVED lock (BEGIN IMMEDIATE, never committed), which one connection at a time can
 * hold and which no reader blocks. BEGIN EXCLUSIVE was used first: its way up passes through a
 * SHARED lock, so two processes starting together each held SHARED while asking for EXCLUSIVE,
 * and both were refused (about one start in ten in a tight race here; retrying in step did not
 * cure it on a loaded machine). Of two processes asking for RESERVED, exactly one gets it.
 */
export function holdLockFile(file: string): Database.Database | null {
  const lock = new Database(file);
  try {
    lock.pragma('busy_timeout = 0');
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN IMMEDIATE');
    return lock;
  } catch {
    lock.close();
    return null;
  }
}

/**
 * The live holder of a state whose lock another process has. The winner of a race on a new file
 * names itself only once it has created the schema, and a killed run's line stays until the
 * next run replaces it: so this waits a little for a line whose process is alive.
 */
function awaitHolder(stateFile: string): Holder | null {
  const until = Date.now() + HOLDER_WAIT_MS;
  for (;;) {
    const h = holderOnDisk(stateFile);
    if (h && alive(h)) return h;
    if (Date.now() >= until) return null;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

function holderOnDisk(stateFile: string): Holder | null {
  let db: DB | null = null;
  try {
    db = new Database(path.resolve(stateFile), { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 200');
    return holder(db);
  } catch {
    // Not created yet, or its schema not yet: the holder has not named itself.
    return null;
  } finally {
    db?.close();
  }
}

/** Another host's process cannot be checked from here: taken as alive. */
function alive(h: Holder): boolean {
  if (h.host !== os.hostname()) return true;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holder(db: DB): Holder | null {
  const raw = getMeta(db, 'run_lock');
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Holder;
  } catch {
    return null;
  }
}
