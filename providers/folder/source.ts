// A local folder as a source: each sub-folder is an album (nested ones by their relative
// path), each file an item whose id is its relative path. Files that change or vanish while
// being read are detected by size and modification time, not trusted.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { DeleteResult, DeletionProof, ListPage, OpenOptions, PlanNote, Source, SourceItem } from '../types.ts';
import { ItemGoneError, RetryableError, SourceChangedError, StopRunError } from '../types.ts';
import { closeQuietly, openFd, readFd } from '../../src/lib/fd.ts';
import { SHA256_ONLY, hashFile } from '../../src/hash/multihash.ts';

const PAGE = 500;

interface Entry {
  rel: string;
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
}

/** Where a file is moved just before it is unlinked (hidden, so never listed). */
const ASIDE_PREFIX = '.gallery-bridge-deleting-';

export class FolderSource implements Source {
  readonly kind = 'folder';
  readonly randomAccess = true;
  /** Each deletion is a rename, an lstat and an unlink on the disk: several overlap. */
  readonly limits = { deleteConcurrency: 8 };
  readonly identity: string;
  private entries: Entry[] | null = null;
  private skippedHidden = 0;

  readonly localPath: string;

  constructor(private readonly root: string) {
    this.identity = `folder:${path.resolve(root)}`;
    this.localPath = path.resolve(root);
  }

  private async walk(): Promise<Entry[]> {
    if (this.entries) return this.entries;
    let st: fs.Stats;
    try {
      st = await fsp.stat(this.root);
    } catch {
      throw new StopRunError('config', `source folder ${this.root} does not exist: is the card mounted? Nothing was changed`);
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
            // Directly, not through the pool: a path lookup of microseconds (see src/lib/fd.ts),
            // where a promise and a pool round trip a file was most of a listing's CPU.
            const s = fs.statSync(path.join(this.root, rel));
            out.push({ rel, size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino });
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
        // A copied or downloaded file's time is when it was copied: only the last resort for a date.
        fileModifiedTime: new Date(e.mtimeMs).toISOString(),
        extra: { mtimeMs: e.mtimeMs, dev: e.dev, ino: e.ino },
        version: `${e.dev}:${e.ino}:${e.size}:${e.mtimeMs}`,
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
    let fd: number;
    try {
      fd = await openFd(file, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ItemGoneError('the file is gone from the source folder');
      if (code === 'EACCES' || code === 'EPERM') throw new RetryableError('the file is not readable (permission denied)');
      throw err;
    }
    let before: fs.Stats;
    try {
      before = fs.fstatSync(fd);
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
    const listedMtime = item.extra?.mtimeMs as number | undefined;
    const whole = opts.offset === undefined && opts.length === undefined;
    if (whole && (before.size !== item.size || (listedMtime !== undefined && before.mtimeMs !== listedMtime) || changedFile(item, before))) {
      closeQuietly(fd);
      throw new RetryableError('the file changed since it was listed (size or time differ); it will be listed again on the next run');
    }
    const start = opts.offset ?? 0;
    const end = opts.length !== undefined ? Math.min(start + opts.length, before.size) : before.size;
    return new FileBytes(fd, start, end, whole ? before : null, opts.signal);
  }

  /**
   * Unlinks the file only if it is still the one that was read: the same file (device and
   * inode), size and modification time, and, when it was read by an earlier run, the same
   * SHA-256 read again. It is first renamed aside, so the checks and the unlink concern one
   * file even if its name is reused meanwhile; a file that fails them is put back.
   */
  async delete(item: SourceItem, proof: DeletionProof): Promise<DeleteResult> {
    const file = this.abs(item);
    const aside = path.join(path.dirname(file), ASIDE_PREFIX + path.basename(file));
    try {
      await fsp.rename(file, aside);
    } catch (err) {
      // A run killed after the rename left the file aside: finish with that one.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync(aside)) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ItemGoneError('the file is gone from the source folder');
        throw err;
      }
    }
    const why = await this.differs(item, proof, aside);
    if (why) {
      await putBack(aside, file);
      throw new SourceChangedError(`${item.id} was not deleted: ${why}; the file there now is a new version`);
    }
    await fsp.unlink(aside);
    return { response: proof.readThisRun ? 'unlinked (same file, size and time as read)' : 'unlinked (same file, size and time, SHA-256 read again)' };
  }

  private async differs(item: SourceItem, proof: DeletionProof, file: string): Promise<string | null> {
    // Directly, not through the pool: a path lookup of microseconds that changes nothing (see src/lib/fd.ts).
    const st = fs.lstatSync(file);
    if (!st.isFile()) return 'it is no longer a regular file';
    if (st.size !== proof.hashes.size || st.size !== item.size) return `its size is ${st.size}, not the ${proof.hashes.size} bytes proven`;
    const listedMtime = item.extra?.mtimeMs as number | undefined;
    if (listedMtime !== undefined && st.mtimeMs !== listedMtime) return 'its modification time changed since it was read';
    if (changedFile(item, st)) return 'another file now has its name';
    // A rewrite can keep size and time (and a file listed by an older version has no inode on record).
    if (!proof.readThisRun || item.extra?.ino === undefined) {
      const { sha256 } = await hashFile(file, SHA256_ONLY);
      if (sha256 !== proof.hashes.sha256) return 'its bytes differ from the ones proven (SHA-256 read again)';
    }
    return null;
  }

  async planNotes(): Promise<PlanNote[]> {
    await this.walk();
    return this.skippedHidden
      ? [{ message: `${this.skippedHidden} hidden files and folders (names starting with ".") are not migrated`, items: this.skippedHidden }]
      : [];
  }
}

/** True when the file is not the one listed (another device or inode under the same name). */
function changedFile(item: SourceItem, st: fs.Stats): boolean {
  const dev = item.extra?.dev as number | undefined;
  const ino = item.extra?.ino as number | undefined;
  return (dev !== undefined && st.dev !== dev) || (ino !== undefined && st.ino !== ino);
}

async function putBack(aside: string, file: string): Promise<void> {
  try {
    // link, not rename: a new file that took the name meanwhile must not be overwritten.
    await fsp.link(aside, file);
    await fsp.unlink(aside);
  } catch (err) {
    throw new SourceChangedError(
      `the file changed while it was being deleted and another took its name; it is kept as ${aside} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

const CHUNK = 1024 * 1024;

/**
 * The bytes of one open file, from `start` to `end`, as a stream that owns its descriptor. When
 * `listed` is given (a whole-file read), the file is checked again at the end: one changed while
 * it was read fails the stream instead of passing torn bytes on.
 */
class FileBytes extends Readable {
  private pos: number;

  constructor(
    private readonly fd: number,
    start: number,
    private readonly end: number,
    private readonly listed: fs.Stats | null,
    // Polled, not listened to: a listener per open file on the run's one signal grew past
    // Node's warning limit at high concurrency, and a local read is never long.
    private readonly signal: AbortSignal | undefined,
  ) {
    super({ highWaterMark: CHUNK });
    this.pos = start;
  }

  /**
   * Iterated (as the engine reads a source), the chunks come straight from the reads, without the
   * stream's buffer, events and promises around each: a folder copy spent more on those than on
   * the reads. The next chunk is read while the consumer handles this one, as the stream's
   * read-ahead did. Piped or listened to, the bytes go through the stream (_read) as before, and
   * so does an iteration begun after that.
   */
  override [Symbol.asyncIterator](): NodeJS.AsyncIterator<Buffer> {
    return this.streamed || this.readableFlowing !== null ? super[Symbol.asyncIterator]() : this.chunks();
  }

  /** Whether the stream's own reading (_read) has begun: from then on it alone reads. */
  private streamed = false;

  private async *chunks(): AsyncGenerator<Buffer> {
    let next: Promise<Buffer | null> | null = null;
    try {
      next = this.readNext();
      for (;;) {
        const chunk = await next;
        if (!chunk) break;
        next = this.readNext();
        yield chunk;
      }
      next = null;
      const changed = this.changedWhileRead();
      if (changed) throw changed;
      // Ended, for whoever waits on the stream's end (finished()): a close without it is an
      // ERR_STREAM_PREMATURE_CLOSE, an Error with its stack built, for every file.
      this.push(null);
    } finally {
      // Stopped early: let the read in flight land before the descriptor is closed.
      if (next) await next.catch(() => undefined);
      this.destroy();
    }
  }

  /**
   * The next chunk from the current position, null at the end. Read ahead: a chunk never asked
   * for (the consumer stopped, the stream was destroyed under it, the run stopped before the read)
   * must not fail as an unhandled rejection; an awaited one still throws.
   */
  private readNext(): Promise<Buffer | null> {
    const read = this.readChunk();
    read.catch(() => undefined);
    return read;
  }

  private readChunk(): Promise<Buffer | null> {
    if (this.signal?.aborted) return Promise.reject(this.signal.reason instanceof Error ? this.signal.reason : new Error('aborted'));
    const want = Math.min(CHUNK, this.end - this.pos);
    if (want <= 0) return Promise.resolve(null);
    const buf = Buffer.allocUnsafe(want);
    return readFd(this.fd, buf, 0, want, this.pos).then((n) => {
      this.pos += n;
      return n === 0 ? null : n === want ? buf : buf.subarray(0, n);
    });
  }

  override _read(): void {
    this.streamed = true;
    if (this.signal?.aborted) {
      this.destroy(this.signal.reason instanceof Error ? this.signal.reason : new Error('aborted'));
      return;
    }
    const want = Math.min(CHUNK, this.end - this.pos);
    if (want <= 0) {
      this.finish();
      return;
    }
    const buf = Buffer.allocUnsafe(want);
    readFd(this.fd, buf, 0, want, this.pos).then(
      (n) => {
        if (this.destroyed) return;
        if (n === 0) {
          this.finish();
          return;
        }
        this.pos += n;
        this.push(n === want ? buf : buf.subarray(0, n));
      },
      (err: Error) => this.destroy(err),
    );
  }

  private finish(): void {
    const changed = this.changedWhileRead();
    if (changed) this.destroy(changed);
    else this.push(null);
  }

  /** At the end of a whole-file read: why its bytes cannot be trusted (it changed meanwhile), else null. */
  private changedWhileRead(): Error | null {
    if (!this.listed) return null;
    let after: fs.Stats;
    try {
      after = fs.fstatSync(this.fd);
    } catch (err) {
      return err as Error;
    }
    if (after.size !== this.listed.size || after.mtimeMs !== this.listed.mtimeMs || this.pos !== this.listed.size)
      return new RetryableError('the file changed while it was being read');
    return null;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    closeQuietly(this.fd);
    cb(err);
  }
}
