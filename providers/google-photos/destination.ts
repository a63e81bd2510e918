// The Google Photos destination: refuse what Google will not take, albums created once, uploads
// (raw or resumable), batchCreate of up to 50 tokens per call, and graded verification through
// batchGet and `baseUrl=d` downloads.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  RejectedError,
  RetryableError,
  StopRunError,
  type CapacityInfo,
  type CommitRequest,
  type CommitResult,
  type Destination,
  type ProviderContext,
  type Staged,
  type UploadInput,
  type VerifyRequest,
  type VerifyResult,
} from '../types.ts';
import { backoffDelay } from '../../src/lib/backoff.ts';
import { reason } from '../../src/lib/redact.ts';
import { AmbiguousError, type GoogleApi, googleError } from './client.ts';
import { BodyReader, rawUpload, resumableUpload, type UploadResult } from './upload.ts';
import { captureTime, decodableHere, dimensions, fileHead, fingerprint, fingerprintFile, normalizeMime, pixelDigest, pixelDigestFile, type Fingerprint } from './evidence.ts';
import * as P from './protocol.ts';

export interface GoogleHandle {
  uploadToken: string;
  createdAt: number;
  protocol: 'raw' | 'resumable';
  size: number;
  sha1: string;
}

interface UploadRecord {
  /** Bytes Google itself acknowledged, or null when it said nothing (never assumed). */
  acknowledged: number | null;
  size: number;
  protocol: 'raw' | 'resumable';
  fp: Fingerprint | null;
}

interface AlbumPart {
  id: string;
  title: string;
  count: number;
  full?: boolean;
}

interface MediaItemJson {
  id: string;
  baseUrl?: string;
  mimeType?: string;
  filename?: string;
  mediaMetadata?: { creationTime?: string; width?: string; height?: string; video?: { status?: string } };
}

/** Formats Google Photos does not take although they are media: refused before any byte moves. */
const UNSUPPORTED = new Set(['image/svg+xml', 'image/jxl', 'image/vnd.adobe.photoshop', 'image/x-photoshop', 'video/webm', 'image/x-xcf', 'application/pdf']);
const GENERIC_MIME = new Set(['', 'application/octet-stream', 'binary/octet-stream']);
const TOKEN_COMMIT_WINDOW_MS = 23 * 3600 * 1000;
const MB = 1024 * 1024;
/** Downloads up to this size are judged in memory; larger photos go through a temporary file. */
const IN_MEMORY_DOWNLOAD = 32 * MB;

const numOpt = (v: unknown, dflt: number): number => {
  const n = Number(v);
  return v !== undefined && v !== null && v !== '' && Number.isFinite(n) && n >= 0 ? n : dflt;
};

export class GooglePhotosDestination implements Destination {
  readonly kind = 'google-photos';
  readonly identity: string;
  readonly commitBatchSize = P.MAX_BATCH_CREATE;
  readonly verifyBatchSize = P.MAX_BATCH_GET;
  /** Google dates an item only from the date inside the file, else by its upload. */
  readonly datesBy = 'file' as const;
  readonly embedDates: boolean;
  /** A download (=d) is compared by SHA-1. */
  readonly hashes = ['sha1'] as const;
  private readonly rawThreshold: number;
  private readonly perDay: number;
  private readonly albumLimit: number;
  private readonly videoStuckMs: number;
  private readonly resumableBuffer: number;
  private albumsListed: Map<string, string[]> | null = null;
  private readonly albumFlights = new Map<string, Promise<string>>();
  private readonly reserved = new Map<string, number>();
  private readonly pendingPolls = new Map<string, number>();

  constructor(private readonly api: GoogleApi, private readonly ctx: ProviderContext) {
    const o = ctx.options;
    const env = ctx.env;
    this.embedDates = o.keepBytes !== true;
    this.rawThreshold = numOpt(o.googleRawThreshold ?? env.GOOGLE_PHOTOS_RAW_THRESHOLD, 32 * MB);
    this.perDay = numOpt(o.googleDailyQuota ?? env.GOOGLE_PHOTOS_DAILY_QUOTA, P.DEFAULT_DAILY_QUOTA);
    this.albumLimit = Math.max(1, numOpt(env.GOOGLE_PHOTOS_ALBUM_LIMIT, P.MAX_ALBUM_ITEMS));
    this.resumableBuffer = numOpt(env.GOOGLE_PHOTOS_RESUMABLE_BUFFER_BYTES, 32 * MB);
    this.videoStuckMs = numOpt(env.GOOGLE_PHOTOS_VIDEO_STUCK_HOURS, 24) * 3600 * 1000;
    const host = new URL(api.cfg.baseUrl).host;
    this.identity = host === new URL(P.DEFAULT_BASE_URL).host ? `google-photos:${ctx.account}` : `google-photos:${ctx.account}@${host}`;
  }

  refuse(item: UploadInput['item'], facts: UploadInput['facts']): string | null {
    const size = item.size;
    const mime = normalizeMime(facts.mimeType);
    const video = facts.kind === 'video' || mime.startsWith('video/');
    if (video && size != null && size > P.MAX_VIDEO_BYTES) return `Google Photos takes videos up to 20 GB; this one has ${(size / 1024 ** 3).toFixed(1)} GB`;
    if (!video && size != null && size > P.MAX_PHOTO_BYTES) return `Google Photos takes photos up to 200 MB; this one has ${Math.round(size / MB)} MB`;
    if (UNSUPPORTED.has(mime) || mime.startsWith('audio/')) return `Google Photos does not take ${mime} files`;
    // Anything else goes to Google, which decides by content (it takes RAW formats no sniffer here knows).
    return null;
  }

  // ---- albums ----

  private albumKey(name: string): string {
    return `album:${name}`;
  }

  /** The app-created albums by title, read once per process before any album is created. */
  private async listAlbums(force = false): Promise<Map<string, string[]>> {
    if (this.albumsListed && !force) return this.albumsListed;
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
    this.albumsListed = byTitle;
    return byTitle;
  }

  /** Creates an album at most once: an unclear answer is followed by a look at the album list, never by a blind repeat. */
  private async createAlbum(title: string): Promise<string> {
    const known = (await this.listAlbums()).get(title);
    if (known?.length) return known[0]!;
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        const r = await this.api.call('albums.create', this.api.json('POST', P.PATH_ALBUMS, { album: { title } }), { write: true, repeatable: false });
        if (r.status !== 200) throw new RetryableError(`albums.create: HTTP ${r.status} ${googleError(r).message ?? ''}`);
        const id = (JSON.parse(r.text) as { id?: string }).id;
        if (!id) throw new RetryableError('albums.create: no album id in the answer');
        this.albumsListed?.set(title, [id]);
        return id;
      } catch (err) {
        if (!(err instanceof AmbiguousError)) throw err;
        const found = (await this.listAlbums(true)).get(title);
        if (found?.length) return found[0]!;
      }
    }
    throw new RetryableError(`could not create the album "${title}"`);
  }

  async prepareContainer(item: UploadInput['item']): Promise<string> {
    // Google takes album titles up to 500 characters.
    const name = item.albumName?.trim().slice(0, 480);
    if (!name) return '';
    const running = this.albumFlights.get(name);
    if (running) await running.catch(() => undefined);
    const flight = this.pickAlbum(name);
    this.albumFlights.set(name, flight);
    try {
      return await flight;
    } finally {
      if (this.albumFlights.get(name) === flight) this.albumFlights.delete(name);
    }
  }

  private async pickAlbum(name: string): Promise<string> {
    const key = this.albumKey(name);
    const parts = this.ctx.store.get<AlbumPart[]>(key) ?? [];
    let current = parts[parts.length - 1];
    if (current && !current.full && current.count + (this.reserved.get(current.id) ?? 0) < this.albumLimit) {
      this.reserved.set(current.id, (this.reserved.get(current.id) ?? 0) + 1);
      return current.id;
    }
    const title = parts.length === 0 ? name : `${name} (${parts.length + 1})`;
    const id = await this.createAlbum(title);
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
    const key = this.albumKey(name);
    const parts = this.ctx.store.get<AlbumPart[]>(key) ?? [];
    const part = parts.find((p) => p.id === albumId);
    if (!part) return;
    change(part);
    this.ctx.store.set(key, parts);
  }

  private albumTitle(albumId: string): string | undefined {
    const name = this.ctx.store.get<string>(`albumid:${albumId}`);
    if (name === undefined) return undefined;
    return (this.ctx.store.get<AlbumPart[]>(this.albumKey(name)) ?? []).find((p) => p.id === albumId)?.title;
  }

  private albumCommitted(albumId: string, created: number, attempted: number): void {
    this.reserved.set(albumId, Math.max(0, (this.reserved.get(albumId) ?? 0) - attempted));
    if (created) this.updatePart(albumId, (p) => (p.count += created));
  }

  private markAlbumFull(albumId: string): void {
    this.updatePart(albumId, (p) => (p.full = true));
  }

  // ---- upload ----

  async upload(input: UploadInput): Promise<Staged> {
    const reader = new BodyReader(input.body, input.size);
    const mime = normalizeMime(input.facts.mimeType) || 'application/octet-stream';
    const isImage = input.facts.kind !== 'video' && !mime.startsWith('video/');
    // A photo too large to hold is copied to a temporary file as it goes up, and fingerprinted from there.
    const spill = isImage && input.size > this.rawThreshold ? spillFile() : null;
    if (spill) reader.tap = (b) => void fs.writeSync(spill.fd, b);
    try {
      return await this.uploadWith(input, reader, mime, isImage, spill);
    } finally {
      spill?.dispose();
    }
  }

  private async uploadWith(input: UploadInput, reader: BodyReader, mime: string, isImage: boolean, spill: Spill | null): Promise<Staged> {
    let result: UploadResult;
    let fp: Promise<Fingerprint | null> = Promise.resolve(null);
    if (isImage && input.size <= this.rawThreshold) {
      // The body is read whole by rawUpload; fingerprint it while the request runs.
      const tapped: Buffer[] = [];
      reader.tap = (b) => tapped.push(b);
      const sending = rawUpload(this.api, reader, input.size, mime, input.signal);
      const bytesReady = sending.then(() => Buffer.concat(tapped)).catch(() => null);
      fp = bytesReady.then((b) => (b && b.length > 0 ? fingerprint(b, mime) : null));
      result = await sending;
    } else {
      result = await resumableUpload(this.api, reader, { size: input.size, mimeType: mime, name: input.name, session: input.session, signal: input.signal, bufferBelow: this.resumableBuffer });
      if (spill) {
        fs.closeSync(spill.fd);
        spill.fd = -1;
        fp = fingerprintFile(spill.file, mime);
      }
    }
    const record: UploadRecord = { acknowledged: result.acknowledged, size: input.size, protocol: result.protocol, fp: await fp.catch(() => null) };
    this.ctx.store.set(`up:${result.sha256}`, record);
    const handle: GoogleHandle = { uploadToken: result.uploadToken, createdAt: Date.now(), protocol: result.protocol, size: input.size, sha1: result.sha1 };
    return { handle, bytesSent: result.bytesSent };
  }

  canCommitLater(handle: unknown): boolean {
    const h = handle as Partial<GoogleHandle> | null;
    return !!h && typeof h.uploadToken === 'string' && typeof h.createdAt === 'number' && Date.now() - h.createdAt < TOKEN_COMMIT_WINDOW_MS;
  }

  async abort(): Promise<void> {
    // An upload token that is never committed expires at Google after a day; nothing to undo.
  }

  // ---- commit ----

  async commit(requests: CommitRequest[]): Promise<CommitResult[]> {
    const results: CommitResult[] = new Array(requests.length);
    // One batchCreate per album (the engine already groups; this keeps it true for any caller).
    const groups = new Map<string, number[]>();
    for (const [i, r] of requests.entries()) groups.set(r.input.container, [...(groups.get(r.input.container) ?? []), i]);
    for (const [container, idx] of groups) {
      for (let s = 0; s < idx.length; s += P.MAX_BATCH_CREATE) {
        const part = idx.slice(s, s + P.MAX_BATCH_CREATE);
        const out = await this.commitBatch(container, part.map((i) => requests[i]!));
        for (const [k, i] of part.entries()) results[i] = out[k]!;
      }
    }
    return results;
  }

  private async commitBatch(albumId: string, reqs: CommitRequest[]): Promise<CommitResult[]> {
    const tokens = reqs.map((r) => (r.staged.handle as GoogleHandle).uploadToken);
    const body = {
      ...(albumId ? { albumId } : {}),
      newMediaItems: reqs.map((r, i) => {
        const description = (r.input.item.description ?? '').trim().slice(0, P.MAX_DESCRIPTION - 1);
        return { ...(description ? { description } : {}), simpleMediaItem: { uploadToken: tokens[i], fileName: fileNameFor(r.input.name) } };
      }),
    };
    let r;
    try {
      r = await this.api.call('mediaItems.batchCreate', this.api.json('POST', P.PATH_BATCH_CREATE, body), { write: true });
    } catch (err) {
      if (err instanceof StopRunError) throw err;
      const e = err instanceof RetryableError ? err : new RetryableError(reason(err));
      return reqs.map(() => ({ outcome: 'error', error: e }));
    }
    if (r.status !== 200) {
      const e = googleError(r);
      const msg = `mediaItems.batchCreate: Google answered HTTP ${r.status}: ${e.message ?? ''}`;
      if (albumId && /album/i.test(e.message ?? '')) this.markAlbumFull(albumId);
      const err = r.status === 400 && !/album/i.test(e.message ?? '') ? new RejectedError(msg, 'refused-by-destination') : new RetryableError(msg);
      return reqs.map(() => ({ outcome: 'error', error: err }));
    }
    const parsed = JSON.parse(r.text || '{}') as {
      newMediaItemResults?: Array<{ uploadToken?: string; status?: { code?: number; message?: string }; mediaItem?: MediaItemJson }>;
    };
    const list = parsed.newMediaItemResults ?? [];
    if (list.length !== reqs.length) {
      const err = new RetryableError(`mediaItems.batchCreate answered ${list.length} results for ${reqs.length} items`);
      return reqs.map(() => ({ outcome: 'error', error: err }));
    }
    let created = 0;
    const out = reqs.map((req, i): CommitResult => {
      const res = list.find((x) => x.uploadToken === tokens[i]) ?? list[i]!;
      const code = res.status?.code ?? 0;
      const message = res.status?.message ?? '';
      if (code === 6) {
        // ALREADY_EXISTS, with or without the item: the library held these bytes from another app.
        return inLibrary(res.mediaItem?.id ?? null, `Google answered code 6 "${message || 'ALREADY_EXISTS'}" for these bytes`);
      }
      if (res.mediaItem?.id && code === 0) {
        created++;
        // The album it went into (a full one continues in "Name (2)"): the report shows it.
        const title = albumId ? this.albumTitle(albumId) : undefined;
        return { outcome: 'created', destId: res.mediaItem.id, ...(title ? { destPath: title } : {}) };
      }
      if (code === 3 && GENERIC_FAILURE.test(message) && this.validMedia(req)) {
        // A generic code 3 for bytes that are a sound photo or video is how Google also answers
        // for items already in the library (jiotty-photos-uploader#129): sending them again
        // every run would only burn quota.
        return probablyInLibrary(`Google answered a generic code 3 ("${message}") for a photo or video that is sound here`);
      }
      const text = `Google Photos refused the item: ${message || 'no reason given'} (code ${code})`;
      if (/upload token/i.test(message)) return { outcome: 'error', error: new RetryableError(`${text}; it is uploaded again`) };
      if ([4, 8, 10, 13, 14].includes(code)) return { outcome: 'error', error: new RetryableError(text) };
      return { outcome: 'error', error: new RejectedError(text, 'refused-by-destination') };
    });
    if (albumId) this.albumCommitted(albumId, created, reqs.length);
    return out;
  }

  /** The bytes are media Google takes: a photo that decoded here, or a video whose container was read. */
  private validMedia(req: CommitRequest): boolean {
    const record = this.ctx.store.get<UploadRecord>(`up:${req.hashes.sha256}`);
    if (record?.fp?.pixels) return true;
    const mime = normalizeMime(req.input.facts.mimeType);
    return mime.startsWith('video/') && req.input.facts.captureTimeSource === 'container';
  }

  // ---- verify ----

  async verify(requests: VerifyRequest[]): Promise<VerifyResult[]> {
    const ids = [...new Set(requests.map((r) => r.destId))];
    const items = new Map<string, MediaItemJson | { error: string }>();
    for (let s = 0; s < ids.length; s += P.MAX_BATCH_GET) {
      const chunk = ids.slice(s, s + P.MAX_BATCH_GET);
      const q = chunk.map((id) => `mediaItemIds=${encodeURIComponent(id)}`).join('&');
      let r;
      try {
        r = await this.api.call('mediaItems.batchGet', this.api.json('GET', `${P.PATH_BATCH_GET}?${q}`));
      } catch (err) {
        if (err instanceof StopRunError) throw err;
        return requests.map(() => ({ outcome: 'error', error: err instanceof Error ? err : new RetryableError(reason(err)) }));
      }
      if (r.status !== 200) {
        const err = new RetryableError(`mediaItems.batchGet: HTTP ${r.status} ${googleError(r).message ?? ''}`);
        return requests.map(() => ({ outcome: 'error', error: err }));
      }
      const list = (JSON.parse(r.text || '{}') as { mediaItemResults?: Array<{ mediaItem?: MediaItemJson; status?: { code?: number; message?: string } }> }).mediaItemResults ?? [];
      chunk.forEach((id, i) => {
        const res = list.find((x) => x.mediaItem?.id === id) ?? list[i];
        items.set(id, res?.mediaItem ?? { error: res?.status?.message ?? 'not in the answer' });
      });
    }
    // Downloads and decoding run a few at a time.
    const results: VerifyResult[] = new Array(requests.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < requests.length; i = next++) {
        const req = requests[i]!;
        try {
          results[i] = await this.verifyOne(req, items.get(req.destId)!);
        } catch (err) {
          if (err instanceof StopRunError) throw err;
          results[i] = { outcome: 'error', error: err instanceof Error ? err : new RetryableError(reason(err)) };
        }
      }
    };
    // Up to 16 downloads at once; photos judged in memory keep that under about 256 MiB, larger
    // ones (through a file, a band at a time) go two at a time.
    const largest = Math.max(1, ...requests.map((r) => r.size));
    const parallel = largest > IN_MEMORY_DOWNLOAD ? 2 : Math.max(2, Math.min(16, Math.floor((256 * MB) / largest)));
    await Promise.all(Array.from({ length: Math.min(parallel, requests.length) }, worker));
    return results;
  }

  private async verifyOne(req: VerifyRequest, m: MediaItemJson | { error: string }): Promise<VerifyResult> {
    if ('error' in m) {
      // Google named this item when it took the bytes, yet will not show it: since March 2025 an
      // app reads only what it created, so the item was in the library before, from another app.
      const r = inLibrary(req.destId, `Google resolved the upload to media item ${req.destId}, which it does not let this app read (${m.error})`);
      return { outcome: 'in-library', reason: r.reason, evidence: r.evidence };
    }
    const wantMime = normalizeMime(req.facts.mimeType);
    const gotMime = normalizeMime(m.mimeType);
    if (!GENERIC_MIME.has(wantMime) && gotMime !== wantMime) return { outcome: 'mismatch', reason: `Google Photos reports ${m.mimeType}, the source is ${req.facts.mimeType}` };
    const md = m.mediaMetadata ?? {};
    const record = this.ctx.store.get<UploadRecord>(`up:${req.hashes.sha256}`) ?? null;
    // The kind by content: Google's answer or the sniffed type (a listing may only know 'other').
    const isVideo = req.facts.kind === 'video' || wantMime.startsWith('video/') || !!md.video || gotMime.startsWith('video/');
    if (isVideo) return this.verifyVideo(req, m, record);
    // Expected dimensions: the engine's (from metadata) or the decoded source's; either orientation.
    const dimsOk = (w: number | null | undefined, h: number | null | undefined) => {
      const known = [
        [req.facts.width, req.facts.height],
        [record?.fp?.width, record?.fp?.height],
      ].filter(([W, H]) => !!W && !!H) as Array<[number, number]>;
      if (known.length === 0 || !w || !h) return true;
      return known.some(([W, H]) => (W === w && H === h) || (W === h && H === w));
    };
    if (!dimsOk(Number(md.width) || null, Number(md.height) || null)) {
      return { outcome: 'mismatch', reason: `Google Photos reports ${md.width}x${md.height}, the source is ${req.facts.width}x${req.facts.height}` };
    }
    if (!m.baseUrl) return { outcome: 'pending', retryAfterMs: backoffDelay(1, undefined, { baseMs: 5000 }), reason: 'no baseUrl yet' };

    const judge = async (got: Fetched): Promise<VerifyResult> => {
      const sha1 = got.sha1;
      if (sha1 === req.hashes.sha1 && got.size === req.size) {
        return { outcome: 'verified', evidence: { level: 'bytes', detail: `the download (=d) equals the source: ${got.size} bytes, SHA-1 ${sha1}` } };
      }
      const time = await captureTime(got.head);
      const srcTime = record?.fp ? record.fp.time : null;
      const timeOk = record?.fp ? time === srcTime : true;
      if (record?.fp?.pixels) {
        let digest: string;
        try {
          digest = await got.pixels();
        } catch (err) {
          return { outcome: 'mismatch', reason: `the download (=d) does not decode although the source did: ${reason(err)}` };
        }
        if (digest !== record.fp.pixels) return { outcome: 'mismatch', reason: `the download (=d) decodes to other pixels than the source (${record.fp.shape})` };
        if (!timeOk) return { outcome: 'mismatch', reason: `capture time differs: source ${srcTime ?? 'none'}, download ${time ?? 'none'}` };
        return { outcome: 'verified', evidence: { level: 'pixels', detail: `decoded pixels equal (${record.fp.shape}, SHA-256 of pixels), capture time equal (${srcTime ?? 'none at the source'}); only metadata differs (Google removes the location)` } };
      }
      // Not decodable here (HEIC with prebuilt sharp) or the source itself did not decode.
      if (!record?.fp) {
        if (decodableHere(wantMime)) return { outcome: 'mismatch', reason: 'the download differs from the source and no pixel fingerprint of the source was kept to compare' };
      }
      const d = await got.dims();
      if (!dimsOk(d.width, d.height)) return { outcome: 'mismatch', reason: `the download is ${d.width}x${d.height}, the source ${record?.fp?.width}x${record?.fp?.height}` };
      if (!timeOk) return { outcome: 'mismatch', reason: `capture time differs: source ${srcTime ?? 'none'}, download ${time ?? 'none'}` };
      const why = record?.fp?.decodeError ? 'the source does not decode here' : `${wantMime} does not decode here`;
      return {
        outcome: 'verified',
        evidence: { level: 'received', detail: `${why}; Google Photos has it as ${gotMime} ${md.width ?? d.width}x${md.height ?? d.height} with the same capture time (${srcTime ?? 'none'})` },
      };
    };

    // A photo too large to hold is downloaded to a temporary file and decoded from there.
    const fetchOnce = async () => (req.size > IN_MEMORY_DOWNLOAD ? fetchedFile(this.api, `${m.baseUrl}=d`) : fetchedBuffer(await this.api.download(`${m.baseUrl}=d`)));
    const first = await fetchOnce();
    let verdict: VerifyResult;
    try {
      verdict = await judge(first);
    } finally {
      first.dispose();
    }
    if (verdict.outcome !== 'mismatch') return verdict;
    // A second look tells a changed file from a download damaged on the way.
    const again = await fetchOnce();
    try {
      if (again.sha1 === first.sha1 && again.size === first.size) return verdict;
      const second = await judge(again);
      if (second.outcome !== 'mismatch') return second;
    } finally {
      again.dispose();
    }
    return { outcome: 'error', error: new RetryableError(`two downloads of ${req.destId} differ from each other: ${verdict.reason}`) };
  }

  private verifyVideo(req: VerifyRequest, m: MediaItemJson, record: UploadRecord | null): VerifyResult {
    const md = m.mediaMetadata ?? {};
    const status = md.video?.status ?? 'UNSPECIFIED';
    if (status === 'FAILED') return { outcome: 'mismatch', reason: 'Google Photos could not process the video (status FAILED)' };
    if (status !== 'READY') {
      const key = `vp:${req.destId}`;
      const since = this.ctx.store.get<number>(key) ?? Date.now();
      if (!this.ctx.store.get(key)) this.ctx.store.set(key, since);
      if (Date.now() - since > this.videoStuckMs) return { outcome: 'mismatch', reason: `the video is still ${status} after ${Math.round((Date.now() - since) / 3600000)} h` };
      const n = (this.pendingPolls.get(req.destId) ?? 0) + 1;
      this.pendingPolls.set(req.destId, n);
      return { outcome: 'pending', retryAfterMs: backoffDelay(n, undefined, { baseMs: 5000, maxMs: 10 * 60_000 }), reason: `Google Photos is processing the video (${status})` };
    }
    this.pendingPolls.delete(req.destId);
    const w = Number(md.width) || null;
    const h = Number(md.height) || null;
    if (req.facts.width && req.facts.height && w && h && !((w === req.facts.width && h === req.facts.height) || (w === req.facts.height && h === req.facts.width))) {
      return { outcome: 'mismatch', reason: `Google Photos reports ${w}x${h}, the source is ${req.facts.width}x${req.facts.height}` };
    }
    if (req.facts.captureTime && (req.facts.captureTimeSource === 'container' || req.facts.dateAdded) && md.creationTime) {
      const diff = Math.abs(Date.parse(md.creationTime) - Date.parse(req.facts.captureTime));
      // Exact, or off by a whole time-zone step (a container date read as local time); a date
      // written here is UTC by the format's definition, so it must be exact.
      const zoneStep = !req.facts.dateAdded && diff <= 14 * 3600_000 && diff % (15 * 60_000) < 2000;
      if (Number.isFinite(diff) && diff > 2000 && !zoneStep) {
        return { outcome: 'mismatch', reason: `Google Photos dates the video ${md.creationTime}, the source ${req.facts.captureTime}` };
      }
    }
    if (record && record.acknowledged !== null && record.acknowledged !== req.size) return { outcome: 'mismatch', reason: `Google acknowledged ${record.acknowledged} of ${req.size} bytes` };
    if (!record || record.acknowledged === null) {
      // `received` rests on Google's word for every byte; without it there is nothing to claim.
      return { outcome: 'pending', retryAfterMs: 3600_000, reason: `Google has not confirmed receiving all ${req.size} bytes (${record ? 'no X-Goog-Upload-Size-Received in its answers' : 'no record of its acknowledgement here'}); the video stays at the source` };
    }
    const ack = `Google acknowledged all ${record.acknowledged} bytes (${record.protocol === 'raw' ? 'a token for the one request carrying them' : 'X-Goog-Upload-Size-Received'})`;
    return { outcome: 'verified', evidence: { level: 'received', detail: `READY at Google Photos; ${ack}; ${m.mimeType}${w ? ` ${w}x${h}` : ''}; the download (=dv) is a transcode, so no byte comparison` } };
  }

  // ---- plan ----

  async capacity(): Promise<CapacityInfo> {
    const used = this.api.quota.today();
    const remainingToday = used.exhausted ? 0 : Math.max(0, this.perDay - used.requests);
    return {
      remainingBytes: null,
      requestBudget: { remainingToday, perDay: this.perDay, requestsPerItem: 1 + 2 / P.MAX_BATCH_CREATE },
      notes: [
        {
          message: `Google Photos allows ${this.perDay} API requests a day per OAuth project (uploads included; Pacific-time days): ${used.requests} counted today on this machine${used.exhausted ? ', and Google said the quota is spent' : ''}. A photo costs about 1.04 requests, a video about 3.`,
        },
        { message: 'Items are created 50 per request; a higher --concurrency (e.g. 64) fills batches fastest (measured 1.08 requests a photo at --concurrency 4, 1.04 at 64).' },
        { message: 'Videos are verified only at the "received" level (Google gives back a transcode), so they stay at the source unless you pass --delete-evidence received.' },
        {
          message: this.embedDates
            ? 'Google Photos dates an item only by the date inside the file, else by the upload (the API cannot set a date): JPEGs and MP4/MOV videos without one get the resolved capture date written in (a lossless, checked change; --keep-bytes turns it off); other formats without one are dated by upload.'
            : 'Google Photos dates an item only by the date inside the file, else by the upload (the API cannot set a date); --keep-bytes: files are uploaded unchanged, so items without a date of their own are dated by upload.',
        },
        { message: 'The free storage of the Google account cannot be read with the upload-only scopes: check it before a large migration (a full account stops the run with exit code 5).' },
      ],
    };
  }

  async close(): Promise<void> {
    this.api.close();
  }
}

/** Google's wording when it fails to create an item without saying why. */
const GENERIC_FAILURE = /^(failed|there was an error while trying to create this media item)/i;

/** The reason every "already in your library from another app" item carries (status, report, plan). */
export const IN_LIBRARY_REASON =
  'already in your library from another app: delete it at the source yourself once you have checked, or run with `--delete-evidence received` to accept Google\'s word';

function inLibrary(destId: string | null, said: string): { outcome: 'in-library'; destId: string | null; reason: string; evidence: { level: 'received'; detail: string } } {
  return {
    outcome: 'in-library',
    destId,
    reason: `${IN_LIBRARY_REASON} (${said})`,
    evidence: { level: 'received', detail: `Google's word only: ${said}; this app may not read the item back, so nothing was compared` },
  };
}

/** A generic failure is no word from Google that it holds the bytes: no evidence, so never deleted by the rule. */
function probablyInLibrary(said: string): { outcome: 'in-library'; destId: null; reason: string; evidence: null } {
  return {
    outcome: 'in-library',
    destId: null,
    reason: `already in your library from another app, most likely: ${said}, which is how it answers for photos it already holds. It is not sent again; delete it at the source yourself once you have checked that Google Photos has it`,
    evidence: null,
  };
}

/** Google takes at most 255 characters of file name; the extension is kept. */
export function fileNameFor(name: string): string {
  const base = name.split(/[\\/]/).pop() || name;
  if (base.length <= P.MAX_FILE_NAME) return base;
  const dot = base.lastIndexOf('.');
  const ext = dot > 0 && base.length - dot <= 16 ? base.slice(dot) : '';
  return base.slice(0, P.MAX_FILE_NAME - ext.length) + ext;
}

interface Spill {
  file: string;
  fd: number;
  dispose(): void;
}

/** A private temporary file (0600) that disappears when disposed. */
function spillFile(): Spill {
  const file = path.join(os.tmpdir(), `gallery-bridge-gp-${process.pid}-${crypto.randomBytes(8).toString('hex')}`);
  const spill: Spill = {
    file,
    fd: fs.openSync(file, 'wx', 0o600),
    dispose() {
      if (spill.fd >= 0) fs.closeSync(spill.fd);
      spill.fd = -1;
      fs.rmSync(file, { force: true });
    },
  };
  return spill;
}

/** A `=d` download, held in memory or (a large photo) in a temporary file. */
interface Fetched {
  sha1: string;
  size: number;
  head: Buffer;
  pixels(): Promise<string>;
  dims(): Promise<{ width: number | null; height: number | null }>;
  dispose(): void;
}

function fetchedBuffer(bytes: Buffer): Fetched {
  return {
    sha1: crypto.createHash('sha1').update(bytes).digest('hex'),
    size: bytes.length,
    head: bytes,
    pixels: async () => (await pixelDigest(bytes)).digest,
    dims: () => dimensions(bytes),
    dispose: () => undefined,
  };
}

async function fetchedFile(api: GoogleApi, url: string): Promise<Fetched> {
  const spill = spillFile();
  fs.closeSync(spill.fd);
  spill.fd = -1;
  try {
    const { sha1, size } = await api.downloadTo(url, spill.file);
    return {
      sha1,
      size,
      head: fileHead(spill.file),
      pixels: async () => (await pixelDigestFile(spill.file)).digest,
      dims: () => dimensions(spill.file),
      dispose: () => spill.dispose(),
    };
  } catch (err) {
    spill.dispose();
    throw err;
  }
}
