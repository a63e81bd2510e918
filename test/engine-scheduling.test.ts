// The run's scheduling loop over the state store: items listed later still go when the front of
// the queue is a full page of items that cannot (out of attempts for this run, their retry due).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FolderDestination } from '../providers/folder/destination.ts';
import { FolderSource } from '../providers/folder/source.ts';
import type { CommitRequest, CommitResult, ListPage, OpenOptions, SourceItem } from '../providers/types.ts';
import { RetryableError } from '../providers/types.ts';
import { runMigration } from '../src/engine/run.ts';
import { openState } from '../state/db.ts';
import { tmpDir } from './helpers.ts';

/** Lists the unreadable files first, the good ones a moment later; the unreadable ones always fail, retryably. */
class TwoPageSource extends FolderSource {
  override async listItems(cursor: string | null): Promise<ListPage> {
    const all: SourceItem[] = [];
    for (let c: string | null = null; ; ) {
      const p = await super.listItems(c);
      all.push(...p.items);
      if (!(c = p.cursor)) break;
    }
    if (cursor === null) return { items: all.filter((i) => i.id.startsWith('bad/')), cursor: 'good' };
    await new Promise((r) => setTimeout(r, 300));
    return { items: all.filter((i) => i.id.startsWith('good/')), cursor: null };
  }

  override async open(item: SourceItem, opts?: OpenOptions): Promise<Readable> {
    if (item.id.startsWith('bad/')) throw new RetryableError('not readable (test)');
    return super.open(item, opts);
  }
}

describe('scheduling', () => {
  it('moves items listed behind a full page of items that are out of attempts', async () => {
    const src = tmpDir();
    const dst = tmpDir();
    for (const [dir, n] of [
      ['bad', 260],
      ['good', 20],
    ] as const) {
      fs.mkdirSync(path.join(src, dir), { recursive: true });
      for (let i = 0; i < n; i++) fs.writeFileSync(path.join(src, dir, `f${String(i).padStart(3, '0')}.jpg`), crypto.randomBytes(100 + i));
    }
    const db = openState(path.join(tmpDir(), 's.db'));
    const dest = new FolderDestination(dst, 'album');
    const result = await runMigration(db, new TwoPageSource(src), dest, {
      deleteSource: false,
      deleteEvidence: 'bytes',
      concurrency: 4,
      until: null,
      maxAttempts: 2,
      verifyWaitMs: 10_000,
      command: 'migrate',
      sourceSpec: `folder:${src}`,
      destinationSpec: `folder:${dst}`,
      signal: AbortSignal.timeout(60_000),
    });
    await dest.close();
    db.close();
    expect(result.stopped).toBeNull();
    expect(result.counts.verified.items).toBe(20);
    expect(result.counts.failed.items).toBe(260);
    for (let i = 0; i < 20; i++) {
      const name = `f${String(i).padStart(3, '0')}.jpg`;
      expect(fs.readFileSync(path.join(dst, 'good', name)).equals(fs.readFileSync(path.join(src, 'good', name)))).toBe(true);
    }
  }, 90_000);

  it('sends full commit batches while a slow batch is in flight, even with more items waiting than twice the concurrency', async () => {
    /** Takes 50 a commit and answers slowly, as Google's batchCreate under a write limit. */
    class SlowBatches extends FolderDestination {
      override readonly limits = { commitBatch: 50, verifyConcurrency: 64 };
      readonly sizes: number[] = [];
      override async commit(requests: CommitRequest[]): Promise<CommitResult[]> {
        this.sizes.push(requests.length);
        await new Promise((r) => setTimeout(r, 300));
        return super.commit(requests);
      }
    }
    const src = tmpDir();
    const dst = tmpDir();
    fs.mkdirSync(path.join(src, 'a'), { recursive: true });
    for (let i = 0; i < 400; i++) fs.writeFileSync(path.join(src, 'a', `f${String(i).padStart(3, '0')}.jpg`), crypto.randomBytes(50 + i));
    const db = openState(path.join(tmpDir(), 's.db'));
    const dest = new SlowBatches(dst, 'album');
    const result = await runMigration(db, new FolderSource(src), dest, {
      deleteSource: false,
      deleteEvidence: 'bytes',
      concurrency: 64,
      until: null,
      maxAttempts: 2,
      verifyWaitMs: 10_000,
      command: 'migrate',
      sourceSpec: `folder:${src}`,
      destinationSpec: `folder:${dst}`,
      signal: AbortSignal.timeout(60_000),
    });
    await dest.close();
    db.close();
    expect(result.counts.verified.items).toBe(400);
    expect(fs.readdirSync(path.join(dst, 'a')).length).toBe(400);
    // 400 items: eight full batches, none closed early.
    expect(dest.sizes).toEqual(Array(8).fill(50));
  }, 90_000);
});
