// HTTP for the OneDrive destination: Graph API calls and the pre-authenticated upload URLs, both
// through node:https on one keep-alive agent.
//
// Graph API calls were made through @microsoft/microsoft-graph-client (on fetch/undici) with our
// own middleware; a CPU profile of 500 small photos put a quarter of the run's thread in the SDK,
// undici and web streams, for three requests a photo. What that middleware did is done here
// directly: every request waits on one Pacer shared by the destination, the whole queue pauses
// on 429/503 with Retry-After, each body is read whole (a connection cut mid-body becomes a
// retry instead of a parse error later), the bearer token goes to the API origin only, and the
// token is refreshed once on a 401. Our own timers, not a per-request RetryHandler, so one
// throttled answer pauses every worker, on our back-off scale.
//
// Upload URLs never went through the SDK (LargeFileUploadTask.uploadSlice / upload / resume):
// - its chunk PUTs are never retried (its RetryHandler skips octet-stream bodies), so one 503
//   would fail a 4 GB upload;
// - on a non-JSON error body it throws the raw response stream (msgraph-sdk-javascript #1895),
//   which would reach our error messages unparsed;
// - it can only resume by re-reading a FileObject from an offset, while our bytes arrive once,
//   as a stream the engine is hashing.
// The upload URL is pre-authenticated: we never send it an Authorization header, and never
// print it (it carries a temporary credential); redact() masks it in every message.

import https from 'node:https';
import { parseRetryAfter } from '../../src/lib/backoff.ts';
import type { Pacer } from '../../src/lib/pacer.ts';
import { reason, redact } from '../../src/lib/redact.ts';
import { again, done, retry, retryCall, type Outcome, type Verdict } from '../../src/lib/retry.ts';
import { RetryableError, StopRunError } from '../types.ts';

export const USER_AGENT = 'ISV|gallery-bridge|gallery-bridge/0.1.0';

/** Where the access token comes from (see auth.ts). */
export interface TokenSource {
  readonly kind: 'static' | 'delegated' | 'app';
  /** A valid token; force asks for a new one (after a 401). */
  get(force?: boolean): Promise<string>;
}

/** A Graph answer that was not 2xx, after our own retries. */
export class GraphHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(redact(message));
    this.name = 'GraphHttpError';
  }
}

export interface HttpOptions {
  /** GRAPH_BASE_URL, e.g. https://graph.microsoft.com/v1.0 */
  baseUrl: string;
  tokens: TokenSource;
  /** Every request of this destination waits here (rate limits and throttling pauses). */
  pacers: Pacer[];
  /** Attempts per request before giving up (transient errors only). */
  maxAttempts?: number;
  /** Timeout per upload fragment request. */
  fragmentTimeoutMs?: number;
  /**
   * The run's stop (Ctrl-C, SIGTERM, --until): every wait (pacer, throttling pause, back-off)
   * and every request in flight ends when it aborts.
   */
  signal?: AbortSignal;
  /**
   * The longest throttling pause worth waiting out, and the time the run must end by (--until).
   * A Retry-After beyond either stops the run (exit 4) instead of keeping it alive and idle.
   */
  maxWaitMs?: number;
  until?: Date | null;
  log?: (msg: string) => void;
}

const TRANSIENT = new Set([408, 429, 500, 502, 503, 504]);

/** One HTTP answer, its body read whole and parsed (a body that is not JSON: an error of code notJson). */
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, unknown>;
}

/**
 * 15 minutes: an upload session on Business expires after about 15 minutes without a fragment,
 * so a longer pause loses the sessions in flight anyway, and an admin's scheduled rerun uses the
 * time better than a process sitting idle.
 */
export const DEFAULT_MAX_WAIT_MS = 15 * 60_000;

/** "HH:MM" in local time, with the date when it is not today. */
export function clockTime(t: number): string {
  const d = new Date(t);
  const hm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  return d.toDateString() === new Date().toDateString() ? hm : `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${hm}`;
}

export class GraphHttp {
  readonly apiOrigin: string;
  /** Origin and version, e.g. https://graph.microsoft.com/v1.0: what an API path is appended to. */
  private readonly apiBase: string;
  private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
  readonly stats = { requests: 0, retries: 0, throttled: 0, fragmentBytesSent: 0 };

  constructor(readonly opts: HttpOptions) {
    const u = new URL(opts.baseUrl);
    this.apiOrigin = u.origin;
    const version = u.pathname.replace(/^\/+|\/+$/g, '') || 'v1.0';
    this.apiBase = `${u.origin}/${version}`;
  }

  get maxAttempts(): number {
    return this.opts.maxAttempts ?? 8;
  }

  async pace(signal = this.opts.signal): Promise<void> {
    for (const p of this.opts.pacers) await p.wait(signal);
  }

  pauseAll(ms: number): void {
    for (const p of this.opts.pacers) p.pauseFor(ms);
  }

  /**
   * The service asked every request to wait `ms`. Pauses them all, unless the pause runs past
   * --until or the longest wait worth it: then the run stops with exit 4 and the time to rerun.
   * Throttled requests still count against the service's limits, so hammering on is no option.
   */
  throttled(ms: number): void {
    const end = Date.now() + ms;
    const limit = Math.min(this.opts.until?.getTime() ?? Infinity, Date.now() + (this.opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS));
    if (end > limit) {
      const why = this.opts.until && end > this.opts.until.getTime() ? 'past --until' : `longer than the ${Math.round((this.opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS) / 1000)} s this run waits at most (--onedrive-max-wait)`;
      throw new StopRunError('quota', `throttled: rerun after ${clockTime(end)} (OneDrive asked for a pause of ${Math.ceil(ms / 1000)} s, ${why})`);
    }
    this.pauseAll(ms);
  }

  /**
   * One Graph API call (path under the version, e.g. /me/drive/root:/a.jpg:). A JSON body is
   * sent as JSON, a Buffer as it is. Resolves to the parsed answer (undefined for 204); any other
   * answer than 2xx, after the retries, becomes a GraphHttpError (or StopRunError).
   */
  async api<T>(method: 'get' | 'post' | 'put' | 'delete', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const url = new URL(`${this.apiBase}${path}`);
    if (url.origin !== this.apiOrigin) throw new StopRunError('config', 'a Graph API path left the API host; refusing to send the token there');
    let payload: Buffer | undefined;
    const h: Record<string, string | number> = { 'User-Agent': USER_AGENT, ...headers };
    if (Buffer.isBuffer(body)) payload = body;
    else if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body));
      h['Content-Type'] ??= 'application/json';
    }
    if (payload) h['Content-Length'] = payload.length;
    else if (method !== 'get') h['Content-Length'] = 0;
    const res = await this.apiAttempts(method.toUpperCase(), url, h, payload);
    if (res.status >= 200 && res.status < 300) return (res.status === 204 ? undefined : res.json) as T;
    throw this.answerError(res);
  }

  /** Creates an upload session with our own payload (fileSystemInfo, conflictBehavior). */
  async createUploadSession(path: string, payload: unknown): Promise<{ url: string; expiry: Date }> {
    const s = await this.api<{ uploadUrl?: string; expirationDateTime?: string }>('post', path, payload);
    if (!s?.uploadUrl) throw new GraphHttpError(502, 'noUploadUrl', 'createUploadSession answered without an uploadUrl');
    return { url: s.uploadUrl, expiry: new Date(s.expirationDateTime ?? Date.now()) };
  }

  /** Attempts of one API request: pacing, the token, retries of transient answers, one refresh on 401. */
  private apiAttempts(method: string, url: URL, headers: Record<string, string | number>, body?: Buffer): Promise<Answer> {
    let refreshed = false;
    let token = '';
    return retryCall(
      () => {
        this.stats.requests++;
        return this.rawRequest(method, url, { ...headers, Authorization: `Bearer ${token}` }, body, this.opts.signal);
      },
      async (out: Outcome<Answer>, n): Promise<Verdict<Answer>> => {
        if (!out.ok) {
          if (out.error instanceof StopRunError) throw out.error;
          this.stats.retries++;
          return retry(new RetryableError(`OneDrive request failed after ${this.maxAttempts} attempts: ${reason(out.error)}`));
        }
        const res = out.value;
        if (res.status === 401 && !refreshed && this.opts.tokens.kind !== 'static') {
          refreshed = true;
          await this.opts.tokens.get(true);
          return again;
        }
        // The last transient answer goes back to the caller, which makes it a GraphHttpError.
        if (!TRANSIENT.has(res.status) || n >= this.maxAttempts) return done(res);
        this.stats.retries++;
        const failed = new RetryableError(`OneDrive request answered ${res.status}`);
        if (res.status !== 429 && res.status !== 503) return retry(failed);
        this.stats.throttled++;
        return retry(failed, parseRetryAfter(res.headers['retry-after'] as string | undefined) ?? 1000, true);
      },
      {
        attempts: this.maxAttempts,
        signal: this.opts.signal,
        before: async () => {
          await this.pace();
          token = await this.opts.tokens.get();
        },
        pause: (ms) => this.throttled(ms),
      },
    );
  }

  /** A Graph answer that is not 2xx, as the error its status means for the run. */
  private answerError(res: Answer): Error {
    const err = (res.json.error ?? {}) as { code?: unknown; message?: unknown };
    const status = res.status;
    const code = typeof err.code === 'string' && err.code !== 'notJson' ? err.code : '';
    const message = typeof err.message === 'string' ? err.message : '';
    const msg = `Graph answered ${status}${code ? ` ${code}` : ''}: ${reason(message)}`;
    if (status === 507) return new StopRunError('destination-full', `OneDrive is full (507 ${code || 'insufficientStorage'}): free space or buy storage, then run again to resume.`);
    if (status === 401) return new StopRunError('credentials', `OneDrive refused the access token (401 ${code}). Sign in again with \`gallery-bridge auth onedrive\` (or give a fresh ONEDRIVE_ACCESS_TOKEN).`);
    return new GraphHttpError(status, code, msg, parseRetryAfter(res.headers['retry-after'] as string | undefined));
  }

  // ------------------------------------------------------------ upload URLs (no SDK, no token)

  /**
   * One request to an upload URL, with the shared pacer and retries for transient trouble.
   * Returns status and parsed JSON body; 404 and 416 and other definite answers go back to the
   * caller, which knows what they mean for the session.
   */
  async uploadRequest(
    method: 'GET' | 'PUT' | 'DELETE',
    uploadUrl: string,
    body?: Buffer,
    range?: { start: number; total: number },
    callSignal?: AbortSignal,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const signal = callSignal && this.opts.signal ? AbortSignal.any([callSignal, this.opts.signal]) : (callSignal ?? this.opts.signal);
    const url = new URL(uploadUrl);
    if (url.origin === this.apiOrigin) {
      // An upload URL on the API origin would be a service change we do not understand: stop
      // rather than risk the token reaching it.
      throw new StopRunError('config', 'OneDrive returned an upload URL on the API host; refusing to continue');
    }
    const giveUp = (err: unknown) => new RetryableError(`OneDrive upload request failed after ${this.maxAttempts} attempts: ${scrubUrl(reason(err), url)}`);
    return retryCall(
      () => {
        this.stats.requests++;
        const headers: Record<string, string | number> = { 'User-Agent': USER_AGENT };
        if (body) {
          headers['Content-Length'] = body.length;
          headers['Content-Range'] = `bytes ${range!.start}-${range!.start + body.length - 1}/${range!.total}`;
        } else if (method !== 'GET') headers['Content-Length'] = 0;
        return this.rawRequest(method, url, headers, body, signal);
      },
      (out): Verdict<{ status: number; json: Record<string, unknown> }> => {
        if (!out.ok) {
          if (out.error instanceof StopRunError) throw out.error;
          this.stats.retries++;
          // A fragment whose answer was lost may have been stored: the caller's next PUT then
          // gets 416 and asks the session where it stands. Returning a marker lets it do so now.
          if (method === 'PUT') return done({ status: 0, json: { error: { code: 'connectionLost', message: scrubUrl(reason(out.error), url) } } }, true);
          return retry(giveUp(out.error));
        }
        const res = out.value;
        if (res.status === 429 || res.status === 503) {
          const ra = parseRetryAfter(res.headers['retry-after'] as string | undefined);
          this.stats.throttled++;
          this.stats.retries++;
          const code = String((res.json.error as { code?: string } | undefined)?.code ?? '');
          return retry(giveUp(new GraphHttpError(res.status, code, `upload URL answered ${res.status}`, ra)), ra ?? 1000, true);
        }
        if (TRANSIENT.has(res.status)) {
          this.stats.retries++;
          return retry(giveUp(new GraphHttpError(res.status, '', `upload URL answered ${res.status}`)));
        }
        if (body && res.status < 300) this.stats.fragmentBytesSent += body.length;
        return done({ status: res.status, json: res.json });
      },
      { attempts: this.maxAttempts, signal, before: (s) => this.pace(s), pause: (ms) => this.throttled(ms) },
    );
  }

  private rawRequest(
    method: string,
    url: URL,
    headers: Record<string, string | number>,
    body?: Buffer,
    signal?: AbortSignal,
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        { method, headers, agent: this.agent, signal, timeout: this.opts.fragmentTimeoutMs ?? 120_000 },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('error', reject);
          res.on('aborted', () => reject(new Error('answer cut mid-body')));
          res.on('end', () => {
            if (!res.complete) return reject(new Error('answer cut mid-body'));
            const text = Buffer.concat(parts).toString('utf8');
            let json: Record<string, unknown> = {};
            if (text) {
              try {
                json = JSON.parse(text) as Record<string, unknown>;
              } catch {
                json = { error: { code: 'notJson', message: text.slice(0, 200) } };
              }
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Upload URLs carry a credential, and not every form of them looks like one to redact() (a
 * personal account's are opaque paths): whatever message mentions this URL loses it here.
 */
function scrubUrl(message: string, url: URL): string {
  let out = message.split(url.href).join('[upload-url]');
  if (url.pathname.length > 8) out = out.split(url.pathname).join('/[upload-url]');
  return out;
}
