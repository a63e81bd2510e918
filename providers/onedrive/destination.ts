// The OneDrive destination: every non-empty file through an upload session, the last fragment
// held back until the engine has checked the bytes, QuickXorHash as evidence.
//
// Life of one item:
//   upload():  find or create the session (saved in the state store before the first fragment),
//              ask an old session where it stands (nextExpectedRanges) and skip what it has,
//              send every fragment but the last; keep the last (<= chunk size) in memory.
//   commit():  send the last fragment: OneDrive creates the file.
//   abort():   DELETE the upload URL (bytes that did not match what the source declared).
//   verify():  the driveItem's hashes and size against what was streamed.
//
// A name already taken is resolved the same way wherever OneDrive says so: at session creation
// (Business checks `fail` there) or at the last fragment (Personal checks it there). The file
// that holds the name is never touched:
//   - same bytes (see `bytes` below): the item is already there: `skipped`, with that evidence;
//   - other bytes: the item goes to "name (2).ext", then "(3)"..., the first free or same-bytes one.
// Names are compared case-insensitively, as both flavors do: IMG_1.JPG and img_1.jpg collide.
//
// What the `bytes` evidence proves here, exactly: OneDrive reports, for the stored file, the
// same size and the same QuickXorHash as the engine computed while streaming the source bytes;
// and when the driveItem also carries sha256Hash (OneDrive personal, on some files), it equals
// the streamed SHA-256 too, as does sha1Hash when the run computed SHA-1 (the source declared
// one; `hashes` below asks only for QuickXorHash, as sha1Hash is deprecated and rare). QuickXorHash is not a cryptographic
// hash: it XORs each byte in at a position that repeats every 160 bytes, so two 160-byte
// aligned blocks that trade places give the same hash. `bytes` therefore rules out truncation,
// padding, a corrupted or missing range and a different file, not a deliberate swap of aligned
// blocks; where OneDrive offers a SHA hash, that is ruled out too.
//
// Session options, each used where it makes a run safer or faster:
// - fileSize (Personal only, per the reference): OneDrive personal answers 507 at session
//   creation when the file cannot fit, before any byte is sent, instead of at the last fragment.
// - deferCommit is not used: holding the last fragment back (at most 320 KiB) already makes
//   commit a step of its own on both flavors, so it would save at most 320 KiB resent after a
//   kill, while how a deferred session answers a name conflict or expiry at its commit is not
//   documented well enough to rely on for deciding whether a file exists.
//
// Beside this file: drive.ts (folders, paths and names in the drive), upload-session.ts (the
// session protocol), claims.ts (the per-name lock of one process), evidence.ts (sameBytes).

import crypto from 'node:crypto';
import { Pacer } from '../../src/lib/pacer.ts';
import { reason } from '../../src/lib/redact.ts';
import { SignalFanOut } from '../../src/lib/signals.ts';
import {
  RejectedError,
  RetryableError,
  StopRunError,
  type CapacityInfo,
  type CommitRequest,
  type CommitResult,
  type DatingRule,
  type DestinationLimits,
  type Destination,
  type ItemFacts,
  type PlanNote,
  type ProviderContext,
  type SourceItem,
  type Staged,
  type UploadInput,
  type VerifyRequest,
  type VerifyResult,
} from '../types.ts';
import { NameClaims } from './claims.ts';
import { Drive } from './drive.ts';
import { type DriveItem, sameBytes } from './evidence.ts';
import { GraphHttp, GraphHttpError, type TokenSource } from './graph.ts';
import { NameTaken, type SavedSession, UploadSessions, finalStartOf, validateChunkSize } from './upload-session.ts';

export { DEFAULT_MAX_WAIT_MS } from './graph.ts';
export { DEFAULT_CHUNK, MAX_SESSION_AGE_MS, validateChunkSize } from './upload-session.ts';

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
  /**
   * commit() and verify() calls at once (default 1). Each item's commit and verification is a
   * request of its own, so batches only group them: the run's --concurrency in flight keeps the
   * latency of those requests filled, as it does for the uploads.
   */
  callsInFlight?: number;
  /** --embed-dates: also write the capture date into JPEG/MP4 files that lack one. */
  embedDates?: boolean;
  /** Delay before asking again for a hash that is not there yet. */
  hashRetryMs: number;
  maxSessionAgeMs: number;
  /** The longest throttling pause worth waiting out; a longer one stops the run (exit 4). */
  maxWaitMs?: number;
  /** --until: no wait may run past it. */
  until?: Date | null;
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
  /** OneDrive refused the session because a file of the same size holds the name: compare at commit. */
  nameTaken?: boolean;
}

export class OneDriveDestination implements Destination {
  readonly kind = 'onedrive';
  readonly identity: string;
  /** OneDrive's photo views date an undated file by its fileSystemInfo, which is set from the capture time. */
  readonly dating: DatingRule;
  readonly limits: Partial<DestinationLimits>;
  /**
   * A commit sent again for bytes already committed finds them: the saved session (durable before
   * any byte) is gone, the file of that size holds the name, and commit compares hashes instead
   * of sending (test/onedrive-adapter: "killed right after the last fragment"); without a saved
   * session, conflictBehavior "fail" refuses the name and the same bytes there are the item. So
   * the engine may write the record of a commit behind, instead of a SQLite COMMIT per photo on
   * the run's thread.
   */
  readonly idempotentCommit = true;
  /** OneDrive proves content by its QuickXorHash; SHA-1 is computed only where the source declares one. */
  readonly hashes = ['quickXor'] as const;
  readonly http: GraphHttp;
  readonly drivePrefix: string;
  /** Last fragments held back until commit, by handle id. */
  private readonly finals = new Map<string, Buffer>();
  private readonly drive: Drive;
  /** The per-name lock: one upload of this process per target name at a time. */
  private readonly claims = new NameClaims();
  private readonly sessions: UploadSessions;
  /** Aborted by the run's stop or a throttling stop: every wait of this destination ends. */
  private readonly stop = new AbortController();
  /** An upload's signal: the item's and the stop's, one listener on the stop for all of them. */
  private readonly waits = new SignalFanOut(this.stop.signal);
  private untilTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly config: OneDriveConfig,
    tokens: TokenSource,
    private readonly ctx: Pick<ProviderContext, 'store' | 'log' | 'account'> & { signal?: AbortSignal },
  ) {
    validateChunkSize(config.chunkSize);
    this.dating = config.embedDates === true ? 'metadata-and-file' : 'metadata';
    const pacers = [new Pacer({ maxRequests: config.userRequestsPer5Min || undefined, windowMs: 300_000 })];
    if (config.appRequestsPerMinute > 0) pacers.push(new Pacer({ maxRequests: config.appRequestsPerMinute, windowMs: 60_000 }));
    const halt = () => this.stop.abort(new Error('the run is stopping'));
    if (ctx.signal?.aborted) halt();
    ctx.signal?.addEventListener('abort', halt, { once: true });
    if (config.until instanceof Date) {
      this.untilTimer = setTimeout(halt, Math.max(0, config.until.getTime() - Date.now()));
      this.untilTimer.unref();
    }
    this.http = new GraphHttp({
      baseUrl: config.baseUrl,
      tokens,
      pacers,
      log: (m) => ctx.log.debug(m),
      signal: this.stop.signal,
      maxWaitMs: config.maxWaitMs,
      until: config.until ?? null,
    });
    this.sessions = new UploadSessions(this.http, ctx.log);
    this.drivePrefix = config.user ? `/users/${encodeURIComponent(config.user)}/drive` : '/me/drive';
    this.drive = new Drive(this.http, this.drivePrefix, config, ctx, this.stop);
    // The account is part of it: the same path in another person's drive is another destination.
    this.identity = `onedrive:${ctx.account}:${config.user ?? 'me'}:${config.root || '/'}`;
    const calls = Math.max(1, Math.floor(config.callsInFlight ?? 1));
    this.limits = {
      commitBatch: config.commitBatchSize,
      commitConcurrency: Math.max(1, Math.ceil(calls / config.commitBatchSize)),
      verifyBatch: config.verifyBatchSize,
      verifyConcurrency: Math.max(1, Math.ceil(calls / config.verifyBatchSize)),
    };
  }

  refuse(item: SourceItem): string | null {
    if (item.size !== null && item.size > MAX_FILE_SIZE) return `OneDrive takes files up to 250 GB; this one has ${item.size} bytes`;
    return null;
  }

  /** The drive's facts, asked as the run starts rather than by its first item (see Drive.askEarly). */
  askEarly(): void {
    this.drive.askEarly();
  }

  prepareContainer(item: SourceItem, facts: ItemFacts): Promise<string> {
    return this.drive.container(item, facts);
  }

  private async startSession(p: string, input: UploadInput): Promise<SavedSession> {
    const iso = (v: string | null | undefined) => (v && Number.isFinite(Date.parse(v)) ? new Date(Date.parse(v)).toISOString() : null);
    const captured = iso(input.facts.captureTime);
    const modified = iso(input.item.modifiedTime);
    const item: Record<string, unknown> = { '@microsoft.graph.conflictBehavior': 'fail', name: p.slice(p.lastIndexOf('/') + 1) };
    // Dates go in now: setting them after the upload would create a second version on Business.
    // Both are the capture time when there is one (OneDrive's photo views date undated files by
    // them), else the source's modification time.
    if (captured || modified) item.fileSystemInfo = { createdDateTime: captured ?? modified, lastModifiedDateTime: captured ?? modified };
    // description and fileSize are Personal properties (the reference); Business is not sent them.
    // fileSize: a file that cannot fit is refused with 507 before any byte is sent.
    if ((await this.drive.facts()).flavor === 'personal') {
      const description = input.item.description?.trim();
      if (description) item.description = description.slice(0, 1024);
      item.fileSize = input.size;
    }
    try {
      const s = await this.http.createUploadSession(`${this.drive.pathAddr(p)}/createUploadSession`, { item });
      const saved: SavedSession = { v: 1, url: s.url, expiry: s.expiry.toISOString(), createdAt: Date.now(), path: p, size: input.size };
      // Saved before the first fragment: a kill from here on resumes this session. A file that
      // fits in its last fragment (up to 320 KiB) sends no byte before commit(), so its session
      // is written behind: saved durably, it was a COMMIT on the run's thread for every such file.
      if (finalStartOf(0, input.size) === 0 && input.session.saveBehind) input.session.saveBehind(saved);
      else input.session.save(saved);
      return saved;
    } catch (e) {
      if (e instanceof GraphHttpError && e.status === 409) throw new NameTaken(p);
      throw this.drive.classify(e);
    }
  }

  /**
   * Opens a session for the first usable name from p on. Business refuses a taken name here
   * (409): a file of another size holds other bytes, so the next numbered name is tried at once;
   * one of the same size is compared by hash at commit (the bytes are hashed on the way there).
   */
  private async openSession(
    p: string,
    input: UploadInput,
    signal: AbortSignal,
    held: { release: () => void },
  ): Promise<{ session: SavedSession } | { taken: DriveItem; path: string }> {
    for (let n = 1; n < 1000; n++) {
      const candidate = await this.drive.candidatePath(p, n);
      if (n > 1) {
        // Another upload of this run may be heading for the same numbered name: wait for it
        // rather than meet its open session (which Business refuses for 15 minutes).
        const next = await this.claims.claim(candidate, input.item.id, signal);
        held.release();
        held.release = next;
      }
      try {
        const session = await this.startSession(candidate, input);
        if (candidate !== p) this.drive.remember(input.item.id, candidate);
        return { session };
      } catch (e) {
        if (!(e instanceof NameTaken)) throw e;
      }
      const found = await this.drive.getByPath(candidate);
      if (!found) {
        // Nothing holds the name: a session of its own is still open for the path (Business
        // answers 409 then), left by a run killed before it could save the upload URL. It
        // expires after about 15 minutes without data.
        throw new RetryableError(
          `OneDrive still has an unfinished upload for ${candidate} (an interrupted earlier run?); it expires after about 15 minutes, and the item is retried then`,
          5 * 60_000,
        );
      }
      if (!found.folder && found.size === input.size) {
        if (candidate !== p) this.drive.remember(input.item.id, candidate);
        return { taken: found, path: candidate };
      }
    }
    throw new RejectedError(`no free name for ${p} after 999 tries`, 'refused-by-destination');
  }

  /** Reads the body to its end without sending it: the engine hashes it on the way, for commit to compare. */
  private async readThrough(input: UploadInput, handle: Handle): Promise<Staged> {
    for await (const _ of input.body) void _;
    return { handle };
  }

  async upload(input: UploadInput): Promise<Staged> {
    const waits = this.waits.childWith(input.signal);
    try {
      return await this.uploadWith(input, waits.signal);
    } finally {
      waits.release();
    }
  }

  /** upload() with a signal aborted by the item's or the destination's stop. */
  private async uploadWith(input: UploadInput, signal: AbortSignal): Promise<Staged> {
    const target = await this.drive.targetPath(input);
    const size = input.size;
    const hid = crypto.randomUUID();
    if (size === 0) {
      // Nothing to send: empty files use the simple PUT at commit.
      return this.readThrough(input, { v: 1, id: hid, path: target, size: 0, finalStart: 0, url: null, itemId: input.item.id });
    }
    const held = { release: await this.claims.claim(target, input.item.id, signal) };
    try {
      // No lookup of the name first: it would cost a request per item for a rare case. A taken
      // name shows up as 409 at session creation (Business) or at the last fragment (Personal).
      let saved = input.session.load<SavedSession>();
      let offset = 0;
      if (saved && (saved.v !== 1 || saved.path !== target || saved.size !== size || Date.now() - saved.createdAt > this.config.maxSessionAgeMs)) {
        await this.sessions.drop(saved.url);
        input.session.clear();
        saved = null;
      }
      if (saved) {
        let at: number | null;
        try {
          at = await this.sessions.offset(saved.url, signal);
        } catch (e) {
          if (e instanceof StopRunError || signal.aborted) throw e;
          // Unreachable after our retries: cancel it anyway (best effort) before opening another,
          // or Business refuses the new one for the same path until the old one expires.
          this.ctx.log.debug(`the saved upload session did not answer (${reason(e)}); cancelling it and starting a new one`);
          await this.sessions.drop(saved.url);
          at = null;
        }
        if (at === null || at >= size) {
          input.session.clear();
          saved = null;
          // Gone, perhaps because its last fragment landed just before a kill: if a file of this
          // size now holds the name, read the body through without sending it and let commit()
          // compare hashes instead of uploading everything again.
          const there = await this.drive.getByPath(target);
          if (there && !there.folder && there.size === size) {
            return await this.readThrough(input, {
              v: 1,
              id: hid,
              path: target,
              size,
              finalStart: size,
              url: null,
              itemId: input.item.id,
              existingId: there.id,
            });
          }
        } else offset = at;
      }
      if (!saved) {
        const opened = await this.openSession(target, input, signal, held);
        if ('taken' in opened) {
          return await this.readThrough(input, {
            v: 1,
            id: hid,
            path: opened.path,
            size,
            finalStart: size,
            url: null,
            itemId: input.item.id,
            existingId: opened.taken.id,
            nameTaken: true,
          });
        }
        saved = opened.session;
      }
      const staged = await this.sendAllButLast(input, saved, offset, hid, signal);
      // The claim stays until commit() or abort() settles the name.
      return staged;
    } catch (e) {
      held.release();
      throw e;
    }
  }

  /** One fragment through the session protocol (upload-session.ts); the adapter tests drive it directly. */
  private sendFragment(url: string, buf: Buffer, start: number, total: number, signal: AbortSignal): Promise<number> {
    return this.sessions.sendFragment(url, buf, start, total, signal);
  }

  /** Sends all but the last fragment; the last is kept for commit(), or the name was refused on the way. */
  private async sendAllButLast(input: UploadInput, session: SavedSession, offset: number, hid: string, signal: AbortSignal): Promise<Staged> {
    const size = input.size;
    const { last, finalStart } = await this.sessions.sendAllButLast(input, session, offset, this.config.chunkSize, signal);
    if (!last) {
      return { handle: { v: 1, id: hid, path: session.path, size, finalStart: size, url: null, itemId: input.item.id, nameTaken: true } satisfies Handle };
    }
    this.finals.set(hid, last);
    const handle: Handle = { v: 1, id: hid, path: session.path, size, finalStart, url: session.url, itemId: input.item.id };
    return { handle };
  }

  canCommitLater(handle: unknown): boolean {
    const h = handle as Handle | null;
    if (h?.v !== 1) return false;
    return h.size === 0 || Boolean(h.existingId) || Boolean(h.nameTaken) || this.finals.has(h.id);
  }

  async abort(staged: Staged): Promise<void> {
    const h = staged.handle as Handle;
    this.finals.delete(h.id);
    this.claims.release(h.path, h.itemId);
    if (h.url) await this.sessions.drop(h.url);
  }

  async commit(requests: CommitRequest[]): Promise<CommitResult[]> {
    const results = await Promise.allSettled(
      requests.map((r) => {
        const h = r.staged.handle as Handle;
        return this.commitOne(r).finally(() => this.claims.release(h.path, h.itemId));
      }),
    );
    const stop = results.find((r) => r.status === 'rejected' && r.reason instanceof StopRunError);
    if (stop) throw (stop as PromiseRejectedResult).reason;
    return results.map((r) =>
      r.status === 'fulfilled' ? r.value : { outcome: 'error', error: r.reason instanceof Error ? r.reason : new Error(reason(r.reason)) },
    );
  }

  private createdResult(item: DriveItem, h: Handle): CommitResult {
    if (typeof item.size === 'number' && item.size !== h.size) {
      return { outcome: 'error', error: new RetryableError(`OneDrive created ${h.path} with ${item.size} bytes, not ${h.size}`) };
    }
    this.drive.forget(h.itemId);
    return { outcome: 'created', destId: item.id, destPath: h.path };
  }

  private async commitOne(req: CommitRequest): Promise<CommitResult> {
    const h = req.staged.handle as Handle;
    if (h.size === 0) {
      try {
        const item = await this.http.api<DriveItem>('put', `${this.drive.pathAddr(h.path)}/content?@microsoft.graph.conflictBehavior=fail`, Buffer.alloc(0), {
          'Content-Type': 'application/octet-stream',
        });
        return this.createdResult(item, h);
      } catch (e) {
        if (e instanceof GraphHttpError && e.status === 409) return this.resolveConflict(req, h);
        throw this.drive.classify(e);
      }
    }
    if (h.nameTaken) return this.resolveConflict(req, h);
    if (h.existingId) {
      // The bytes were not sent: the file at the path is this item's if its hashes say so.
      const found = await this.drive.getByPath(h.path);
      const same = found ? sameBytes(found, req.hashes, h.path) : null;
      if (found && same === 'no-hash')
        return { outcome: 'error', error: new RetryableError(`${h.path} exists but OneDrive has no hash for it yet`, this.config.hashRetryMs) };
      if (found && same) return this.createdResult(found, h);
      return this.resolveConflict(req, h);
    }
    const buf = this.finals.get(h.id);
    if (!buf || !h.url) {
      return {
        outcome: 'error',
        error: new RetryableError('the last fragment of this upload is no longer in memory; the upload resumes from the saved session'),
      };
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
        const at = r.status === 404 || r.status === 401 ? null : await this.sessions.offset(h.url);
        if (at === h.finalStart) continue;
        const found = await this.drive.getByPath(h.path);
        const same = found ? sameBytes(found, req.hashes, h.path) : null;
        if (found && same === 'no-hash') {
          return { outcome: 'error', error: new RetryableError(`${h.path} exists but OneDrive has no hash for it yet`, this.config.hashRetryMs) };
        }
        if (found && same) {
          this.finals.delete(h.id);
          return this.createdResult(found, h);
        }
        this.finals.delete(h.id);
        return { outcome: 'error', error: new RetryableError('the upload session was lost before the last fragment; the item will be uploaded again') };
      }
      return {
        outcome: 'error',
        error: new RetryableError(`the last fragment was refused (${r.status} ${String((r.json.error as { code?: string } | undefined)?.code ?? '')})`),
      };
    }
    return { outcome: 'error', error: new RetryableError('the last fragment was not accepted after 6 rounds') };
  }

  /**
   * A name held by a file, wherever OneDrive said so: the same bytes are the item already there
   * (a duplicate, with that evidence); other bytes send the item to the first numbered name that
   * is free or holds the same bytes. The file holding the name is never touched.
   */
  private async resolveConflict(req: CommitRequest, h: Handle): Promise<CommitResult> {
    if (h.url) await this.sessions.drop(h.url);
    for (let n = 1; n < 1000; n++) {
      const p = await this.drive.candidatePath(h.path, n);
      const found = await this.drive.getByPath(p);
      if (!found) {
        this.drive.remember(h.itemId, p);
        this.ctx.log.info(`${h.path} holds other bytes at OneDrive; the item goes to ${p}`);
        return {
          outcome: 'error',
          error: new RetryableError(`${h.path} holds other bytes; the item will be uploaded as ${p.slice(p.lastIndexOf('/') + 1)}`, 0),
        };
      }
      if (found.folder) continue;
      const same = sameBytes(found, req.hashes, p);
      if (same === 'no-hash')
        return { outcome: 'error', error: new RetryableError(`${p} exists but OneDrive has no hash for it yet`, this.config.hashRetryMs) };
      if (same) {
        this.drive.forget(h.itemId);
        return { outcome: 'duplicate', destId: found.id, destPath: p, evidence: { level: 'bytes', detail: `already there: ${same}` } };
      }
    }
    return { outcome: 'error', error: new RejectedError(`no free name for ${h.path} after 999 tries`, 'refused-by-destination') };
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
      if (e instanceof StopRunError) throw this.drive.classify(e);
      return { outcome: 'error', error: this.drive.classify(e) };
    }
    const where = r.destPath ?? r.destId;
    if (!item.file) return { outcome: 'mismatch', reason: `${where} is not a file at OneDrive` };
    if (item.size !== r.size || item.size !== r.hashes.size) return { outcome: 'mismatch', reason: `OneDrive holds ${item.size} bytes, the source ${r.size}` };
    const same = sameBytes(item, r.hashes, where);
    if (same === 'no-hash') return { outcome: 'pending', retryAfterMs: this.config.hashRetryMs, reason: 'OneDrive has not computed the QuickXorHash yet' };
    if (!same) {
      const h = item.file.hashes ?? {};
      return {
        outcome: 'mismatch',
        reason: `OneDrive's hashes for ${where} (QuickXorHash ${h.quickXorHash}${h.sha256Hash ? `, SHA-256 ${h.sha256Hash}` : ''}${h.sha1Hash ? `, SHA-1 ${h.sha1Hash}` : ''}) differ from the streamed ones`,
      };
    }
    return { outcome: 'verified', evidence: { level: 'bytes', detail: same } };
  }

  async capacity(): Promise<CapacityInfo> {
    const d = await this.drive.facts();
    const q = d.quota;
    const notes: PlanNote[] = [];
    const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;
    if (q && typeof q.remaining === 'number') {
      notes.push({
        message: `OneDrive (${d.flavor}) has ${gb(q.remaining)} free${typeof q.total === 'number' ? ` of ${gb(q.total)}` : ''}`,
        bytes: q.remaining,
      });
    } else notes.push({ message: `OneDrive (${d.flavor}) did not report its free space` });
    if (q?.state && q.state !== 'normal') notes.push({ message: `OneDrive quota state is "${q.state}"` });
    notes.push({
      message: `OneDrive documents about 3,000 requests per 5 minutes and 50 GB of uploads per hour per user; this run is paced to ${this.config.userRequestsPer5Min || 'no limit of'} requests per 5 minutes (about 3 per photo)`,
    });
    return { remainingBytes: typeof q?.remaining === 'number' ? q.remaining : null, requestBudget: null, notes };
  }

  async close(): Promise<void> {
    if (this.untilTimer) clearTimeout(this.untilTimer);
    this.finals.clear();
    this.claims.releaseAll();
    this.http.close();
  }
}
