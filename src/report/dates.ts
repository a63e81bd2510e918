// Capture dates, in the terms of a report: how many items had no date in the file, where their
// date came from instead, how many got it written into the uploaded copy, how many will still be
// dated by their upload and why, and what the source knew that no destination could take.
// Aggregate queries only: flat memory at any library size.

import type { DB } from '../../state/db.ts';

export interface DatesSummary {
  /** The zone used for times without an offset (--timezone of the last run). */
  timeZone: string | null;
  /** Items whose capture time was settled (their first bytes were read). */
  examined: number;
  /** Of those, dated by the file itself. */
  inFile: number;
  /** Of those, without a date in the file, by where their date came from. */
  noDateInFile: { total: number; from: Array<{ source: string; detail: string; items: number }> };
  /** Uploaded as a copy carrying the date. */
  dateAdded: number;
  /** Will be (or were) dated by the upload at the destination, grouped by reason. */
  datedByUpload: Array<{ why: string; items: number }>;
  /** What the source knows that could not be carried, by kind. */
  notCarried: Array<{ what: string; items: number }>;
}

export function datesSummary(db: DB): DatesSummary {
  const examined = `capture_source IS NOT NULL`;
  const count = (where: string): number => (db.prepare(`SELECT count(*) AS n FROM items WHERE ${where}`).get() as { n: number }).n;
  const from = db
    .prepare(`SELECT capture_source AS source, coalesce(capture_detail, capture_source) AS detail, count(*) AS items FROM items
      WHERE ${examined} AND capture_source NOT IN ('exif','container') GROUP BY source, detail ORDER BY items DESC`)
    .all() as Array<{ source: string; detail: string; items: number }>;
  // "will be dated by upload: <why>" notes, grouped on the reason without the item's own date.
  const byUpload = db
    .prepare(`SELECT substr(date_note, 1, coalesce(nullif(instr(date_note, ' ('), 0) - 1, length(date_note))) AS why, count(*) AS items FROM items
      WHERE date_note LIKE 'will be dated by upload%' GROUP BY why ORDER BY items DESC`)
    .all() as Array<{ why: string; items: number }>;
  const notCarried = db
    .prepare(`SELECT j.value AS what, count(*) AS items FROM items, json_each(items.item_json, '$.notCarried') AS j
      WHERE json_valid(items.item_json) GROUP BY what ORDER BY items DESC`)
    .all() as Array<{ what: string; items: number }>;
  let timeZone: string | null = null;
  const last = db.prepare('SELECT options FROM runs ORDER BY id DESC LIMIT 1').get() as { options: string } | undefined;
  try {
    timeZone = last ? ((JSON.parse(last.options) as { timeZone?: string }).timeZone ?? null) : null;
  } catch {
    // an unreadable options column only loses the zone
  }
  return {
    timeZone,
    examined: count(examined),
    inFile: count(`capture_source IN ('exif','container')`),
    noDateInFile: { total: from.reduce((n, r) => n + r.items, 0), from },
    dateAdded: count('copy_sha256 IS NOT NULL'),
    datedByUpload: byUpload,
    notCarried,
  };
}

/** The same, as lines for the terminal. */
export function datesLines(d: DatesSummary): string[] {
  if (!d.examined && !d.notCarried.length) return [];
  const lines = [
    `capture dates (times without an offset read in ${d.timeZone ?? 'the system zone'}): ${d.inFile} of ${d.examined} items carry their own date; ${d.noDateInFile.total} had none in the file`,
  ];
  for (const f of d.noDateInFile.from) lines.push(`  ${f.items} dated from ${f.detail}`);
  if (d.dateAdded) lines.push(`  ${d.dateAdded} uploaded with the date written into the file (checked: only the date differs)`);
  for (const u of d.datedByUpload) lines.push(`  ${u.items} ${u.why}`);
  for (const n of d.notCarried) lines.push(`  not carried: ${n.what} (${n.items} items)`);
  return lines;
}
