// The Xiaomi Cloud gallery as a Source: albums in a fixed order, each listed page by page
// (pageNum/pageSize), one page per listItems call, with an opaque cursor the engine checkpoints.

import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { reason, redact } from '../../src/lib/redact.ts';
import {
  RejectedError,
  RetryableError,
  SourceChangedError,
  type DeleteResult,
  type DeletionProof,
  type ListPage,
  type Logger,
  type MediaKind,
  type OpenOptions,
  type PlanNote,
  type Source,
  type SourceItem,
} from '../types.ts';
import type { XiaomiClient } from './client.ts';
import { idString } from './json.ts';
import { ALBUM_PRIVATE, CODE_DELETED, CODE_OK } from './protocol.ts';

export interface XiaomiSourceOptions {
  includePrivate: boolean;
  /** Items per page: 50 is what works at the real service (200 times out). */
  pageSize?: number;
  deletePauseMs?: number;
  log?: Logger;
}

interface Album {
  albumId: string;
  name: string;
  mediaCount: number;
}

/**
 * The cursor: which album, how many of its items (in the service's current order) come before
 * the next unread one, and which Source instance issued it with how many deletions it had made.
 * Deleting an already-listed item shifts the service's pages by one; a cursor from this same
 * instance is corrected by the deletions made since (page reads and deletions never overlap, so
 * the count is exact), and one from an earlier process restarts its album from the top
 * (re-listing items the engine already knows is harmless, skipping one is not).
 */
interface Cursor {
  v: 1;
  album: string;
  offset: number;
  inst: string;
  seq: number;
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

const iso = (ms: unknown): string | null => {
  const n = typeof ms === 'string' ? Number(ms) : ms;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? new Date(n).toISOString() : null;
};

function kindOf(type: unknown, mime: string | null): MediaKind {
  const t = String(type ?? '').toLowerCase();
  if (t === 'image' || mime?.startsWith('image/')) return 'image';
  if (t === 'video' || mime?.startsWith('video/')) return 'video';
  return 'other';
}

export class XiaomiSource implements Source {
  readonly kind = 'xiaomi';
  readonly identity: string;
  readonly randomAccess = false;
  readonly deletePauseMs: number;
  private readonly pageSize: number;
  private readonly instance = crypto.randomBytes(6).toString('hex');
  private albums: Album[] | null = null;
  /** Successful deletions of this instance: album and sequence number. */
  private readonly deletions: Array<{ album: string; seq: number }> = [];
  private seq = 0;
  private mutex: Promise<void> = Promise.resolve();
  /** Statistics for tests and the bench. */
  readonly stats = { pages: 0, items: 0 };

  constructor(
    readonly client: XiaomiClient,
    private readonly opts: XiaomiSourceOptions,
  ) {
    this.identity = `xiaomi:${client.userId}`;
    this.pageSize = Math.min(100, Math.max(10, Math.floor(opts.pageSize ?? 50)));
    this.deletePauseMs = opts.deletePauseMs ?? 200;
  }

  private async loadAlbums(signal?: AbortSignal): Promise<Album[]> {
    const all = await this.client.albums(signal);
    return all.sort((a, b) => compareIds(a.albumId, b.albumId));
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

  async listItems(cursor: string | null, signal?: AbortSignal): Promise<ListPage> {
    this.client.startKeepAlive();
    if (!this.albums || cursor === null) this.albums = this.listed(await this.loadAlbums(signal));
    const albums = this.albums;
    let index: number;
    let offset: number;
    /** Deletions up to this sequence number are already reflected in `offset`. */
    let seq: number;
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
    }
    for (let guard = 0; index < albums.length && guard < 10_000; guard++) {
      const album = albums[index]!;
      const fetched = await this.exclusive(async () => {
        const at = Math.max(0, offset - this.deletedSince(album.albumId, seq));
        const pageNum = Math.floor(at / this.pageSize);
        const page = await this.client.galleries(album.albumId, pageNum, this.pageSize, signal);
        return { page, pageNum, skip: at % this.pageSize, seq: this.seq };
      });
      const { page, pageNum, skip } = fetched;
      seq = fetched.seq;
      this.stats.pages++;
      const items: SourceItem[] = [];
      for (const g of page.galleries.slice(skip)) {
        const item = this.toItem(g, album);
        if (item) items.push(item);
      }
      const nextOffset = pageNum * this.pageSize + page.galleries.length;
      const done = page.isLastPage;
      let next: Cursor | null;
      if (!done) next = { v: 1, album: album.albumId, offset: nextOffset, inst: this.instance, seq };
      else if (index + 1 < albums.length) next = { v: 1, album: albums[index + 1]!.albumId, offset: 0, inst: this.instance, seq };
      else next = null;
      if (items.length > 0 || next === null) {
        this.stats.items += items.length;
        return { items, cursor: next && encodeCursor(next) };
      }
      // An empty page (an empty album): go on to the next one in this call.
      if (done) {
        index++;
        offset = 0;
      } else offset = nextOffset;
    }
    return { items: [], cursor: null };
  }

  private toItem(g: Record<string, unknown>, album: Album): SourceItem | null {
    const id = idString(g.id);
    if (!id) {
      this.opts.log?.warn('xiaomi: skipped a listing entry without an id');
      return null;
    }
    const mimeType = typeof g.mimeType === 'string' && g.mimeType ? g.mimeType : null;
    const sha1 = typeof g.sha1 === 'string' && /^[0-9a-f]{40}$/i.test(g.sha1) ? g.sha1.toLowerCase() : null;
    const size = Number(g.size);
    const name = (typeof g.fileName === 'string' && g.fileName) || (typeof g.title === 'string' && g.title) || `${id}`;
    return {
      id,
      name,
      albumId: album.albumId,
      albumName: album.name,
      size: Number.isSafeInteger(size) && size >= 0 ? size : null,
      sha1,
      // Another SHA-1 under the same id is other bytes: a new version, migrated on its own.
      version: sha1,
      mimeType,
      kind: kindOf(g.type, mimeType),
      declaredCaptureTime: iso(g.dateTaken),
      modifiedTime: iso(g.dateModified) ?? iso(g.createTime),
      description: typeof g.description === 'string' && g.description ? g.description : null,
      extra: {
        albumId: album.albumId,
        title: typeof g.title === 'string' ? g.title : null,
        dateTaken: typeof g.dateTaken === 'number' ? g.dateTaken : null,
        createTime: typeof g.createTime === 'number' ? g.createTime : null,
        isFavorite: g.isFavorite === true,
        type: typeof g.type === 'string' ? g.type : null,
      },
    };
  }

  async open(item: SourceItem, options?: OpenOptions): Promise<Readable> {
    this.client.startKeepAlive();
    return this.client.download(item.id, item.size, options?.signal);
  }

  async delete(item: SourceItem, proof: DeletionProof): Promise<DeleteResult> {
    // Xiaomi's SHA-1 is what proves the download intact; without one, the cloud copy stays.
    if (!item.sha1) throw new RejectedError(`not deleted at Xiaomi: its listing gave no SHA-1 to check the download of item ${item.id} against`);
    // Deletion is bound to the proven bytes: the id listed with this SHA-1 is the one whose bytes were read.
    if (item.sha1.toLowerCase() !== proof.hashes.sha1) throw new SourceChangedError(`not deleted at Xiaomi: item ${item.id} is listed with SHA-1 ${item.sha1}, not the ${proof.hashes.sha1} proven`);
    const album = item.albumId ?? '';
    return this.exclusive(async () => {
      let env;
      try {
        env = await this.client.deleteItem(item.id);
      } catch (err) {
        // No answer: Xiaomi may have deleted it. For the listing's offset, count it as deleted
        // (at worst an item is listed twice; counting too few would skip one).
        this.deletions.push({ album, seq: ++this.seq });
        throw err;
      }
      const text = redact(env.text.trim()).slice(0, 500);
      if (env.code === CODE_OK) {
        this.deletions.push({ album, seq: ++this.seq });
        return { response: text };
      }
      if (env.code === CODE_DELETED) {
        // Already gone at Xiaomi (deleted elsewhere, or an earlier attempt whose answer was lost).
        this.deletions.push({ album, seq: ++this.seq });
        return { response: `already deleted at Xiaomi: ${text}` };
      }
      throw new RetryableError(`Xiaomi refused to delete item ${item.id}: code ${env.code}${env.description ? ` (${redact(env.description)})` : ''}`);
    });
  }

  async planNotes(): Promise<PlanNote[]> {
    const notes: PlanNote[] = [];
    const all = await this.loadAlbums();
    const priv = all.find((a) => a.albumId === ALBUM_PRIVATE);
    if (priv && !this.opts.includePrivate) {
      notes.push({
        message: `the private album (albumId ${ALBUM_PRIVATE}, "${priv.name}") is skipped: its ${priv.mediaCount} item(s) stay at Xiaomi; pass --include-private to move them too`,
        items: priv.mediaCount,
      });
    } else if (priv) {
      notes.push({ message: `the private album (albumId ${ALBUM_PRIVATE}) is included (${priv.mediaCount} item(s))`, items: priv.mediaCount });
    }
    notes.push({ message: `Xiaomi albums: ${all.map((a) => `${a.name} (${a.mediaCount})`).join(', ') || 'none'}` });
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
