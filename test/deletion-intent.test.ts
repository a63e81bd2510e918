// While a run writes behind (state/db.ts), a deletion's intent must still be on disk before the
// source is asked to delete, and the deletions a source allows at once may overlap. Checked from
// outside the run: a second connection reads the state file at the moment each delete() starts.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { FolderDestination } from '../providers/folder/destination.ts';
import { FolderSource } from '../providers/folder/source.ts';
import { SyncGroups, realSync } from '../providers/folder/durable.ts';
import type { DeleteResult, DeletionProof, SourceItem } from '../providers/types.ts';
import { tmpDir } from './helpers.ts';
import { folderRunOptions, runOverState, writeRandomFiles } from './helpers/in-process-run.ts';

class WatchedSource extends FolderSource {
  inFlight = 0;
  peak = 0;
  intentsSeen: Array<number | null> = [];

  constructor(
    root: string,
    private readonly stateFile: string,
  ) {
    super(root);
  }

  override async delete(item: SourceItem, proof: DeletionProof): Promise<DeleteResult> {
    const outside = new Database(this.stateFile, { readonly: true });
    const row = outside.prepare('SELECT deleting_run FROM items WHERE source_id = ?').get(item.id) as { deleting_run: number | null };
    outside.close();
    this.intentsSeen.push(row.deleting_run);
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 5));
      return await super.delete(item, proof);
    } finally {
      this.inFlight--;
    }
  }
}

describe('deletion while the run writes behind', () => {
  it('has each intent on disk before the source deletes, overlaps deletions, and deletes only what arrived', async () => {
    const src = tmpDir();
    const dst = tmpDir();
    const sent = writeRandomFiles(src, 40, (i) => ({ rel: `album/IMG_${i}.jpg`, size: 3000 + i }));
    const stateFile = path.join(tmpDir(), 'state.db');
    const source = new WatchedSource(src, stateFile);
    // Groups of exactly ten files (40 in all): each group's ten verifications, and so their
    // deletions, become due together, whatever the machine's speed.
    const dest = new FolderDestination(dst, 'album', new SyncGroups(realSync, { maxFiles: 10, maxBytes: 1 << 30, maxWaitMs: 60_000 }));
    const result = await runOverState(stateFile, source, dest, folderRunOptions(src, dst, { deleteSource: true }));
    expect(result.exitCode).toBe(0);
    expect(source.intentsSeen).toHaveLength(40);
    // Every intent was readable by another process when its deletion began.
    expect(source.intentsSeen.every((r) => r === result.runId)).toBe(true);
    expect(source.peak).toBeGreaterThan(1);
    expect(source.peak).toBeLessThanOrEqual(source.limits.deleteConcurrency);
    expect(fs.readdirSync(path.join(src, 'album'))).toEqual([]);
    for (const [rel, bytes] of sent) expect(fs.readFileSync(path.join(dst, rel)).equals(bytes)).toBe(true);
    const log = new Database(stateFile, { readonly: true });
    expect((log.prepare('SELECT count(*) AS n FROM deletions').get() as { n: number }).n).toBe(40);
    log.close();
  });
});
