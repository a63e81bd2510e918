// The Xiaomi Cloud gallery as a Source: albums in a fixed order, each listed page by page
// (pageNum/pageSize), one page per listItems call, with an opaque cursor the engine checkpoints.

import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { AdaptivePacer } from '../../src/lib/pacer.ts';
import { done, retry, retryCall, type Verdict } from '../../src/lib/retry.ts';
import { reason, redact } from '../../src/lib/redact.ts';
import {
  RejectedError,
  RetryableError,
  SourceChangedError,
  type DeleteResult,
  type DeletionProof,
  type ListPage,
  type Logger,
  type OpenOptions,
  type PlanNote,
  type Source,
  type SourceItem,
} from '../types.ts';
import { NotRetriableError, type XiaomiClient } from './client.ts';
import { readAlbum, readItem, type Album } from './fields.ts';
import { ALBUM_PRIVATE, CODE_DELETED, CODE_OK } from './protocol.ts';

export interface XiaomiSourceOptions {
  includePrivate: boolean;
  /** Items per page: 50 is what works at the real service (200 times out). */
  pageSize?: number;
  /** The floor between one deletion's answer and the next deletion (XIAOMI_DELETE_PAUSE_MS). */
  deletePauseMs?: number;
  log?: Logger;
}

/** The least gap between deletions: one public client sleeps 100 ms after each (reference notes). */
export const DELETE_FLOOR_MS = 100;
/** The most a busy service makes us wait between deletions (rclone's pacer default maxSleep). */
const DELETE_CEILING_MS = 2000;

/** Reads of one page whose answer carries no galleries list before it is given up for this run. */
const PAGE_TRIES = 3;
/** Unreadable pages in a row after which an album is given up for this run. */
const MAX_BAD_PAGES_IN_A_ROW = 3;
/** Positions past an album's mediaCount (in pages) after which its pages are taken to repeat forever. */
const RUNAWAY_PAGES = 2;
/** Positions at which an album without a mediaCount is taken to page forever. */
const RUNAWAY_POSITIONS = 5_000_000;

/**
 * The cursor: which album, how many of its items (in the service's current order) come before
 * the next unread one, and which Source instance issued it with how many deletions it had made.
 * Deleting an already-listed item shifts the service's pages by one; a cursor from this same
 * instance is corrected by the deletions made since (page reads and deletions never overlap, so
 * the count is exact), and one from an earlier process restarts its album from the top
 * (re-listing items the engine already knows is harmless, skipping one is not).
 * `bad` counts unreadable pages in a row.
 */
interface Cursor {
  v: 1;
  album: string;
  offset: number;
  inst: string;
  seq: number;
  bad?: number;
}

const encodeCursor = (c: Cursor): string => Buffer.from(JSON.stringify(c)).toString('base64url');
function decodeCursor(s: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Cursor;
    if (c.v !== 1 || typeof c.album !== 'string' || !Number.isInteger(c.offset) || c.offset < 0) throw new Error('bad');
    return c;
  } catch {
    throw new RetryableError('the Xiaomi listing cursor in the state file is not one this version understands; start the listing again');
  }
}

function compareIds(a: string, b: string): number {
  try {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  } catch {
    return a < b ? -1 : a > b ? 1 : 0;
  }
}

/** One page as read: the entries (null when the answer had no list) and what the service said about the end. */
interface PageRead {
  pageNum: number;
  skip: number;
  seq: number;
  galleries: unknown[] | null;
  isLastPage: boolean | null;
  /** Set when the service refused the album for good (retriable: false). */
  refused?: string;
}

export class XiaomiSource implements Source {
  readonly kind = 'xiaomi';
  readonly identity: string;
  readonly randomAccess = false;
  /**
   * Xiaomi documents no limit and no 429 has been reported: deletions go one at a time, as fast
   * as the service takes them but never closer than the floor the public clients keep (100 ms
   * after the last answer), backing off while it answers busy.
   */
  readonly deletePacer: AdaptivePacer;
  private readonly pageSize: number;
  private readonly instance = crypto.randomBytes(6).toString('hex');
  private albums: Album[] | null = null;
  /** Deletion sequence number when `albums` was read: mediaCount is as of then. */
  private albumsSeq = 0;
  /** Problems of the album list, reported with the first page. */
  private albumWarnings: string[] = [];
  /** Successful deletions of this instance: album and sequence number. */
  private readonly deletions: Array<{ album: string; seq: number }> = [];
  private seq = 0;
  private mutex: Promise<void> = Promise.resolve();
  /** Statistics for tests and the bench. */
  readonly stats = { pages: 0, items: 0, warnings: 0, notes: 0 };

  constructor(
    readonly client: XiaomiClient,
    private readonly opts: XiaomiSourceOptions,
  ) {
    this.identity = `xiaomi:${client.userId}`;
    this.pageSize = Math.min(100, Math.max(10, Math.floor(opts.pageSize ?? 50)));
    this.deletePacer = new AdaptivePacer({ minSleepMs: opts.deletePauseMs ?? DELETE_FLOOR_MS, maxSleepMs: DELETE_CEILING_MS });
  }

  /** Every album the account has, in albumId order, and one line per album entry that was unusable. */
  private async loadAlbums(signal?: AbortSignal): Promise<{ albums: Album[]; warnings: string[] }> {
    const albums: Album[] = [];
    const warnings: string[] = [];
    const seen = new Set<string>();
    const { pages, problem } = await this.client.albumPages(signal);
    if (problem) warnings.push(`xiaomi: ${problem}`);
    for (const page of pages) {
      for (const raw of page.albums) {
        const read = readAlbum(raw);
        if ('problem' in read) warnings.push(`xiaomi: ${read.problem}`);
        else if (!seen.has(read.album.albumId)) {
          seen.add(read.album.albumId);
          albums.push(read.album);
        }
      }
    }
    return { albums: albums.sort((a, b) => compareIds(a.albumId, b.albumId)), warnings };
  }

  private listed(albums: Album[]): Album[] {
    return albums.filter((a) => this.opts.includePrivate || a.albumId !== ALBUM_PRIVATE);
  }

  /**
   * Runs page fetches and deletions one at a time. Xiaomi pages by number, so a deletion shifts
   * every later item one place forward; with the two never overlapping, each deletion is known
   * to have happened either before a page was read or after it, and the next offset is exact.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutex.then(fn);
    this.mutex = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private deletedSince(album: string, seq: number): number {
    let n = 0;
    for (const d of this.deletions) if (d.album === album && d.seq > seq) n++;
    return n;
  }

  /**
   * Reads the page holding position `offset` of an album. An answer without a galleries list is
   * read again (up to PAGE_TRIES times) and then handed back as such; an error the service marks
   * not retriable comes back as `refused`. Other failures throw (the run stops the listing and
   * the next run resumes at this page).
   */
  private readPage(album: Album, offset: number, seq: number, signal?: AbortSignal): Promise<PageRead> {
    return this.exclusive(async () => {
      const at = Math.max(0, offset - this.deletedSince(album.albumId, seq));
      const pageNum = Math.floor(at / this.pageSize);
      const base = { pageNum, skip: at % this.pageSize, seq: this.seq };
      return retryCall(
        () => this.client.galleries(album.albumId, pageNum, this.pageSize, signal),
        (out, n): Verdict<PageRead> => {
          if (!out.ok) {
            if (out.error instanceof NotRetriableError) return done({ ...base, galleries: null, isLastPage: null, refused: reason(out.error) });
            throw out.error;
          }
          const { galleries, isLastPage } = out.value;
          if (Array.isArray(galleries)) return done({ ...base, galleries: galleries as unknown[], isLastPage });
          return n >= PAGE_TRIES ? done({ ...base, galleries: null, isLastPage }) : retry(new RetryableError('no galleries list'));
        },
        { attempts: PAGE_TRIES, signal },
      );
    });
  }

  /** The album's listing is over: a line when what it listed differs from the album's mediaCount. */
  private countCheck(album: Album, listed: number): string | null {
    if (album.mediaCount === null) return null;
    const expected = album.mediaCount - this.deletedSince(album.albumId, this.albumsSeq);
    if (listed === expected) return null;
    return `xiaomi: album "${album.name}" (${album.albumId}) listed ${listed} item(s) but Xiaomi's album list says it holds ${expected}; ${listed < expected ? `${expected - listed} item(s) may be left at Xiaomi this run` : 'items were added while it was listed'} — rerun to list it again`;
  }

  async listItems(cursor: string | null, signal?: AbortSignal): Promise<ListPage> {
    this.client.startKeepAlive();
    const warnings: string[] = [];
    if (!this.albums || cursor === null) {
      const loaded = await this.loadAlbums(signal);
      this.albums = this.listed(loaded.albums);
      this.albumsSeq = this.seq;
      this.albumWarnings = loaded.warnings;
    }
    if (cursor === null) warnings.push(...this.albumWarnings);
    const albums = this.albums;
    let index: number;
    let offset: number;
    /** Deletions up to this sequence number are already reflected in `offset`. */
    let seq: number;
    let bad = 0;
    if (cursor === null) {
      index = 0;
      offset = 0;
      seq = this.seq;
    } else {
      const c = decodeCursor(cursor);
      index = albums.findIndex((a) => compareIds(a.albumId, c.album) >= 0);
      if (index < 0) return { items: [], cursor: null };
      const same = albums[index]!.albumId === c.album && c.inst === this.instance;
      // A cursor from an earlier process cannot know what was deleted since: its album starts over.
      offset = same ? c.offset : 0;
      seq = same ? c.seq : this.seq;
      bad = same ? (c.bad ?? 0) : 0;
    }
    const items: SourceItem[] = [];
    for (let guard = 0; index < albums.length && guard < 10_000; guard++) {
      const album = albums[index]!;
      const page = await this.readPage(album, offset, seq, signal);
      seq = page.seq;
      this.stats.pages++;
      let nextOffset: number;
      let done: boolean;
      if (page.refused) {
        warnings.push(`xiaomi: album "${album.name}" (${album.albumId}) cannot be listed: ${page.refused}; its items stay at Xiaomi`);
        nextOffset = offset;
        done = true;
      } else if (page.galleries === null) {
        // No list in the answer: skip this page, go on with the next, so one bad page never stalls the run.
        bad++;
        warnings.push(
          `xiaomi: album "${album.name}" (${album.albumId}) page ${page.pageNum}: Xiaomi's answer has no galleries list (${PAGE_TRIES} tries); up to ${this.pageSize} item(s) of this page are not listed this run — rerun to try again`,
        );
        nextOffset = (page.pageNum + 1) * this.pageSize;
        done = page.isLastPage === true || bad >= MAX_BAD_PAGES_IN_A_ROW;
        if (done && page.isLastPage !== true)
          warnings.push(`xiaomi: album "${album.name}" (${album.albumId}): ${bad} unreadable pages in a row; the rest of this album is left for the next run`);
      } else {
        bad = 0;
        for (const raw of page.galleries.slice(page.skip)) this.take(readItem(raw, album), items, warnings);
        nextOffset = page.pageNum * this.pageSize + page.galleries.length;
        // A real last page: the service says so, or the page is empty. Anything else (false,
        // missing, null) reads on, as Coooolfan/XiaomiAlbumSyncer (shouldFetchNextAssetPage).
        done = page.isLastPage === true || page.galleries.length === 0;
        if (done) {
          const check = this.countCheck(album, nextOffset);
          if (check) warnings.push(check);
        } else if (nextOffset > (album.mediaCount === null ? RUNAWAY_POSITIONS : album.mediaCount + RUNAWAY_PAGES * this.pageSize)) {
          // A service that ignores pageNum would send the same page forever: end the album.
          warnings.push(
            `xiaomi: album "${album.name}" (${album.albumId}): Xiaomi keeps sending pages (page ${page.pageNum}) past the ${album.mediaCount ?? RUNAWAY_POSITIONS} item(s) it holds without saying the last page came; the rest of it is left for the next run`,
          );
          done = true;
        }
      }
      let next: Cursor | null;
      if (!done) next = { v: 1, album: album.albumId, offset: nextOffset, inst: this.instance, seq, ...(bad ? { bad } : {}) };
      else if (index + 1 < albums.length) next = { v: 1, album: albums[index + 1]!.albumId, offset: 0, inst: this.instance, seq };
      else next = null;
      if (items.length > 0 || next === null || warnings.length > 0) {
        this.stats.items += items.length;
        this.stats.warnings += warnings.length;
        return { items, cursor: next && encodeCursor(next), ...(warnings.length ? { warnings } : {}) };
      }
      // Nothing on this page (an empty album, or the part already read): go on in this call.
      if (done) {
        index++;
        offset = 0;
        bad = 0;
      } else offset = nextOffset;
    }
    return { items: [], cursor: null };
  }

  /** Adds a read entry: the item to the page, its notes to the log, an unmovable entry to the warnings. */
  private take(read: ReturnType<typeof readItem>, items: SourceItem[], warnings: string[]): void {
    if (!read.item) {
      warnings.push(...read.notes.map((n) => `xiaomi: ${n}`));
      return;
    }
    items.push(read.item);
    for (const n of read.notes) {
      this.stats.notes++;
      this.opts.log?.warn(`xiaomi: ${n}`);
    }
  }

  async open(item: SourceItem, options?: OpenOptions): Promise<Readable> {
    this.client.startKeepAlive();
    return this.client.download(item.id, item.size, options?.signal);
  }

  async delete(item: SourceItem, proof: DeletionProof): Promise<DeleteResult> {
    // Xiaomi's SHA-1 is what proves the download intact; without one, the cloud copy stays.
    if (!item.sha1)
      throw new RejectedError(`not deleted at Xiaomi: its listing gave no SHA-1 to check the download of item ${item.id} against`, 'refused-by-source');
    // Deletion is bound to the proven bytes: the id listed with this SHA-1 is the one whose bytes were read.
    if (item.sha1.toLowerCase() !== proof.hashes.sha1)
      throw new SourceChangedError(`not deleted at Xiaomi: item ${item.id} is listed with SHA-1 ${item.sha1}, not the ${proof.hashes.sha1} proven`);
    const album = item.albumId ?? '';
    // The gap is slept off before the listing's lock is taken, so page reads go on meanwhile.
    await this.deletePacer.wait();
    return this.exclusive(async () => {
      let env;
      try {
        env = await this.client.deleteItem(item.id, this.deletePacer);
      } catch (err) {
        // No answer: Xiaomi may have deleted it. For the listing's offset, count it as deleted
        // (at worst an item is listed twice; counting too few would skip one).
        this.deletions.push({ album, seq: ++this.seq });
        throw err;
      }
      const text = redact(env.text.trim()).slice(0, 500);
      if (env.code === CODE_OK) {
        this.deletions.push({ album, seq: ++this.seq });
        this.deletePacer.took();
        return { response: text };
      }
      if (env.code === CODE_DELETED) {
        // Already gone at Xiaomi (deleted elsewhere, or an earlier attempt whose answer was lost).
        this.deletions.push({ album, seq: ++this.seq });
        this.deletePacer.took();
        return { response: `already deleted at Xiaomi: ${text}` };
      }
      // Any other code ("system busy" and the like) slows the deletions that follow.
      this.deletePacer.busy();
      const why = `Xiaomi refused to delete item ${item.id}: code ${env.code}${env.description ? ` (${redact(env.description)})` : ''}`;
      // `retriable: false` is the service saying another try cannot help: the item stays at Xiaomi.
      if (env.retriable === false) throw new RejectedError(`${why}, which it says is not worth retrying`, 'refused-by-source');
      throw new RetryableError(why);
    });
  }

  async planNotes(): Promise<PlanNote[]> {
    const notes: PlanNote[] = [];
    const { albums: all } = await this.loadAlbums();
    const count = (a: Album) => (a.mediaCount === null ? '?' : String(a.mediaCount));
    const priv = all.find((a) => a.albumId === ALBUM_PRIVATE);
    if (priv && !this.opts.includePrivate) {
      notes.push({
        message: `the private album (albumId ${ALBUM_PRIVATE}, "${priv.name}") is skipped: its ${count(priv)} item(s) stay at Xiaomi; pass --include-private to move them too`,
        items: priv.mediaCount ?? undefined,
      });
    } else if (priv) {
      notes.push({ message: `the private album (albumId ${ALBUM_PRIVATE}) is included (${count(priv)} item(s))`, items: priv.mediaCount ?? undefined });
    }
    notes.push({ message: `Xiaomi albums: ${all.map((a) => `${a.name} (${count(a)})`).join(', ') || 'none'}` });
    // Xiaomi's delete is soft (the reference notes; the recycle bin is what /gallery/deleted_v2
    // lists in Coooolfan/XiaomiAlbumSyncer docs/plan/xiaomi-webapi-incremental-sync.md).
    notes.push({
      message:
        "deleting at Xiaomi moves items to Xiaomi's recycle bin: the cloud storage they use is freed only when the bin is emptied (at https://i.mi.com, or when Xiaomi purges it)",
    });
    try {
      const q = await this.client.quota();
      const gb = (n: unknown) => (typeof n === 'number' ? `${(n / 1024 ** 3).toFixed(2)} GB` : '?');
      const detail = q.usedDetail as Record<string, { size?: number }> | undefined;
      const gallery = detail?.GalleryImage?.size;
      notes.push({
        message: `Xiaomi Cloud storage: ${gb(q.used)} used of ${gb(q.totalQuota)}${typeof gallery === 'number' ? `, gallery ${gb(gallery)}` : ''}`,
        bytes: typeof gallery === 'number' ? gallery : undefined,
      });
    } catch (err) {
      notes.push({ message: `Xiaomi storage quota unavailable: ${reason(err)}` });
    }
    return notes;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
