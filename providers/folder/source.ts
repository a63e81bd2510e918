// A local folder as a source: each sub-folder is an album (nested ones by their relative
// path), each file an item whose id is its relative path. Files that change or vanish while
// being read are detected by size and modification time, not trusted.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import type { DeleteResult, ListPage, OpenOptions, PlanNote, Source, SourceItem } from '../types.ts';
import { ItemGoneError, RetryableError, StopRunError } from '../types.ts';

const PAGE = 500;

interface Entry {
  rel: string;
  size: number;
  mtimeMs: number;
}

export class FolderSource implements Source {
  readonly kind = 'folder';
  readonly randomAccess = true;
  readonly identity: string;
  private entries: Entry[] | null = null;
  private skippedHidden = 0;

  constructor(private readonly root: string) {
    this.identity = `folder:${path.resolve(root)}`;
  }

  private async walk(): Promise<Entry[]> {
    if (this.entries) return this.entries;
    let st: fs.Stats;
    try {
      st = await fsp.stat(this.root);
    } catch {
      throw new StopRunError('config', `source folder ${this.root} does not exist`);
    }
    if (!st.isDirectory()) throw new StopRunError('config', `source ${this.root} is not a folder`);
    const out: Entry[] = [];
    const visit = async (relDir: string): Promise<void> => {
      const dirents = await fsp.readdir(path.join(this.root, relDir), { withFileTypes: true });
      for (const d of dirents) {
        const rel = relDir ? `${relDir}/${d.name}` : d.name;
        // Hidden files (.DS_Store, editors' and our own .part files) are not the person's media.
        if (d.name.startsWith('.')) {
          this.skippedHidden++;
          continue;
        }
        if (d.isDirectory()) await visit(rel);
        else if (d.isFile()) {
          try {
            const s = await fsp.stat(path.join(this.root, rel));
            out.push({ rel, size: s.size, mtimeMs: s.mtimeMs });
          } catch {
            // Vanished between readdir and stat: nothing to migrate.
          }
        }
      }
    };
    await visit('');
    // Code-point order, so the cursor (the last path listed) means the same on every run.
    out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
    this.entries = out;
    return out;
  }

  async listItems(cursor: string | null): Promise<ListPage> {
    const all = await this.walk();
    let start = 0;
    if (cursor !== null) {
      let lo = 0;
      let hi = all.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (all[mid]!.rel <= cursor) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const page = all.slice(start, start + PAGE);
    const items: SourceItem[] = page.map((e) => {
      const dir = path.posix.dirname(e.rel);
      const album = dir === '.' ? null : dir;
      return {
        id: e.rel,
        name: path.posix.basename(e.rel),
        albumId: album,
        albumName: album,
        size: e.size,
        kind: 'other',
        sha1: null,
        declaredCaptureTime: null,
        modifiedTime: new Date(e.mtimeMs).toISOString(),
        extra: { mtimeMs: e.mtimeMs },
      };
    });
    const next = start + PAGE < all.length ? page[page.length - 1]!.rel : null;
    return { items, cursor: next };
  }

  private abs(item: SourceItem): string {
    const p = path.resolve(this.root, item.id);
    if (!p.startsWith(path.resolve(this.root) + path.sep)) throw new Error(`item path ${item.id} escapes the source folder`);
    return p;
  }

  async open(item: SourceItem, opts: OpenOptions = {}): Promise<Readable> {
    const file = this.abs(item);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ItemGoneError('the file is gone from the source folder');
      if (code === 'EACCES' || code === 'EPERM') throw new RetryableError('the file is not readable (permission denied)');
      throw err;
    }
    const before = await fh.stat();
    const listedMtime = item.extra?.mtimeMs as number | undefined;
    const whole = opts.offset === undefined && opts.length === undefined;
    if (whole && (before.size !== item.size || (listedMtime !== undefined && before.mtimeMs !== listedMtime))) {
      await fh.close();
      throw new RetryableError('the file changed since it was listed (size or time differ); it will be listed again on the next run');
    }
    const stream = fh.createReadStream({
      start: opts.offset ?? 0,
      end: opts.length !== undefined ? (opts.offset ?? 0) + opts.length - 1 : undefined,
      highWaterMark: 1024 * 1024,
      autoClose: false,
      signal: opts.signal,
    });
    if (!whole) {
      stream.on('close', () => void fh.close());
      return stream;
    }
    // Checked when the last byte has been read: a file rewritten under us must not pass as read.
    const guard = new Transform({
      transform(chunk, _enc, cb) {
        cb(null, chunk);
      },
      flush(cb) {
        fh.stat().then(
          (after) => cb(after.size !== before.size || after.mtimeMs !== before.mtimeMs ? new RetryableError('the file changed while it was being read') : null),
          (err) => cb(err),
        );
      },
    });
    stream.on('error', (err) => guard.destroy(err));
    guard.on('close', () => {
      stream.destroy();
      void fh.close().catch(() => undefined);
    });
    return stream.pipe(guard);
  }

  async delete(item: SourceItem): Promise<DeleteResult> {
    try {
      await fsp.unlink(this.abs(item));
      return { response: 'unlinked' };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { response: 'already gone' };
      throw err;
    }
  }

  async planNotes(): Promise<PlanNote[]> {
    await this.walk();
    return this.skippedHidden ? [{ message: `${this.skippedHidden} hidden files and folders (names starting with ".") are not migrated`, items: this.skippedHidden }] : [];
  }
}
