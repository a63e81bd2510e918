// Leases against a real PostgreSQL: one holder per account, renewals that fail once the lease
// expired, takeovers recorded, a stale epoch writes nothing, limits across workers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from '../src/queue/db.ts';
import { openQueue } from '../src/queue/db.ts';
import { acquireLease, leaseHeld, reapExpired, renewLease, underLease } from '../src/queue/lease.ts';
import { SCHEMA } from '../src/queue/schema.ts';
import { freshDatabase } from './pg.ts';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let q: Queue;
const noLimits = { accountsAtOnce: 100, perProvider: {} };

beforeAll(async () => {
  db = await freshDatabase('gbqlease');
  q = await openQueue(db.url, { migrate: true });
  for (const [slug, dest] of [
    ['a', 'folder:/x/a'],
    ['b', 'onedrive:u:/b'],
    ['c', 'onedrive:v:/c'],
    ['d', 'folder:/x/d'],
  ] as const) {
    await q.query(
      `INSERT INTO ${SCHEMA}.accounts (slug, account, line, source, destination, source_account, destination_account) VALUES ($1, $1, 1, 'folder:/s', $2, 'default', 'default')`,
      [slug, dest],
    );
  }
});
afterAll(async () => {
  await q?.end();
  await db?.drop();
});

describe('queue leases', () => {
  it('gives an account to one worker at a time, and to another only after the lease expired, recording the takeover', async () => {
    const first = await acquireLease(q, 'a', 'w1', null, 3, noLimits);
    expect(first.kind).toBe('ok');
    if (first.kind !== 'ok') return;
    expect(first.lease.epoch).toBe(1);
    expect(first.takeover).toBeNull();
    expect(await acquireLease(q, 'a', 'w2', null, 3, noLimits)).toEqual({ kind: 'held', by: 'w1' });
    expect(await renewLease(q, first.lease)).toBe(true);

    // Expired (time passing, as the database's clock measures it): the holder may not renew it back, and the fence check fails.
    await q.query(`UPDATE ${SCHEMA}.leases SET expires_at = now() - interval '1 millisecond' WHERE slug = 'a'`);
    expect(await renewLease(q, first.lease)).toBe(false);
    expect(await leaseHeld(q, first.lease, 0)).toBe(false);
    const reaped = await reapExpired(q);
    expect(reaped.map((r) => [r.slug, r.worker, r.epoch])).toEqual([['a', 'w1', 1]]);
    expect(await reapExpired(q)).toEqual([]); // claimed once

    const second = await acquireLease(q, 'a', 'w2', null, 30, noLimits);
    expect(second.kind).toBe('ok');
    if (second.kind !== 'ok') return;
    expect(second.lease.epoch).toBe(2);
    expect(second.takeover?.oldWorker).toBe('w1');
    const rows = (await q.query(`SELECT old_worker, old_epoch, new_worker, new_epoch, reason, at FROM ${SCHEMA}.takeovers WHERE slug = 'a'`)).rows;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ old_worker: 'w1', old_epoch: '1', new_worker: 'w2', new_epoch: '2' });
    expect(rows[0].reason).toMatch(/expired/);

    // The old holder's fenced writes change nothing; the new holder's go through.
    expect(await underLease(q, first.lease, async (c) => void (await c.query(`UPDATE ${SCHEMA}.accounts SET reason = 'stale' WHERE slug = 'a'`)))).toBe(false);
    expect(await underLease(q, second.lease, async (c) => void (await c.query(`UPDATE ${SCHEMA}.accounts SET reason = 'fresh' WHERE slug = 'a'`)))).toBe(true);
    expect((await q.query(`SELECT reason FROM ${SCHEMA}.accounts WHERE slug = 'a'`)).rows[0].reason).toBe('fresh');
    expect(await leaseHeld(q, second.lease, 5)).toBe(true);
    // A margin longer than what is left refuses the commit: it could outlive the lease.
    expect(await leaseHeld(q, second.lease, 60)).toBe(false);
  });

  it('counts live leases of every worker against the per-provider and global limits', async () => {
    const limits = { accountsAtOnce: 3, perProvider: { onedrive: 1 } };
    const b = await acquireLease(q, 'b', 'w1', null, 30, limits);
    expect(b.kind).toBe('ok');
    const c = await acquireLease(q, 'c', 'w2', null, 30, limits);
    expect(c).toMatchObject({ kind: 'limit' });
    if (c.kind === 'limit') expect(c.why).toMatch(/onedrive/);
    // 'a' is held by w2 from the test above, 'b' by w1: one more fits, then the global limit.
    expect((await acquireLease(q, 'd', 'w3', null, 30, limits)).kind).toBe('ok');
    await q.query(`UPDATE ${SCHEMA}.leases SET released_at = now() WHERE slug = 'b'`);
    // Live now: 'a' and 'd'. With room for two accounts in the whole batch, 'c' waits.
    const c2 = await acquireLease(q, 'c', 'w2', null, 30, { ...limits, accountsAtOnce: 2 });
    expect(c2).toMatchObject({ kind: 'limit' });
    if (c2.kind === 'limit') expect(c2.why).toMatch(/accounts-at-once 2/);
    expect((await acquireLease(q, 'c', 'w2', null, 30, limits)).kind).toBe('ok');
  });

  it('never lets two concurrent acquirers both hold an account', async () => {
    await q.query(
      `INSERT INTO ${SCHEMA}.accounts (slug, account, line, source, destination, source_account, destination_account) VALUES ('race', 'race', 9, 'folder:/s', 'folder:/d', 'default', 'default')`,
    );
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => acquireLease(q, 'race', `w${i}`, null, 30, noLimits)));
    expect(results.filter((r) => r.kind === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'held')).toHaveLength(7);
  });
});
