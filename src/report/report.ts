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

/** A report written beside its target and renamed into place: a reader (the dashboard, a browser) never sees half a report. */
class ReportFile {
  private readonly tmp: string;
  private readonly fd: number;
  private buf = '';

  constructor(private readonly out: string) {
    this.tmp = `${out}.${process.pid}.tmp`;
    this.fd = fs.openSync(this.tmp, 'w', 0o644);
  }

  readonly w = (s: string): void => {
    this.buf += s;
    if (this.buf.length > 1 << 16) {
      fs.writeSync(this.fd, this.buf);
      this.buf = '';
    }
  };

  done(): void {
    fs.writeSync(this.fd, this.buf);
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.out);
  }

  abandon(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    fs.rmSync(this.tmp, { force: true });
  }
}

/**
 * CSV and JSON reports (chosen by each file's extension) in one pass over the items: one summary
 * and one row query for all of them. A batch writes both for every account when it ends.
 */
export function writeTableReports(db: DB, outs: string[]): number {
  const files = outs.map((out) => ({ ext: path.extname(out).toLowerCase(), file: new ReportFile(out) }));
  const csv = files.filter((f) => f.ext === '.csv').map((f) => f.file);
  const json = files.filter((f) => f.ext === '.json').map((f) => f.file);
  const all = (text: string, to: ReportFile[]) => {
    for (const f of to) f.w(text);
  };
  let n = 0;
  try {
    const s = summarize(db);
    if (json.length) all(`{"summary":${JSON.stringify(summaryJson(s))},"items":[`, json);
    if (csv.length) all(stringify([[...HUMAN_COLUMNS, ...REPORT_COLUMNS] as string[]]), csv);
    for (const r of rows(db)) {
      const h = human(r);
      if (csv.length) all(`${[...HUMAN_COLUMNS.map((c) => h[c]), ...REPORT_COLUMNS.map((c) => r[c] ?? '')].map(csvField).join(',')}\n`, csv);
      if (json.length) {
        // The same keys in the same order as {...human, ...the row without bytes_read}: spreading a
        // 34-column row made an object V8 keeps as a dictionary, and a batch writes this for every account.
        const item: Record<string, unknown> = h;
        for (const c of REPORT_COLUMNS) item[c] = r[c];
        all(`${n ? ',' : ''}\n${JSON.stringify(item)}`, json);
      }
      n++;
    }
    all('\n]}\n', json);
    for (const f of files) f.file.done();
    return n;
  } catch (err) {
    for (const f of files) f.file.abandon();
    throw err;
  }
}

export async function writeReport(db: DB, out: string, opts: ReportOptions = {}): Promise<{ format: string; rows: number }> {
  const ext = path.extname(out).toLowerCase();
  if (!['.json', '.csv', '.html', '.htm'].includes(ext)) throw new Error(`report format is chosen by extension: .json, .csv or .html (got "${ext || 'none'}")`);
  if (ext === '.json' || ext === '.csv') return { format: ext.slice(1), rows: writeTableReports(db, [out]) };
  const file = new ReportFile(out);
  try {
    const s = summarize(db);
    const n = await writeHtml(db, s, file.w, { title: opts.title, back: opts.back, open: opts.open === undefined ? folderOpener(s.source) : opts.open });
    file.done();
    return { format: 'html', rows: n };
  } catch (err) {
    file.abandon();
    throw err;
  }
}
