// The queue database's sessions, against a real PostgreSQL: a worker frozen inside a transaction
// does not hold the other workers behind its locks for longer than the idle-in-transaction limit,
// and a session the server ends under a checked-out client does not crash the process.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue } from '../src/queue/db.ts';
import type { Queue } from '../src/queue/db.ts';
import { SCHEMA } from '../src/queue/schema.ts';
import { freshDatabase } from './pg.ts';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let q: Queue;

beforeAll(async () => {
  db = await freshDatabase('sessions');
  q = await openQueue(db.url, { migrate: true });
});
afterAll(async () => {
  await q?.end();
  await db?.drop();
});

describe('queue database sessions', () => {
  it('frees the locks of a session left idle inside a transaction within seconds', async () => {
    await q.query(`INSERT INTO ${SCHEMA}.meta (key, value) VALUES ('probe', '1')`);
    // A "frozen worker": it locks a row and then does nothing, as a SIGSTOPped process would.
    const frozen = await q.connect();
    await frozen.query('BEGIN');
    await frozen.query(`SELECT 1 FROM ${SCHEMA}.meta WHERE key = 'probe' FOR UPDATE`);
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      const started = Date.now();
      await other.query(`UPDATE ${SCHEMA}.meta SET value = '2' WHERE key = 'probe'`);
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThan(3000);
      expect(waited).toBeLessThan(30_000);
      // The frozen session is gone: its next statement fails, and the process is still here.
      await expect(frozen.query('SELECT 1')).rejects.toThrow();
    } finally {
      frozen.release(true);
      await other.end();
    }
    expect((await q.query(`SELECT value FROM ${SCHEMA}.meta WHERE key = 'probe'`)).rows[0].value).toBe('2');
  });

  it('survives the server ending a checked-out session between statements', async () => {
    const c = await q.connect();
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.end();
    // The termination arrives while no query runs on the client: unheard, it would crash vitest's worker.
    await new Promise((r) => setTimeout(r, 500));
    await expect(c.query('SELECT 1')).rejects.toThrow();
    c.release(true);
    expect((await q.query('SELECT 41 + 1 AS n')).rows[0].n).toBe(42);
  });
});
