// The batch's order in queue mode: pg-boss hands out accounts by job priority, and the load gives
// them today's order (priority first; with --deadline the shortest first, uncounted ones last),
// one queued job per account however often the manifest is loaded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type PgBoss from 'pg-boss';
import { parseManifest } from '../src/batch/manifest.ts';
import { queueFor, startBoss } from '../src/queue/boss.ts';
import type { Queue } from '../src/queue/db.ts';
import { openQueue } from '../src/queue/db.ts';
import { loadBatch, recordEstimates } from '../src/queue/load.ts';
import type { QueueSettings } from '../src/queue/load.ts';
import { BOSS_SCHEMA } from '../src/queue/schema.ts';
import { tmpDir } from './helpers.ts';
import { freshDatabase } from './pg.ts';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let q: Queue;
let boss: PgBoss;

beforeAll(async () => {
  db = await freshDatabase('gbqorder');
  q = await openQueue(db.url, { migrate: true });
  boss = await startBoss(db.url);
});
afterAll(async () => {
  await boss?.stop({ graceful: false, wait: true });
  await q?.end();
  await db?.drop();
});

const settings = (deadline: string | null): QueueSettings => ({
  deadline,
  limits: { accountsAtOnce: 4, perProvider: {} },
  deleteSource: false,
  googleDailyBudget: 10000,
  leaseSeconds: 60,
  passThrough: [],
  failStreak: 10,
  assumedRate: 5e6,
});

describe('queue order', () => {
  it('queues each account once, in the deadline order, and pg-boss hands them out in that order', async () => {
    const t = tmpDir('gbq-order-');
    const manifest = path.join(t, 'm.csv');
    fs.writeFileSync(
      manifest,
      [
        'account,source,destination,priority',
        'big,folder:/s/big,folder:/d/big,',
        'small,folder:/s/small,folder:/d/small,',
        'unknown,folder:/s/u,folder:/d/u,',
        'vip,folder:/s/vip,folder:/d/vip,5',
        'mid,folder:/s/mid,folder:/d/mid,',
      ].join('\n') + '\n',
    );
    const { rows } = parseManifest(fs.readFileSync(manifest, 'utf8'));
    await recordEstimates(q, [
      { account: 'big', items: 5000, bytes: 50e9 },
      { account: 'small', items: 10, bytes: 1e6 },
      { account: 'mid', items: 500, bytes: 2e9 },
      { account: 'vip', items: 9000, bytes: 90e9 },
    ]);
    const first = await loadBatch(q, boss, { manifestFile: manifest, rows, settings: settings('2027-06-01T00:00:00Z'), key: null });
    expect(first).toMatchObject({ problems: [], queued: 5, accounts: 5 });
    const again = await loadBatch(q, boss, { manifestFile: manifest, rows, settings: settings('2027-06-01T00:00:00Z'), key: null });
    expect(again.queued).toBe(0);
    expect(Number((await q.query(`SELECT count(*) AS n FROM ${BOSS_SCHEMA}.job WHERE name = $1`, [queueFor('folder', 'folder')])).rows[0].n)).toBe(5);

    const order: string[] = [];
    for (;;) {
      const [job] = await boss.fetch<{ slug: string }>(queueFor('folder', 'folder'), { batchSize: 1 });
      if (!job) break;
      order.push(job.data.slug);
    }
    expect(order).toEqual(['vip', 'small', 'mid', 'big', 'unknown']);
  });
});
