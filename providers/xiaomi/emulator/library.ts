// The account's library as the routes see it: what is alive (not in the recycle bin), each
// album's listing with the hostile quirks a test asked for, and the stable wrong-sha1 fault.

import crypto from 'node:crypto';
import { ALBUM_CAMERA, ALBUM_PRIVATE, ALBUM_SCREENSHOTS } from '../protocol.ts';
import type { EmAlbum, EmItem } from './seed.ts';
import type { EmState } from './store.ts';
import type { HostileListing } from './options.ts';

export interface Listing {
  live: EmItem[];
  indexHash: string;
}

/** Camera, Screenshots, the user's albums by name, Private last. */
function albumRank(a: EmAlbum): number {
  if (a.albumId === ALBUM_CAMERA) return 0;
  if (a.albumId === ALBUM_SCREENSHOTS) return 1;
  return a.albumId === ALBUM_PRIVATE ? 3 : 2;
}

export class Library {
  readonly byId = new Map<string, EmItem>();
  readonly albumOrder: EmAlbum[];
  readonly microseconds: Set<string>;
  // An album's listing changes only when an item of it is deleted: worked out once per change,
  // not once per page (a 100,000-item album is 2,000 pages).
  private deletions = 0;
  private readonly listings = new Map<string, Listing & { deletions: number }>();

  constructor(
    readonly albums: Map<string, EmAlbum>,
    private readonly state: EmState,
    readonly hostile: HostileListing,
    private readonly wrongSha1Rate: number,
    private readonly randomSeed: number,
  ) {
    for (const a of albums.values()) for (const it of a.items) this.byId.set(it.id, it);
    this.albumOrder = [...albums.values()].sort((x, y) => albumRank(x) - albumRank(y) || x.name.localeCompare(y.name));
    this.microseconds = new Set(hostile.microsecondDateTaken ?? []);
  }

  alive(it: EmItem): boolean {
    return !this.state.deleted[it.id];
  }

  /** Called after an item moved to the recycle bin: the cached listings are stale. */
  noteDeletion(): void {
    this.deletions++;
  }

  findAlbum(q: string | null): EmAlbum | undefined {
    return q == null ? undefined : this.albums.get(String(q).trim());
  }

  listing(album: EmAlbum, keep: (it: EmItem) => boolean = () => true): Listing {
    let live = album.items.filter((it) => this.alive(it) && keep(it));
    const cut = this.hostile.truncate?.[album.name];
    if (cut !== undefined) live = live.slice(0, cut);
    return {
      live,
      indexHash: crypto
        .createHash('sha256')
        .update(live.map((it) => `${it.id}:${it.dateTaken}:${it.size}:${it.sha1}`).join(';'))
        .digest('hex'),
    };
  }

  wholeListing(album: EmAlbum): Listing {
    let l = this.listings.get(album.albumId);
    if (!l || l.deletions !== this.deletions) this.listings.set(album.albumId, (l = { deletions: this.deletions, ...this.listing(album) }));
    return l;
  }

  missingPage(album: EmAlbum, pageNum: number): boolean {
    return (this.hostile.missingGalleries ?? []).some((m) => m.album === album.name && m.pageNum === pageNum);
  }

  /** Stable per item and seed: the same items list a wrong sha1 on every page and every restart. */
  wrongSha1(it: EmItem): boolean {
    if (this.wrongSha1Rate <= 0) return false;
    const h = crypto.createHash('sha1').update(`${this.randomSeed}:wrong-sha1:${it.id}`).digest();
    return h.readUInt32BE(0) / 2 ** 32 < this.wrongSha1Rate;
  }
}
