// The drive as the OneDrive destination sees it: Personal or Business (and the site path
// Business counts in the 400-character limit), addressing by path, the folders items go to
// (created once, ids kept in the state store), and the name each item gets: made valid, fitted
// to the path budget, or the numbered name a conflict chose (kept as rename:<item>).

import crypto from 'node:crypto';
import { RejectedError, RetryableError, StopRunError, type ItemFacts, type ProviderContext, type SourceItem, type UploadInput } from '../types.ts';
import type { DriveItem } from './evidence.ts';
import { type GraphHttp, GraphHttpError } from './graph.ts';
import { encodeDrivePath, encodeName, fitFolderName, fitPath, numberedName } from './names.ts';

/** What OneDrive says about the drive; asked once per run. */
export interface DriveFacts {
  flavor: 'personal' | 'business';
  /** Characters the service counts before the path in the drive (Business: "personal/<upn>/Documents"). */
  sitePathChars: number;
  quota: { remaining?: number; total?: number; used?: number; state?: string } | null;
}

/** Folder for an item: its album, or YYYY/MM of the capture time, read from the ISO string as written (no zone shift). */
export function containerFor(layout: 'album' | 'date', item: SourceItem, facts: ItemFacts): string[] {
  if (layout === 'date') {
    const m = /^(\d{4})-(\d{2})/.exec(facts.captureTime ?? '');
    return m ? [m[1]!, m[2]!] : ['Undated'];
  }
  const album = item.albumName?.trim();
  return album ? [encodeName(album)] : [];
}

const sha1hex = (s: string) => crypto.createHash('sha1').update(s).digest('hex');

export class Drive {
  private readonly folders = new Map<string, Promise<string>>();
  private known: Promise<DriveFacts> | null = null;

  constructor(
    private readonly http: GraphHttp,
    /** /me/drive or /users/{id}/drive. */
    readonly prefix: string,
    private readonly config: { root: string; layout: 'album' | 'date' },
    private readonly ctx: Pick<ProviderContext, 'store' | 'log'>,
    /** Aborted when a StopRunError passes through classify(): every wait of the destination ends. */
    private readonly stop: AbortController,
  ) {
    this.rootPath = config.root
      .split('/')
      .filter(Boolean)
      .map((s) => `/${encodeName(s)}`)
      .join('');
  }

  /** The configured root folder, its segments made valid ('' for the drive's root). */
  private readonly rootPath: string;

  pathAddr(p: string): string {
    return p ? `${this.prefix}/root:${encodeDrivePath(p)}:` : `${this.prefix}/root`;
  }

  async getByPath(p: string): Promise<DriveItem | null> {
    try {
      return await this.http.api<DriveItem>('get', this.pathAddr(p));
    } catch (e) {
      if (e instanceof GraphHttpError && e.status === 404) return null;
      throw this.classify(e);
    }
  }

  /** GraphHttpError -> the engine's error kinds. */
  classify(e: unknown): Error {
    if (e instanceof StopRunError) this.stop.abort(e);
    // A request the stop ended (the run's first requests go out together, and one refused
    // token aborts the others) reports that stop, not an aborted request.
    const stopped: unknown = this.stop.signal.reason;
    if (stopped instanceof StopRunError && (e as Error | null)?.name === 'AbortError') return stopped;
    if (e instanceof GraphHttpError) {
      if (e.status === 400 && /pathIsTooLong|invalidRequest|nameContainsInvalid/i.test(e.code))
        return new RejectedError(`OneDrive refused the name or path: ${e.message}`, 'refused-by-destination');
      if (e.status === 403)
        return new StopRunError(
          'credentials',
          `OneDrive denied access (403 ${e.code}): check the app's permissions (Files.ReadWrite delegated; app-only: Sites.ReadWrite.All, or Files.ReadWrite.All)`,
        );
      return new RetryableError(e.message, e.retryAfterMs);
    }
    return e as Error;
  }

  /**
   * Asks for the drive's facts now, while the run starts (loads its modules, lists the first
   * page): the first item's folder then waits for neither this request nor its connection.
   * A failure is asked again by the first caller of facts(); a stop (a refused token) ended
   * every request of the destination, and classify() gives that caller the stop.
   */
  askEarly(): void {
    this.facts().catch(() => undefined);
    this.lookUpRoot();
  }

  /** The root's folders do not depend on the drive's facts: looked up once, while those are asked. */
  private lookUpRoot(): void {
    if (this.rootAsked) return;
    this.rootAsked = true;
    this.lookAhead(this.rootPath);
  }

  /** Personal or Business, and the site path Business counts in the 400-character limit. */
  facts(): Promise<DriveFacts> {
    this.known ??= this.http.api<{ driveType?: string; webUrl?: string; quota?: DriveFacts['quota'] }>('get', this.prefix).then(
      (d) => {
        this.factsKnown = true;
        const business = d.driveType === 'business' || d.driveType === 'documentLibrary';
        let site = '';
        if (business) {
          try {
            site = decodeURIComponent(new URL(d.webUrl ?? '').pathname).replace(/^\/+|\/+$/g, '');
          } catch {
            // No webUrl: budget for a long one ("personal/" + a 64-character UPN + "/Documents").
            site = 'x'.repeat(83);
          }
        }
        return { flavor: business ? 'business' : 'personal', sitePathChars: site.length, quota: d.quota ?? null } satisfies DriveFacts;
      },
      (e) => {
        this.known = null;
        throw this.classify(e);
      },
    );
    return this.known;
  }

  /** The folder an item goes to, created (with every folder on the way) if it is not there. */
  async container(item: SourceItem, facts: ItemFacts): Promise<string> {
    this.lookUpRoot();
    if (!this.factsKnown) this.lookAheadGuessed(item, facts);
    const p = this.containerPath(item, facts, (await this.facts()).sitePathChars);
    await this.ensureFolder(p);
    return p;
  }

  /** An album name is shortened when it would leave a file name too little of the path budget. */
  private containerPath(item: SourceItem, facts: ItemFacts, sitePathChars: number): string {
    const segs = containerFor(this.config.layout, item, facts).map((seg) => fitFolderName(sitePathChars + this.rootPath.length, seg, sha1hex));
    return this.rootPath + segs.map((s) => `/${s}`).join('');
  }

  /**
   * While the drive's facts are on their way, looks up the folder the item would have on a
   * Personal drive (no site path in the budget): a short album name is the same on any drive,
   * so its lookup goes out with the root's instead of a request later. A guess that turns out
   * wrong (a long name on Business) costs one lookup nobody takes.
   */
  private lookAheadGuessed(item: SourceItem, facts: ItemFacts): void {
    try {
      this.lookAhead(this.containerPath(item, facts, 0));
    } catch {
      // A name with no room left fails the same way once the facts are in, with its reason.
    }
  }

  private rootAsked = false;
  /** The drive's facts have arrived: an item's folder path no longer needs a guess. */
  private factsKnown = false;

  /** Lookups asked ahead of their folder's turn (lookAhead), each taken once by createFolder. */
  private readonly lookups = new Map<string, Promise<DriveItem | null>>();

  /** A folder this process knows, or the state store's id for it. */
  private knownFolder(key: string): boolean {
    return this.folders.has(key) || Boolean(this.ctx.store.get<string>(`folder:${this.prefix}:${key}`));
  }

  /**
   * Looks up p and every folder above it that is not known yet, all at once: a new folder three
   * deep was three lookups one after another (a 404 each, the time of three requests), then its
   * creations. A lookup whose folder turns out there costs one request, once per folder.
   */
  private lookAhead(p: string): void {
    for (let q = p; q; q = q.slice(0, q.lastIndexOf('/'))) {
      const key = q.toLowerCase();
      if (this.lookups.has(key) || this.knownFolder(key)) break;
      const lookup = this.getByPath(q);
      lookup.catch(() => undefined); // taken by createFolder, which sees the failure
      this.lookups.set(key, lookup);
    }
  }

  private lookUp(p: string): Promise<DriveItem | null> {
    const key = p.toLowerCase();
    const ahead = this.lookups.get(key);
    this.lookups.delete(key);
    return ahead ?? this.getByPath(p);
  }

  /** Creates every folder on the way, idempotently; ids are kept in the state store. */
  private ensureFolder(p: string): Promise<string> {
    if (!p) return Promise.resolve('root');
    const key = p.toLowerCase();
    // This process's own answer first: the state store is a SQL read per item.
    let pending = this.folders.get(key);
    if (pending) return pending;
    const cached = this.ctx.store.get<string>(`folder:${this.prefix}:${key}`);
    if (cached) {
      pending = Promise.resolve(cached);
      this.folders.set(key, pending);
    } else {
      this.lookAhead(p);
      pending = this.createFolder(p).then(
        (id) => {
          this.ctx.store.set(`folder:${this.prefix}:${key}`, id);
          return id;
        },
        (e) => {
          this.folders.delete(key);
          throw e;
        },
      );
      this.folders.set(key, pending);
    }
    return pending;
  }

  private async createFolder(p: string): Promise<string> {
    const parent = p.slice(0, p.lastIndexOf('/'));
    const name = p.slice(p.lastIndexOf('/') + 1);
    // The folders above are made while this one is looked up: a new folder's creation then
    // waits for its parent's, not for its own 404 as well.
    const lookup = this.lookUp(p);
    const above = this.ensureFolder(parent);
    above.catch(() => undefined); // awaited below unless the lookup fails first
    const found = await lookup;
    if (found) {
      if (!found.folder) throw new RejectedError(`a file named ${p} is in the way of the folder OneDrive needs there`, 'refused-by-destination');
      return found.id;
    }
    await above;
    try {
      const created = await this.http.api<DriveItem>('post', `${parent ? this.pathAddr(parent) : `${this.prefix}/root`}/children`, {
        name,
        folder: {},
        '@microsoft.graph.conflictBehavior': 'fail',
      });
      return created.id;
    } catch (e) {
      if (e instanceof GraphHttpError && e.status === 409) {
        const again = await this.getByPath(p);
        if (again?.folder) return again.id;
      }
      throw this.classify(e);
    }
  }

  /** The name an item gets: made valid, shortened to fit, or the numbered name a conflict chose. */
  async targetPath(input: Pick<UploadInput, 'item' | 'container' | 'name'>): Promise<string> {
    const renamed = this.renamedItems();
    const key = `rename:${input.item.id}`;
    const override = !renamed || renamed.has(key) ? this.ctx.store.get<{ container: string; name: string }>(key) : undefined;
    if (override && override.container === input.container) return `${input.container}/${override.name}`;
    const { sitePathChars } = await this.facts();
    let name = encodeName(input.name);
    const fitted = fitPath(input.container, name, sha1hex, sitePathChars);
    if (fitted !== name) {
      this.ctx.log.warn(`the name of item ${input.item.id} is too long for OneDrive's 400-character path limit; it is stored as ${fitted}`);
      name = fitted;
    }
    return `${input.container}/${name}`;
  }

  /** The n-th name for a path whose name is taken ("IMG.jpg" -> "IMG (n).jpg"), fitted to the budget. */
  async candidatePath(p: string, n: number): Promise<string> {
    const folder = p.slice(0, p.lastIndexOf('/'));
    const original = p.slice(p.lastIndexOf('/') + 1);
    if (n === 1) return p;
    const base = original.replace(/ \((\d+)\)(\.[^.]*)?$/, '$2');
    const { sitePathChars } = await this.facts();
    return `${folder}/${fitPath(folder, numberedName(base, n), sha1hex, sitePathChars)}`;
  }

  /**
   * The rename:<item> keys in the store, read once (null: a store that cannot list them). Almost
   * no item has one, and every item asked for its own twice (its name, and once settled): two
   * statements a photo. This Drive is the store's only writer of them while it runs.
   */
  private renamed: Set<string> | null | undefined;

  private renamedItems(): Set<string> | null {
    if (this.renamed === undefined) this.renamed = this.ctx.store.keys ? new Set(this.ctx.store.keys('rename:')) : null;
    return this.renamed;
  }

  remember(itemId: string, p: string): void {
    this.ctx.store.set(`rename:${itemId}`, { container: p.slice(0, p.lastIndexOf('/')), name: p.slice(p.lastIndexOf('/') + 1) });
    this.renamedItems()?.add(`rename:${itemId}`);
  }

  /** Drops the numbered name a conflict chose once the item is settled. Looked up first: a delete is a durable write, and almost no item has one. */
  forget(itemId: string): void {
    const key = `rename:${itemId}`;
    const renamed = this.renamedItems();
    if (renamed ? !renamed.has(key) : this.ctx.store.get(key) === undefined) return;
    this.ctx.store.delete(key);
    renamed?.delete(key);
  }
}
