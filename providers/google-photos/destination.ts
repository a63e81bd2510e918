// The Google Photos destination: refuse what Google will not take, albums created once, uploads
// (raw or resumable), batchCreate of up to 50 tokens per call, and graded verification through
// batchGet and `baseUrl=d` downloads. Albums are in albums.ts, verification in verify.ts.

import fs from 'node:fs';
import { reason } from '../../src/lib/redact.ts';
import { readOption } from '../options.ts';
import {
  RejectedError,
  RetryableError,
  StopRunError,
  type CapacityInfo,
  type CommitRequest,
  type CommitResult,
  type DatingRule,
  type Destination,
  type ProviderContext,
  type Staged,
  type UploadInput,
  type VerifyRequest,
  type VerifyResult,
} from '../types.ts';
import { GOOGLE_OPTIONS } from './options.ts';
import { Albums } from './albums.ts';
import { type GoogleApi, googleError } from './client.ts';
import { fingerprint, fingerprintFile, type Fingerprint, normalizeMime } from './evidence.ts';
import { inLibrary, probablyInLibrary } from './in-library.ts';
import * as P from './protocol.ts';
import { type Spill, spillFile } from './spill.ts';
import { BodyReader, rawUpload, resumableUpload, type UploadResult } from './upload.ts';
import { type MediaItemJson, type UploadRecord, Verifier } from './verify.ts';

export { IN_LIBRARY_REASON } from './in-library.ts';

export interface GoogleHandle {
  uploadToken: string;
  createdAt: number;
  protocol: 'raw' | 'resumable';
  size: number;
  sha1: string;
}

/** Formats Google Photos does not take although they are media: refused before any byte moves. */
const UNSUPPORTED = new Set(['image/svg+xml', 'image/jxl', 'image/vnd.adobe.photoshop', 'image/x-photoshop', 'video/webm', 'image/x-xcf', 'application/pdf']);
const TOKEN_COMMIT_WINDOW_MS = 23 * 3600 * 1000;
const MB = 1024 * 1024;

const numOpt = (v: unknown, dflt: number): number => {
  const n = Number(v);
  return v !== undefined && v !== null && v !== '' && Number.isFinite(n) && n >= 0 ? n : dflt;
};

export class GooglePhotosDestination implements Destination {
  readonly kind = 'google-photos';
  readonly identity: string;
  readonly limits = { commitBatch: P.MAX_BATCH_CREATE, verifyBatch: P.MAX_BATCH_GET };
  /** Google dates an item only from the date inside the file, else by its upload; --keep-bytes sends files unchanged. */
  readonly dating: DatingRule;
  /** A download (=d) is compared by SHA-1. */
  readonly hashes = ['sha1'] as const;
  private readonly rawThreshold: number;
  private readonly perDay: number;
  private readonly resumableBuffer: number;
  private readonly albums: Albums;
  private readonly verifier: Verifier;

  constructor(
    private readonly api: GoogleApi,
    private readonly ctx: ProviderContext,
  ) {
    const env = ctx.env;
    this.dating = readOption(ctx, GOOGLE_OPTIONS.keepBytes) === true ? 'upload' : 'file';
    this.rawThreshold = readOption(ctx, GOOGLE_OPTIONS.rawThreshold) ?? 32 * MB;
    this.perDay = readOption(ctx, GOOGLE_OPTIONS.dailyQuota) ?? P.DEFAULT_DAILY_QUOTA;
    const albumLimit = Math.max(1, numOpt(env.GOOGLE_PHOTOS_ALBUM_LIMIT, P.MAX_ALBUM_ITEMS));
    this.resumableBuffer = numOpt(env.GOOGLE_PHOTOS_RESUMABLE_BUFFER_BYTES, 32 * MB);
    const videoStuckMs = numOpt(env.GOOGLE_PHOTOS_VIDEO_STUCK_HOURS, 24) * 3600 * 1000;
    this.albums = new Albums(api, ctx, albumLimit);
    this.verifier = new Verifier(api, ctx.store, videoStuckMs);
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

  // ---- albums (albums.ts) ----

  prepareContainer(item: UploadInput['item']): Promise<string> {
    return this.albums.prepare(item);
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
      result = await resumableUpload(this.api, reader, {
        size: input.size,
        mimeType: mime,
        name: input.name,
        session: input.session,
        signal: input.signal,
        bufferBelow: this.resumableBuffer,
      });
      if (spill) {
        fs.closeSync(spill.fd);
        spill.fd = -1;
        fp = fingerprintFile(spill.file, mime);
      }
    }
    const record: UploadRecord = { acknowledged: result.acknowledged, size: input.size, protocol: result.protocol, fp: await fp.catch(() => null) };
    this.ctx.store.set(`up:${result.sha256}`, record);
    const handle: GoogleHandle = { uploadToken: result.uploadToken, createdAt: Date.now(), protocol: result.protocol, size: input.size, sha1: result.sha1 };
    return { handle };
  }

  canCommitLater(handle: unknown): boolean {
    const h = handle as Partial<GoogleHandle> | null;
    return !!h && typeof h.uploadToken === 'string' && typeof h.createdAt === 'number' && Date.now() - h.createdAt < TOKEN_COMMIT_WINDOW_MS;
  }

  // No abort(): an upload token that is never committed expires at Google after a day; nothing to undo.

  // ---- commit ----

  async commit(requests: CommitRequest[]): Promise<CommitResult[]> {
    const results: CommitResult[] = new Array(requests.length);
    // One batchCreate per album (the engine already groups; this keeps it true for any caller).
    const groups = new Map<string, number[]>();
    for (const [i, r] of requests.entries()) groups.set(r.input.container, [...(groups.get(r.input.container) ?? []), i]);
    for (const [container, idx] of groups) {
      for (let s = 0; s < idx.length; s += P.MAX_BATCH_CREATE) {
        const part = idx.slice(s, s + P.MAX_BATCH_CREATE);
        const out = await this.commitBatch(
          container,
          part.map((i) => requests[i]!),
        );
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
      if (albumId && /album/i.test(e.message ?? '')) this.albums.markFull(albumId);
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
        const title = albumId ? this.albums.title(albumId) : undefined;
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
    if (albumId) this.albums.committed(albumId, created, reqs.length);
    return out;
  }

  /** The bytes are media Google takes: a photo that decoded here, or a video whose container was read. */
  private validMedia(req: CommitRequest): boolean {
    const record = this.ctx.store.get<UploadRecord>(`up:${req.hashes.sha256}`);
    if (record?.fp?.pixels) return true;
    const mime = normalizeMime(req.input.facts.mimeType);
    return mime.startsWith('video/') && req.input.facts.captureTimeSource === 'container';
  }

  // ---- verify (verify.ts) ----

  verify(requests: VerifyRequest[]): Promise<VerifyResult[]> {
    return this.verifier.verify(requests);
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
        {
          message:
            'Items are created 50 per request; a higher --concurrency (e.g. 64) fills batches fastest (measured 1.08 requests a photo at --concurrency 4, 1.04 at 64).',
        },
        {
          message:
            'Videos are verified only at the "received" level (Google gives back a transcode), so they stay at the source unless you pass --delete-evidence received.',
        },
        {
          message:
            this.dating === 'file'
              ? 'Google Photos dates an item only by the date inside the file, else by the upload (the API cannot set a date): JPEGs and MP4/MOV videos without one get the resolved capture date written in (a lossless, checked change; --keep-bytes turns it off); other formats without one are dated by upload.'
              : 'Google Photos dates an item only by the date inside the file, else by the upload (the API cannot set a date); --keep-bytes: files are uploaded unchanged, so items without a date of their own are dated by upload.',
        },
        {
          message:
            'The free storage of the Google account cannot be read with the upload-only scopes: check it before a large migration (a full account stops the run with exit code 5).',
        },
      ],
    };
  }

  async close(): Promise<void> {
    this.api.close();
  }
}

/** Google's wording when it fails to create an item without saying why. */
const GENERIC_FAILURE = /^(failed|there was an error while trying to create this media item)/i;

/** Google takes at most 255 characters of file name; the extension is kept. */
export function fileNameFor(name: string): string {
  const base = name.split(/[\\/]/).pop() || name;
  if (base.length <= P.MAX_FILE_NAME) return base;
  const dot = base.lastIndexOf('.');
  const ext = dot > 0 && base.length - dot <= 16 ? base.slice(dot) : '';
  return base.slice(0, P.MAX_FILE_NAME - ext.length) + ext;
}
