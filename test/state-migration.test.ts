// State files written before outcome kinds were stored (schema v3, gallery-bridge at commit
// 6ab13e9; test/state-fixtures/v3/make.sh made them, with the status and report that version
// printed for them) are opened by this version: every item keeps its outcome, in `status --json`
// and in the report, and each skip and rejection gets its kind from the words v3 wrote.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ROOT, runCli, sha256File, tmpDir } from './helpers.ts';
import { openState } from '../state/db.ts';
import { MIGRATIONS } from '../state/migrations.ts';

const V3 = path.join(ROOT, 'test', 'state-fixtures', 'v3');

/** The kind every item of the fixtures must get, by name. */
const KINDS: Record<string, Record<string, string | null>> = {
  google: {
    'moved.jpg': null,
    'copy-of-original.jpg': null,
    'original.jpg': 'duplicate-of-item', // deleted at the source, as the duplicate it was
    'in-library-exists.jpg': 'in-library-from-another-app',
    'in-library-failed.jpg': 'in-library-from-another-app',
    'gone.jpg': 'gone-from-source',
    'not-a-photo.jpg': 'refused-by-destination',
    'failed.jpg': null,
  },
  folder: { 'f6t.jpg': 'same-bytes-at-destination', 'noexif.jpg': 'same-bytes-at-destination' },
};

interface Report {
  summary: Record<string, unknown>;
  items: Array<Record<string, unknown>>;
}

function copyFixture(name: string): string {
  const t = tmpDir('state-v3-');
  const file = path.join(t, `${name}.db`);
  fs.copyFileSync(path.join(V3, `${name}.db`), file);
  return file;
}

function kinds(file: string): Record<string, string | null> {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare('SELECT name, reason_kind FROM items ORDER BY id').all() as Array<{ name: string; reason_kind: string | null }>;
    return Object.fromEntries(rows.map((r) => [r.name, r.reason_kind]));
  } finally {
    db.close();
  }
}

/** status --json as v3 printed it: this version adds each failure's kind, which v3 did not have. */
function withoutKinds(status: { failures: Array<Record<string, unknown>> }): unknown {
  return { ...status, failures: status.failures.map(({ kind: _k, ...f }) => f) };
}

/** The per-item view a person reads, keyed by name. */
function outcomes(report: Report): Record<string, unknown> {
  return Object.fromEntries(report.items.map((i) => [i.name, { outcome: i.outcome, what_to_do: i.what_to_do, state: i.state, reason: i.reason }]));
}

async function statusJson(file: string) {
  const r = await runCli(['status', '--state', file, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { failures: Array<Record<string, unknown>> };
}

async function reportJson(file: string): Promise<Report> {
  const out = path.join(path.dirname(file), 'report.json');
  const r = await runCli(['report', '--state', file, '--out', out]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(fs.readFileSync(out, 'utf8')) as Report;
}

describe('a v3 state file in WAL mode, its last writes still in the -wal file', () => {
  it('is read with those writes, migrated in memory, and left at v3', () => {
    const file = copyFixture('google');
    const writer = new Database(file);
    try {
      writer.pragma('journal_mode = WAL');
      writer.pragma('wal_autocheckpoint = 0');
      writer.prepare(`UPDATE items SET name = 'renamed-in-the-wal.jpg' WHERE name = 'gone.jpg'`).run();
      expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(0);
      const db = openState(file, { readonly: true });
      try {
        expect(db.prepare(`SELECT reason_kind FROM items WHERE name = 'renamed-in-the-wal.jpg'`).get()).toEqual({ reason_kind: 'gone-from-source' });
      } finally {
        db.close();
      }
      expect(writer.pragma('user_version', { simple: true })).toBe(3);
    } finally {
      writer.close();
    }
  });
});

describe.each(['google', 'folder'])('a v3 state file (%s) opened by this version', (name) => {
  const before = {
    status: JSON.parse(fs.readFileSync(path.join(V3, `${name}.status.json`), 'utf8')) as { failures: Array<Record<string, unknown>> },
    report: JSON.parse(fs.readFileSync(path.join(V3, `${name}.report.json`), 'utf8')) as Report,
  };

  it('status and report, read-only, show every item as v3 did, and leave the file as it was', async () => {
    const file = copyFixture(name);
    const hash = sha256File(file);

    const status = await statusJson(file);
    expect(withoutKinds(status)).toEqual(before.status);
    const report = await reportJson(file);
    expect(outcomes(report)).toEqual(outcomes(before.report));
    const { generated_at: _a, ...summary } = report.summary;
    const { generated_at: _b, ...summaryBefore } = before.report.summary;
    expect(summary).toEqual(summaryBefore);
    // The kinds are read from a migrated copy in memory: the file is the next run's to migrate.
    expect(Object.fromEntries(report.items.map((i) => [i.name, i.reason_kind]))).toEqual(KINDS[name]);
    expect(sha256File(file)).toBe(hash);
  }, 60_000);

  it('migrated in place, each item gets its kind and keeps its outcome', async () => {
    const file = copyFixture(name);
    openState(file).close();
    expect(kinds(file)).toEqual(KINDS[name]);
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();

    const status = await statusJson(file);
    expect(withoutKinds(status)).toEqual(before.status);
    for (const f of status.failures) expect(f.kind).toBe(KINDS[name]![f.name as string]);
    expect(outcomes(await reportJson(file))).toEqual(outcomes(before.report));
  }, 60_000);
});
