// Sending an item's bytes to /v1/uploads.
// - Raw protocol (one request) under a threshold: the body is small, so it is read whole first,
//   which gives the SHA-1 for X-Goog-Hash before the request and lets a failed send be repeated.
// - Resumable protocol for larger items and videos: start (the session URL is saved before any
//   byte goes), one `upload` request with every whole granule, then `upload, finalize` with the
//   tail and X-Goog-Hash (the SHA-1 is known by then). After a kill, the saved URL is queried and
//   the body (always from offset 0) skips what Google already has (X-Goog-Upload-Size-Received).
// X-Goog-Hash is sent because it costs nothing, but no Google document defines it and nothing
// shows that Google checks it: it is never counted as proof of anything.

import crypto from 'node:crypto';
import { RejectedError, RetryableError, type SessionSlot } from '../types.ts';
import { type GoogleApi, googleError, type Resp } from './client.ts';
import * as P from './protocol.ts';

/** Pulls exact byte counts out of an upload body, hashing everything that passes. */
export class BodyReader {
  private readonly it: AsyncIterator<Buffer>;
  private pending: Buffer | null = null;
  consumed = 0;
  readonly sha1 = crypto.createHash('sha1');
  readonly sha256 = crypto.createHash('sha256');
  /** Sees every byte in order (for the image fingerprint). */
  tap: ((b: Buffer) => void) | null = null;

  constructor(
    body: AsyncIterable<Buffer>,
    private readonly size: number,
  ) {
    this.it = body[Symbol.asyncIterator]();
  }

  private take(b: Buffer): Buffer {
    this.sha1.update(b);
    this.sha256.update(b);
    this.tap?.(b);
    this.consumed += b.length;
    return b;
  }

  /** Up to `max` bytes, or null at the end of the body. */
  async next(max: number): Promise<Buffer | null> {
    let b = this.pending;
    this.pending = null;
    if (!b) {
      const r = await this.it.next();
      if (r.done) return null;
      b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    }
    if (b.length > max) {
      this.pending = b.subarray(max);
      b = b.subarray(0, max);
    }
    return this.take(b);
  }

  async readExactly(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const b = await this.next(n - got);
      if (!b) throw new RetryableError(`the source delivered ${this.consumed} bytes, ${this.size} were announced`);
      parts.push(b);
      got += b.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const b = await this.next(Math.min(left, 1 << 20));
      if (!b) throw new RetryableError(`the source delivered ${this.consumed} bytes, ${this.size} were announced`);
      left -= b.length;
    }
  }

  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      const b = await this.next(Math.min(left, 1 << 20));
      if (!b) throw new RetryableError(`the source delivered ${this.consumed} bytes, ${this.size} were announced`);
      left -= b.length;
      yield b;
    }
  }

  async expectEnd(): Promise<void> {
    for (;;) {
      const r = this.pending ? { done: false, value: this.pending } : await this.it.next();
      this.pending = null;
      if (r.done) return;
      if ((r.value as Buffer).length > 0) throw new RetryableError(`the source delivered more bytes than the ${this.size} announced`);
    }
  }
}

export interface UploadSession {
  url: string;
  granularity: number;
  size: number;
  startedAt: number;
}

export interface UploadResult {
  uploadToken: string;
  /**
   * Bytes Google itself said it holds: X-Goog-Upload-Size-Received on the final answer (or on a
   * query of the finalized session), or, for a raw upload, the Content-Length of the one request
   * it answered with a token. null when Google said nothing: never assumed.
   */
  acknowledged: number | null;
  protocol: 'raw' | 'resumable';
  sha1: string;
  sha256: string;
}

const SESSION_MAX_AGE_MS = 6 * 86400 * 1000;
/** A resumable body up to this size is read whole so that a failed request can be repeated in place. */
const BUFFER_RESUMABLE_BELOW = 32 * 1024 * 1024;

function rejectOrRetry(what: string, r: Resp): Error {
  const e = googleError(r);
  const msg = `${what}: Google answered HTTP ${r.status} ${e.status ?? ''}: ${e.message ?? ''}`.replace(/\s+/g, ' ').trim();
  if (r.status === 400 && /hash/i.test(e.message ?? '')) return new RetryableError(`${msg} (the bytes changed on the way; sent again)`);
  if (r.status >= 400 && r.status < 500 && r.status !== 404 && r.status !== 409) return new RejectedError(msg, 'refused-by-destination');
  return new RetryableError(msg);
}

export async function rawUpload(api: GoogleApi, reader: BodyReader, size: number, mimeType: string, signal: AbortSignal): Promise<UploadResult> {
  const bytes = await reader.readExactly(size);
  await reader.expectEnd();
  const sha1 = reader.sha1.digest();
  const sha256 = reader.sha256.digest('hex');
  for (let attempt = 1; ; attempt++) {
    const r = await api.call(
      'raw upload',
      api.fetch(api.url(P.PATH_UPLOADS), {
        method: 'POST',
        headers: {
          'Content-Type': 'application/octet-stream',
          'X-Goog-Upload-Content-Type': mimeType,
          'X-Goog-Upload-Protocol': 'raw',
          'X-Goog-Hash': `sha1=${sha1.toString('base64')}`,
        },
        body: bytes,
        signal,
      }),
      { write: true, signal },
    );
    const token = r.text.trim();
    // A token answers the one request whose Content-Length was `size`: HTTP framing means Google read all of it.
    if (r.status === 200 && token) return { uploadToken: token, acknowledged: sizeReceived(r) ?? size, protocol: 'raw', sha1: sha1.toString('hex'), sha256 };
    const err = r.status === 200 ? new RetryableError('raw upload: Google answered without an upload token') : rejectOrRetry('raw upload', r);
    if (err instanceof RejectedError || attempt >= 3) throw err;
  }
}

const header = (r: Resp, name: string) => r.headers.get(name) ?? null;
const sizeReceived = (r: Resp): number | null => {
  const v = header(r, P.H_SIZE_RECEIVED);
  const n = v === null || v.trim() === '' ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 ? n : null;
};

async function query(api: GoogleApi, url: string, signal: AbortSignal): Promise<{ status: string; received: number } | null> {
  const r = await api.call('upload query', api.fetch(url, { method: 'POST', headers: { 'X-Goog-Upload-Command': 'query', 'Content-Length': '0' }, signal }), {
    signal,
  });
  if (r.status === 404 || r.status === 410) return null;
  if (r.status !== 200) throw rejectOrRetry('upload query', r);
  return { status: (header(r, P.H_STATUS) ?? '').toLowerCase(), received: Number(header(r, P.H_SIZE_RECEIVED) ?? 'NaN') };
}

export async function resumableUpload(
  api: GoogleApi,
  reader: BodyReader,
  input: { size: number; mimeType: string; name: string; session: SessionSlot; signal: AbortSignal; bufferBelow?: number },
): Promise<UploadResult> {
  const { size, signal, session } = input;
  let sess = session.load<UploadSession>();
  let offset = 0;
  if (sess && (sess.size !== size || Date.now() - sess.startedAt > SESSION_MAX_AGE_MS)) sess = null;
  if (sess) {
    const q = await query(api, sess.url, signal);
    if (q && q.status === 'active' && Number.isInteger(q.received) && q.received >= 0 && q.received <= size) offset = q.received;
    else sess = null;
  }
  if (!sess) {
    const r = await api.call(
      'upload start',
      api.fetch(api.url(P.PATH_UPLOADS), {
        method: 'POST',
        headers: {
          'Content-Length': '0',
          'X-Goog-Upload-Command': 'start',
          'X-Goog-Upload-Protocol': 'resumable',
          'X-Goog-Upload-Raw-Size': String(size),
          'X-Goog-Upload-Content-Type': input.mimeType,
          'X-Goog-Upload-File-Name': encodeURIComponent(input.name),
        },
        signal,
      }),
      { write: true, signal },
    );
    const url = header(r, P.H_UPLOAD_URL);
    if (r.status !== 200 || !url)
      throw r.status === 200 ? new RetryableError('upload start: no X-Goog-Upload-URL in the answer') : rejectOrRetry('upload start', r);
    const g = Number(header(r, P.H_GRANULARITY) ?? '262144');
    sess = { url, granularity: Number.isInteger(g) && g > 0 ? g : 262144, size, startedAt: Date.now() };
    session.save(sess); // before any byte goes
  }
  const s = sess;
  await reader.skip(offset);
  const bulkEnd = offset + Math.floor((size - offset) / s.granularity) * s.granularity;

  const sendChunk = (from: number, body: Buffer | AsyncIterable<Uint8Array>, length: number, finalize: boolean, hash?: string) =>
    api.call(
      finalize ? 'upload finalize' : 'upload chunk',
      api.fetch(s.url, {
        method: 'POST',
        headers: {
          'Content-Length': String(length),
          'X-Goog-Upload-Command': finalize ? 'upload, finalize' : 'upload',
          'X-Goog-Upload-Offset': String(from),
          ...(hash ? { 'X-Goog-Hash': `sha1=${hash}` } : {}),
        },
        body: length > 0 ? body : undefined,
        signal,
      }),
      { write: true, signal, attempts: 1 },
    );

  // Every whole granule in one request.
  if (bulkEnd > offset) {
    const length = bulkEnd - offset;
    if (length <= (input.bufferBelow ?? BUFFER_RESUMABLE_BELOW)) {
      const bytes = await reader.readExactly(length);
      let at = offset;
      for (let attempt = 1; at < bulkEnd; attempt++) {
        let ok = false;
        try {
          const r = await sendChunk(at, bytes.subarray(at - offset), bulkEnd - at, false);
          if (r.status === 200) ok = true;
          else if (r.status !== 400) throw rejectOrRetry('upload chunk', r);
        } catch (err) {
          if (signal.aborted || attempt >= 4 || !(err instanceof RetryableError)) throw err;
        }
        const q = ok ? { status: 'active', received: bulkEnd } : await query(api, s.url, signal);
        if (q?.status !== 'active') {
          session.clear();
          throw new RetryableError(`the upload session ended (${q?.status ?? 'gone'}); the upload starts over`);
        }
        if (q.received < offset || q.received > bulkEnd) throw new RetryableError(`Google holds ${q.received} bytes of an upload that expected ${at}`);
        at = q.received;
      }
    } else {
      let failure: unknown = null;
      try {
        const r = await sendChunk(offset, reader.stream(length), length, false);
        if (r.status !== 200) failure = rejectOrRetry('upload chunk', r);
      } catch (err) {
        failure = err;
      }
      if (failure) {
        if (signal.aborted) throw failure;
        const q = await query(api, s.url, signal).catch(() => null);
        if (q?.status !== 'active' || q.received !== bulkEnd) {
          throw new RetryableError(
            `upload interrupted with ${q?.received ?? 'an unknown number of'} of ${size} bytes at Google; the next attempt resumes from the saved session`,
          );
        }
      }
    }
  }

  // The tail and the hash, with finalize.
  const tail = await reader.readExactly(size - bulkEnd);
  await reader.expectEnd();
  const sha1 = reader.sha1.digest();
  const sha256 = reader.sha256.digest('hex');
  for (let attempt = 1; ; attempt++) {
    let r: Resp | null = null;
    try {
      r = await sendChunk(bulkEnd, tail, tail.length, true, sha1.toString('base64'));
    } catch (err) {
      if (signal.aborted || attempt >= 4 || !(err instanceof RetryableError)) throw err;
    }
    if (r && r.status === 200 && r.text.trim()) {
      let ack = sizeReceived(r);
      // No size on the final answer: ask the finalized session (one request), never assume.
      if (ack === null)
        ack = await query(api, s.url, signal).then(
          (q) => (q && q.status === 'final' && Number.isInteger(q.received) ? q.received : null),
          () => null,
        );
      session.clear();
      if (ack !== null && ack !== size) throw new RetryableError(`Google acknowledged ${ack} of ${size} bytes`);
      return { uploadToken: r.text.trim(), acknowledged: ack, protocol: 'resumable', sha1: sha1.toString('hex'), sha256 };
    }
    if (r && r.status === 400 && /hash/i.test(googleError(r).message ?? '')) {
      session.clear();
      throw new RetryableError('Google received different bytes than were sent (X-Goog-Hash): the upload starts over');
    }
    if (r && r.status >= 400 && r.status < 500 && r.status !== 400 && r.status !== 404) throw rejectOrRetry('upload finalize', r);
    const q = await query(api, s.url, signal);
    if (q?.status !== 'active' || q.received !== bulkEnd || attempt >= 4) {
      session.clear();
      throw new RetryableError(`the finalizing answer was lost (session ${q?.status ?? 'gone'}); the upload starts over`);
    }
  }
}
