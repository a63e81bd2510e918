// The OneDrive destination: every non-empty file through an upload session, the last fragment
// held back until the engine has checked the bytes, QuickXorHash as evidence.
//
// Life of one item:
//   upload():  find or create the session (saved in the state store before the first fragment),
//              ask an old session where it stands (nextExpectedRanges) and skip what it has,
//              send every fragment but the last; keep the last (<= chunk size) in memory.
//   commit():  send the last fragment: OneDrive creates the file. 409 nameAlreadyExists: the
//              same QuickXorHash and size is a duplicate; different bytes get "name (2).ext".
//   abort():   DELETE the upload URL (bytes that did not match what the source declared).
//   verify():  the driveItem's file.hashes.quickXorHash and size against what was streamed.

import crypto from 'node:crypto';
import { Pacer } from '../../src/lib/pacer.ts';
import { reason } from '../../src/lib/redact.ts';
import {
  RejectedError,
  RetryableError,
  StopRunError,
  type CapacityInfo,
  type CommitRequest,
  type CommitResult,
  type Destination,
  type Hashes,
  type ItemFacts,
  type ProviderContext,
  type SourceItem,
  type Staged,
  type UploadInput,
  type VerifyRequest,
  type VerifyResult,
} from '../types.ts';
import { GraphHttp, GraphHttpError, type TokenSource } from './graph.ts';
import { encodeDrivePath, encodeName, fitPath, numberedName } from './names.ts';

export const FRAGMENT_MULTIPLE = 327_680; // 320 KiB
export const FRAGMENT_LIMIT = 60 * 1024 * 1024;
export const DEFAULT_CHUNK = 10 * 1024 * 1024;
/** The tempauth in an upload URL dies 24 h after creation: replace sessions older than this. */
export const MAX_SESSION_AGE_MS = 23 * 3600 * 1000;
export const MAX_FILE_SIZE = 250 * 1024 ** 3;

export interface OneDriveConfig {
  baseUrl: string;
  /** Destination root in the drive, e.g. "/Pictures/Xiaomi" ("" for the drive root). */
  root: string;
  /** A user id or UPN for /users/{id}/drive (app-only), or null for /me/drive. */
  user: string | null;
  layout: 'album' | 'date';
  chunkSize: number;
  /** Requests per 5 minutes per user (0: no limit). Microsoft documents 3,000. */
  userRequestsPer5Min: number;
  /** Requests per minute for this app (0: no limit). */
  appRequestsPerMinute: number;
  commitBatchSize: number;
  verifyBatchSize: number;
  /** Delay before asking again for a hash that is not there yet. */
  hashRetryMs: number;
  maxSessionAgeMs: number;
}

interface SavedSession {
  v: 1;
  url: string;
  expiry: string;
  createdAt: number;
  path: string;
  size: number;
}

interface Handle {
  v: 1;
  id: string;
  path: string;
  size: number;
  finalStart: number;
  /** The upload URL (a temporary credential: stored, never printed). Absent for zero-byte files. */
  url: string | null;
  itemId: string;
  /** A file already at the path that may be this item's, from a run killed after its last fragment. */
  existingId?: string;
}

interface DriveItem {
  id: string;
  name: string;
  size?: number;
  folder?: unknown;
  file?: { hashes?: { quickXorHash?: string } };
}

class SessionGone extends Error {}

/** Parses the start of the first range in nextExpectedRanges ("26-", "26-99"). */
export function nextOffset(ranges: unknown): number | null {
  if (!Array.isArray(ranges) || ranges.length === 0) return null;
  const first = String(ranges[0]);
  const n = Number(first.split('-')[0]);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

/**
 * Where the last fragment starts when the session holds `offset` bytes. The last fragment is
 * kept small (the remainder modulo 320 KiB, or 320 KiB): it is what commit() sends, and
 * commits run one at a time, so a small one keeps them quick and memory low.
 */
export function finalStartOf(offset: number, size: number): number {
  const rest = size - offset;
  if (rest <= FRAGMENT_MULTIPLE) return offset;
  return size - (rest % FRAGMENT_MULTIPLE || FRAGMENT_MULTIPLE);
}

export function validateChunkSize(n: number): number {
  if (!Number.isInteger(n) || n <= 0 || n % FRAGMENT_MULTIPLE !== 0 || n >= FRAGMENT_LIMIT) {
    throw new StopRunError('config', `chunk size must be a multiple of 320 KiB (327,680 bytes) under 60 MiB, got ${n}`);
  }
  return n;
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

export class OneDriveDestination implements Destination {
  readonly kind = 'onedrive';
  readonly identity: string;
  readonly commitBatchSize: number;
  readonly verifyBatchSize: number;
  readonly http: GraphHttp;
  readonly drivePrefix: string;
  /** Last fragments held back until commit, by handle id. */
  private readonly finals = new Map<string, Buffer>();
  private readonly folders = new Map<string, Promise<string>>();

  constructor(
    readonly config: OneDriveConfig,
    tokens: TokenSource,
    private readonly ctx: Pick<ProviderContext, 'store' | 'log' | 'account'>,
  ) {
    validateChunkSize(config.chunkSize);
    const pacers = [new Pacer({ maxRequests: config.userRequestsPer5Min || undefined, windowMs: 300_000 })];
    if (config.appRequestsPerMinute > 0) pacers.push(new Pacer({ maxRequests: config.appRequestsPerMinute, windowMs: 60_000 }));
    this.http = new GraphHttp({ baseUrl: config.baseUrl, tokens, pacers, log: (m) => ctx.log.debug(m) });
    this.drivePrefix = config.user ? `/users/${encodeURIComponent(config.user)}/drive` : '/me/drive';
    // The account is part of it: the same path in another person's drive is another destination.
    this.identity = `onedrive:${ctx.account}:${config.user ?? 'me'}:${config.root || '/'}`;
    this.commitBatchSize = config.commitBatchSize;
    this.verifyBatchSize = config.verifyBatchSize;
  }

  private pathAddr(p: string): string {
    return p ? `${this.drivePrefix}/root:${encodeDrivePath(p)}:` : `${this.drivePrefix}/root`;
  }

  private async getByPath(p: string): Promise<DriveItem | null> {
    try {
      return await this.http.api<DriveItem>('get', this.pathAddr(p));
    } catch (e) {
      if (e instanceof GraphHttpError && e.status === 404) return null;
      throw this.classify(e);
    }
  }

  /** GraphHttpError -> the engine's error kinds. */
  private classify(e: unknown): Error {
    if (e instanceof GraphHttpError) {
      if (e.status === 400 && /pathIsTooLong|invalidRequest|nameContainsInvalid/i.test(e.code)) return new RejectedError(`OneDrive refused the name or path: ${e.message}`);
      if (e.status === 403) return new StopRunError('credentials', `OneDrive denied access (403 ${e.code}): check the app's permissions (Files.ReadWrite, or Files.ReadWrite.All for app-only)`);
      return new RetryableError(e.message, e.retryAfterMs);
    }
    return e as Error;
  }

  refuse(item: SourceItem): string | null {
    if (item.size !== null && item.size > MAX_FILE_SIZE) return `OneDrive takes files up to 250 GB; this one has ${item.size} bytes`;
    return null;
  }

  async prepareContainer(item: SourceItem, facts: ItemFacts): Promise<string> {
    const rootSegs = this.config.root.split('/').filter(Boolean).map(encodeName);
    const segs = [...rootSegs, ...containerFor(this.config.layout, item, facts)];
    const p = segs.map((s) => `/${s}`).join('');
    await this.ensureFolder(p);
    return p;
  }

  /** Creates every folder on the way, idempotently; ids are kept in the state store. */
  private ensureFolder(p: string): Promise<string> {
    if (!p) return Promise.resolve('root');
    const key = p.toLowerCase();
    const cached = this.ctx.store.get<string>(`folder:${this.drivePrefix}:${key}`);
    if (cached) return Promise.resolve(cached);
    let pending = this.folders.get(key);
    if (!pending) {
      pending = this.createFolder(p).then(
        (id) => {
          this.ctx.store.set(`folder:${this.drivePrefix}:${key}`, id);
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
    const found = await this.getByPath(p);
    if (found) {
      if (!found.folder) throw new RejectedError(`a file named ${p} is in the way of the folder OneDrive needs there`);
      return found.id;
    }
    await this.ensureFolder(parent);
    try {
      const created = await this.http.api<DriveItem>('post', `${parent ? this.pathAddr(parent) : `${this.drivePrefix}/root`}/children`, {
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
  private targetPath(input: Pick<UploadInput, 'item' | 'container' | 'name'>): string {
    const override = this.ctx.store.get<{ container: string; name: string }>(`rename:${input.item.id}`);
    if (override && override.container === input.container) return `${input.container}/${override.name}`;
    let name = encodeName(input.name);
    const fitted = fitPath(input.container, name, sha1hex);
    if (fitted !== name) {
      this.ctx.log.warn(`the name of item ${input.item.id} is too long for OneDrive's 400-character path limit; it is stored as ${fitted}`);
      name = fitted;
    }
    return `${input.container}/${name}`;
  }

  async findExisting(input: Omit<UploadInput, 'body' | 'session' | 'signal'>, hashes: Partial<Hashes> | null) {
    if (!hashes?.quickXor || hashes.size === undefined) return null;
    const p = this.targetPath(input);
    const found = await this.getByPath(p);
    const qx = found?.file?.hashes?.quickXorHash;
    if (found && qx === hashes.quickXor && found.size === hashes.size) {
      return { destId: found.id, destPath: p, evidence: { level: 'bytes' as const, detail: `OneDrive already holds ${p} with QuickXorHash ${qx} and size ${found.size}` } };
    }
    return null;
  }

  private async startSession(p: string, input: UploadInput): Promise<SavedSession> {
    const iso = (v: string | null | undefined) => (v && Number.isFinite(Date.parse(v)) ? new Date(Date.parse(v)).toISOString() : null);
    const captured = iso(input.facts.captureTime);
    const modified = iso(input.item.modifiedTime);
    const item: Record<string, unknown> = { '@microsoft.graph.conflictBehavior': 'fail', name: p.slice(p.lastIndexOf('/') + 1) };
    // Dates go in now: setting them after the upload would create a second version on Business.
    // Created = the capture time (else the source's modification time); modified = the source's.
    if (captured || modified) item.fileSystemInfo = { createdDateTime: captured ?? modified, lastModifiedDateTime: modified ?? captured };
    try {
      const s = await this.http.createUploadSession(`${this.pathAddr(p)}/createUploadSession`, { item });
      const saved: SavedSession = { v: 1, url: s.url, expiry: s.expiry.toISOString(), createdAt: Date.now(), path: p, size: input.size };
      // Saved before the first fragment: a kill from here on resumes this session.
      input.session.save(saved);
      return saved;
    } catch (e) {
      if (e instanceof GraphHttpError && e.status === 409) {
        // Some tenants check the name when the session is created: resolve it at commit instead.
        throw new RetryableError(`OneDrive says ${p} exists already; it will be compared at commit`);
      }
      throw this.classify(e);
    }
  }

  /** Asks an upload session where it stands; null when it is gone (404, expired, tempauth dead). */
  private async sessionOffset(url: string): Promise<number | null> {
    const r = await this.http.uploadRequest('GET', url);
    if (r.status === 200) return nextOffset(r.json.nextExpectedRanges);
    if (r.status === 404 || r.status === 401 || r.status === 410) return null;
    throw new RetryableError(`asking an upload session for its state answered ${r.status}`);
  }

  private async dropSession(url: string): Promise<void> {
    try {
      await this.http.uploadRequest('DELETE', url);
    } catch (e) {
      this.ctx.log.debug(`could not cancel an old upload session: ${reason(e)}`);
    }
  }

  /** Sends one fragment; resolves when the service holds it (asking the session after 416 or a lost answer). */
  private async sendFragment(url: string, buf: Buffer, start: number, total: number, signal: AbortSignal): Promise<number> {
    let sent = 0;
    for (let round = 1; round <= 6; round++) {
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      const r = await this.http.uploadRequest('PUT', url, buf, { start, total });
      if (r.status === 202 || r.status === 200 || r.status === 201) return sent + buf.length;
      if (r.status === 507) throw new StopRunError('destination-full', 'OneDrive is full (507): free space or buy storage, then run again to resume');
      if (r.status === 404 || r.status === 401) throw new SessionGone(`upload session gone (${r.status})`);
      if (r.status === 416 || r.status === 0) {
        if (r.status === 0) sent += buf.length; // it may or may not have arrived: count it
        const at = await this.sessionOffset(url);
        if (at === null) throw new SessionGone('upload session gone');
        if (at >= start + buf.length) return sent;
        if (at === start) continue;
        throw new RetryableError(`the upload session expects byte ${at}, not ${start}; the upload starts over from there`);
      }
      throw new RetryableError(`an upload fragment was refused (${r.status} ${String((r.json.error as { code?: string } | undefined)?.code ?? '')})`);
    }
    throw new RetryableError('an upload fragment was not accepted after 6 rounds');
  }

  async upload(input: UploadInput): Promise<Staged> {
    const p = this.targetPath(input);
    const size = input.size;
    const hid = crypto.randomUUID();
    if (size === 0) {
      for await (const _ of input.body) void _; // consume (nothing to send: empty files use the simple PUT at commit)
      return { handle: { v: 1, id: hid, path: p, size: 0, finalStart: 0, url: null, itemId: input.item.id } satisfies Handle, bytesSent: 0 };
    }
    // No lookup of the name first: it would cost a request per item for a rare case. A name
    // taken by other bytes shows up as 409 at commit (see resolveConflict).
    const target = p;
    let saved = input.session.load<SavedSession>();
    let offset = 0;
    if (saved && (saved.v !== 1 || saved.path !== target || saved.size !== size || Date.now() - saved.createdAt > this.config.maxSessionAgeMs)) {
      await this.dropSession(saved.url);
      input.session.clear();
      saved = null;
    }
    if (saved) {
      let at: number | null;
      try {
        at = await this.sessionOffset(saved.url);
      } catch (e) {
        if (e instanceof StopRunError) throw e;
        // Unreachable after our retries (a moved emulator, a dead upload host): the bytes are
        // still at the source, so a new session costs time, never data.
        this.ctx.log.debug(`the saved upload session did not answer (${reason(e)}); starting a new one`);
        at = null;
      }
      if (at === null || at >= size) {
        input.session.clear();
        saved = null;
        // Gone, perhaps because its last fragment landed just before a kill: if a file of this
        // size now holds the name, read the body through without sending it and let commit()
        // compare hashes instead of uploading everything again.
        const there = await this.getByPath(target);
        if (there && !there.folder && there.size === size) {
          for await (const _ of input.body) void _;
          return { handle: { v: 1, id: hid, path: target, size, finalStart: size, url: null, itemId: input.item.id, existingId: there.id } satisfies Handle, bytesSent: 0 };
        }
      } else offset = at;
    }
    if (!saved) saved = await this.startSession(target, input);
    const session = saved;
    const chunk = this.config.chunkSize;
    const finalStart = finalStartOf(offset, size);

    let pos = 0; // bytes of the body seen so far
    let fragStart = offset;
    let frag: Buffer | null = null;
    let fill = 0;
    let bytesSent = 0;
    let inflight: Promise<number> | null = null;
    const newFrag = () => {
      frag = Buffer.allocUnsafe(fragStart < finalStart ? Math.min(chunk, finalStart - fragStart) : size - fragStart);
      fill = 0;
    };
    try {
      for await (const piece of input.body as AsyncIterable<Buffer>) {
        let data = piece;
        if (pos + data.length <= offset) {
          pos += data.length; // the session has these already
          continue;
        }
        if (pos < offset) {
          data = data.subarray(offset - pos);
          pos = offset;
        }
        while (data.length > 0) {
          if (pos >= size) throw new RetryableError(`the source delivered more than the ${size} bytes it declared`);
          if (!frag) newFrag();
          const f = frag!;
          const take = Math.min(data.length, f.length - fill);
          data.copy(f, fill, 0, take);
          fill += take;
          pos += take;
          data = data.subarray(take);
          if (fill === f.length && fragStart < finalStart) {
            if (inflight) bytesSent += await inflight;
            const start = fragStart;
            inflight = this.sendFragment(session.url, f, start, size, input.signal).then((n) => {
              session.expiry = new Date(Date.now() + 10 * 60_000).toISOString();
              return n;
            });
            inflight.catch(() => undefined);
            fragStart += f.length;
            frag = null;
          }
        }
      }
      if (inflight) bytesSent += await inflight;
      inflight = null;
    } catch (e) {
      if (inflight) await (inflight as Promise<number>).catch(() => undefined);
      if (e instanceof SessionGone) {
        input.session.clear();
        throw new RetryableError('the upload session expired or was lost; the item will be uploaded again with a new session');
      }
      throw e;
    }
    if (pos !== size || !frag || fill !== (frag as Buffer).length || fragStart !== finalStart) {
      throw new RetryableError(`the source delivered ${pos} bytes, not the ${size} it declared`);
    }
    this.finals.set(hid, frag);
    const handle: Handle = { v: 1, id: hid, path: target, size, finalStart, url: session.url, itemId: input.item.id };
    return { handle, bytesSent };
  }

  canCommitLater(handle: unknown): boolean {
    const h = handle as Handle | null;
    if (!h || h.v !== 1) return false;
    return h.size === 0 || Boolean(h.existingId) || this.finals.has(h.id);
  }

  async abort(staged: Staged): Promise<void> {
    const h = staged.handle as Handle;
    this.finals.delete(h.id);
    if (h.url) await this.dropSession(h.url);
  }

  async commit(requests: CommitRequest[]): Promise<CommitResult[]> {
    const results = await Promise.allSettled(requests.map((r) => this.commitOne(r)));
    const stop = results.find((r) => r.status === 'rejected' && r.reason instanceof StopRunError);
    if (stop) throw (stop as PromiseRejectedResult).reason;
    return results.map((r) => (r.status === 'fulfilled' ? r.value : { outcome: 'error', error: r.reason instanceof Error ? r.reason : new Error(reason(r.reason)) }));
  }

  private createdResult(item: DriveItem, h: Handle): CommitResult {
    if (typeof item.size === 'number' && item.size !== h.size) {
      return { outcome: 'error', error: new RetryableError(`OneDrive created ${h.path} with ${item.size} bytes, not ${h.size}`) };
    }
    this.ctx.store.delete(`rename:${h.itemId}`);
    return { outcome: 'created', destId: item.id, destPath: h.path };
  }

  private async commitOne(req: CommitRequest): Promise<CommitResult> {
    const h = req.staged.handle as Handle;
    if (h.size === 0) {
      try {
        const item = await this.http.api<DriveItem>('put', `${this.pathAddr(h.path)}/content?@microsoft.graph.conflictBehavior=fail`, Buffer.alloc(0), {
          'Content-Type': 'application/octet-stream',
        });
        return this.createdResult(item, h);
      } catch (e) {
        if (e instanceof GraphHttpError && e.status === 409) return this.resolveConflict(req, h);
        throw this.classify(e);
      }
    }
    if (h.existingId) {
      // The bytes were not sent: the file at the path is this item's if its hash says so.
      const found = await this.getByPath(h.path);
      const qx = found?.file?.hashes?.quickXorHash;
      if (found && !found.folder && found.size === h.size && qx === req.hashes.quickXor) return this.createdResult(found, h);
      if (found && !found.folder && found.size === h.size && !qx) {
        return { outcome: 'error', error: new RetryableError(`${h.path} exists but OneDrive has no hash for it yet`, this.config.hashRetryMs) };
      }
      return this.resolveConflict(req, h);
    }
    const buf = this.finals.get(h.id);
    if (!buf || !h.url) {
      return { outcome: 'error', error: new RetryableError('the last fragment of this upload is no longer in memory; the upload resumes from the saved session') };
    }
    for (let round = 1; round <= 6; round++) {
      const r = await this.http.uploadRequest('PUT', h.url, buf, { start: h.finalStart, total: h.size });
      if (r.status === 200 || r.status === 201) {
        this.finals.delete(h.id);
        return this.createdResult(r.json as unknown as DriveItem, h);
      }
      if (r.status === 409) {
        this.finals.delete(h.id);
        return this.resolveConflict(req, h);
      }
      if (r.status === 507) throw new StopRunError('destination-full', 'OneDrive is full (507): free space or buy storage, then run again to resume');
      if (r.status === 416 || r.status === 0 || r.status === 404 || r.status === 401) {
        // The last fragment may have landed while its answer was lost: then the session is
        // gone and the file exists. Ask the session first, then the drive.
        const at = r.status === 404 || r.status === 401 ? null : await this.sessionOffset(h.url);
        if (at === h.finalStart) continue;
        const found = await this.getByPath(h.path);
        const qx = found?.file?.hashes?.quickXorHash;
        if (found && !found.folder && found.size === h.size && qx === req.hashes.quickXor) {
          this.finals.delete(h.id);
          return this.createdResult(found, h);
        }
        if (found && !qx && found.size === h.size) {
          return { outcome: 'error', error: new RetryableError(`${h.path} exists but OneDrive has no hash for it yet`, this.config.hashRetryMs) };
        }
        this.finals.delete(h.id);
        return { outcome: 'error', error: new RetryableError('the upload session was lost before the last fragment; the item will be uploaded again') };
      }
      return { outcome: 'error', error: new RetryableError(`the last fragment was refused (${r.status} ${String((r.json.error as { code?: string } | undefined)?.code ?? '')})`) };
    }
    return { outcome: 'error', error: new RetryableError('the last fragment was not accepted after 6 rounds') };
  }

  /** 409 nameAlreadyExists: the same bytes are a duplicate; other bytes get the next free "name (n).ext". */
  private async resolveConflict(req: CommitRequest, h: Handle): Promise<CommitResult> {
    if (h.url) await this.dropSession(h.url);
    const folder = h.path.slice(0, h.path.lastIndexOf('/'));
    const original = h.path.slice(h.path.lastIndexOf('/') + 1);
    const base = original.replace(/ \((\d+)\)(\.[^.]*)?$/, '$2');
    for (let n = 1; n < 1000; n++) {
      const candidate = n === 1 ? original : numberedName(base, n);
      const p = `${folder}/${candidate}`;
      const found = await this.getByPath(p);
      if (!found) {
        this.ctx.store.set(`rename:${h.itemId}`, { container: folder, name: candidate });
        this.ctx.log.info(`${h.path} holds other bytes at OneDrive; the item goes to ${p}`);
        return { outcome: 'error', error: new RetryableError(`${h.path} holds other bytes; the item will be uploaded as ${candidate}`, 0) };
      }
      if (found.folder) continue;
      const qx = found.file?.hashes?.quickXorHash;
      if (!qx) return { outcome: 'error', error: new RetryableError(`${p} exists but OneDrive has no hash for it yet`, this.config.hashRetryMs) };
      if (qx === req.hashes.quickXor && found.size === req.hashes.size) {
        this.ctx.store.delete(`rename:${h.itemId}`);
        return {
          outcome: 'duplicate',
          destId: found.id,
          destPath: p,
          evidence: { level: 'bytes', detail: `OneDrive already holds ${p} with the same QuickXorHash ${qx} and size ${found.size}` },
        };
      }
    }
    return { outcome: 'error', error: new RejectedError(`no free name for ${h.path} after 999 tries`) };
  }

  async verify(requests: VerifyRequest[]): Promise<VerifyResult[]> {
    return Promise.all(requests.map((r) => this.verifyOne(r)));
  }

  private async verifyOne(r: VerifyRequest): Promise<VerifyResult> {
    let item: DriveItem;
    try {
      item = await this.http.api<DriveItem>('get', `${this.drivePrefix}/items/${encodeURIComponent(r.destId)}`);
    } catch (e) {
      if (e instanceof GraphHttpError && e.status === 404) return { outcome: 'mismatch', reason: `OneDrive has no item ${r.destPath ?? r.destId} any more` };
      if (e instanceof StopRunError) throw e;
      return { outcome: 'error', error: this.classify(e) };
    }
    const qx = item.file?.hashes?.quickXorHash;
    if (!item.file) return { outcome: 'mismatch', reason: `${r.destPath ?? r.destId} is not a file at OneDrive` };
    if (!qx) return { outcome: 'pending', retryAfterMs: this.config.hashRetryMs, reason: 'OneDrive has not computed the QuickXorHash yet' };
    if (item.size !== r.size || item.size !== r.hashes.size) return { outcome: 'mismatch', reason: `OneDrive holds ${item.size} bytes, the source ${r.size}` };
    if (qx !== r.hashes.quickXor) return { outcome: 'mismatch', reason: `OneDrive's QuickXorHash ${qx} differs from the streamed ${r.hashes.quickXor}` };
    return {
      outcome: 'verified',
      evidence: { level: 'bytes', detail: `OneDrive reports QuickXorHash ${qx} and size ${item.size} for ${r.destPath ?? r.destId}, equal to the hash computed while streaming the source` },
    };
  }

  async capacity(): Promise<CapacityInfo> {
    try {
      const d = await this.http.api<{ driveType?: string; quota?: { remaining?: number; total?: number; used?: number; state?: string } }>('get', this.drivePrefix);
      const notes = [];
      if (d.quota?.state && d.quota.state !== 'normal') notes.push({ message: `OneDrive quota state is "${d.quota.state}"` });
      notes.push({ message: `OneDrive documents about 3,000 requests per 5 minutes and 50 GB of uploads per hour per user; this run is paced to ${this.config.userRequestsPer5Min || 'no limit of'} requests per 5 minutes (about 3 per photo)` });
      return { remainingBytes: typeof d.quota?.remaining === 'number' ? d.quota.remaining : null, requestBudget: null, notes };
    } catch (e) {
      throw this.classify(e);
    }
  }

  async close(): Promise<void> {
    this.finals.clear();
    this.http.close();
  }
}
