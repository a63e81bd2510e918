// The Library API client: authentication (google-auth-library's OAuth2Client, with refresh), one
// pacer shared by every Google request of the process, the per-project request count, and the
// reading of Google's answers into the engine's error kinds:
//   daily-quota 429            -> StopRunError('quota')           (exit 4)
//   storage full               -> StopRunError('destination-full') (exit 5)
//   refresh refused / 401      -> StopRunError('credentials')
//   other 429 (per minute...)  -> every Google request pauses >= 30 s, then retries
//   5xx, network               -> exponential back-off, then RetryableError
// JSON calls go through OAuth2Client.request; upload bodies stream through fetch with the same
// client's Authorization header, so a large video never sits in memory.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { OAuth2Client } from 'google-auth-library';
import { RetryableError, StopRunError, type Logger } from '../types.ts';
import { backoffDelay, parseRetryAfter } from '../../src/lib/backoff.ts';
import { Pacer } from '../../src/lib/pacer.ts';
import { reason, redact, registerSecret } from '../../src/lib/redact.ts';
import { again, done, retry, retryCall, type Outcome, type Verdict } from '../../src/lib/retry.ts';
import { readCredentials } from '../../src/lib/credentials.ts';
import { requestBudget } from '../../src/lib/request-budget.ts';
import { forgetAfterAccount } from '../../src/lib/account-scope.ts';
import { pacificDay, QuotaCounter } from './quota.ts';
import { DEFAULT_AUTH_URL, DEFAULT_BASE_URL, DEFAULT_TOKEN_URL } from './protocol.ts';

export const PROVIDER = 'google-photos';

export interface StoredCredentials {
  client_id: string;
  refresh_token: string;
  scope?: string;
  obtained_at?: string;
}

export interface GoogleConfig {
  baseUrl: string;
  authUrl: string;
  tokenUrl: string;
  clientId: string | null;
  clientSecret: string | null;
  accessToken: string | null;
}

export function googleConfig(env: NodeJS.ProcessEnv): GoogleConfig {
  const accessToken = env.GOOGLE_ACCESS_TOKEN || null;
  registerSecret(accessToken);
  registerSecret(env.GOOGLE_CLIENT_SECRET);
  return {
    baseUrl: (env.GOOGLE_PHOTOS_BASE_URL || DEFAULT_BASE_URL).replace(/\/+$/, ''),
    authUrl: env.GOOGLE_OAUTH_AUTH_URL || DEFAULT_AUTH_URL,
    tokenUrl: env.GOOGLE_OAUTH_TOKEN_URL || DEFAULT_TOKEN_URL,
    clientId: env.GOOGLE_CLIENT_ID || null,
    clientSecret: env.GOOGLE_CLIENT_SECRET || null,
    accessToken,
  };
}

export async function newOAuthClient(cfg: GoogleConfig, redirectUri?: string): Promise<OAuth2Client> {
  // google-auth-library itself, not googleapis (which re-exports it): googleapis loads every API's
  // description, some 90 MB and seconds at start, and has no Photos client anyway.
  const { OAuth2Client: Client } = await import('google-auth-library');
  return new Client({
    clientId: cfg.clientId ?? undefined,
    clientSecret: cfg.clientSecret ?? undefined,
    redirectUri,
    endpoints: { oauth2AuthBaseUrl: cfg.authUrl, oauth2TokenUrl: cfg.tokenUrl },
  });
}

export interface Resp {
  status: number;
  headers: Headers;
  text: string;
}

export interface GoogleErrorBody {
  code?: number;
  message?: string;
  status?: string;
  details?: Array<{ metadata?: Record<string, string> }>;
}

export function googleError(r: Resp): GoogleErrorBody {
  try {
    const body = JSON.parse(r.text) as { error?: GoogleErrorBody | string; error_description?: string };
    if (body && typeof body.error === 'object') return body.error;
    if (typeof body.error === 'string') return { message: `${body.error}${body.error_description ? `: ${body.error_description}` : ''}` };
  } catch {
    // not JSON
  }
  return { code: r.status, message: r.text.slice(0, 300) || `HTTP ${r.status}` };
}

const isDaily = (e: GoogleErrorBody) => /per day/i.test(e.message ?? '') || (e.details ?? []).some((d) => /PerDay/i.test(d.metadata?.quota_limit ?? ''));
export const isStorageFull = (e: GoogleErrorBody) => /remaining storage|storage quota|not enough storage/i.test(e.message ?? '');

/** The longest a throttling 429 may pause the run; Retry-After beyond it leaves the item for later. */
export const MAX_THROTTLE_WAIT_MS = 5 * 60_000;

/** When Google's daily quota resets: the next midnight in Pacific time, as UTC and as local time. */
export function rerunTime(now = Date.now()): string {
  const at = nextPacificMidnight(now);
  const local = new Date(at).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  return `${new Date(at).toISOString().replace(/:\d\d\.\d{3}Z$/, 'Z')} (midnight Pacific time; ${local} here)`;
}

export function nextPacificMidnight(now = Date.now()): number {
  const today = pacificDay(now);
  // The first whole minute after `now` whose Pacific date differs: found by hours, then minutes.
  let t = now - (now % 60_000);
  while (pacificDay(t + 3600_000) === today) t += 3600_000;
  while (pacificDay(t) === today) t += 60_000;
  return t;
}

/** An answer whose outcome is unknown (5xx or a cut connection on a call that must not be repeated blindly). */
export class AmbiguousError extends RetryableError {
  constructor(message: string) {
    super(message);
    this.name = 'AmbiguousError';
  }
}

export interface CallOptions {
  /** Counts against the per-minute write limit (uploads, batchCreate, album creation). */
  write?: boolean;
  /** Attempts for 5xx and network errors (1: the body cannot be sent twice). */
  attempts?: number;
  /** When false, a 5xx or cut connection throws AmbiguousError instead of repeating the call. */
  repeatable?: boolean;
  signal?: AbortSignal;
}

/** A request whose body streams with back-pressure, holding one chunk at a time; the answer is read whole. */
async function streamRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): Promise<Resp> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise<Resp>((resolve, reject) => {
    const req = mod.request(u, { method, headers, signal }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve({ status: res.statusCode ?? 0, headers: h, text: Buffer.concat(parts).toString('utf8') });
      });
    });
    req.on('error', reject);
    void (async () => {
      try {
        for await (const c of body) {
          if (!req.write(c))
            await new Promise<void>((r, j) => {
              const onClose = () => j(new Error('the connection closed while sending'));
              req.once('drain', () => {
                req.off('close', onClose);
                r();
              });
              req.once('close', onClose);
            });
        }
        req.end();
      } catch (err) {
        req.destroy(err as Error);
        reject(err);
      }
    })();
  });
}

const DOWNLOAD_ATTEMPTS = 4;

/** A baseUrl download: 429, 5xx and network trouble are retried; another HTTP answer is final. */
function downloadVerdict<T>(out: Outcome<T>): Verdict<T> {
  if (out.ok) return done(out.value);
  const err = out.error;
  if (!(err instanceof RetryableError) && (err as Error).message?.startsWith('download: HTTP')) throw err;
  return retry(new RetryableError(`download of a baseUrl failed: ${reason(err)}`), err instanceof RetryableError ? err.retryAfterMs : undefined);
}

/** Pacers are per OAuth client and process: every request to Google waits on the same one. */
const pacers = new Map<string, { all: Pacer; writes: Pacer }>();
// A batch's warm worker starts each account with fresh pacers, as a process of its own would.
forgetAfterAccount(() => pacers.clear());

export class GoogleApi {
  readonly pacer: Pacer;
  readonly writePacer: Pacer;
  private refreshing: Promise<void> | null = null;

  private constructor(
    readonly cfg: GoogleConfig,
    private readonly oauth: OAuth2Client,
    private readonly refreshable: boolean,
    readonly quota: QuotaCounter,
    readonly clientKey: string,
    private readonly log: Logger,
    writesPerMinute: number,
    private readonly stopSignal?: AbortSignal,
  ) {
    let p = pacers.get(clientKey);
    if (!p) {
      // A window a second longer than Google's minute absorbs the delay between our send and its count.
      p = { all: new Pacer(), writes: new Pacer(writesPerMinute > 0 ? { maxRequests: writesPerMinute, windowMs: 61_000 } : {}) };
      pacers.set(clientKey, p);
    }
    this.pacer = p.all;
    this.writePacer = p.writes;
  }

  static async create(opts: {
    env: NodeJS.ProcessEnv;
    home: string;
    account: string;
    log: Logger;
    writesPerMinute?: number;
    signal?: AbortSignal;
  }): Promise<GoogleApi> {
    const cfg = googleConfig(opts.env);
    let refreshable = false;
    let clientId = cfg.clientId;
    const oauth = await newOAuthClient(cfg);
    if (cfg.accessToken) {
      oauth.setCredentials({ access_token: cfg.accessToken });
    } else {
      const stored = readCredentials<StoredCredentials>(opts.home, PROVIDER, opts.account);
      if (!stored?.refresh_token) {
        throw new StopRunError(
          'credentials',
          `no Google Photos sign-in for account "${opts.account}": run \`gallery-bridge auth google-photos\` (or set GOOGLE_ACCESS_TOKEN)`,
        );
      }
      if (!cfg.clientId || !cfg.clientSecret) {
        throw new StopRunError('config', 'GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set to refresh the Google Photos sign-in');
      }
      if (stored.client_id && stored.client_id !== cfg.clientId) {
        throw new StopRunError(
          'config',
          `the Google Photos sign-in of account "${opts.account}" belongs to another OAuth client than GOOGLE_CLIENT_ID: run \`gallery-bridge auth google-photos\` again`,
        );
      }
      oauth.setCredentials({ refresh_token: stored.refresh_token });
      oauth.on('tokens', (t) => registerSecret(t.access_token ?? null));
      refreshable = true;
      clientId = stored.client_id || cfg.clientId;
    }
    const host = new URL(cfg.baseUrl).host;
    const clientKey = `${clientId ?? 'access-token'}@${host}`;
    const quota = new QuotaCounter(opts.home, clientKey);
    return new GoogleApi(cfg, oauth, refreshable, quota, clientKey, opts.log, opts.writesPerMinute ?? 0, opts.signal);
  }

  url(p: string): string {
    return `${this.cfg.baseUrl}${p}`;
  }

  private credentialsError(err: unknown): StopRunError {
    const hint = this.refreshable
      ? ' Run `gallery-bridge auth google-photos` again. Refresh tokens of an OAuth client left in "Testing" status expire after 7 days.'
      : ' GOOGLE_ACCESS_TOKEN is used as given and cannot be refreshed.';
    return new StopRunError('credentials', `Google refused the credentials: ${reason(err)}.${hint}`);
  }

  /** The Authorization header, refreshing the access token when it is about to expire. */
  async authHeader(): Promise<string> {
    try {
      const h = await this.oauth.getRequestHeaders();
      const v = h.get('authorization');
      if (!v) throw new Error('no access token');
      return v;
    } catch (err) {
      throw this.mapAuthError(err);
    }
  }

  private mapAuthError(err: unknown): Error {
    const data = (err as { response?: { data?: { error?: string } } }).response?.data;
    if (data?.error === 'invalid_grant' || data?.error === 'invalid_client' || data?.error === 'unauthorized_client')
      return this.credentialsError(`${data.error}`);
    if (err instanceof StopRunError) return err;
    return new RetryableError(`could not get a Google access token: ${reason(err)}`);
  }

  private async forceRefresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = (async () => {
        try {
          const creds = this.oauth.credentials;
          this.oauth.setCredentials({ refresh_token: creds.refresh_token });
          await this.oauth.getRequestHeaders();
        } catch (err) {
          throw this.mapAuthError(err);
        } finally {
          this.refreshing = null;
        }
      })();
    }
    return this.refreshing;
  }

  /** A JSON call through OAuth2Client.request; the whole answer is read (a cut answer is an error). */
  json(method: 'GET' | 'POST', p: string, data?: unknown, signal?: AbortSignal): () => Promise<Resp> {
    return async () => {
      try {
        const r = await this.oauth.request<string>({
          url: this.url(p),
          method,
          data: data === undefined ? undefined : JSON.stringify(data),
          headers: data === undefined ? {} : { 'Content-Type': 'application/json' },
          responseType: 'text',
          validateStatus: () => true,
          retry: false,
          timeout: 120_000,
          signal,
        });
        return { status: r.status, headers: r.headers as unknown as Headers, text: typeof r.data === 'string' ? r.data : JSON.stringify(r.data ?? '') };
      } catch (err) {
        const mapped = this.mapAuthError(err);
        if (mapped instanceof StopRunError) throw mapped;
        throw err;
      }
    };
  }

  /** A request with a streamed or buffered body through fetch, authorized by the same OAuth client. */
  fetch(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: Buffer | AsyncIterable<Uint8Array>; signal?: AbortSignal; auth?: boolean },
  ): () => Promise<Resp> {
    return async () => {
      const headers: Record<string, string> = { ...init.headers };
      if (init.auth !== false) headers.Authorization = await this.authHeader();
      const streamed = init.body && !(init.body instanceof Buffer);
      // A stalled connection must not hang the run: 5 minutes plus 20 s per MB announced.
      const length = Number(init.headers['Content-Length'] ?? (init.body instanceof Buffer ? init.body.length : 0)) || 0;
      const timeout = AbortSignal.timeout(5 * 60_000 + Math.ceil(length / 50_000) * 1000);
      const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      // fetch keeps every chunk of a streamed request body until the answer (Node 20's undici):
      // a 150 MB photo would sit in memory whole. Streamed bodies go through node:http instead.
      if (streamed) return streamRequest(url, init.method, headers, init.body as AsyncIterable<Uint8Array>, signal);
      const r = await fetch(url, {
        method: init.method,
        headers,
        body: init.body as BodyInit | undefined,
        signal,
      } as RequestInit);
      const text = await r.text();
      return { status: r.status, headers: r.headers, text };
    };
  }

  /**
   * Sends one API call with the shared pacing, counting and error handling. Answers other than
   * 2xx that are not handled here (4xx) are returned for the caller to read.
   */
  async call(what: string, send: () => Promise<Resp>, callOpts: CallOptions = {}): Promise<Resp> {
    // Every wait (pacing, a throttling pause, back-off) ends when the run is asked to stop.
    const signal = callOpts.signal ?? this.stopSignal;
    const attempts = callOpts.attempts ?? 5;
    let refreshed = false;
    let throttled = 0;
    return retryCall(
      async () => {
        try {
          return await send();
        } catch (err) {
          if (signal?.aborted) throw signal.reason ?? err;
          throw err;
        }
      },
      async (out): Promise<Verdict<Resp>> => {
        if (!out.ok) {
          if (out.error instanceof StopRunError) throw out.error;
          const cause = (out.error as { cause?: unknown }).cause;
          const msg = `${what}: ${reason(out.error)}${cause ? ` (${reason(cause)})` : ''}`;
          if (callOpts.repeatable === false) throw new AmbiguousError(msg);
          return retry(new RetryableError(msg));
        }
        const r = out.value;
        if (r.status >= 200 && r.status < 300) return done(r);
        const e = googleError(r);
        const msg = `${what}: HTTP ${r.status} ${e.status ?? ''} ${redact(e.message ?? '')}`.replace(/\s+/g, ' ').trim();
        if (r.status === 401) {
          if (this.refreshable && !refreshed && attempts > 1) {
            refreshed = true;
            await this.forceRefresh();
            return again;
          }
          throw this.credentialsError(e.message ?? 'HTTP 401');
        }
        if (r.status === 403 && /scope/i.test(e.message ?? '')) {
          throw new StopRunError(
            'credentials',
            `${msg}. Sign in again with \`gallery-bridge auth google-photos\` to grant the appendonly and readonly.appcreateddata scopes.`,
          );
        }
        if (r.status === 429) {
          if (isDaily(e)) {
            this.quota.markExhausted();
            await requestBudget()?.spent(this.clientKey);
            const used = this.quota.today();
            throw new StopRunError(
              'quota',
              `Google Photos daily request quota is spent (${used.requests} requests counted today, Pacific time): run again after ${rerunTime()}; the migration resumes where it stopped`,
            );
          }
          throttled++;
          this.throttle(msg, r, throttled);
          return again;
        }
        if (isStorageFull(e)) throw new StopRunError('destination-full', `Google storage is full: ${redact(e.message ?? '')}`);
        if (r.status >= 500 || r.status === 408) {
          if (callOpts.repeatable === false) throw new AmbiguousError(msg);
          return retry(new RetryableError(msg), parseRetryAfter(r.headers.get('retry-after')));
        }
        return done(r);
      },
      {
        attempts,
        signal,
        before: async (s) => {
          await this.pacer.wait(s);
          if (callOpts.write) await this.writePacer.wait(s);
          await requestBudget()?.take(this.clientKey);
          this.quota.count();
        },
      },
    );
  }

  /**
   * Per-minute and concurrency limits: every Google request waits at least 30 s, and at most
   * MAX_THROTTLE_WAIT_MS: a longer Retry-After leaves the item for later instead of holding the
   * run (it stops with the time to rerun when nothing else is left). Throttled answers are not
   * counted as attempts; the eighth in one call gives up.
   */
  private throttle(msg: string, r: Resp, throttled: number): void {
    const retryAfter = parseRetryAfter(r.headers.get('retry-after'));
    if (retryAfter !== undefined && retryAfter > MAX_THROTTLE_WAIT_MS)
      throw new RetryableError(`${msg} (Google asks to wait ${Math.round(retryAfter / 1000)} s)`, retryAfter);
    const wait = Math.min(MAX_THROTTLE_WAIT_MS, backoffDelay(throttled, Math.max(30_000, retryAfter ?? 0), { baseMs: 30_000, maxMs: MAX_THROTTLE_WAIT_MS }));
    this.pacer.pauseFor(wait);
    this.log.debug(`${msg}: pausing Google requests for ${Math.round(wait)} ms`);
    if (throttled >= 8) throw new RetryableError(msg, wait);
  }

  /** GETs a baseUrl download (media bytes: counted apart, no Authorization needed). */
  async download(url: string, signal?: AbortSignal): Promise<Buffer> {
    return retryCall(
      async () => {
        this.quota.countMedia();
        const r = await fetch(url, { signal: signal ?? AbortSignal.timeout(10 * 60_000) });
        if (r.status === 200) return Buffer.from(await r.arrayBuffer());
        const text = await r.text().catch(() => '');
        if (r.status === 429 || r.status >= 500) throw new RetryableError(`download: HTTP ${r.status}`, parseRetryAfter(r.headers.get('retry-after')));
        throw new Error(`download: HTTP ${r.status} ${redact(text.slice(0, 200))}`);
      },
      downloadVerdict,
      { attempts: DOWNLOAD_ATTEMPTS, signal },
    );
  }

  /** Like download(), streamed into `file` (a photo too large to hold): its SHA-1 and size, hashed as the bytes pass. */
  async downloadTo(url: string, file: string, signal?: AbortSignal): Promise<{ sha1: string; size: number }> {
    return retryCall(
      async () => {
        this.quota.countMedia();
        const r = await fetch(url, { signal: signal ?? AbortSignal.timeout(30 * 60_000) });
        if (r.status !== 200 || !r.body) {
          const text = await r.text().catch(() => '');
          if (r.status === 429 || r.status >= 500) throw new RetryableError(`download: HTTP ${r.status}`, parseRetryAfter(r.headers.get('retry-after')));
          throw new Error(`download: HTTP ${r.status} ${redact(text.slice(0, 200))}`);
        }
        const h = crypto.createHash('sha1');
        let size = 0;
        const hashing = new Transform({
          transform(chunk: Buffer, _enc, done) {
            h.update(chunk);
            size += chunk.length;
            done(null, chunk);
          },
        });
        await pipeline(Readable.fromWeb(r.body as import('node:stream/web').ReadableStream), hashing, fs.createWriteStream(file));
        return { sha1: h.digest('hex'), size };
      },
      downloadVerdict,
      { attempts: DOWNLOAD_ATTEMPTS, signal },
    );
  }

  close(): void {
    this.quota.close();
  }
}
