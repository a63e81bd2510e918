// The i.mi.com client: cookies, the passToken -> serviceToken login chain, renewal on 401,
// keep-alive, request retries, and the three-step download. It knows nothing of the engine; the
// Source adapter (source.ts) turns its answers into SourceItems.

import crypto from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { parseRetryAfter } from '../../src/lib/backoff.ts';
import { Pacer, type AdaptivePacer } from '../../src/lib/pacer.ts';
import { reason, redact, registerPassingSecret, registerSecret } from '../../src/lib/redact.ts';
import { again, done, retry, retryCall, type Verdict } from '../../src/lib/retry.ts';
import { ItemGoneError, RejectedError, RetryableError, StopRunError } from '../types.ts';
import type { HostPolicy } from './hosts.ts';
import { request, type Answer } from './http.ts';
import { parseJsonKeepingBigInts, parseJsonp } from './json.ts';
import { CODE_DELETED, CODE_OK, PATHS } from './protocol.ts';

export const RENEW_HINT = 'run `gallery-bridge auth xiaomi` to sign in again, then rerun the same command: it resumes where it stopped';

/**
 * The gallery's second check (XiaomiAlbumSyncer issues #27, #38, #62): a sign-in the account
 * service has just accepted is refused by the gallery until it is confirmed once on a trusted
 * device, and accounts with Advanced Data Protection cannot confirm it at all. One line, no secret.
 */
export const GALLERY_TRUST_HINT =
  'Xiaomi accepted the sign-in but its gallery refused it: the gallery asks once for a confirmation on a trusted device. Open https://i.mi.com/gallery/h5#/ in a browser signed in to the same Xiaomi account, confirm and tick "trust this device", then run `gallery-bridge auth xiaomi` again and rerun the command. Accounts with Advanced Data Protection (end-to-end encryption) cannot pass this check and cannot be read by any known tool.';

/** Paths behind the gallery's second check; the account's own paths (quota, keep-alive, sign-in) are not. */
const isGalleryPath = (path: string): boolean => path.startsWith('/gallery/');

const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36';
// XIAOMI_TIMEOUT_MS shortens both limits (hostile-input tests: an answer that never ends).
const TIMEOUT_OVERRIDE = Number(process.env.XIAOMI_TIMEOUT_MS) > 0 ? Number(process.env.XIAOMI_TIMEOUT_MS) : 0;
const API_TIMEOUT_MS = TIMEOUT_OVERRIDE || 60_000;
const DOWNLOAD_IDLE_MS = TIMEOUT_OVERRIDE || 120_000;
const MAX_ATTEMPTS = 5;

/** What a session is made of. Secrets: serviceToken, passToken, and every cookie value. */
export interface XiaomiCredentials {
  userId: string;
  serviceToken?: string;
  passToken?: string;
  deviceId?: string;
  /** Other cookies of i.mi.com from a pasted browser cookie string; sent to the API host only. */
  cookies?: Record<string, string>;
}

export interface Envelope {
  code: number;
  result?: string;
  description?: string;
  /**
   * The service's own word on whether trying again can help: error answers carry `retriable`
   * (false for 50050, deleted, and 50202), per the reference notes on what public clients see.
   * Null when the answer does not say.
   */
  retriable: boolean | null;
  data: Record<string, unknown>;
  /** The answer's text, for logs (passed through redact by whoever prints it). */
  text: string;
}

export interface ClientOptions {
  baseUrl: string;
  credentials: XiaomiCredentials;
  hosts: HostPolicy;
  /** Called whenever the serviceToken changes (renewal, keep-alive), to persist it. */
  onTokenChange?: (creds: XiaomiCredentials) => void;
  log?: { debug(m: string): void; info(m: string): void; warn(m: string): void };
  keepAliveMs?: number;
  /** Requests per second at most (default 40; 0 means no limit). */
  maxRequestsPerSecond?: number;
}

/** Parses "a=1; b=2" (a browser's Cookie header, as pasted) into a map. */
export function parseCookieString(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.replace(/^\s*cookie:\s*/i, '').split(/;|\r?\n/)) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    let v = part.slice(i + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (k) out[k] = v;
  }
  return out;
}

/** Credentials from a cookie map: userId is required, serviceToken or passToken too. */
export function credentialsFromCookies(map: Record<string, string>): XiaomiCredentials {
  const { userId, serviceToken, passToken, deviceId, ...rest } = map;
  if (!userId || !/^\d+$/.test(userId)) throw new Error('the cookie string has no numeric userId cookie');
  if (!serviceToken && !passToken) throw new Error('the cookie string has neither a serviceToken nor a passToken cookie');
  const creds: XiaomiCredentials = { userId, serviceToken, passToken, deviceId, cookies: rest };
  registerCredentialSecrets(creds);
  return creds;
}

export function registerCredentialSecrets(c: XiaomiCredentials): void {
  registerSecret(c.serviceToken);
  registerSecret(c.passToken);
  for (const v of Object.values(c.cookies ?? {})) registerSecret(v);
}

/** The cookies an answer's Set-Cookie lines set (a fetch Response's, or a node:http answer's lines). */
function setCookies(res: Response | string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const list = Array.isArray(res) ? res : typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
  for (const line of list) {
    const first = line.split(';', 1)[0] ?? '';
    const i = first.indexOf('=');
    if (i > 0) out[first.slice(0, i).trim()] = first.slice(i + 1).trim();
  }
  return out;
}

/**
 * `isLastPage` as the service sends it: a JSON boolean. The string "true"/"false" is read too,
 * as Jackson's asBoolean() does in Coooolfan/XiaomiAlbumSyncer; anything else is null (unknown),
 * which never ends a listing by itself.
 */
export function lastPageFlag(value: unknown): boolean | null {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return null;
}

/**
 * Null when a download hop may go to this URL, else a one-line reason. No cookie goes there, so
 * any host will do; it must be https, except the API base's own host when that is a local http
 * emulator.
 */
export function downloadHopRefusal(url: URL, base: URL): string | null {
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && base.protocol === 'http:' && url.hostname === base.hostname) return null;
  return `the download link goes to ${url.protocol}//${url.host}, not https`;
}

/** The service answered an error it marks `retriable: false`: asking again cannot help. */
export class NotRetriableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotRetriableError';
  }
}

/** The envelope of an answer that parsed as JSON. */
function envelope(code: number, env: Record<string, unknown>, text: string): Envelope {
  return {
    code,
    result: typeof env.result === 'string' ? env.result : undefined,
    description: typeof env.description === 'string' ? env.description : undefined,
    retriable: typeof env.retriable === 'boolean' ? env.retriable : null,
    data: env.data && typeof env.data === 'object' ? (env.data as Record<string, unknown>) : {},
    text,
  };
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

interface Deadline {
  signal: AbortSignal;
  /** The time limit no longer applies (the answer's head came); the outer signal still does. */
  stopClock(): void;
  /** Lets go of the timer and of the outer signal. */
  done(): void;
}

/**
 * A signal that aborts after `ms` or when `outer` does. Not AbortSignal.any: on Node 20 each
 * one leaves a reference on the outer signal (the run's, alive all run long), so memory grew
 * with every request of the library.
 */
function deadline(ms: number, outer?: AbortSignal): Deadline {
  const c = new AbortController();
  const timer = setTimeout(() => c.abort(new DOMException('The operation timed out.', 'TimeoutError')), ms);
  const follow = () => c.abort(outer!.reason);
  if (outer?.aborted) follow();
  else outer?.addEventListener('abort', follow, { once: true });
  const stopClock = () => clearTimeout(timer);
  return {
    signal: c.signal,
    stopClock,
    done: () => {
      stopClock();
      outer?.removeEventListener('abort', follow);
    },
  };
}

/** Aborts a stream that stays silent too long (a stalled download). */
function idleWatchdog(ms: number): Transform {
  let timer: NodeJS.Timeout | undefined;
  const t: Transform = new Transform({
    transform(chunk, _enc, cb) {
      arm();
      cb(null, chunk);
    },
    flush(cb) {
      if (timer) clearTimeout(timer);
      cb();
    },
    destroy(err, cb) {
      if (timer) clearTimeout(timer);
      cb(err);
    },
  });
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => t.destroy(new RetryableError(`the download stalled for ${Math.round(ms / 1000)} s`)), ms);
    timer.unref();
  };
  arm();
  return t;
}

export class XiaomiClient {
  readonly base: URL;
  private creds: XiaomiCredentials;
  private renewing: Promise<void> | null = null;
  private keepAliveTimer: NodeJS.Timeout | null = null;
  private readonly pacer: Pacer;
  /** Counters, for the bench and the tests. */
  readonly stats = { requests: 0, renewals: 0, keepAlives: 0, expiredLinks: 0, retries: 0 };

  constructor(private readonly opts: ClientOptions) {
    this.base = new URL(opts.baseUrl);
    // No rate limit is documented; stay polite. XIAOMI_MAX_RPS changes it (0: no limit).
    this.pacer = new Pacer({ maxRequests: opts.maxRequestsPerSecond ?? 40, windowMs: 1000 });
    this.creds = { ...opts.credentials };
    if (!this.creds.deviceId || !/^wb_/.test(this.creds.deviceId)) this.creds.deviceId = `wb_${crypto.randomUUID()}`;
    registerCredentialSecrets(this.creds);
  }

  get userId(): string {
    return this.creds.userId;
  }

  get canRenew(): boolean {
    return Boolean(this.creds.passToken);
  }

  credentials(): XiaomiCredentials {
    return { ...this.creds, cookies: { ...(this.creds.cookies ?? {}) } };
  }

  private log(level: 'debug' | 'info' | 'warn', msg: string): void {
    this.opts.log?.[level](redact(msg));
  }

  /** Cookies for the API host: the pasted browser cookies, userId and serviceToken; never the passToken. */
  private apiCookie(): string {
    const c: Record<string, string> = { ...(this.creds.cookies ?? {}), userId: this.creds.userId };
    if (this.creds.serviceToken) c.serviceToken = this.creds.serviceToken;
    return Object.entries(c)
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');
  }

  private downloadRefusal(url: URL): string | null {
    return downloadHopRefusal(url, this.base);
  }

  /** Cookies for the login chain (account service, STS): userId, deviceId, passToken. */
  private loginCookie(): string {
    return `userId=${this.creds.userId}; deviceId=${this.creds.deviceId}; passToken=${this.creds.passToken ?? ''}`;
  }

  private takeToken(res: Answer): boolean {
    const st = setCookies(res.setCookies()).serviceToken;
    if (st && st !== this.creds.serviceToken && !/^(deleted|EXPIRED|)$/i.test(st)) {
      registerSecret(st);
      this.creds.serviceToken = st;
      this.opts.onTokenChange?.(this.credentials());
      return true;
    }
    return false;
  }

  // ---- the session ----

  /** Exchanges the passToken for a fresh serviceToken through the three-step login chain. */
  renew(): Promise<void> {
    if (!this.renewing) {
      this.renewing = this.loginChain().finally(() => {
        this.renewing = null;
      });
    }
    return this.renewing;
  }

  private async loginChain(): Promise<void> {
    if (!this.creds.passToken) {
      throw new StopRunError('credentials', `the Xiaomi session (serviceToken) has expired and there is no passToken to renew it: ${RENEW_HINT}`);
    }
    await retryCall(
      () => this.loginChainOnce(),
      (out) => {
        if (out.ok) return done(undefined);
        if (out.error instanceof StopRunError) throw out.error;
        return retry(new RetryableError(`renewing the Xiaomi session failed: ${reason(out.error)}`));
      },
      { attempts: 3 },
    );
    this.stats.renewals++;
    this.log('info', 'xiaomi: serviceToken renewed from the passToken');
  }

  private async loginChainOnce(): Promise<void> {
    // ① ask i.mi.com where to sign in
    const u = new URL(PATHS.login, this.base);
    u.searchParams.set('ts', String(Date.now()));
    u.searchParams.set('followUp', new URL('/', this.base).href);
    u.searchParams.set('_locale', 'zh_CN');
    const r1 = await fetch(u, {
      headers: { Cookie: `userId=${this.creds.userId}; deviceId=${this.creds.deviceId}`, 'User-Agent': USER_AGENT, Accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    const t1 = await r1.text();
    if (r1.status >= 500 || r1.status === 429) throw new Error(`login step 1 answered HTTP ${r1.status}`);
    let loginUrl: string | undefined;
    try {
      const env = parseJsonKeepingBigInts(t1) as { data?: { loginUrl?: unknown } };
      loginUrl = typeof env.data?.loginUrl === 'string' ? env.data.loginUrl : undefined;
    } catch {
      // handled below
    }
    if (!loginUrl) throw new Error(`login step 1 gave no loginUrl (HTTP ${r1.status})`);
    // ② the account service answers 302 to the STS when the passToken is good
    const u2 = new URL(loginUrl, this.base);
    const refuse2 = this.opts.hosts.refusal(u2);
    if (refuse2) throw new StopRunError('credentials', `cannot renew the Xiaomi session: ${refuse2}`);
    const r2 = await fetch(u2, {
      headers: { Cookie: this.loginCookie(), 'User-Agent': USER_AGENT },
      redirect: 'manual',
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    await r2.arrayBuffer().catch(() => undefined);
    if (r2.status >= 500 || r2.status === 429) throw new Error(`login step 2 answered HTTP ${r2.status}`);
    const loc2 = r2.headers.get('location');
    if (r2.status < 300 || r2.status >= 400 || !loc2) {
      throw new StopRunError(
        'credentials',
        `Xiaomi did not accept the passToken (the sign-in page answered HTTP ${r2.status} without a redirect): ${RENEW_HINT}`,
      );
    }
    // ③ the STS sets the serviceToken cookie
    const u3 = new URL(loc2, u2);
    const refuse3 = this.opts.hosts.refusal(u3);
    if (refuse3) throw new StopRunError('credentials', `cannot renew the Xiaomi session: ${refuse3}`);
    const r3 = await fetch(u3, {
      headers: { Cookie: this.loginCookie(), 'User-Agent': USER_AGENT },
      redirect: 'manual',
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    await r3.arrayBuffer().catch(() => undefined);
    if (r3.status >= 500 || r3.status === 429) throw new Error(`login step 3 answered HTTP ${r3.status}`);
    const got = setCookies(r3).serviceToken;
    if (!got) throw new StopRunError('credentials', `the Xiaomi sign-in chain gave no serviceToken (HTTP ${r3.status}): ${RENEW_HINT}`);
    registerSecret(got);
    this.creds.serviceToken = got;
    this.opts.onTokenChange?.(this.credentials());
  }

  /** Keeps the session alive every ~2 minutes while a run is active; stopped by close(). */
  startKeepAlive(): void {
    if (this.keepAliveTimer) return;
    const every = this.opts.keepAliveMs ?? 120_000;
    this.keepAliveTimer = setInterval(() => {
      this.keepAlive().catch((err: unknown) => this.log('debug', `xiaomi: keep-alive failed: ${reason(err)}`));
    }, every);
    this.keepAliveTimer.unref();
  }

  async keepAlive(): Promise<void> {
    this.stats.keepAlives++;
    await this.api('GET', PATHS.keepAlive, { type: 'AutoRenewal', inactiveTime: '10' });
  }

  close(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  // ---- requests ----

  /**
   * One API call with retries: network errors, 429 and 5xx back off and retry; a 401 renews the
   * session once and retries. Returns the envelope whatever its code: callers decide about codes.
   * A gallery path that answers as for a signed-out session although the sign-in chain has just
   * given a fresh serviceToken (or `sessionProven`: the account side accepted this very token a
   * moment ago) is the gallery's second check, not an expiry: no public client has seen the
   * gallery answer it any other way (XiaomiAlbumSyncer #38: "serviceToken 获取成功", then HTTP 401
   * on the album list), so that sequence is what tells it apart.
   * `pace`, when given, is waited on before every attempt and told of every busy answer (5xx,
   * 429, no answer); the caller tells it of the envelope's verdict.
   */
  async api(
    method: 'GET' | 'POST',
    path: string,
    query: Record<string, string> = {},
    form?: () => Record<string, string>,
    signal?: AbortSignal,
    sessionProven = false,
    pace?: AdaptivePacer,
  ): Promise<Envelope> {
    let renewed = false;
    const renewOnce = async (status: string): Promise<Verdict<never>> => {
      if (isGalleryPath(path) && (renewed || sessionProven)) {
        this.log('debug', `xiaomi: ${path} answered ${status} to a session the sign-in just produced: the gallery's second check`);
        throw new StopRunError('credentials', GALLERY_TRUST_HINT);
      }
      if (renewed) throw new StopRunError('credentials', `the Xiaomi session was renewed but ${path} still answers ${status}: ${RENEW_HINT}`);
      this.log('info', `xiaomi: the session expired (${path} answered ${status}); renewing it`);
      await this.renew();
      renewed = true;
      return again;
    };
    // A paced call's back-off is its pacer's growing gap (slept off in before()), not a second wait.
    const retrying = (err: Error, n: number, after?: number): Verdict<never> => {
      if (n < MAX_ATTEMPTS) this.stats.retries++;
      return retry(err, after, pace !== undefined);
    };
    return retryCall(
      () => this.apiOnce(method, path, query, form, signal),
      async (out, n): Promise<Verdict<Envelope>> => {
        if (!out.ok) {
          pace?.busy();
          return retrying(new RetryableError(`Xiaomi ${path} failed ${n} times: ${isAbort(out.error) ? 'timed out' : reason(out.error)}`), n);
        }
        const { res, text } = out.value;
        this.takeToken(res);
        if (res.status === 401 || (res.status >= 300 && res.status < 400) || /^\s*\{\s*"R"\s*:\s*401/.test(text)) {
          return renewOnce(`HTTP ${res.status}`);
        }
        if (res.status === 429 || res.status >= 500) {
          const after = parseRetryAfter(res.header('retry-after'));
          if (res.status === 429 && after) this.pacer.pauseFor(after);
          pace?.busy(after);
          return retrying(new RetryableError(`Xiaomi ${path} answered HTTP ${res.status} ${n} times`, after), n, after);
        }
        let env: Record<string, unknown>;
        try {
          env = parseJsonKeepingBigInts(text) as Record<string, unknown>;
        } catch {
          return retrying(new RetryableError(`Xiaomi ${path} answered HTTP ${res.status} with something that is not JSON`), n);
        }
        const code = Number(env.code ?? (res.status >= 200 && res.status < 300 ? CODE_OK : res.status));
        if (code === 401) return renewOnce('code 401');
        return done(envelope(code, env, text));
      },
      {
        attempts: MAX_ATTEMPTS,
        signal,
        pause: pace && (() => undefined),
        before: async (s) => {
          await pace?.wait(s);
          await this.pacer.wait(s);
        },
      },
    );
  }

  /** One request of api(): the answer and its text. */
  private async apiOnce(
    method: 'GET' | 'POST',
    path: string,
    query: Record<string, string>,
    form: (() => Record<string, string>) | undefined,
    signal?: AbortSignal,
  ): Promise<{ res: Answer; text: string }> {
    const u = new URL(path, this.base);
    u.searchParams.set('ts', String(Date.now()));
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    this.stats.requests++;
    const limit = deadline(API_TIMEOUT_MS, signal);
    try {
      const res = await request(u, {
        method,
        headers: {
          Cookie: this.apiCookie(),
          'User-Agent': USER_AGENT,
          Accept: 'application/json, text/plain, */*',
          ...(form ? { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' } : {}),
        },
        body: form ? new URLSearchParams(form()).toString() : undefined,
        signal: limit.signal,
      });
      return { res, text: await res.text() };
    } finally {
      limit.done();
    }
  }

  /** Throws unless the envelope says success: a RetryableError, or a plain Error when the service says retrying cannot help. */
  private okData(env: Envelope, what: string): Record<string, unknown> {
    if (env.code !== CODE_OK) {
      const msg = `Xiaomi ${what} answered code ${env.code}${env.description ? ` (${redact(env.description)})` : ''}`;
      if (env.retriable === false) throw new NotRetriableError(`${msg}, which it says is not worth retrying`);
      throw new RetryableError(msg);
    }
    return env.data;
  }

  // ---- gallery ----

  /**
   * One album-list page with a session the account side has just accepted: proves the gallery
   * opens to this sign-in, or throws the second-check line (GALLERY_TRUST_HINT).
   */
  async galleryCheck(signal?: AbortSignal): Promise<void> {
    const env = await this.api('GET', PATHS.albums, { pageNum: '0', pageSize: '1', isShared: 'false', numOfThumbnails: '1' }, undefined, signal, true);
    this.okData(env, 'album list');
  }

  /**
   * Every page of the album list, as the service wrote it: entries are checked by the Source.
   * Paging ends on a page that says isLastPage true or holds no album, as in
   * Coooolfan/XiaomiAlbumSyncer (XiaoMiApi.fetchAllAlbums, pageSize=10 like the web client).
   */
  async albumPages(signal?: AbortSignal): Promise<{ pages: Array<{ albums: unknown[]; isLastPage: boolean | null }>; problem: string | null }> {
    const pages: Array<{ albums: unknown[]; isLastPage: boolean | null }> = [];
    for (let pageNum = 0; pageNum < 1000; pageNum++) {
      // An answer without its albums list is asked again; then, past the first page, the albums
      // read so far are listed and the rest reported (nothing at all would stall every run).
      const page = await retryCall(
        () => this.api('GET', PATHS.albums, { pageNum: String(pageNum), pageSize: '10', isShared: 'false', numOfThumbnails: '1' }, undefined, signal),
        (out, n) => {
          if (!out.ok) throw out.error;
          const data = this.okData(out.value, 'album list');
          const read = { albums: data.albums, isLastPage: lastPageFlag(data.isLastPage) };
          return Array.isArray(read.albums) || n >= 3 ? done(read) : retry(new RetryableError('no albums list'));
        },
        { attempts: 3, signal },
      );
      if (!Array.isArray(page.albums)) {
        const problem = `Xiaomi's album list page ${pageNum} carries no albums list (3 tries)`;
        if (pageNum === 0) throw new RetryableError(problem);
        return { pages, problem: `${problem}; albums listed after it are not moved this run — rerun to try again` };
      }
      pages.push({ albums: page.albums, isLastPage: page.isLastPage });
      if (page.isLastPage === true || page.albums.length === 0) break;
    }
    return { pages, problem: null };
  }

  /**
   * One page of an album. No startDate/endDate: Coooolfan/XiaomiAlbumSyncer
   * (XiaoMiApi.fetchAssetsByAlbumId) omits both unless it asks for one day, so no item is
   * filtered out by its date. `galleries` comes back as the service sent it (the Source checks
   * it); isLastPage is true, false, or null when the answer does not say.
   */
  async galleries(albumId: string, pageNum: number, pageSize: number, signal?: AbortSignal): Promise<{ galleries: unknown; isLastPage: boolean | null }> {
    const env = await this.api('GET', PATHS.galleries, { pageNum: String(pageNum), pageSize: String(pageSize), albumId }, undefined, signal);
    const data = this.okData(env, 'gallery listing');
    return { galleries: data.galleries, isLastPage: lastPageFlag(data.isLastPage) };
  }

  async quota(signal?: AbortSignal): Promise<Record<string, unknown>> {
    return this.okData(await this.api('GET', PATHS.quota, {}, undefined, signal), 'quota');
  }

  /** POST /gallery/info/delete, each attempt paced by `pace`. Returns the envelope; code 0 is success. */
  async deleteItem(id: string, pace?: AdaptivePacer): Promise<Envelope> {
    return this.api('POST', PATHS.delete, {}, () => ({ id, serviceToken: this.creds.serviceToken ?? '' }), undefined, false, pace);
  }

  /**
   * The three-step download, fresh each time: /gallery/storage gives a link, the link gives
   * JSONP with the file URL and its meta, a POST of the meta gives the bytes. Links expire fast,
   * so an expired one starts over from step one.
   *
   * The two download hops carry no cookie, only a User-Agent: their URLs are signed.
   * Coooolfan/XiaomiAlbumSyncer (XiaoMiApi.downloadAsset) sends `.ua()` alone there and adds the
   * Cookie header only on i.mi.com API calls; so the session never leaves i.mi.com, and any https
   * host Xiaomi hands out is followed (a CDN we have never heard of included).
   * No `callBack` on /gallery/storage either, as XiaomiAlbumSyncer: the answer is then `dl_img_cb(...)`.
   */
  async download(id: string, expectedSize: number | null, signal?: AbortSignal): Promise<Readable> {
    return retryCall(
      () => this.downloadOnce(id, expectedSize, signal),
      (out) => {
        if (!out.ok) throw out.error;
        if (typeof out.value === 'string') return retry(new RetryableError(`could not download item ${id}: ${out.value || 'no usable link'}`));
        return done(out.value);
      },
      { attempts: MAX_ATTEMPTS, signal },
    );
  }

  /** One pass of the three steps: the bytes, or what went wrong in a way a fresh link may mend. */
  private async downloadOnce(id: string, expectedSize: number | null, signal?: AbortSignal): Promise<Readable | string> {
    // ① the storage link (an API call: cookies)
    const env = await this.api('GET', PATHS.storage, { id }, undefined, signal);
    if (env.code === CODE_DELETED) throw new ItemGoneError(`Xiaomi says item ${id} has been deleted (code ${CODE_DELETED})`);
    if (env.code !== CODE_OK) {
      const problem = `/gallery/storage answered code ${env.code}${env.description ? ` (${redact(env.description)})` : ''}`;
      if (env.retriable === false)
        throw new RejectedError(`Xiaomi will not hand out item ${id}: ${problem}, which it says is not worth retrying`, 'refused-by-source');
      return problem;
    }
    const link = typeof env.data.url === 'string' ? env.data.url : '';
    if (!link) return '/gallery/storage gave no url';
    const u1 = new URL(link, this.base);
    const refuse1 = this.downloadRefusal(u1);
    if (refuse1) throw new RejectedError(`download of item ${id} refused: ${refuse1}`, 'refused-by-source');
    // ② the JSONP step: no cookie
    let r2: Answer;
    let t2: string;
    const linkLimit = deadline(API_TIMEOUT_MS, signal);
    try {
      r2 = await request(u1, { headers: { 'User-Agent': USER_AGENT, Accept: '*/*' }, signal: linkLimit.signal });
      t2 = await r2.text();
    } catch (err) {
      if (signal?.aborted) throw err;
      return `the download link step failed: ${isAbort(err) ? 'timed out' : reason(err)}`;
    } finally {
      linkLimit.done();
    }
    if (r2.status === 401 || r2.status === 403 || r2.status === 404 || r2.status === 410) {
      this.stats.expiredLinks++;
      return `the download link answered HTTP ${r2.status} (expired)`;
    }
    if (r2.status !== 200) return `the download link answered HTTP ${r2.status}`;
    let fileUrl: string;
    let meta: string;
    try {
      const cb = parseJsonp(t2);
      if (typeof cb.url !== 'string' || typeof cb.meta !== 'string') throw new Error('the JSONP answer has no url or meta');
      fileUrl = cb.url;
      meta = cb.meta;
    } catch (err) {
      return reason(err);
    }
    // Masked while this download lasts: kept for good, the metas of a whole library would pile up.
    const forgetMeta = registerPassingSecret(meta);
    // ③ POST the meta, get the bytes (no cookie either)
    // The time limit covers the wait for the answer's head only: a big video streams for as
    // long as it takes, watched for stalls by the idle watchdog below.
    const limit = deadline(API_TIMEOUT_MS, signal);
    let streaming = false;
    try {
      const u3 = new URL(fileUrl, u1);
      const refuse3 = this.downloadRefusal(u3);
      if (refuse3) throw new RejectedError(`download of item ${id} refused: ${refuse3}`, 'refused-by-source');
      let r3: Answer;
      try {
        r3 = await request(u3, {
          method: 'POST',
          headers: { 'User-Agent': USER_AGENT, 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ meta }).toString(),
          signal: limit.signal,
        });
      } catch (err) {
        if (signal?.aborted) throw err;
        return `the file request failed: ${limit.signal.aborted ? 'timed out' : reason(err)}`;
      } finally {
        limit.stopClock();
      }
      if (r3.status !== 200) {
        await r3.discard().catch(() => undefined);
        if (r3.status === 403 || r3.status === 404 || r3.status === 410) this.stats.expiredLinks++;
        return `the file request answered HTTP ${r3.status}`;
      }
      const len = r3.header('content-length');
      if (len !== null && expectedSize !== null && Number(len) !== expectedSize) {
        r3.body.destroy();
        throw new RetryableError(`Xiaomi sends ${len} bytes for item ${id} but its listing says ${expectedSize}`);
      }
      const body = r3.body;
      const guard = idleWatchdog(DOWNLOAD_IDLE_MS);
      body.once('error', (err) => guard.destroy(new RetryableError(`the download of item ${id} broke off: ${reason(err)}`)));
      // pipeline, not pipe: when the reader gives up (destroys what it got), the connection closes too.
      pipeline(body, guard, () => undefined);
      // The run's stop still ends the transfer until the bytes are through.
      guard.once('close', () => {
        limit.done();
        forgetMeta();
      });
      streaming = true;
      return guard;
    } finally {
      if (!streaming) {
        limit.done();
        forgetMeta();
      }
    }
  }
}
