// An item refused because its dated copy differed from the source by more than the date: the
// report says what happened and what to do, a run that still writes dates leaves it refused, and
// a run that sends files unchanged (--keep-bytes, or OneDrive without --embed-dates) moves it.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { FolderDestination } from '../providers/folder/destination.ts';
import { FolderSource } from '../providers/folder/source.ts';
import type { Destination, Staged, UploadInput } from '../providers/types.ts';
import { RejectedError } from '../providers/types.ts';
import { writeReport } from '../src/report/report.ts';
import { openState } from '../state/db.ts';
import { FIXTURES, tmpDir } from './helpers.ts';
import { folderRunOptions, runOverState } from './helpers/in-process-run.ts';

/** Writes dates into copies (as OneDrive with --embed-dates), and the copy of every file here differed. */
class DatingDestination extends FolderDestination {
  readonly dating = 'metadata-and-file' as const;
  override async upload(_input: UploadInput): Promise<Staged> {
    throw new RejectedError(
      'the dated copy was not uploaded: it differs from the source by more than the date (pixels differ); run again with --keep-bytes (Google Photos) or without --embed-dates (OneDrive) to move the file unchanged',
      'dated-copy-differs',
    );
  }
}

function run(stateFile: string, src: string, dest: Destination) {
  const options = folderRunOptions(src, dest.localPath!, { concurrency: 2, maxAttempts: 2, signal: AbortSignal.timeout(60_000) });
  return runOverState(stateFile, new FolderSource(src), dest, options);
}

function states(stateFile: string): string[] {
  const db = new Database(stateFile, { readonly: true });
  const r = (db.prepare('SELECT state, reason_kind FROM items ORDER BY id').all() as Array<{ state: string; reason_kind: string | null }>).map(
    (x) => `${x.state}${x.reason_kind ? `:${x.reason_kind}` : ''}`,
  );
  db.close();
  return r;
}

describe('an item whose dated copy differed', () => {
  it('is explained in the report, stays refused while dates are written, and moves unchanged once files are sent as they are', async () => {
    const src = tmpDir();
    const dst = tmpDir();
    fs.mkdirSync(path.join(src, 'album'));
    for (const f of ['noexif.jpg', 'cookiezen.jpg']) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, 'album', f));
    const stateFile = path.join(tmpDir(), 'state.db');

    const first = await run(stateFile, src, new DatingDestination(dst, 'album'));
    expect(first.exitCode).toBe(1);
    expect(states(stateFile)).toEqual(['rejected:dated-copy-differs', 'rejected:dated-copy-differs']);

    const csv = path.join(tmpDir(), 'report.csv');
    await writeReport(openState(stateFile), csv);
    const text = fs.readFileSync(csv, 'utf8');
    expect(text).toContain('Nothing was uploaded and the file at the source is untouched');
    expect(text).toContain('run again with --keep-bytes (Google Photos');
    // Not the advice for a damaged transfer (a rerun alone changes nothing here).
    expect(text).not.toContain('the source copy may be damaged');

    await run(stateFile, src, new DatingDestination(dst, 'album'));
    expect(states(stateFile)).toEqual(['rejected:dated-copy-differs', 'rejected:dated-copy-differs']);

    const last = await run(stateFile, src, new FolderDestination(dst, 'album'));
    expect(last.exitCode).toBe(0);
    expect(states(stateFile)).toEqual(['verified', 'verified']);
    for (const f of ['noexif.jpg', 'cookiezen.jpg'])
      expect(fs.readFileSync(path.join(dst, 'album', f)).equals(fs.readFileSync(path.join(src, 'album', f)))).toBe(true);
  }, 90_000);
});
