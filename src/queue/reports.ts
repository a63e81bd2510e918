// Reports of a queue-mode batch, as a single-machine batch writes them: the queue database's
// accounts, samples and state snapshots are copied into a batch folder (batch.db and
// accounts/SLUG/state.db), and the same report writers run on it. Nothing is read from the
// workers' own folders: the snapshots in PostgreSQL are the accounts' state.

import fs from 'node:fs';
import path from 'node:path';
import { openState } from '../../state/db.ts';
import { accountDir, accountStateFile, openBatch, setBatchMeta } from '../batch/store.ts';
import { writeBatchReports } from '../report/batch.ts';
import { writeReport } from '../report/report.ts';
import type { Queue } from './db.ts';
import { getMeta } from './db.ts';
import { SCHEMA } from './schema.ts';
import { restoreSnapshot } from './snapshot.ts';
import { queueExtras } from './view.ts';

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : (v as string | null));
const bit = (v: unknown) => (v === null || v === undefined ? null : v ? 1 : 0);

/** Writes DIR/report.{html,csv,json} and each account's reports; returns the batch report's path. */
export async function writeQueueReports(q: Queue, dir: string): Promise<string> {
  const accounts = (await q.query(`SELECT * FROM ${SCHEMA}.accounts ORDER BY line`)).rows as Array<Record<string, unknown>>;
  const samples = (await q.query(`SELECT slug, at, done_items, done_bytes, total_items FROM ${SCHEMA}.samples ORDER BY slug, at`)).rows as Array<
    Record<string, unknown>
  >;
  const db = openBatch(dir);
  try {
    db.transaction(() => {
      db.prepare('DELETE FROM accounts').run();
      db.prepare('DELETE FROM samples').run();
      const put =
        db.prepare(`INSERT INTO accounts (slug, account, line, source, destination, source_account, destination_account, delete_source, delete_evidence, priority, status, reason, todo,
        last_error, runs, started_at, ended_at, exit_code, est_items, est_bytes, planned_finish, makes_deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
      for (const a of accounts) {
        put.run(
          a.slug,
          a.account,
          a.line,
          a.source,
          a.destination,
          a.source_account,
          a.destination_account,
          bit(a.delete_source),
          a.delete_evidence,
          a.priority,
          a.status,
          a.reason,
          a.todo,
          a.last_error,
          a.runs,
          iso(a.started_at),
          iso(a.ended_at),
          a.exit_code,
          a.est_items === null ? null : Number(a.est_items),
          a.est_bytes === null ? null : Number(a.est_bytes),
          iso(a.planned_finish),
          bit(a.makes_deadline),
        );
      }
      const sample = db.prepare('INSERT INTO samples (slug, at, done_items, done_bytes, total_items) VALUES (?, ?, ?, ?, ?)');
      for (const s of samples) sample.run(s.slug, iso(s.at), Number(s.done_items), Number(s.done_bytes), Number(s.total_items));
    })();
    const manifest = await getMeta(q, 'manifest');
    const settings = await getMeta(q, 'settings');
    setBatchMeta(db, 'manifest', manifest ? (JSON.parse(manifest) as { path: string }).path : null);
    setBatchMeta(db, 'deadline', settings ? ((JSON.parse(settings) as { deadline: string | null }).deadline ?? null) : null);
    setBatchMeta(db, 'notes', (await getMeta(q, 'notes')) ?? '[]');
    setBatchMeta(db, 'running_pid', null);
  } finally {
    db.close();
  }
  for (const a of accounts) {
    const slug = a.slug as string;
    const { restored } = await restoreSnapshot(q, slug, accountStateFile(dir, slug));
    if (!restored) continue;
    const sdb = openState(accountStateFile(dir, slug), { readonly: true });
    try {
      const out = accountDir(dir, slug);
      fs.mkdirSync(out, { recursive: true, mode: 0o700 });
      await writeReport(sdb, path.join(out, 'report.csv'));
      await writeReport(sdb, path.join(out, 'report.json'));
      await writeReport(sdb, path.join(out, 'report.html'), { title: `Migration report: ${a.account as string}` });
    } finally {
      sdb.close();
    }
  }
  // The batch report says which worker ran each account and every takeover, as status does.
  await writeBatchReports(dir, await queueExtras(q, 'the queue database'));
  return path.join(dir, 'report.html');
}
