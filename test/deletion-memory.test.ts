// Memory with --delete-source: items verified while the source deletes slowly (Xiaomi paces its
// deletions) must wait in the state store, not in memory. The source below holds its first
// deletion until every item of the run is verified, so every item is waiting for deletion at
// once; the heap measured then (after a full collection) must not hold anything per item.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { FolderDestination } from '../providers/folder/destination.ts';
import { FolderSource } from '../providers/folder/source.ts';
import type { DeleteResult, DeletionProof, SourceItem } from '../providers/types.ts';
import { tmpDir } from './helpers.ts';
import { heapAfterGc } from './helpers/heap.ts';
import { folderRunOptions, runOverState, writeRandomFiles } from './helpers/in-process-run.ts';

const ITEMS = 4000;

class GatedSource extends FolderSource {
  heldHeap: number | null = null;
  deleted = 0;

  constructor(
    root: string,
    private readonly stateFile: string,
  ) {
    super(root);
  }

  /** Items of the run not yet verified (read from the file, as another process would). */
  private unverified(): number {
    const outside = new Database(this.stateFile, { readonly: true });
    try {
      return (outside.prepare(`SELECT count(*) AS n FROM items WHERE state IN ('discovered','transferring','uploaded','failed')`).get() as { n: number }).n;
    } finally {
      outside.close();
    }
  }

  override async delete(item: SourceItem, proof: DeletionProof): Promise<DeleteResult> {
    if (this.heldHeap === null) {
      while (this.unverified() > 0) await new Promise((r) => setTimeout(r, 50));
      this.heldHeap = heapAfterGc();
    }
    this.deleted++;
    return super.delete(item, proof);
  }
}

/** One run from folder `src` to folder `dst` over the state file, the way migrate runs it. */
async function folderRun(stateFile: string, source: FolderSource, src: string, dst: string, deleteSource: boolean): Promise<number> {
  const options = folderRunOptions(src, dst, { deleteSource, concurrency: 8, signal: AbortSignal.timeout(170_000) });
  return (await runOverState(stateFile, source, new FolderDestination(dst, 'album'), options)).exitCode;
}

/** The source's answers to the deletions, as the state's deletion log recorded them. */
function deletionResponses(stateFile: string): unknown[] {
  const log = new Database(stateFile, { readonly: true });
  try {
    return log.prepare('SELECT response, count(*) AS n FROM deletions GROUP BY response').all();
  } finally {
    log.close();
  }
}

function sourceFolder(n: number, size: (i: number) => number): string {
  const src = tmpDir();
  writeRandomFiles(src, n, (i) => ({ rel: `album/IMG_${i}.jpg`, size: size(i) }));
  return src;
}

describe('deletion memory', () => {
  it(`holds nothing per item while ${ITEMS} verified items wait for a slow source to delete them`, async () => {
    const src = sourceFolder(ITEMS, () => 64);
    const dst = tmpDir();
    const stateFile = path.join(tmpDir(), 'state.db');
    const source = new GatedSource(src, stateFile);
    // The folder source keeps its walk of the folder (its own, not the deletion stage's): walked first.
    await source.listItems(null);
    const before = heapAfterGc();
    expect(await folderRun(stateFile, source, src, dst, true)).toBe(0);
    expect(source.deleted).toBe(ITEMS);
    expect(fs.readdirSync(path.join(src, 'album'))).toEqual([]);
    expect(fs.readdirSync(path.join(dst, 'album'))).toHaveLength(ITEMS);
    // Each deletion trusted the cheap checks: the bytes were read by this very run (its state says so).
    expect(deletionResponses(stateFile)).toEqual([{ response: 'unlinked (same file, size and time as read)', n: ITEMS }]);
    const grown = source.heldHeap! - before;
    // Measured: 7.7 kB an item (31 MB) when each waited in memory (a p-queue task and the
    // verification that awaited it); when they wait in the state store, 1.2 MB at 1,000 items and
    // 1.5 MB at 8,000 (the state's caches).
    console.log(`heap grown while ${ITEMS} items waited for deletion: ${(grown / 1e6).toFixed(2)} MB (${Math.round(grown / ITEMS)} B an item)`);
    expect(grown).toBeLessThan(ITEMS * 1000);
  }, 180_000);

  it('has the bytes of items read by an earlier run read again before they are deleted', async () => {
    const src = sourceFolder(20, (i) => 100 + i);
    const dst = tmpDir();
    const stateFile = path.join(tmpDir(), 'state.db');
    expect(await folderRun(stateFile, new FolderSource(src), src, dst, false)).toBe(0);
    expect(await folderRun(stateFile, new FolderSource(src), src, dst, true)).toBe(0);
    expect(fs.readdirSync(path.join(src, 'album'))).toEqual([]);
    expect(deletionResponses(stateFile)).toEqual([{ response: 'unlinked (same file, size and time, SHA-256 read again)', n: 20 }]);
  }, 60_000);
});
