// The fence, from the outside: an account's migrate whose worker no longer holds the lease at
// its epoch commits nothing at the destination, deletes nothing at the source (the bytes on
// disk say so) and records no deletion in PostgreSQL, and exits at once; the same run under the
// live lease does both, and each deletion's intent and proof is in PostgreSQL before the file goes.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderDestination } from '../providers/folder/destination.ts';
import { FolderSource } from '../providers/folder/source.ts';
import type { DeleteResult, DeletionProof, SourceItem } from '../providers/types.ts';
import { runMigration } from '../src/engine/run.ts';
import { childHooks, queueEnv } from '../src/queue/child.ts';
import { openState } from '../state/db.ts';
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
  await q.query(
    `INSERT INTO ${SCHEMA}.accounts (slug, account, line, source, destination, source_account, destination_account) VALUES ('acc', 'acc', 2, 'folder:/s', 'folder:/d', 'default', 'default')`,
  );
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
const rowsBy = async (worker: string) =>
  (await q.query(`SELECT source_id, sha256, epoch, done_at FROM ${SCHEMA}.deletions WHERE slug = 'acc' AND worker = $1 ORDER BY id`, [worker])).rows as Array<{
    source_id: string;
    sha256: string;
    epoch: string;
    done_at: Date | null;
  }>;
const visible = (dir: string) => [...treeHashes(dir).keys()].filter((f) => !f.split('/').some((p) => p.startsWith('.')));

describe('queue fence', () => {
  it('a migrate holding a stale epoch commits nothing and exits 75', async () => {
    const t = tmpDir('gbq-fence-');
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { A: ['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg', 'f6t.jpg'] });
    const before = treeHashes(src);
    await leaseTo('worker-new', 2);
    const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', path.join(t, 'state.db'), '--delete-source'], {
      env: asWorker('worker-old', 1),
    });
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/no longer this worker's/);
    expect(fs.existsSync(dst) ? visible(dst) : []).toEqual([]);
    expect(treeHashes(src)).toEqual(before);
    expect(await rowsBy('worker-old')).toEqual([]);
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
    const stale = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', state, '--delete-source'], {
      env: asWorker('w1', 1),
    });
    expect(stale.code).toBe(75);
    expect(treeHashes(src)).toEqual(before);
    expect(await rowsBy('w1')).toEqual([]);

    const live = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', state, '--delete-source'], { env: asWorker('w2', 2) });
    expect(live.code).toBe(0);
    expect(treeHashes(src).size).toBe(0);
    expect(treeHashes(dst)).toEqual(before);
    // Every file gone from the source has its proof in PostgreSQL, confirmed done.
    const rows = await rowsBy('w2');
    expect(rows.map((r) => r.sha256).sort()).toEqual([...before.values()].sort());
    expect(rows.every((r) => r.epoch === '2' && r.done_at !== null)).toBe(true);
  });

  it('has the proof in PostgreSQL even when the run is killed right after a deletion, before its local record', async () => {
    const t = tmpDir('gbq-fence-');
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    const state = path.join(t, 'state.db');
    makeSource(src, { A: ['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg'] });
    const before = treeHashes(src);
    await leaseTo('w3', 3);
    const killed = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', state, '--delete-source'], {
      env: { ...asWorker('w3', 3), GALLERY_BRIDGE_FAULT_KILL_AFTER_DELETE: '1' },
    });
    expect(killed.signal).toBe('SIGKILL');
    // Deletions overlap: the kill after the first may find others begun or done.
    const gone = [...before].filter(([f]) => !treeHashes(src).has(f)).map(([, h]) => h);
    expect(gone.length).toBeGreaterThan(0);
    // The machine's disk is lost with the worker: the queue database alone holds the proof of
    // every file gone, and at least the deletion the kill followed is not marked done.
    const rows = await rowsBy('w3');
    const proven = new Set(rows.map((r) => r.sha256));
    expect(gone.filter((h) => !proven.has(h))).toEqual([]);
    expect(rows.some((r) => r.done_at === null)).toBe(true);
  });

  it('writes each deletion row before the source deletes the file, read from another connection', async () => {
    const t = tmpDir('gbq-fence-');
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { A: ['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg', 'f6t.jpg'] });
    const before = treeHashes(src);
    await leaseTo('w4', 4);
    // What PostgreSQL and the disk held as each delete() began.
    const seen: Array<{ rows: number; stillOnDisk: boolean }> = [];
    class Watched extends FolderSource {
      override async delete(item: SourceItem, proof: DeletionProof): Promise<DeleteResult> {
        const r = (await q.query(`SELECT sha256 FROM ${SCHEMA}.deletions WHERE slug = 'acc' AND worker = 'w4' AND source_id = $1`, [item.id])).rows as Array<{
          sha256: string;
        }>;
        const onDisk = new Set(treeHashes(src).values());
        seen.push({ rows: r.length, stillOnDisk: r.length > 0 && r.every((x) => onDisk.has(x.sha256)) });
        return super.delete(item, proof);
      }
    }
    const hooks = await childHooks(asWorker('w4', 4), (m) => {
      throw new Error(m);
    });
    const db = openState(path.join(t, 'state.db'));
    try {
      const result = await runMigration(db, new Watched(src), new FolderDestination(dst, 'album'), {
        deleteSource: true,
        deleteEvidence: 'bytes',
        concurrency: 2,
        until: null,
        maxAttempts: 3,
        verifyWaitMs: 10_000,
        command: 'migrate',
        sourceSpec: `folder:${src}`,
        destinationSpec: `folder:${dst}`,
        signal: new AbortController().signal,
        fence: hooks!.fence,
        beforeDelete: hooks!.beforeDelete,
      });
      expect(result.exitCode).toBe(0);
    } finally {
      await hooks!.close();
      db.close();
    }
    // One row per attempt: an attempt that failed before delete() leaves its intent, and the retry adds one.
    expect(seen).toHaveLength(before.size);
    expect(seen.filter((x) => x.rows < 1 || !x.stillOnDisk)).toEqual([]);
    expect(treeHashes(src).size).toBe(0);
    const rows = await rowsBy('w4');
    expect([...new Set(rows.map((r) => r.sha256))].sort()).toEqual([...before.values()].sort());
    expect(new Set(rows.filter((r) => r.done_at !== null).map((r) => r.sha256)).size).toBe(before.size);
  });
});
