// `status` and `report`: read-only views of a state file.

import fs from 'node:fs';
import { openState } from '../../state/db.ts';
import type { DB } from '../../state/db.ts';
import { Items, ITEM_STATES } from '../../state/items.ts';
import { IN_LIBRARY_SQL } from '../report/outcomes.ts';

/** Opens a state file read-only, or says in one line why not (exit 2). */
function openExisting(file: string): DB | null {
  if (fs.existsSync(file)) return openState(file, { readonly: true });
  process.stderr.write(`error: no state file at ${file} (give --state FILE)\n`);
  return null;
}

export async function statusCommand(o: { state: string; json: boolean }): Promise<number> {
  const db = openExisting(o.state);
  if (!db) return 2;
  try {
    const counts = new Items(db).countsByState();
    const failures = db
      // Verified items still owed a deletion at the source, and those deliberately kept there, show why too.
      .prepare(`SELECT source_id, name, state, coalesce(kept_reason, reason, last_error) AS why, reason_kind AS kind, attempts, kept_reason IS NOT NULL AS kept FROM items
        WHERE state IN ('failed','rejected') OR ${IN_LIBRARY_SQL} OR kept_reason IS NOT NULL
          OR (state IN ('verified','skipped') AND last_error IS NOT NULL) ORDER BY id LIMIT 200`)
      .all() as Array<{ source_id: string; name: string; state: string; why: string; kind: string | null; attempts: number; kept: number }>;
    const lastRun = db.prepare('SELECT id, started_at, ended_at, outcome, exit_code FROM runs ORDER BY id DESC LIMIT 1').get() as
      | { id: number; started_at: string; ended_at: string | null; outcome: string | null; exit_code: number | null }
      | undefined;
    const deletions = (db.prepare('SELECT count(*) AS n FROM deletions').get() as { n: number }).n;
    if (o.json) {
      process.stdout.write(JSON.stringify({ type: 'status', counts, deletions, last_run: lastRun ?? null, failures }) + '\n');
      return 0;
    }
    const total = ITEM_STATES.reduce((a, s) => a + counts[s].items, 0);
    const lines = [`${total} items`];
    for (const s of ITEM_STATES)
      if (counts[s].items) lines.push(`  ${s.padEnd(15)} ${String(counts[s].items).padStart(8)}  ${(counts[s].bytes / 1e6).toFixed(1)} MB`);
    lines.push(`  deletions at the source: ${deletions}`);
    if (lastRun)
      lines.push(
        `last run #${lastRun.id}: started ${lastRun.started_at}, ${lastRun.ended_at ? `ended ${lastRun.ended_at}, ${lastRun.outcome}, exit ${lastRun.exit_code}` : 'did not finish (killed or running)'}`,
      );
    if (failures.length) {
      lines.push('failed, rejected, deletions owed, and kept at the source (a newer version there, or already in your library from another app):');
      for (const f of failures) {
        const label = f.kept
          ? 'kept'
          : f.state === 'failed' || f.state === 'rejected'
            ? f.state
            : f.state === 'skipped' && f.kind === 'in-library-from-another-app'
              ? 'in-library'
              : 'owed';
        lines.push(`  ${label.padEnd(10)} ${f.source_id}: ${f.why ?? 'unknown'}${f.state === 'failed' ? ` (${f.attempts} attempts)` : ''}`);
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  } finally {
    db.close();
  }
}

export async function reportCommand(o: { state: string; out: string }): Promise<number> {
  const db = openExisting(o.state);
  if (!db) return 2;
  try {
    // The report writers load only for `report`, so `status` starts quickly.
    const { writeReport } = await import('../report/report.ts');
    const r = await writeReport(db, o.out);
    process.stderr.write(`report (${r.format}, ${r.rows} items): ${o.out}\n`);
    return 0;
  } finally {
    db.close();
  }
}
