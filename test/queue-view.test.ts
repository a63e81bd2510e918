// The admin's view of a queue-mode batch (`batch status --queue`, `serve --queue`), read from a
// real PostgreSQL from outside the workers: which worker holds each account, its last heartbeat,
// every takeover with time and reason, and per-account counts and reports taken from the
// account's state snapshot. And bad input: one line, exit 2, no password shown.
//
// The queue rows are written here with plain SQL in the queue's own schema, as a worker would
// leave them (a live lease, an expired one after a kill, a released one, a takeover); the
// account's state snapshot is a real state store written by a real `migrate` run.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import net from 'node:net';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateProgress } from '../src/batch/view.ts';
import { openQueue } from '../src/queue/db.ts';
import { DDL, SCHEMA, SCHEMA_VERSION } from '../src/queue/schema.ts';
import { CLI, makeSource, runCli, tmpDir } from './helpers.ts';
import { freshDatabase, urlFor } from './pg.ts';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let stateFile = '';
const children: Array<ReturnType<typeof spawn>> = [];

async function sql(text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  db = await freshDatabase('view');
  // The tables as the tool creates them.
  await (await openQueue(db.url, { migrate: true })).end();
  // A real account state: a folder migrated by the CLI.
  const t = tmpDir('gb-qview-');
  makeSource(path.join(t, 'src', 'Camera'), { '': ['img_1771.jpg', 'noexif.jpg', 'f6t.jpg'] });
  stateFile = path.join(t, 'state.db');
  const r = await runCli(['migrate', '--from', `folder:${t}/src`, '--to', `folder:${t}/dst`, '--state', stateFile]);
  expect(r.code, r.stderr).toBe(0);
  const Database = (await import('better-sqlite3')).default;
  const sdb = new Database(stateFile, { readonly: true });
  const snapshot = zlib.gzipSync(sdb.serialize());
  sdb.close();

  const accounts = [
    ['anna', 'anna', 1, 'done'],
    ['ben', 'ben', 2, 'running'],
    ['carla', 'carla', 3, 'running'],
    ['dev', 'dev', 4, 'waiting'],
  ] as const;
  for (const [slug, account, line, status] of accounts) {
    await sql(
      `INSERT INTO ${SCHEMA}.accounts (slug, account, line, source, destination, source_account, destination_account, status, items, done_items, bytes, done_bytes)
      VALUES ($1, $2, $3, 'folder:/src', 'folder:/dst', '', '', $4, 10, 4, 1000, 400)`,
      [slug, account, line, status],
    );
  }
  await sql(`INSERT INTO ${SCHEMA}.workers (name, host, pid, slots, started_at, heartbeat_at) VALUES
    ('w-alive', 'machine-a', 101, 2, now() - interval '10 minutes', now() - interval '2 seconds'),
    ('w-killed', 'machine-b', 202, 2, now() - interval '10 minutes', now() - interval '5 minutes')`);
  await sql(`INSERT INTO ${SCHEMA}.workers (name, host, pid, slots, started_at, heartbeat_at, stopped_at) VALUES
    ('w-done', 'machine-c', 303, 1, now() - interval '20 minutes', now() - interval '15 minutes', now() - interval '15 minutes')`);
  await sql(`INSERT INTO ${SCHEMA}.leases (slug, epoch, worker, acquired_at, renewed_at, expires_at, released_at) VALUES
    ('anna', 1, 'w-done', now() - interval '20 minutes', now() - interval '16 minutes', now() - interval '14 minutes', now() - interval '15 minutes'),
    ('ben', 3, 'w-alive', now() - interval '4 minutes', now() - interval '2 seconds', now() + interval '2 minutes', NULL),
    ('carla', 2, 'w-killed', now() - interval '9 minutes', now() - interval '5 minutes', now() - interval '3 minutes', NULL)`);
  await sql(`INSERT INTO ${SCHEMA}.takeovers (slug, at, old_worker, old_epoch, new_worker, new_epoch, reason) VALUES
    ('ben', now() - interval '4 minutes', 'w-killed', 2, 'w-alive', 3, 'lease of w-killed expired 2 min unrenewed')`);
  await sql(`INSERT INTO ${SCHEMA}.snapshots (slug, epoch, size, sqlite) VALUES ('anna', 1, $1, $2)`, [snapshot.length, snapshot]);
  await sql(`INSERT INTO ${SCHEMA}.meta (key, value) VALUES ('settings', '{"leaseSeconds":120,"deadline":null}')`);
  // Deletions recorded with their proof: anna's two confirmed (one of them recorded twice, by a
  // retried run); ben's one confirmed and one whose worker stopped before the source answered.
  await sql(`INSERT INTO ${SCHEMA}.deletions (slug, epoch, worker, run_id, source_id, name, sha256, bytes, evidence, done_at) VALUES
    ('anna', 1, 'w-done', 1, 'Camera/a.jpg', 'a.jpg', 'aa', 10, 'bytes', now()),
    ('anna', 1, 'w-done', 1, 'Camera/b.jpg', 'b.jpg', 'bb', 10, 'bytes', NULL),
    ('anna', 1, 'w-done', 2, 'Camera/b.jpg', 'b.jpg', 'bb', 10, 'bytes', now()),
    ('ben', 3, 'w-alive', 1, 'Camera/c.jpg', 'c.jpg', 'cc', 10, 'bytes', now()),
    ('ben', 3, 'w-alive', 1, 'Camera/d.jpg', 'd.jpg', 'dd', 10, 'bytes', NULL)`);
  await sql(
    `INSERT INTO ${SCHEMA}.samples (slug, at, done_items, done_bytes, total_items) SELECT 'ben', now() - make_interval(secs => g), 10 - g / 10, 0, 10 FROM generate_series(0, 99) g`,
  );
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await db?.drop();
});

interface StatusJson {
  running: boolean;
  accounts: Array<{
    account: string;
    status: string;
    items: number;
    doneItems: number;
    outcomes: Record<string, { items: number }>;
    holder: null | { worker: string; epoch: number; live: boolean; releasedAt: string | null; heartbeatAge: number | null };
  }>;
  queue: {
    leaseSeconds: number;
    workers: Array<{ name: string; state: string; accounts: string[]; heartbeatAge: number }>;
    takeovers: Array<{ account: string; oldWorker: string; newWorker: string; reason: string; at: string }>;
  };
  totals: { accounts: number };
}

describe('batch status --queue', () => {
  it('shows each account with its worker and heartbeat, every worker and every takeover', async () => {
    const r = await runCli(['batch', 'status', '--queue', db.url, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(r.stdout) as StatusJson;
    const by = new Map(v.accounts.map((a) => [a.account, a]));
    expect(v.totals.accounts).toBe(4);
    expect(v.running).toBe(true);

    // anna: counts from her snapshot, the same numbers her state file gives.
    const fromFile = stateProgress(stateFile);
    expect(fromFile.items).toBe(3);
    expect(by.get('anna')!.items).toBe(fromFile.items);
    expect(by.get('anna')!.doneItems).toBe(fromFile.doneItems);
    expect(by.get('anna')!.outcomes).toEqual(fromFile.outcomes);
    expect(by.get('anna')!.holder).toMatchObject({ worker: 'w-done', live: false });
    expect(by.get('anna')!.holder!.releasedAt).not.toBeNull();

    // ben: held by the live worker, heard from seconds ago; no snapshot yet, so the reported progress.
    expect(by.get('ben')!.holder).toMatchObject({ worker: 'w-alive', epoch: 3, live: true, releasedAt: null });
    expect(by.get('ben')!.holder!.heartbeatAge).toBeLessThan(60);
    expect(by.get('ben')!).toMatchObject({ items: 10, doneItems: 4 });

    // carla: her worker was killed; the lease expired unreleased, and its heartbeat is minutes old.
    expect(by.get('carla')!.holder).toMatchObject({ worker: 'w-killed', live: false, releasedAt: null });
    expect(by.get('carla')!.holder!.heartbeatAge).toBeGreaterThan(250);
    expect(by.get('dev')!.holder).toBeNull();

    const workers = new Map(v.queue.workers.map((w) => [w.name, w]));
    expect(workers.get('w-alive')).toMatchObject({ state: 'alive', accounts: ['ben'] });
    expect(workers.get('w-killed')).toMatchObject({ state: 'silent', accounts: [] });
    expect(workers.get('w-done')).toMatchObject({ state: 'stopped' });
    expect(v.queue.leaseSeconds).toBe(120);
    expect(v.queue.takeovers).toHaveLength(1);
    expect(v.queue.takeovers[0]).toMatchObject({
      account: 'ben',
      oldWorker: 'w-killed',
      newWorker: 'w-alive',
      reason: 'lease of w-killed expired 2 min unrenewed',
    });
    expect(Date.parse(v.queue.takeovers[0]!.at)).not.toBeNaN();
  });

  it('says the same in text, without the password', async () => {
    const r = await runCli(['batch', 'status', '--queue', db.url]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.find((l) => l.startsWith('ben '))).toMatch(/running .*w-alive \(epoch 3, heard \d+ s ago\)/);
    expect(lines.find((l) => l.startsWith('carla '))).toMatch(/w-killed \(lease expired, heard [45] min/);
    expect(r.stdout).toMatch(/w-killed on machine-b pid 202: silent, last heartbeat/);
    expect(r.stdout).toMatch(/takeovers: 1\n .*ben: w-killed \(epoch 2\) -> w-alive \(epoch 3\): lease of w-killed expired/);
    expect(r.stdout).not.toContain(new URL(db.url).password);
  });
});

describe('the batch report of a queue-mode batch', () => {
  it('names the worker of each account and lists every worker and takeover, as status does', async () => {
    const { writeQueueReports } = await import('../src/queue/reports.ts');
    const q = await openQueue(db.url, { migrate: false });
    const dir = tmpDir('gb-qreport-');
    try {
      await writeQueueReports(q, dir);
    } finally {
      await q.end();
    }
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(html).toMatch(/<tr data-account="ben">.*<td data-k="worker">w-alive \(epoch 3, heard \d+ s ago\)<\/td>/);
    expect(html).toMatch(/<table id="takeovers">.*<td>ben<\/td><td>w-killed \(epoch 2\)<\/td><td>w-alive \(epoch 3\)<\/td>/s);
    expect(html).toContain('<tr data-worker="w-done">');
    // Each account's deletions at its source, from the queue database's deletions table.
    expect(html).toMatch(/<table id="deletions">.*<tr data-account="anna"><td>anna<\/td><td class="n">2<\/td><td class="n">0<\/td><\/tr>/s);
    expect(html).toMatch(/<table id="deletions">.*<tr data-account="ben"><td>ben<\/td><td class="n">1<\/td><td class="n">1<\/td><\/tr>/s);
    expect(html).not.toMatch(/<table id="deletions">.*data-account="carla"/s);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')).queue.takeovers).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, 'accounts', 'anna', 'report.html'), 'utf8')).toContain('noexif.jpg');
  });
});

describe('bad --queue input: one line, exit 2, nothing starts', () => {
  const closedPort = () =>
    new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
  const oneLine = (r: { code: number | null; stderr: string }, re: RegExp) => {
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(re);
  };

  it('an unreachable database', async () => {
    const port = await closedPort();
    const r = await runCli(['batch', 'status', '--queue', `postgres://u:hunter2secret@127.0.0.1:${port}/x`]);
    oneLine(r, /cannot reach the queue database at postgres:\/\/u:\*\*\*@127\.0\.0\.1/);
    expect(r.stderr).not.toContain('hunter2secret');
  });

  it('a wrong password', async () => {
    const r = await runCli(['serve', '--queue', urlFor(db.name, { password: 'wrong-password-here' }), '--port', '0']);
    oneLine(r, /refused the user name or password/);
    expect(r.stderr).not.toContain('wrong-password-here');
    expect(r.stdout).not.toContain('DASHBOARD_URL');
  });

  it('a database with no batch in it', async () => {
    const empty = await freshDatabase('empty');
    try {
      oneLine(await runCli(['batch', 'status', '--queue', empty.url]), /holds no batch yet/);
    } finally {
      await empty.drop();
    }
  });

  it('a database from a newer version of the tool', async () => {
    const newer = await freshDatabase('newer');
    try {
      await (await openQueue(newer.url, { migrate: true })).end();
      const c = new pg.Client({ connectionString: newer.url });
      await c.connect();
      await c.query(`UPDATE ${SCHEMA}.meta SET value = '999' WHERE key = 'schema_version'`);
      await c.end();
      oneLine(await runCli(['batch', 'status', '--queue', newer.url]), /newer gallery-bridge \(schema 999/);
      oneLine(await runCli(['serve', '--queue', newer.url, '--port', '0']), /newer gallery-bridge \(schema 999/);
    } finally {
      await newer.drop();
    }
  });

  it('a database from the previous schema version is brought up to date, keeping its rows', async () => {
    const older = await freshDatabase('older');
    try {
      // Version 1 as the tool of that version left it: its tables, one account, no deletions table.
      const c = new pg.Client({ connectionString: older.url });
      await c.connect();
      await c.query(DDL);
      await c.query(`INSERT INTO ${SCHEMA}.meta(key, value) VALUES ('schema_version', '1')`);
      await c.query(
        `INSERT INTO ${SCHEMA}.accounts (slug, account, line, source, destination, source_account, destination_account) VALUES ('old', 'old', 2, 'folder:/s', 'folder:/d', 'default', 'default')`,
      );
      expect((await c.query(`SELECT to_regclass('${SCHEMA}.deletions') AS t`)).rows[0].t).toBeNull();
      // A worker (which opens without creating a batch) upgrades it.
      await (await openQueue(older.url, { migrate: false })).end();
      expect((await c.query(`SELECT value FROM ${SCHEMA}.meta WHERE key = 'schema_version'`)).rows[0].value).toBe(String(SCHEMA_VERSION));
      expect((await c.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.deletions`)).rows[0].n).toBe(0);
      expect((await c.query(`SELECT slug FROM ${SCHEMA}.accounts`)).rows).toEqual([{ slug: 'old' }]);
      await c.end();
    } finally {
      await older.drop();
    }
  });

  it('a manifest whose account changed its source or destination since it was loaded', async () => {
    const m = await freshDatabase('manifest');
    try {
      const t = tmpDir('gb-qmanifest-');
      const file = path.join(t, 'accounts.csv');
      fs.writeFileSync(file, `account,source,destination\nanna,folder:${t}/src/anna,folder:${t}/dst/anna\nben,folder:${t}/src/ben,folder:${t}/dst/ben\n`);
      const first = await runCli(['batch', 'run', file, '--queue', m.url, '--no-work']);
      expect(first.code, first.stderr).toBe(0);
      const before = await new pg.Client({ connectionString: m.url });
      await before.connect();
      const rowsBefore = (await before.query(`SELECT account, source, destination, status FROM ${SCHEMA}.accounts ORDER BY account`)).rows;
      fs.writeFileSync(
        file,
        `account,source,destination\nanna,folder:${t}/src/anna,folder:${t}/elsewhere/anna\nben,folder:${t}/src/ben,folder:${t}/dst/ben\ncarla,folder:${t}/src/carla,folder:${t}/dst/carla\n`,
      );
      const again = await runCli(['batch', 'run', file, '--queue', m.url]);
      expect(again.code).toBe(2);
      expect(again.stderr.trim().split('\n')).toHaveLength(1);
      expect(again.stderr).toMatch(/line 2: account "anna" was folder:.* -> folder:.*dst\/anna in this batch; its state belongs to that pair/);
      // Nothing started and nothing changed: no account added, none moved, no worker joined.
      expect((await before.query(`SELECT account, source, destination, status FROM ${SCHEMA}.accounts ORDER BY account`)).rows).toEqual(rowsBefore);
      expect((await before.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.workers`)).rows[0].n).toBe(0);
      expect((await before.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.leases`)).rows[0].n).toBe(0);
      await before.end();
    } finally {
      await m.drop();
    }
  });
});

describe('serve --queue', () => {
  it('serves the batch page, the JSON status and each account report from its snapshot', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--queue', db.url, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const base = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('serve did not start')), 60_000);
      readline.createInterface({ input: child.stdout! }).on('line', (l) => {
        const m = /^DASHBOARD_URL=(.*)$/.exec(l);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
      child.on('exit', (c) => reject(new Error(`serve exited ${c}`)));
    });
    const page = await (await fetch(base)).text();
    expect(page).toContain('<table id="workers">');
    expect(page).toMatch(/<tr data-worker="w-killed">.*silent/);
    expect(page).toMatch(
      /<table id="takeovers">.*<td>ben<\/td><td>w-killed \(epoch 2\)<\/td><td>w-alive \(epoch 3\)<\/td><td>lease of w-killed expired 2 min unrenewed<\/td>/s,
    );
    expect(page).toMatch(/<tr data-account="ben">.*<td data-k="worker">w-alive \(epoch 3, heard \d+ s ago\)<\/td>/);
    expect(page).toContain('polyline'); // ben's samples drawn
    expect(page).not.toContain(new URL(db.url).password);

    const status = (await (await fetch(new URL('api/status', base))).json()) as StatusJson;
    expect(status.accounts.map((a) => a.account)).toEqual(['anna', 'ben', 'carla', 'dev']);

    const report = await fetch(new URL('accounts/anna/report.html', base));
    expect(report.status).toBe(200);
    const html = await report.text();
    expect(html).toContain('Migration report: anna');
    for (const name of ['img_1771.jpg', 'noexif.jpg', 'f6t.jpg']) expect(html).toContain(name);
    expect((await fetch(new URL('accounts/dev/report.html', base))).status).toBe(404);
    expect((await fetch(new URL('accounts/nobody/report.html', base))).status).toBe(404);
    expect((await fetch(base, { method: 'POST' })).status).toBe(405);
  });
});
