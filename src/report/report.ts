// Reports over one state store, chosen by the output file's extension: a CSV and a JSON file
// with one row per item (outcome, reason, what to do, hashes, evidence) for spreadsheets and
// scripts, and a self-contained HTML page for people (see html.ts). Rows stream from SQLite,
// so a million-item report never holds a million rows in memory. Upload sessions and staged
// handles (which carry temporary credentials) are never selected.

import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { DB } from '../../state/db.ts';
import { bytes } from './human.ts';
import { writeHtml } from './html.ts';
import { OUTCOME_LABEL, outcomeOf, reasonGroup } from './outcomes.ts';
import { summarize } from './summary.ts';
import type { Summary } from './summary.ts';
import { folderOpener } from './thumbs.ts';
import type { ItemOpener } from './thumbs.ts';

export type { ItemOpener } from './thumbs.ts';

export const REPORT_COLUMNS = [
  'source_id',
  'name',
  'album_name',
  'size',
  'state',
  'reason',
  'reason_kind',
  'last_error',
  'attempts',
  'mime_type',
  'capture_time',
  'capture_source',
  'capture_detail',
  'exif_time',
  'declared_time',
  'undated',
  'date_note',
  'copy_sha256',
  'not_carried',
  'declared_sha1',
  'declared_hash_ok',
  'sha1',
  'sha256',
  'quickxor',
  'dest_id',
  'dest_path',
  'duplicate_of',
  'evidence_level',
  'evidence_detail',
  'verified_at',
  'deleted_at',
] as const;

/** Columns a person reads first, derived from the stored ones. */
export const HUMAN_COLUMNS = ['outcome', 'size_human', 'what_to_do'] as const;

type Row = Record<(typeof REPORT_COLUMNS)[number], unknown>;

function rows(db: DB): IterableIterator<Row> {
  const cols = REPORT_COLUMNS.map((c) =>
    c === 'undated'
      ? `(capture_time IS NULL AND state NOT IN ('discovered','transferring')) AS undated`
      : c === 'not_carried'
        ? `(SELECT group_concat(j.value, '; ') FROM json_each(CASE WHEN json_valid(items.item_json) THEN items.item_json ELSE '{}' END, '$.notCarried') AS j) AS not_carried`
        : c === 'duplicate_of'
          ? '(SELECT source_id FROM items o WHERE o.id = items.duplicate_of) AS duplicate_of'
          : c,
  );
  return db.prepare(`SELECT ${cols.join(', ')}, bytes_read FROM items ORDER BY album_name, id`).iterate() as IterableIterator<Row>;
}

/** RFC 4180: quoted only when it must be (what csv-stringify writes, without its per-call cost). */
function csvField(v: unknown): string {
  const t = String(v);
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

function human(r: Row & { bytes_read?: unknown }): Record<(typeof HUMAN_COLUMNS)[number], string> {
  const kind = r.reason_kind as string | null;
  const o = outcomeOf(String(r.state), kind);
  const why = (r.reason ?? r.last_error ?? null) as string | null;
  const todo =
    o === 'failed' || o === 'rejected' || o === 'awaiting' || o === 'in-library'
      ? reasonGroup(o, why, kind).todo
      : o === 'not-started'
        ? 'Run again: the migration resumes with it.'
        : '';
  return { outcome: OUTCOME_LABEL[o], size_human: bytes((r.bytes_read ?? r.size ?? null) as number | null), what_to_do: todo };
}

/** The summary as JSON: raw numbers plus their human forms. */
export function summaryJson(s: Summary): Record<string, unknown> {
  return {
    ...s,
    total_human: bytes(s.total.bytes),
    outcomes: Object.fromEntries(
      Object.entries(s.outcomes).map(([k, v]) => [k, { ...v, label: OUTCOME_LABEL[k as keyof typeof OUTCOME_LABEL], size: bytes(v.bytes) }]),
    ),
  };
}

export interface ReportOptions {
  /** Reads an item's bytes for a thumbnail (a run passes its open source); folder sources are read from disk without it. */
  open?: ItemOpener | null;
  title?: string;
  back?: { href: string; label: string } | null;
}

export async function writeReport(db: DB, out: string, opts: ReportOptions = {}): Promise<{ format: string; rows: number }> {
  const ext = path.extname(out).toLowerCase();
  if (!['.json', '.csv', '.html', '.htm'].includes(ext)) throw new Error(`report format is chosen by extension: .json, .csv or .html (got "${ext || 'none'}")`);
  // Written beside the target and renamed into place: a reader (the dashboard, a browser) never sees half a report.
  const tmp = `${out}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  let n = 0;
  let buf = '';
  const w = (s: string) => {
    buf += s;
    if (buf.length > 1 << 16) {
      fs.writeSync(fd, buf);
      buf = '';
    }
  };
  try {
    const s = summarize(db);
    if (ext === '.json') {
      w(`{"summary":${JSON.stringify(summaryJson(s))},"items":[`);
      for (const r of rows(db)) {
        // The same keys in the same order as {...human, ...the row without bytes_read}: spreading a
        // 34-column row made an object V8 keeps as a dictionary, and a batch writes this for every account.
        const item: Record<string, unknown> = human(r);
        for (const c of REPORT_COLUMNS) item[c] = r[c];
        w(`${n++ ? ',' : ''}\n${JSON.stringify(item)}`);
      }
      w('\n]}\n');
    } else if (ext === '.csv') {
      w(stringify([[...HUMAN_COLUMNS, ...REPORT_COLUMNS] as string[]]));
      for (const r of rows(db)) {
        const h = human(r);
        w(`${[...HUMAN_COLUMNS.map((c) => h[c]), ...REPORT_COLUMNS.map((c) => r[c] ?? '')].map(csvField).join(',')}\n`);
        n++;
      }
    } else {
      n = await writeHtml(db, s, w, { title: opts.title, back: opts.back, open: opts.open === undefined ? folderOpener(s.source) : opts.open });
    }
    fs.writeSync(fd, buf);
    fs.closeSync(fd);
    fs.renameSync(tmp, out);
    return { format: ext === '.htm' ? 'html' : ext.slice(1), rows: n };
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
