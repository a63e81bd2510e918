// HTTP for the OneDrive destination: Graph API calls through @microsoft/microsoft-graph-client,
// and the pre-authenticated upload URLs through node:https.
//
// Graph API calls go through the SDK's Client with our own middleware chain instead of the
// default one: the default RetryHandler waits in its own timer per request, so one throttled
// answer would not pause the other workers, and it does not know our back-off scale. Our
// middleware waits on one Pacer shared by every request of the destination, pauses the whole
// queue on 429/503 with Retry-After, reads each body whole (a connection cut mid-body becomes a
// retry here instead of a parse error later), adds the bearer token only for the API origin,
// and refreshes the token once on a 401.
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

import https from 'node:https';
import { Client, HTTPMessageHandler, LargeFileUploadTask, type Middleware, type Context } from '@microsoft/microsoft-graph-client';
import { parseRetryAfter } from '../../src/lib/backoff.ts';
import type { Pacer } from '../../src/lib/pacer.ts';
import { reason, redact } from '../../src/lib/redact.ts';
import { again, done, retry, retryCall, type Verdict } from '../../src/lib/retry.ts';
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
  readonly client: Client;
  readonly apiOrigin: string;
  private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
  readonly stats = { requests: 0, retries: 0, throttled: 0, fragmentBytesSent: 0 };

  constructor(readonly opts: HttpOptions) {
    const u = new URL(opts.baseUrl);
    this.apiOrigin = u.origin;
    const version = u.pathname.replace(/^\/+|\/+$/g, '') || 'v1.0';
    const chain: Middleware = new PacedRetryMiddleware(this);
    chain.setNext?.(new HTTPMessageHandler());
    this.client = Client.initWithMiddleware({
      middleware: chain,
      baseUrl: this.apiOrigin,
      defaultVersion: version,
      // The upload host is deliberately not listed: the SDK must never attach a token to it.
      customHosts: new Set([u.hostname]),
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
      const why = this.opts.until && end > this.opts.until.getTime() ? 'past --until' : `longer than the ${Math.round((this.opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS) / 1000)} s this run waits at most (--onedrive-max-wait)`;
      throw new StopRunError('quota', `throttled: rerun after ${clockTime(end)} (OneDrive asked for a pause of ${Math.ceil(ms / 1000)} s, ${why})`);
    }
    this.pauseAll(ms);
  }

  /** One Graph API call through the SDK. Errors become GraphHttpError (or StopRunError). */
  async api<T>(method: 'get' | 'post' | 'put' | 'delete', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    try {
      const req = this.client.api(path).headers({ 'User-Agent': USER_AGENT, ...headers });
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
      throw this.mapError(e);
    }
  }

  /** Creates an upload session through the SDK, with our own payload (fileSystemInfo, conflictBehavior). */
  async createUploadSession(path: string, payload: unknown): Promise<{ url: string; expiry: Date }> {
    try {
      const s = await LargeFileUploadTask.createUploadSession(this.client, path, payload, { 'User-Agent': USER_AGENT });
      if (!s.url) throw new GraphHttpError(502, 'noUploadUrl', 'createUploadSession answered without an uploadUrl');
      return { url: s.url, expiry: s.expiry };
    } catch (e) {
      throw this.mapError(e);
    }
  }

  /**
   * The SDK wraps whatever a middleware throws into its own GraphError (keeping the stack): our
   * StopRunError or RetryableError from the middleware is found again by that stack.
   */
  readonly thrownInChain = new Map<string, Error>();

  mapError(e: unknown): Error {
    if (e instanceof StopRunError || e instanceof GraphHttpError || e instanceof RetryableError) return e;
    const stack = (e as { stack?: string })?.stack;
    const original = stack ? this.thrownInChain.get(stack) : undefined;
    if (original) {
      this.thrownInChain.delete(stack!);
      return original;
    }
    const any = e as { statusCode?: number; code?: string | null; message?: string; body?: unknown; headers?: Headers };
    if (typeof any?.statusCode === 'number' && any.statusCode > 0) {
      const status = any.statusCode;
      let code = any.code ?? '';
      if (!code && typeof any.body === 'string') {
        try {
          code = (JSON.parse(any.body) as { error?: { code?: string } }).error?.code ?? '';
        } catch {
          /* not JSON */
        }
      }
      const msg = `Graph answered ${status}${code ? ` ${code}` : ''}: ${reason(any.message ?? '')}`;
      if (status === 507) return new StopRunError('destination-full', `OneDrive is full (507 ${code || 'insufficientStorage'}): free space or buy storage, then run again to resume.`);
      if (status === 401) return new StopRunError('credentials', `OneDrive refused the access token (401 ${code}). Sign in again with \`gallery-bridge auth onedrive\` (or give a fresh ONEDRIVE_ACCESS_TOKEN).`);
      const retryAfter = any.headers && typeof any.headers.get === 'function' ? parseRetryAfter(any.headers.get('retry-after')) : undefined;
      return new GraphHttpError(status, code, msg, retryAfter);
    }
    return new RetryableError(`OneDrive request failed: ${reason(e)}`);
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
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: Record<string, unknown> }> {
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
      req.on('timeout', () => req.destroy(new Error('upload request timed out')));
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

/** The SDK middleware: pacing, auth for the API origin only, retries, whole bodies. */
class PacedRetryMiddleware implements Middleware {
  private next: Middleware | undefined;
  constructor(private readonly http: GraphHttp) {}

  setNext(next: Middleware): void {
    this.next = next;
  }

  async execute(context: Context): Promise<void> {
    try {
      await this.attempts(context);
    } catch (e) {
      if ((e instanceof StopRunError || e instanceof RetryableError) && e.stack) {
        if (this.http.thrownInChain.size > 100) this.http.thrownInChain.clear();
        this.http.thrownInChain.set(e.stack, e);
      }
      throw e;
    }
  }

  private async attempts(context: Context): Promise<void> {
    const http = this.http;
    const url = new URL(typeof context.request === 'string' ? context.request : (context.request as Request).url);
    const sameOrigin = url.origin === http.apiOrigin;
    let refreshed = false;
    let token: string | null = null;
    context.response = await retryCall(
      () => this.once(context, token),
      async (out, n): Promise<Verdict<Response>> => {
        if (!out.ok) {
          http.stats.retries++;
          return retry(new RetryableError(`OneDrive request failed after ${http.maxAttempts} attempts: ${reason(out.error)}`));
        }
        const res = out.value;
        if (res.status === 401 && sameOrigin && !refreshed && http.opts.tokens.kind !== 'static') {
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
        return retry(failed, parseRetryAfter(res.headers.get('retry-after')) ?? 1000, true);
      },
      {
        attempts: http.maxAttempts,
        signal: http.opts.signal,
        before: async () => {
          await http.pace();
          token = sameOrigin ? await http.opts.tokens.get() : null;
        },
        pause: (ms) => http.throttled(ms),
      },
    );
  }

  /** One request down the chain, its body read whole: a connection cut mid-body is a retry, not a parse error later. */
  private async once(context: Context, token: string | null): Promise<Response> {
    const http = this.http;
    http.stats.requests++;
    const options = { ...(context.options ?? {}) };
    const headers: Record<string, string> = { ...((options.headers as Record<string, string> | undefined) ?? {}) };
    delete headers.Authorization;
    delete headers.authorization;
    // The bearer token goes to the API origin only (token is null elsewhere).
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    options.headers = headers;
    // A stop aborts the request in flight too, not only the waits between requests.
    if (http.opts.signal) options.signal = http.opts.signal;
    const attemptCtx: Context = { ...context, options, response: undefined };
    await this.next!.execute(attemptCtx);
    const res = attemptCtx.response!;
    const buf = await res.arrayBuffer();
    return new Response(res.status === 204 || res.status === 304 ? null : buf, { status: res.status, statusText: res.statusText, headers: res.headers });
  }
}
