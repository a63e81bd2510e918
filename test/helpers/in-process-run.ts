// A migration in the test process, the way `migrate` runs one from a folder: the engine's own
// runMigration over a state file, with migrate's options unless a test says otherwise. The tests
// then read what the run left on disk and in the state file, as another process would.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Destination, Source } from '../../providers/types.ts';
import { type RunOptions, type RunResult, runMigration } from '../../src/engine/run.ts';
import { openState } from '../../state/db.ts';

/** runMigration's options for a run from folder `src` into folder `dst`; `over` says what differs. */
export function folderRunOptions(src: string, dst: string, over: Partial<RunOptions> = {}): RunOptions {
  return {
    deleteSource: false,
    deleteEvidence: 'bytes',
    concurrency: 4,
    until: null,
    maxAttempts: 3,
    verifyWaitMs: 10_000,
    command: 'migrate',
    sourceSpec: `folder:${src}`,
    destinationSpec: `folder:${dst}`,
    signal: new AbortController().signal,
    ...over,
  };
}

/** One run over the state file; the destination and the state are closed however it ends. */
export async function runOverState(stateFile: string, source: Source, dest: Destination, opts: RunOptions): Promise<RunResult> {
  const db = openState(stateFile);
  try {
    return await runMigration(db, source, dest, opts);
  } finally {
    await dest.close?.();
    db.close();
  }
}

/**
 * Writes `n` files of random bytes below `root`, file i where and as long as `file(i)` says.
 * Returns the bytes written by relative path, to compare with what arrives.
 */
export function writeRandomFiles(root: string, n: number, file: (i: number) => { rel: string; size: number }): Map<string, Buffer> {
  const written = new Map<string, Buffer>();
  for (let i = 0; i < n; i++) {
    const { rel, size } = file(i);
    const bytes = crypto.randomBytes(size);
    fs.mkdirSync(path.join(root, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), bytes);
    written.set(rel, bytes);
  }
  return written;
}
