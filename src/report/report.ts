// Reports over the state store: one row per item with its outcome, hashes and evidence, in
// JSON, CSV or a self-contained HTML page, chosen by the output file's extension. Rows stream
// from SQLite, so a million-item report does not need a million rows in memory. Upload sessions
// and staged handles (which carry temporary credentials) are never selected.

import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { DB } from '../../state/db.ts';
import { Items } from '../../state/items.ts';

export const REPORT_COLUMNS = [
  'source_id', 'name', 'album_name', 'size', 'state', 'reason', 'last_error', 'attempts',
  'mime_type', 'capture_time', 'capture_source', 'exif_time', 'declared_time', 'undated',
  'declared_sha1', 'declared_hash_ok', 'sha1', 'sha256', 'quickxor',
  'dest_id', 'dest_path', 'duplicate_of', 'evidence_level', 'evidence_detail', 'verified_at', 'deleted_at',
] as const;

type Row = Record<(typeof REPORT_COLUMNS)[number], unknown>;

function rows(db: DB): IterableIterator<Row> {
  const cols = REPORT_COLUMNS.map((c) =>
    c === 'undated' ? `(capture_time IS NULL AND state NOT IN ('discovered','transferring')) AS undated` : c === 'duplicate_of' ? '(SELECT source_id FROM items o WHERE o.id = items.duplicate_of) AS duplicate_of' : c,
  );
  return db.prepare(`SELECT ${cols.join(', ')} FROM items ORDER BY id`).iterate() as IterableIterator<Row>;
}

function summary(db: DB) {
  const counts = new Items(db).countsByState();
  const deletions = (db.prepare('SELECT count(*) AS n FROM deletions').get() as { n: number }).n;
  const lastRun = db.prepare('SELECT id, command, source, destination, started_at, ended_at, outcome, exit_code FROM runs ORDER BY id DESC LIMIT 1').get();
  return { generated_at: new Date().toISOString(), counts, deletions, last_run: lastRun ?? null };
}

const esc = (v: unknown) =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function writeReport(db: DB, out: string): { format: string; rows: number } {
  const ext = path.extname(out).toLowerCase();
  const fd = fs.openSync(out, 'w', 0o644);
  let n = 0;
  try {
    const w = (s: string) => fs.writeSync(fd, s);
    if (ext === '.json') {
      w(`{"summary":${JSON.stringify(summary(db))},"items":[`);
      for (const r of rows(db)) w(`${n++ ? ',' : ''}\n${JSON.stringify(r)}`);
      w('\n]}\n');
      return { format: 'json', rows: n };
    }
    if (ext === '.csv') {
      w(stringify([REPORT_COLUMNS as unknown as string[]]));
      for (const r of rows(db)) {
        w(stringify([REPORT_COLUMNS.map((c) => r[c] ?? '')]));
        n++;
      }
      return { format: 'csv', rows: n };
    }
    if (ext === '.html' || ext === '.htm') {
      const s = summary(db);
      const countRows = Object.entries(s.counts).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v.items}</td><td>${v.bytes}</td></tr>`).join('');
      w(`<!doctype html><html><head><meta charset="utf-8"><title>gallery-bridge report</title><style>
body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#eee;position:sticky;top:0}.verified,.source-deleted,.skipped{background:#eaffea}.failed,.rejected{background:#ffecec}.mono{font-family:monospace;font-size:12px}
</style></head><body><h1>gallery-bridge report</h1><p>Generated ${esc(s.generated_at)}. Deletions at the source: ${s.deletions}.</p>
<table><tr><th>state</th><th>items</th><th>bytes</th></tr>${countRows}</table><h2>Items</h2><table><tr>${REPORT_COLUMNS.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>\n`);
      for (const r of rows(db)) {
        w(`<tr class="${esc(r.state)}">${REPORT_COLUMNS.map((c) => `<td${/sha|quickxor/.test(c) ? ' class="mono"' : ''}>${esc(r[c])}</td>`).join('')}</tr>\n`);
        n++;
      }
      w('</table></body></html>\n');
      return { format: 'html', rows: n };
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.rmSync(out, { force: true });
  throw new Error(`report format is chosen by extension: .json, .csv or .html (got "${ext || 'none'}")`);
}
