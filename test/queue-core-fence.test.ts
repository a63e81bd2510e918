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
import { childHooks, queueEnv } from '../src/queue/child.ts';
import type { Queue } from '../src/queue/db.ts';
import { openQueue } from '../src/queue/db.ts';
import { SCHEMA } from '../src/queue/schema.ts';
import { makeSource, runCli, tmpDir, treeHashes } from './helpers.ts';
import { folderRunOptions, runOverState } from './helpers/in-process-run.ts';
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
interface FolderAccount {
  src: string;
  dst: string;
  state: string;
}

/** A folder account in a temp folder of its own: album A of `files` at its source, its destination and state beside it. */
function folderAccount(files: string[]): FolderAccount {
  const t = tmpDir('gbq-fence-');
  const account = { src: path.join(t, 'src'), dst: path.join(t, 'dst'), state: path.join(t, 'state.db') };
  makeSource(account.src, { A: files });
  return account;
}

/** `migrate` of the account, from its source to its destination over its state. */
function migrate(a: FolderAccount, ...more: string[]): string[] {
  return ['migrate', '--from', `folder:${a.src}`, '--to', `folder:${a.dst}`, '--state', a.state, ...more];
}

const visible = (dir: string) => [...treeHashes(dir).keys()].filter((f) => !f.split('/').some((p) => p.startsWith('.')));

describe('queue fence', () => {
  it('a migrate holding a stale epoch commits nothing and exits 75', async () => {
    const account = folderAccount(['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg', 'f6t.jpg']);
    const { src, dst } = account;
    const before = treeHashes(src);
    await leaseTo('worker-new', 2);
    const r = await runCli(migrate(account, '--delete-source'), { env: asWorker('worker-old', 1) });
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/no longer this worker's/);
    expect(fs.existsSync(dst) ? visible(dst) : []).toEqual([]);
    expect(treeHashes(src)).toEqual(before);
    expect(await rowsBy('worker-old')).toEqual([]);
  });

  it('deletes nothing at the source once the lease moved on, and everything under the live lease', async () => {
    const account = folderAccount(['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg']);
    const { src, dst } = account;
    const before = treeHashes(src);
    await leaseTo('w1', 1);
    const copy = await runCli(migrate(account), { env: asWorker('w1', 1) });
    expect(copy.code).toBe(0);
    expect(treeHashes(dst)).toEqual(before);

    // w2 took the account over: w1's run with --delete-source must not delete one file.
    await leaseTo('w2', 2);
    const stale = await runCli(migrate(account, '--delete-source'), { env: asWorker('w1', 1) });
    expect(stale.code).toBe(75);
    expect(treeHashes(src)).toEqual(before);
    expect(await rowsBy('w1')).toEqual([]);

    const live = await runCli(migrate(account, '--delete-source'), { env: asWorker('w2', 2) });
    expect(live.code).toBe(0);
    expect(treeHashes(src).size).toBe(0);
    expect(treeHashes(dst)).toEqual(before);
    // Every file gone from the source has its proof in PostgreSQL, confirmed done.
    const rows = await rowsBy('w2');
    expect(rows.map((r) => r.sha256).sort()).toEqual([...before.values()].sort());
    expect(rows.every((r) => r.epoch === '2' && r.done_at !== null)).toBe(true);
  });

  it('has the proof in PostgreSQL even when the run is killed right after a deletion, before its local record', async () => {
    const account = folderAccount(['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg']);
    const { src } = account;
    const before = treeHashes(src);
    await leaseTo('w3', 3);
    const killed = await runCli(migrate(account, '--delete-source'), { env: { ...asWorker('w3', 3), GALLERY_BRIDGE_FAULT_KILL_AFTER_DELETE: '1' } });
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
    const { src, dst, state } = folderAccount(['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg', 'f6t.jpg']);
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
    try {
      const options = folderRunOptions(src, dst, { deleteSource: true, concurrency: 2, fence: hooks!.fence, beforeDelete: hooks!.beforeDelete });
      const result = await runOverState(state, new Watched(src), new FolderDestination(dst, 'album'), options);
      expect(result.exitCode).toBe(0);
    } finally {
      await hooks!.close();
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
