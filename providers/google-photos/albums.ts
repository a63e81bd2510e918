// Albums for the Google Photos destination: one per source album, created at most once (an
// unclear answer is followed by a look at the album list, never a blind repeat), and continued
// in "Name (2)", "Name (3)"... when Google's per-album limit is reached. Which albums exist and
// how full they are is kept in the state store (album:<name>, albumid:<id>).

import { RetryableError, type ProviderContext, type UploadInput } from '../types.ts';
import { AmbiguousError, type GoogleApi, googleError } from './client.ts';
import * as P from './protocol.ts';

interface AlbumPart {
  id: string;
  title: string;
  count: number;
  full?: boolean;
}

export class Albums {
  private listed: Map<string, string[]> | null = null;
  private readonly flights = new Map<string, Promise<string>>();
  /** Items handed an album id and not yet committed, by album: they count against its limit. */
  private readonly reserved = new Map<string, number>();

  constructor(
    private readonly api: GoogleApi,
    private readonly ctx: Pick<ProviderContext, 'store' | 'log'>,
    private readonly limit: number,
  ) {}

  private key(name: string): string {
    return `album:${name}`;
  }

  /** The app-created albums by title, read once per process before any album is created. */
  private async list(force = false): Promise<Map<string, string[]>> {
    if (this.listed && !force) return this.listed;
    const byTitle = new Map<string, string[]>();
    let pageToken: string | undefined;
    do {
      const q = new URLSearchParams({ pageSize: '50', excludeNonAppCreatedData: 'true', ...(pageToken ? { pageToken } : {}) });
      const r = await this.api.call('albums.list', this.api.json('GET', `${P.PATH_ALBUMS}?${q}`));
      if (r.status !== 200) throw new RetryableError(`albums.list: HTTP ${r.status} ${googleError(r).message ?? ''}`);
      const body = JSON.parse(r.text || '{}') as { albums?: Array<{ id: string; title?: string }>; nextPageToken?: string };
      for (const a of body.albums ?? []) byTitle.set(a.title ?? '', [...(byTitle.get(a.title ?? '') ?? []), a.id]);
      pageToken = body.nextPageToken;
    } while (pageToken);
    this.listed = byTitle;
    return byTitle;
  }

  /** Creates an album at most once: an unclear answer is followed by a look at the album list, never by a blind repeat. */
  private async create(title: string): Promise<string> {
    const known = (await this.list()).get(title);
    if (known?.length) return known[0]!;
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        const r = await this.api.call('albums.create', this.api.json('POST', P.PATH_ALBUMS, { album: { title } }), { write: true, repeatable: false });
        if (r.status !== 200) throw new RetryableError(`albums.create: HTTP ${r.status} ${googleError(r).message ?? ''}`);
        const id = (JSON.parse(r.text) as { id?: string }).id;
        if (!id) throw new RetryableError('albums.create: no album id in the answer');
        this.listed?.set(title, [id]);
        return id;
      } catch (err) {
        if (!(err instanceof AmbiguousError)) throw err;
        const found = (await this.list(true)).get(title);
        if (found?.length) return found[0]!;
      }
    }
    throw new RetryableError(`could not create the album "${title}"`);
  }

  /** The album id an item goes into ('' when it has no album); one choice at a time per name. */
  async prepare(item: UploadInput['item']): Promise<string> {
    // Google takes album titles up to 500 characters.
    const name = item.albumName?.trim().slice(0, 480);
    if (!name) return '';
    const running = this.flights.get(name);
    if (running) await running.catch(() => undefined);
    const flight = this.pick(name);
    this.flights.set(name, flight);
    try {
      return await flight;
    } finally {
      if (this.flights.get(name) === flight) this.flights.delete(name);
    }
  }

  private async pick(name: string): Promise<string> {
    const key = this.key(name);
    const parts = this.ctx.store.get<AlbumPart[]>(key) ?? [];
    let current = parts[parts.length - 1];
    if (current && !current.full && current.count + (this.reserved.get(current.id) ?? 0) < this.limit) {
      this.reserved.set(current.id, (this.reserved.get(current.id) ?? 0) + 1);
      return current.id;
    }
    const title = parts.length === 0 ? name : `${name} (${parts.length + 1})`;
    const id = await this.create(title);
    current = { id, title, count: 0 };
    this.ctx.store.set(`albumid:${id}`, name);
    this.ctx.store.set(key, [...parts, current]);
    this.ctx.log.info(`Google Photos album "${title}" ready`);
    this.reserved.set(id, 1);
    return id;
  }

  private updatePart(albumId: string, change: (p: AlbumPart) => void): void {
    const name = this.ctx.store.get<string>(`albumid:${albumId}`);
    if (name === undefined) return;
    const key = this.key(name);
    const parts = this.ctx.store.get<AlbumPart[]>(key) ?? [];
    const part = parts.find((p) => p.id === albumId);
    if (!part) return;
    change(part);
    this.ctx.store.set(key, parts);
  }

  /** The album's title as created ("Name" or "Name (2)"...). */
  title(albumId: string): string | undefined {
    const name = this.ctx.store.get<string>(`albumid:${albumId}`);
    if (name === undefined) return undefined;
    return (this.ctx.store.get<AlbumPart[]>(this.key(name)) ?? []).find((p) => p.id === albumId)?.title;
  }

  /** A batch for the album is settled: its reservations end, what was created counts. */
  committed(albumId: string, created: number, attempted: number): void {
    this.reserved.set(albumId, Math.max(0, (this.reserved.get(albumId) ?? 0) - attempted));
    if (created) this.updatePart(albumId, (p) => (p.count += created));
  }

  /** Google refused to add to the album: the next item starts "Name (n+1)". */
  markFull(albumId: string): void {
    this.updatePart(albumId, (p) => (p.full = true));
  }
}
