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
  /** The run that held the state before and ended without letting go (killed), if any. */
  readonly tookOverFrom: Holder | null;
  release(): void;
}

/** Takes the state file for this process, or throws StateFileError naming the process that has it. */
export function lockState(stateFile: string, db: DB): StateLock {
  const file = `${path.resolve(stateFile)}.lock`;
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  const lock = new Database(file);
  try {
    lock.pragma('busy_timeout = 0');
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
  } catch {
    lock.close();
    const h = holder(db);
    const who = h ? `process ${h.pid}${h.host !== os.hostname() ? ` on ${h.host}` : ''}, running since ${h.since}` : 'another process';
    throw new StateFileError(`the state file ${stateFile} is in use by another run (${who}); wait for it to finish or stop it`);
  }
  const before = holder(db);
  setMeta(db, 'run_lock', JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() } satisfies Holder));
  return {
    tookOverFrom: before,
    release() {
      try {
        setMeta(db, 'run_lock', null);
      } catch {
        // The state may be closed already; the holder line is only a hint.
      }
      lock.close();
    },
  };
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
