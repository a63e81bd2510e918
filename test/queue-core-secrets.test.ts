// Credentials in the queue database are sealed: after a load, no table of any schema holds a
// token or a cookie in plain text (nor its base64), a worker with the key gets the exact files
// back, and a wrong or missing key is one clear line.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from '../src/queue/db.ts';
import { openQueue } from '../src/queue/db.ts';
import { materializeCredentials, queueKey } from '../src/queue/secrets.ts';
import { runCli, tmpDir } from './helpers.ts';
import { freshDatabase } from './pg.ts';

const REFRESH = '1//0gSECRET-refresh-token-queue-core-abcdef';
const COOKIE = 'serviceToken=SECRET-xiaomi-cookie-queue-core-123456';
const KEY = 'correct horse battery staple for the queue';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let q: Queue;
let t: string;
let home: string;
let manifest: string;

beforeAll(async () => {
  db = await freshDatabase('gbqsecret');
  t = tmpDir('gbq-secret-');
  home = path.join(t, 'home');
  const write = (rel: string, body: unknown) => {
    fs.mkdirSync(path.dirname(path.join(home, rel)), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(home, rel), JSON.stringify(body), { mode: 0o600 });
  };
  write('credentials/google-photos/alice.json', { refresh_token: REFRESH, client_id: 'client-1' });
  write('credentials/xiaomi/alice.json', { cookies: COOKIE, userId: '42' });
  manifest = path.join(t, 'manifest.csv');
  fs.mkdirSync(path.join(t, 'src'));
  fs.writeFileSync(
    manifest,
    `account,source,destination,source_account,destination_account\nalice,xiaomi,google-photos,alice,alice\nbob,folder:${path.join(t, 'src')},folder:${path.join(t, 'dst')},,\n`,
  );
});
afterAll(async () => {
  await q?.end();
  await db?.drop();
});

async function everyTableAsText(): Promise<string> {
  const tables = (
    await q.query(
      `SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`,
    )
  ).rows;
  let text = '';
  for (const { table_schema, table_name } of tables) {
    const rows = (await q.query(`SELECT row_to_json(t)::text AS j FROM "${table_schema}"."${table_name}" t`)).rows;
    text += rows.map((r) => r.j).join('\n');
  }
  return text;
}

describe('queue credentials', () => {
  it('refuses to load accounts that need credentials without a key', async () => {
    const r = await runCli(['batch', 'run', manifest, '--queue', db.url, '--no-work'], { env: { GALLERY_BRIDGE_HOME: home, GALLERY_BRIDGE_QUEUE_KEY: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/GALLERY_BRIDGE_QUEUE_KEY/);
    const c = await openQueue(db.url, { migrate: false });
    try {
      expect(Number((await c.query('SELECT count(*) AS n FROM gallery_bridge.accounts')).rows[0].n)).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('stores them sealed: no table holds a token or cookie, plain or base64, and the key opens them byte for byte', async () => {
    const r = await runCli(['batch', 'run', manifest, '--queue', db.url, '--no-work'], { env: { GALLERY_BRIDGE_HOME: home, GALLERY_BRIDGE_QUEUE_KEY: KEY } });
    expect(r.stderr).toMatch(/2 credential file\(s\) stored sealed/);
    expect(r.code).toBe(0);
    q = await openQueue(db.url, { migrate: false });
    const all = await everyTableAsText();
    expect(all).toMatch(/alice/); // the tables were read
    for (const secret of [REFRESH, COOKIE, 'SECRET-refresh', 'SECRET-xiaomi']) {
      expect(all).not.toContain(secret);
      expect(all).not.toContain(Buffer.from(secret).toString('base64').slice(0, 16));
      expect(all).not.toContain(Buffer.from(secret).toString('hex').slice(0, 16));
    }
    const out = path.join(t, 'worker-home');
    await materializeCredentials(q, queueKey({ GALLERY_BRIDGE_QUEUE_KEY: KEY }), out, [
      { provider: 'google-photos', account: 'alice' },
      { provider: 'xiaomi', account: 'alice' },
    ]);
    for (const f of ['credentials/google-photos/alice.json', 'credentials/xiaomi/alice.json']) {
      expect(fs.readFileSync(path.join(out, f))).toEqual(fs.readFileSync(path.join(home, f)));
      expect(fs.statSync(path.join(out, f)).mode & 0o777).toBe(0o600);
    }
  });

  it('stops a worker given another key with one line, before it takes any account', async () => {
    const r = await runCli(['worker', '--queue', db.url, '--state', path.join(t, 'w')], {
      env: { GALLERY_BRIDGE_QUEUE_KEY: 'another key, not the batch one' },
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/not the key this batch was loaded with/);
    const leases = (await q.query(`SELECT count(*) AS n FROM gallery_bridge.leases`)).rows[0].n;
    expect(Number(leases)).toBe(0);
  });
});
