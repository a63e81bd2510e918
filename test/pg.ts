// A fresh PostgreSQL database per test file, on the server test/setup/postgres.ts started.
import crypto from 'node:crypto';
import pg from 'pg';

export function testServerUrl(): string {
  const url = process.env.GALLERY_BRIDGE_TEST_PG_URL;
  if (url === undefined) throw new Error('no test PostgreSQL: test/setup/postgres.ts is not in vitest.config.ts globalSetup');
  return url;
}

/** A URL for `db` on the test server, or with other credentials (to test a wrong password). */
export function urlFor(db: string, opts: { user?: string; password?: string } = {}): string {
  const u = new URL(testServerUrl());
  u.pathname = '/' + db;
  if (opts.user !== undefined) u.username = opts.user;
  if (opts.password !== undefined) u.password = opts.password;
  return u.toString();
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: testServerUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates an empty database and returns its URL; `drop()` removes it (closing leftover sessions). */
export async function freshDatabase(prefix = 'gb'): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${crypto.randomBytes(6).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  await adminQuery(`CREATE DATABASE "${name}"`);
  return { url: urlFor(name), name, drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}
