// HTTP for the OneDrive destination: Graph API calls through @microsoft/microsoft-graph-client,
// and the pre-authenticated upload URLs through node:https; both on one keep-alive agent.
//
// Graph API calls go through the SDK's Client with our own middleware chain instead of the
// default one. The default RetryHandler waits in its own timer per request, so one throttled
// answer would not pause the other workers, and it does not know our back-off scale: our
// GraphPolicy waits on one Pacer shared by every request of the destination, pauses the whole
// queue on 429/503 with Retry-After, adds the bearer token only for the API origin, and
// refreshes the token once on a 401 (retryCall from src/lib/retry.ts, as every provider).
//
// The last handler is ours too (NodeHttpsHandler), not the SDK's HTTPMessageHandler: that one
// sends through fetch (undici and web streams), and a CPU profile of 500 small photos at 50 ms
// latency put about a quarter of the run's thread in the SDK, tslib's awaiter, undici and web
// streams, for three requests a photo (9.7 ms of CPU a photo). Ours sends through node:https on
// the destination's keep-alive agent, reads the body whole (a connection cut mid-body becomes a
// retry instead of a parse error later) and hands the SDK the part of a Response it reads, over
// those bytes (buffered-response.ts: Node's own Response cost undici's constructor, Headers
// validation and a web-stream read on every call). The SDK still builds the URL, the headers
// and the body, parses the answer and raises GraphError; that costs 0.3-0.7 ms of CPU a small
// photo over Graph calls written by hand on node:https (two SDK requests a photo, ~0.11 ms each,
// and ~36 ms to import it once), against the ~5 ms that fetch cost (bench/onedrive.ts,
// docs/benchmarks.md).
//
// Upload URLs bypass the SDK (LargeFileUploadTask.uploadSlice / upload / resume):
// - its chunk PUTs are never retried (its RetryHandler skips octet-stream bodies), so one 503
//   would fail a 4 GB upload;
// - on a non-JSON error body it throws the raw response stream (msgraph-sdk-javascript #1895),
//   which would reach our error messages unparsed;
// - it can only resume by re-reading a FileObject from an offset, while our bytes arrive once,
//   as a stream the engine is hashing.
// The upload URL is pre-authenticated: we never send it an Authorization header, and never
// print it (it carries a temporary credential); redact() masks it in every message.

import type { ClientRequest } from 'node:http';
import https from 'node:https';
import { Client, type Context, GraphError, type Middleware, type MiddlewareOptions } from '@microsoft/microsoft-graph-client';
import { parseRetryAfter } from '../../src/lib/backoff.ts';
import type { Pacer } from '../../src/lib/pacer.ts';
import { SignalFanOut } from '../../src/lib/signals.ts';
import { reason, redact } from '../../src/lib/redact.ts';
import { again, done, retry, retryCall, type Outcome, type Verdict } from '../../src/lib/retry.ts';
import { RetryableError, StopRunError } from '../types.ts';
import { BufferedResponse } from './buffered-response.ts';

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

/** One HTTP answer, its body read whole. */
interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Name, value, name, value… as received (a repeated header stays repeated). */
  rawHeaders: string[];
  body: Buffer;
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
  return d.toDateString() === new Date().toDateString()
    ? hm
    : `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${hm}`;
}

export class GraphHttp {
  readonly client: Client;
  readonly apiOrigin: string;
  /** apiOrigin and the slash after it: a URL that starts with it is on the API origin. */
  readonly apiPrefix: string;
  private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
  readonly stats = { requests: 0, retries: 0, throttled: 0, fragmentBytesSent: 0 };
  /**
   * Requests in flight that end with the run's stop: one listener on that signal for all of
   * them. Node's `signal` option on a request adds an abort listener and an end-of-stream
   * watch of the request to remove it again: a fifth of the CPU of sending a request, three a
   * small photo (a --cpu-prof of 500 small photos at 50 ms latency).
   */
  private readonly endWithRun = new Set<ClientRequest>();

  /** A call's signal and the run's, for upload-URL requests given one (see SignalFanOut.childWith). */
  private readonly runWaits: SignalFanOut | null;

  constructor(readonly opts: HttpOptions) {
    const run = opts.signal;
    this.runWaits = run ? new SignalFanOut(run) : null;
    run?.addEventListener('abort', () => {
      for (const req of this.endWithRun) req.destroy(abortError(run));
    });
    const u = new URL(opts.baseUrl);
    this.apiOrigin = u.origin;
    this.apiPrefix = `${u.origin}/`;
    const version = u.pathname.replace(/^\/+|\/+$/g, '') || 'v1.0';
    this.client = Client.initWithMiddleware({
      middleware: [new GraphPolicy(this), new NodeHttpsHandler((req) => this.send(req))],
      baseUrl: this.apiOrigin,
      defaultVersion: version,
    });
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
      const why =
        this.opts.until && end > this.opts.until.getTime()
          ? 'past --until'
          : `longer than the ${Math.round((this.opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS) / 1000)} s this run waits at most (--onedrive-max-wait)`;
      throw new StopRunError('quota', `throttled: rerun after ${clockTime(end)} (OneDrive asked for a pause of ${Math.ceil(ms / 1000)} s, ${why})`);
    }
    this.pauseAll(ms);
  }

  /**
   * One Graph API call through the SDK (path under the version, e.g. /me/drive/root:/a.jpg:). A
   * JSON body is sent as JSON, a Buffer as it is. Resolves to the parsed answer (undefined for
   * 204); any other answer than 2xx, after the retries, becomes a GraphHttpError (or StopRunError).
   */
  async api<T>(method: 'get' | 'post' | 'put' | 'delete', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const call = new GraphCall();
    try {
      const req = this.client
        .api(path)
        .headers({ 'User-Agent': USER_AGENT, ...headers })
        .middlewareOptions([call]);
      switch (method) {
        case 'get':
          return (await req.get()) as T;
        case 'post':
          return (await req.post(body)) as T;
        case 'put':
          return (await req.put(body)) as T;
        case 'delete':
          return (await req.delete()) as T;
      }
    } catch (e) {
      throw call.thrown ?? this.answerError(e);
    }
  }

  /** Creates an upload session with our own payload (fileSystemInfo, conflictBehavior). */
  async createUploadSession(path: string, payload: unknown): Promise<{ url: string; expiry: Date }> {
    const s = await this.api<{ uploadUrl?: string; expirationDateTime?: string }>('post', path, payload);
    if (!s?.uploadUrl) throw new GraphHttpError(502, 'noUploadUrl', 'createUploadSession answered without an uploadUrl');
    return { url: s.uploadUrl, expiry: new Date(s.expirationDateTime ?? Date.now()) };
  }

  /**
   * What the SDK threw for an answer that is not 2xx (a GraphError), as the error its status
   * means for the run. Code and message come only from a Graph error body ({"error": {...}}).
   */
  private answerError(e: unknown): Error {
    if (!(e instanceof GraphError) || e.statusCode <= 0) return new RetryableError(`OneDrive request failed: ${reason(e)}`);
    const status = e.statusCode;
    const { code, message } = graphErrorOf(e);
    const msg = `Graph answered ${status}${code ? ` ${code}` : ''}: ${reason(message)}`;
    if (status === 507)
      return new StopRunError(
        'destination-full',
        `OneDrive is full (507 ${code || 'insufficientStorage'}): free space or buy storage, then run again to resume.`,
      );
    if (status === 401)
      return new StopRunError(
        'credentials',
        `OneDrive refused the access token (401 ${code}). Sign in again with \`gallery-bridge auth onedrive\` (or give a fresh ONEDRIVE_ACCESS_TOKEN).`,
      );
    return new GraphHttpError(status, code, msg, parseRetryAfter(e.headers?.get('retry-after') ?? undefined));
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
    const both = callSignal && callSignal !== this.opts.signal && this.runWaits ? this.runWaits.childWith(callSignal) : null;
    try {
      return await this.uploadAttempts(method, uploadUrl, both?.signal ?? callSignal ?? this.opts.signal, body, range);
    } finally {
      both?.release();
    }
  }

  private uploadAttempts(
    method: 'GET' | 'PUT' | 'DELETE',
    uploadUrl: string,
    signal: AbortSignal | undefined,
    body?: Buffer,
    range?: { start: number; total: number },
  ): Promise<{ status: number; json: Record<string, unknown> }> {
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
        return this.send({ method, url, headers, body, signal }).then((a) => ({ status: a.status, headers: a.headers, json: jsonOf(a.body) }));
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

  /**
   * One request through node:https on the keep-alive agent, its answer read whole: a connection
   * cut mid-body rejects (a retry), not a truncated body parsed later.
   */
  send(r: { method: string; url: URL | string; headers: Record<string, string | number>; body?: Buffer; signal?: AbortSignal }): Promise<RawAnswer> {
    const run = r.signal !== undefined && r.signal === this.opts.signal;
    return new Promise((resolve, reject) => {
      const req = https.request(
        r.url,
        { method: r.method, headers: r.headers, agent: this.agent, signal: run ? undefined : r.signal, timeout: this.opts.fragmentTimeoutMs ?? 120_000 },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('error', reject);
          res.on('aborted', () => reject(new Error('answer cut mid-body')));
          res.on('end', () => {
            if (!res.complete) return reject(new Error('answer cut mid-body'));
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              rawHeaders: res.rawHeaders,
              body: parts.length === 1 ? parts[0]! : Buffer.concat(parts),
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      if (run) {
        // As the signal option would: destroyed with an AbortError now or when the run stops.
        if (r.signal!.aborted) req.destroy(abortError(r.signal!));
        else {
          this.endWithRun.add(req);
          req.once('close', () => this.endWithRun.delete(req));
        }
      }
      req.end(r.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The error Node's `signal` option destroys a request with when its signal aborts. */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
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

/** A body parsed as JSON; one that is not JSON becomes an error of code notJson. */
function jsonOf(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  const text = body.toString('utf8');
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { error: { code: 'notJson', message: text.slice(0, 200) } };
  }
}

/**
 * Code and message of the Graph error body behind a GraphError. The SDK keeps that body as
 * JSON text of its `error` object; for a body that was not a Graph error (not JSON, or no
 * `error`) both stay empty, whatever the SDK put in its own code field (a parser's error name).
 */
function graphErrorOf(e: GraphError): { code: string; message: string } {
  if (typeof e.body !== 'string' || !e.body.startsWith('{')) return { code: '', message: '' };
  try {
    const err = JSON.parse(e.body) as { code?: unknown; message?: unknown };
    return { code: typeof err.code === 'string' ? err.code : '', message: typeof err.message === 'string' ? err.message : '' };
  } catch {
    return { code: '', message: '' };
  }
}

/**
 * Per-call state handed to the chain as a middleware option: what our middleware threw. The SDK
 * wraps whatever a middleware throws into its own GraphError; api() rethrows the original
 * (StopRunError, RetryableError, the run's abort) so the run sees the same errors either way.
 */
class GraphCall implements MiddlewareOptions {
  thrown?: Error;
}

/**
 * First in the chain: pacing, the token (API origin only), retries of transient answers through
 * retryCall, one token refresh on a 401, the shared pause on 429/503 with Retry-After.
 */
class GraphPolicy implements Middleware {
  private next: Middleware | undefined;
  constructor(private readonly http: GraphHttp) {}

  setNext(next: Middleware): void {
    this.next = next;
  }

  async execute(context: Context): Promise<void> {
    try {
      context.response = await this.attempts(context);
    } catch (e) {
      const call = context.middlewareControl?.getMiddlewareOptions(GraphCall) as GraphCall | undefined;
      if (call) call.thrown = e as Error;
      throw e;
    }
  }

  private attempts(context: Context): Promise<Response> {
    const http = this.http;
    // The SDK builds every URL on apiOrigin: that prefix says so without parsing it; anything else is parsed and compared.
    const href = requestUrl(context.request);
    if (!href.startsWith(http.apiPrefix) && new URL(href).origin !== http.apiOrigin)
      throw new StopRunError('config', 'a Graph API path left the API host; refusing to send the token there');
    let refreshed = false;
    let token = '';
    return retryCall(
      () => {
        http.stats.requests++;
        return this.once(context, token);
      },
      async (out: Outcome<Response>, n): Promise<Verdict<Response>> => {
        if (!out.ok) {
          if (out.error instanceof StopRunError) throw out.error;
          http.stats.retries++;
          return retry(new RetryableError(`OneDrive request failed after ${http.maxAttempts} attempts: ${reason(out.error)}`));
        }
        const res = out.value;
        if (res.status === 401 && !refreshed && http.opts.tokens.kind !== 'static') {
          refreshed = true;
          await http.opts.tokens.get(true);
          return again;
        }
        // The last transient answer goes back to the SDK, which throws it as a GraphError.
        if (!TRANSIENT.has(res.status) || n >= http.maxAttempts) return done(res);
        http.stats.retries++;
        const failed = new RetryableError(`OneDrive request answered ${res.status}`);
        if (res.status !== 429 && res.status !== 503) return retry(failed);
        http.stats.throttled++;
        return retry(failed, parseRetryAfter(res.headers.get('retry-after') ?? undefined) ?? 1000, true);
      },
      {
        attempts: http.maxAttempts,
        signal: http.opts.signal,
        before: async () => {
          await http.pace();
          token = await http.opts.tokens.get();
        },
        pause: (ms) => http.throttled(ms),
      },
    );
  }

  /** One attempt down the chain, with the token and the run's stop signal. */
  private async once(context: Context, token: string): Promise<Response> {
    const headers: Record<string, string> = plainHeaders(context.options?.headers);
    headers.Authorization = `Bearer ${token}`;
    const attempt: Context = { ...context, options: { ...context.options, headers, signal: this.http.opts.signal }, response: undefined };
    await this.next!.execute(attempt);
    return attempt.response!;
  }
}

/**
 * Last in the chain, in place of the SDK's fetch-based HTTPMessageHandler: sends the request
 * through node:https (GraphHttp.send: the keep-alive agent, the body read whole) and answers the
 * SDK with the part of a Response it reads, over the bytes received (buffered-response.ts).
 */
class NodeHttpsHandler implements Middleware {
  constructor(private readonly send: GraphHttp['send']) {}

  async execute(context: Context): Promise<void> {
    const o = context.options ?? {};
    const method = (o.method ?? 'GET').toUpperCase();
    const body = bodyBytes(o.body);
    const headers: Record<string, string | number> = plainHeaders(o.headers);
    if (body) headers['Content-Length'] = body.length;
    else if (method !== 'GET' && method !== 'HEAD') headers['Content-Length'] = 0;
    const a = await this.send({ method, url: requestUrl(context.request), headers, body, signal: o.signal ?? undefined });
    const empty = a.status === 204 || a.status === 205 || a.status === 304 || method === 'HEAD';
    context.response = new BufferedResponse(a.status, a.rawHeaders, empty ? null : a.body).asResponse();
  }
}

function requestUrl(request: RequestInfo): string {
  return typeof request === 'string' ? request : request.url;
}

/** The SDK's headers (a plain object, as GraphRequest builds them; a Headers or pairs accepted too). */
function plainHeaders(h: HeadersInit | undefined): Record<string, string> {
  if (!h) return {};
  // A plain object is asked first: the first touch of the global Headers loads Node's fetch
  // (undici), 11 ms on the way to a run's first request.
  if (Object.getPrototypeOf(h) === Object.prototype) return { ...(h as Record<string, string>) };
  if (Array.isArray(h) || h instanceof Headers) return Object.fromEntries(h as Iterable<[string, string]>);
  return { ...(h as Record<string, string>) };
}

/** The body the SDK serialized: JSON text or our Buffer. */
function bodyBytes(body: BodyInit | null | undefined): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError(`a Graph request body of type ${Object.prototype.toString.call(body)} is not supported here`);
}
