// The run's scheduling loop over the state store: items listed later still go when the front of
// the queue is a full page of items that cannot (out of attempts for this run, their retry due).

import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FolderDestination } from '../providers/folder/destination.ts';
import { FolderSource } from '../providers/folder/source.ts';
import type { CommitRequest, CommitResult, ListPage, OpenOptions, SourceItem } from '../providers/types.ts';
import { RetryableError } from '../providers/types.ts';
import { tmpDir } from './helpers.ts';
import { folderRunOptions, runOverState, writeRandomFiles } from './helpers/in-process-run.ts';

/** f000.jpg, f001.jpg, ...: names that list in the order they were written. */
const fileName = (i: number) => `f${String(i).padStart(3, '0')}.jpg`;

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
    writeRandomFiles(src, 260, (i) => ({ rel: `bad/${fileName(i)}`, size: 100 + i }));
    writeRandomFiles(src, 20, (i) => ({ rel: `good/${fileName(i)}`, size: 100 + i }));
    const dest = new FolderDestination(dst, 'album');
    const result = await runOverState(
      path.join(tmpDir(), 's.db'),
      new TwoPageSource(src),
      dest,
      folderRunOptions(src, dst, { maxAttempts: 2, signal: AbortSignal.timeout(60_000) }),
    );
    expect(result.stopped).toBeNull();
    expect(result.counts.verified.items).toBe(20);
    expect(result.counts.failed.items).toBe(260);
    for (let i = 0; i < 20; i++) {
      const name = fileName(i);
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
    writeRandomFiles(src, 400, (i) => ({ rel: `a/${fileName(i)}`, size: 50 + i }));
    const dest = new SlowBatches(dst, 'album');
    const options = folderRunOptions(src, dst, { concurrency: 64, maxAttempts: 2, signal: AbortSignal.timeout(60_000) });
    const result = await runOverState(path.join(tmpDir(), 's.db'), new FolderSource(src), dest, options);
    expect(result.counts.verified.items).toBe(400);
    expect(fs.readdirSync(path.join(dst, 'a')).length).toBe(400);
    // 400 items: eight full batches, none closed early.
    expect(dest.sizes).toEqual(Array(8).fill(50));
  }, 90_000);

  it('reads a local source ahead of a remote destination, and never has more than --concurrency items at the destination', async () => {
    const flow = { reading: 0, maxReading: 0, atDestination: 0, maxAtDestination: 0 };
    /** Counts the items opened and not yet staged. */
    class CountingSource extends FolderSource {
      override async open(item: SourceItem, opts?: OpenOptions): Promise<Readable> {
        if (opts?.offset === undefined) flow.maxReading = Math.max(flow.maxReading, ++flow.reading);
        return super.open(item, opts);
      }
    }
    /** A destination across a slow network: no local path, 20 ms a staged upload. */
    class SlowRemote extends FolderDestination {
      override readonly localPath = undefined as unknown as string;
      override async prepareContainer(...args: Parameters<FolderDestination['prepareContainer']>) {
        flow.maxAtDestination = Math.max(flow.maxAtDestination, ++flow.atDestination);
        return super.prepareContainer(...args);
      }
      override async upload(...args: Parameters<FolderDestination['upload']>) {
        try {
          await new Promise((r) => setTimeout(r, 20));
          return await super.upload(...args);
        } finally {
          flow.atDestination--;
          flow.reading--;
        }
      }
    }
    const src = tmpDir();
    const dst = tmpDir();
    writeRandomFiles(src, 80, (i) => ({ rel: `a/${fileName(i)}`, size: 1000 + i }));
    const options = folderRunOptions(src, dst, { concurrency: 4, maxAttempts: 2, signal: AbortSignal.timeout(60_000) });
    const result = await runOverState(path.join(tmpDir(), 's.db'), new CountingSource(src), new SlowRemote(dst, 'album'), options);
    expect(result.counts.verified.items).toBe(80);
    for (let i = 0; i < 80; i++) {
      const name = fileName(i);
      expect(fs.readFileSync(path.join(dst, 'a', name)).equals(fs.readFileSync(path.join(src, 'a', name)))).toBe(true);
    }
    expect(flow.maxAtDestination).toBe(4);
    // Items read and probed while the four slots were busy: two ahead (readAheadFor, at least 2).
    expect(flow.maxReading).toBe(6);
  }, 90_000);

  it('a local file stopped while a chunk is read ahead leaves no unhandled rejection behind', async () => {
    const src = tmpDir();
    writeRandomFiles(src, 1, () => ({ rel: 'a/big.jpg', size: 3 * 1024 * 1024 }));
    const source = new FolderSource(src);
    const [item] = (await source.listItems(null)).items;
    const stop = new AbortController();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const stream = await source.open(item!, { signal: stop.signal });
      const it = stream[Symbol.asyncIterator]();
      expect((await it.next()).value).toHaveLength(1024 * 1024);
      // The run stops while the second chunk is being read: the read after it is refused at once,
      // and the consumer (an item waiting for a destination slot) never asks for it.
      const second = it.next();
      stop.abort(new Error('the run is stopping'));
      expect((await second).value).toHaveLength(1024 * 1024);
      stream.destroy();
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});
