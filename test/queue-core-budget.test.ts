// The shared Google budget against a real PostgreSQL: many reservers at once never take more
// than the cap, unused requests go back, and a 429 ends the day for everyone.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StopRunError } from '../providers/types.ts';
import { SharedBudget, giveBack, reserve } from '../src/queue/budget.ts';
import type { Queue } from '../src/queue/db.ts';
import { openQueue } from '../src/queue/db.ts';
import { SCHEMA } from '../src/queue/schema.ts';
import { freshDatabase } from './pg.ts';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let q: Queue;

beforeAll(async () => {
  db = await freshDatabase('gbqbudget');
  q = await openQueue(db.url, { migrate: true });
});
afterAll(async () => {
  await q?.end();
  await db?.drop();
});

async function clients(n: number): Promise<pg.Client[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      return c;
    }),
  );
}

const used = async (project: string, day: string) =>
  (await q.query(`SELECT used, spent FROM ${SCHEMA}.google_budget WHERE project = $1 AND day = $2`, [project, day])).rows[0];

describe('shared Google budget', () => {
  it('grants exactly the cap, never more, to 12 connections reserving blocks at once', async () => {
    const cs = await clients(12);
    const cap = 997;
    try {
      const grants = await Promise.all(
        cs.map(async (c, i) => {
          let got = 0;
          for (;;) {
            const g = await reserve(c, 'p1', '2026-01-01', cap, 1 + ((i * 7) % 23));
            if (g === 0) return got;
            got += g;
          }
        }),
      );
      expect(grants.reduce((a, b) => a + b, 0)).toBe(cap);
      expect(Number((await used('p1', '2026-01-01')).used)).toBe(cap);
      await giveBack(q, 'p1', '2026-01-01', 10);
      expect(await reserve(q, 'p1', '2026-01-01', cap, 50)).toBe(10);
    } finally {
      for (const c of cs) await c.end();
    }
  });

  it('spends requests one at a time from blocks, stops with a quota stop when the day is gone, and gives back what it did not use', async () => {
    const cs = await clients(3);
    try {
      const budgets = cs.map((c) => new SharedBudget(c, 100, 7));
      let taken = 0;
      let refused = 0;
      await Promise.all(
        budgets.map(async (b) => {
          for (;;) {
            try {
              await b.take('p2');
              taken++;
            } catch (err) {
              expect(err).toBeInstanceOf(StopRunError);
              expect((err as StopRunError).kind).toBe('quota');
              refused++;
              return;
            }
          }
        }),
      );
      expect(taken).toBe(100);
      expect(refused).toBe(3);
      const day = (await q.query(`SELECT day FROM ${SCHEMA}.google_budget WHERE project = 'p2'`)).rows[0].day as string;
      expect(Number((await used('p2', day)).used)).toBe(100);

      // A fresh project: one worker takes 3 of a block of 7 and ends; 4 go back.
      const b = new SharedBudget(cs[0]!, 100, 7);
      for (let i = 0; i < 3; i++) await b.take('p3');
      expect(Number((await used('p3', day)).used)).toBe(7);
      await b.release();
      expect(Number((await used('p3', day)).used)).toBe(3);

      // Google's daily 429 seen by one worker ends the day for another.
      await new SharedBudget(cs[1]!, 100, 7).spent('p3');
      await expect(new SharedBudget(cs[2]!, 100, 7).take('p3')).rejects.toThrow(/spent/);
      expect((await used('p3', day)).spent).toBe(true);
    } finally {
      for (const c of cs) await c.end();
    }
  });
});
