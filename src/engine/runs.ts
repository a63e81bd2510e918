// One row per run, and the identity check that stops a state file made for one source (or
// destination) from being used with another, which would mark the wrong items as done.

import { randomBytes } from 'node:crypto';
import type { DB } from '../../state/db.ts';
import { StateFileError, getMeta, setMeta } from '../../state/db.ts';
import { systemZone } from '../media/zone.ts';

export function checkIdentity(db: DB, source: string, destination: string): void {
  const s = getMeta(db, 'source_identity');
  const d = getMeta(db, 'destination_identity');
  if (s && s !== source) throw new StateFileError(`this state file belongs to another source (${s}); use another --state file for ${source}`);
  if (d && d !== destination) throw new StateFileError(`this state file belongs to another destination (${d}); use another --state file for ${destination}`);
  if (!s) setMeta(db, 'source_identity', source);
  if (!d) setMeta(db, 'destination_identity', destination);
}

/** This state file's own name for itself, made once (durable before the first upload uses it). */
export function stateId(db: DB): string {
  let id = getMeta(db, 'state_id');
  if (!id) setMeta(db, 'state_id', (id = randomBytes(6).toString('hex')));
  return id;
}

export function startRun(
  db: DB,
  o: { command: string; sourceSpec: string; destinationSpec: string; deleteSource: boolean; deleteEvidence: string; concurrency: number; timeZone?: string },
): number {
  stateId(db);
  const r = db
    .prepare('INSERT INTO runs (command, source, destination, options, started_at) VALUES (?, ?, ?, ?, ?)')
    .run(
      o.command,
      o.sourceSpec,
      o.destinationSpec,
      JSON.stringify({ deleteSource: o.deleteSource, deleteEvidence: o.deleteEvidence, concurrency: o.concurrency, timeZone: o.timeZone ?? systemZone() }),
      new Date().toISOString(),
    );
  return Number(r.lastInsertRowid);
}

export function finishRun(db: DB, runId: number, outcome: string, exitCode: number, counts: unknown): void {
  db.prepare('UPDATE runs SET ended_at = ?, outcome = ?, exit_code = ?, counts = ? WHERE id = ?').run(
    new Date().toISOString(),
    outcome,
    exitCode,
    JSON.stringify(counts),
    runId,
  );
}
