// OneDrive's upload-session protocol as the destination uses it: fragments in 320 KiB multiples
// under 60 MiB, sent in order to a pre-authenticated URL; the session asked where it stands
// (nextExpectedRanges) after a lost answer or a 416; cancelled when we will not finish it. The
// body is streamed through fragments of the chunk size, all but the last sent at once; the last
// (small, see finalStartOf) is handed back for commit() to send.

import { reason } from '../../src/lib/redact.ts';
import { RetryableError, StopRunError, type ProviderContext, type UploadInput } from '../types.ts';
import type { GraphHttp } from './graph.ts';

export const FRAGMENT_MULTIPLE = 327_680; // 320 KiB
export const FRAGMENT_LIMIT = 60 * 1024 * 1024;
export const DEFAULT_CHUNK = 10 * 1024 * 1024;
/** The tempauth in an upload URL dies 24 h after creation: replace sessions older than this. */
export const MAX_SESSION_AGE_MS = 23 * 3600 * 1000;

/** The session is gone (404, 401): the upload starts again with a new one. */
export class SessionGone extends Error {}
/** 409 nameAlreadyExists at createUploadSession or at a fragment. */
export class NameTaken extends Error {}

/** An upload session as kept in the state store (the URL is a temporary credential: never printed). */
export interface SavedSession {
  v: 1;
  url: string;
  expiry: string;
  createdAt: number;
  path: string;
  size: number;
}

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

const refusedCode = (json: Record<string, unknown>) => String((json.error as { code?: string } | undefined)?.code ?? '');

export class UploadSessions {
  constructor(
    private readonly http: GraphHttp,
    private readonly log: ProviderContext['log'],
  ) {}

  /** Asks an upload session where it stands; null when it is gone (404, expired, tempauth dead). */
  async offset(url: string, signal?: AbortSignal): Promise<number | null> {
    const r = await this.http.uploadRequest('GET', url, undefined, undefined, signal);
    if (r.status === 200) return nextOffset(r.json.nextExpectedRanges);
    if (r.status === 404 || r.status === 401 || r.status === 410) return null;
    throw new RetryableError(`asking an upload session for its state answered ${r.status}`);
  }

  /** Cancels a session we will not finish: on Business an open one blocks its path until it expires. */
  async drop(url: string): Promise<void> {
    try {
      await this.http.uploadRequest('DELETE', url);
    } catch (e) {
      if (e instanceof StopRunError) throw e;
      this.log.debug(`could not cancel an old upload session: ${reason(e)}`);
    }
  }

  /** Sends one fragment; resolves when the service holds it (asking the session after 416 or a lost answer). */
  async sendFragment(url: string, buf: Buffer, start: number, total: number, signal: AbortSignal): Promise<number> {
    let sent = 0;
    for (let round = 1; round <= 6; round++) {
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      const r = await this.http.uploadRequest('PUT', url, buf, { start, total }, signal);
      if (r.status === 202 || r.status === 200 || r.status === 201) return sent + buf.length;
      if (r.status === 507) throw new StopRunError('destination-full', 'OneDrive is full (507): free space or buy storage, then run again to resume');
      if (r.status === 404 || r.status === 401) throw new SessionGone(`upload session gone (${r.status})`);
      if (r.status === 409) throw new NameTaken(url);
      if (r.status === 416 || r.status === 0) {
        if (r.status === 0) sent += buf.length; // it may or may not have arrived: count it
        const at = await this.offset(url, signal);
        if (at === null) throw new SessionGone('upload session gone');
        if (at >= start + buf.length) return sent;
        if (at === start) continue;
        throw new RetryableError(`the upload session expects byte ${at}, not ${start}; the upload starts over from there`);
      }
      throw new RetryableError(`an upload fragment was refused (${r.status} ${refusedCode(r.json)})`);
    }
    throw new RetryableError('an upload fragment was not accepted after 6 rounds');
  }

  /**
   * Streams the body from `offset` (what the session holds) and sends every fragment but the
   * last, one in flight while the next fills. Returns the last fragment for commit(), or null
   * when OneDrive refused the name at a fragment before the last (409): then the rest of the
   * body was read without being sent, so the engine still hashes it all and commit() settles
   * the name by comparing hashes, the same way as anywhere else; the session is cancelled.
   */
  async sendAllButLast(
    input: UploadInput,
    session: SavedSession,
    offset: number,
    chunk: number,
    signal: AbortSignal,
  ): Promise<{ last: Buffer | null; finalStart: number }> {
    const size = input.size;
    const finalStart = finalStartOf(offset, size);
    let pos = 0; // bytes of the body seen so far
    let fragStart = offset;
    let frag: Buffer | null = null;
    let fill = 0;
    let inflight: Promise<number> | null = null;
    /** The buffer of the fragment in flight, and one whose fragment the service holds: filled again. */
    let inflightBuf: Buffer | null = null;
    let spare: Buffer | null = null;
    let nameRefused = false;
    // Two fragment buffers per upload, taking turns: a new chunk-sized buffer per fragment cost
    // a large allocation and its garbage every 10 MiB. The last fragment, kept for commit(),
    // gets its own. A buffer is filled again only once its fragment is settled: the service
    // answered 2xx for it, or said it holds those bytes, so none of them is still to be sent.
    const newFrag = () => {
      const length = fragStart < finalStart ? Math.min(chunk, finalStart - fragStart) : size - fragStart;
      const reuse = fragStart < finalStart && spare?.length === length;
      frag = reuse ? spare : Buffer.allocUnsafe(length);
      if (reuse) spare = null;
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
            if (inflight) {
              await inflight;
              spare = inflightBuf;
            }
            const start = fragStart;
            inflightBuf = nameRefused ? null : f;
            if (nameRefused) spare = f;
            inflight = nameRefused
              ? null
              : this.sendFragment(session.url, f, start, size, signal).then(
                  (n) => {
                    session.expiry = new Date(Date.now() + 10 * 60_000).toISOString();
                    return n;
                  },
                  (e: unknown) => {
                    if (!(e instanceof NameTaken)) throw e;
                    nameRefused = true;
                    return 0;
                  },
                );
            inflight?.catch(() => undefined);
            fragStart += f.length;
            frag = null;
          }
        }
      }
      if (inflight) await inflight;
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
    if (nameRefused) {
      await this.drop(session.url);
      input.session.clear();
      return { last: null, finalStart };
    }
    return { last: frag, finalStart };
  }
}
