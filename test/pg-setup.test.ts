// The test PostgreSQL that test/setup/postgres.ts starts: real, password-protected, one database
// per test file.
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { findServerBin } from './setup/postgres.js';
import { freshDatabase, urlFor } from './pg.js';

const dbs: Array<{ drop: () => Promise<void> }> = [];
afterAll(async () => {
  for (const d of dbs) await d.drop();
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('test PostgreSQL', () => {
  it('is a real server on loopback that stores what it is given', async () => {
    const db = await freshDatabase();
    dbs.push(db);
    expect(new URL(db.url).hostname).toBe('127.0.0.1');
    await query(db.url, 'CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)');
    const rows = await query<{ s: number; v: string }>(db.url, 'SELECT sum(v)::int AS s, version() AS v FROM t');
    expect(rows[0]?.s).toBe(42);
    expect(rows[0]?.v).toMatch(/^PostgreSQL \d+/);
  });

  it('gives each caller its own database', async () => {
    const a = await freshDatabase();
    const b = await freshDatabase();
    dbs.push(a, b);
    expect(a.name).not.toBe(b.name);
    await query(a.url, 'CREATE TABLE only_in_a (v int)');
    const inB = await query(b.url, "SELECT to_regclass('only_in_a') AS r");
    expect(inB[0]?.r).toBeNull();
  });

  it('refuses a wrong password', async () => {
    const db = await freshDatabase();
    dbs.push(db);
    await expect(query(urlFor(db.name, { password: 'not-the-password' }), 'SELECT 1')).rejects.toThrow(/password authentication failed/);
  });

  it('finds the newest server binaries, and nothing in a folder without them', () => {
    expect(findServerBin()).toMatch(/^\/usr\/lib\/postgresql\/\d+\/bin$/);
    expect(findServerBin('/nonexistent')).toBeUndefined();
  });
});
