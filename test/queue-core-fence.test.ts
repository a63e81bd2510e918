// The fence, from the outside: an account's migrate whose worker no longer holds the lease at
// its epoch commits nothing at the destination and deletes nothing at the source (the bytes on
// disk say so), and exits at once; the same run under the live lease does both.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueEnv } from '../src/queue/child.ts';
import type { Queue } from '../src/queue/db.ts';
import { openQueue } from '../src/queue/db.ts';
import { SCHEMA } from '../src/queue/schema.ts';
import { makeSource, runCli, tmpDir, treeHashes } from './helpers.ts';
import { freshDatabase } from './pg.ts';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let q: Queue;

beforeAll(async () => {
  db = await freshDatabase('gbqfence');
  q = await openQueue(db.url, { migrate: true });
  await q.query(`INSERT INTO ${SCHEMA}.accounts (slug, account, line, source, destination, source_account, destination_account) VALUES ('acc', 'acc', 2, 'folder:/s', 'folder:/d', 'default', 'default')`);
});
afterAll(async () => {
  await q?.end();
  await db?.drop();
});

/** The lease now belongs to `worker` at `epoch`, live for a minute. */
async function leaseTo(worker: string, epoch: number): Promise<void> {
  await q.query(
    `INSERT INTO ${SCHEMA}.leases (slug, epoch, worker, expires_at) VALUES ('acc', $1, $2, now() + interval '60 seconds')
     ON CONFLICT (slug) DO UPDATE SET epoch = excluded.epoch, worker = excluded.worker, expires_at = excluded.expires_at, released_at = NULL`,
    [epoch, worker],
  );
}

const asWorker = (worker: string, epoch: number) => queueEnv({ url: db.url, slug: 'acc', epoch, worker, marginSeconds: 5, googleBudget: 100 });
const visible = (dir: string) => [...treeHashes(dir).keys()].filter((f) => !f.split('/').some((p) => p.startsWith('.')));

describe('queue fence', () => {
  it('a migrate holding a stale epoch commits nothing and exits 75', async () => {
    const t = tmpDir('gbq-fence-');
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { A: ['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg', 'f6t.jpg'] });
    const before = treeHashes(src);
    await leaseTo('worker-new', 2);
    const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', path.join(t, 'state.db'), '--delete-source'], { env: asWorker('worker-old', 1) });
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/no longer this worker's/);
    expect(fs.existsSync(dst) ? visible(dst) : []).toEqual([]);
    expect(treeHashes(src)).toEqual(before);
  });

  it('deletes nothing at the source once the lease moved on, and everything under the live lease', async () => {
    const t = tmpDir('gbq-fence-');
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    const state = path.join(t, 'state.db');
    makeSource(src, { A: ['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg'] });
    const before = treeHashes(src);
    await leaseTo('w1', 1);
    const copy = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', state], { env: asWorker('w1', 1) });
    expect(copy.code).toBe(0);
    expect(treeHashes(dst)).toEqual(before);

    // w2 took the account over: w1's run with --delete-source must not delete one file.
    await leaseTo('w2', 2);
    const stale = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', state, '--delete-source'], { env: asWorker('w1', 1) });
    expect(stale.code).toBe(75);
    expect(treeHashes(src)).toEqual(before);

    const live = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', state, '--delete-source'], { env: asWorker('w2', 2) });
    expect(live.code).toBe(0);
    expect(treeHashes(src).size).toBe(0);
    expect(treeHashes(dst)).toEqual(before);
  });
});
