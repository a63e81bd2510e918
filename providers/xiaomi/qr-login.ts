// Signing in to the Xiaomi account service by QR code, as i.mi.com's own sign-in page does and
// as the public clients show it (../shared/reference/xiaomi-cloud-gallery.md, "signing in by QR
// code"; each step names the client it follows). It ends with the passToken (what the tool
// stores, to renew sessions) and, when the STS hop gives one, a first serviceToken. It prints
// nothing itself: the caller shows the QR code (auth-qr.ts).

import crypto from 'node:crypto';
import { sleep } from '../../src/lib/backoff.ts';
import { reason, registerSecret } from '../../src/lib/redact.ts';
import { StopRunError } from '../types.ts';
import type { HostPolicy } from './hosts.ts';
import { request, type Answer } from './http.ts';
import { idString, parseJsonKeepingBigInts } from './json.ts';
import { PATHS } from './protocol.ts';
import { DEFAULT_QR_TIMEOUT_S, JSON_PREFIX, QR_PATHS } from './qr-protocol.ts';

const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36';
const STEP_TIMEOUT_MS = 30_000;
/** One long poll at most this long (Do1e/mijia-api waits 60 s); then it is asked again. */
const POLL_MS = Number(process.env.XIAOMI_QR_POLL_MS) > 0 ? Number(process.env.XIAOMI_QR_POLL_MS) : 60_000;
/** Network errors in a row the long poll rides out before giving up. */
const POLL_NETWORK_RETRIES = 3;

export interface QrShown {
  /** What the phone opens: the QR code's content, also printed as a link. */
  loginUrl: string;
  /** 1 for the first code, 2 for the one after it expired, ... */
  attempt: number;
  attempts: number;
  /** Seconds this code lives, as the service said. */
  timeoutS: number;
}

export interface QrLoginOptions {
  /** i.mi.com (or the emulator): where /api/user/login names the account service's page. */
  base: URL;
  hosts: HostPolicy;
  /** The web deviceId cookie (wb_<uuid>), kept for the renewals that follow. */
  deviceId: string;
  /** How many QR codes at most before giving up (default 3). */
  attempts?: number;
  /** Aborted by Ctrl-C. */
  signal?: AbortSignal;
  onQr(shown: QrShown): void;
  onExpired(attempt: number, attempts: number): void;
  log?: { debug(m: string): void };
}

export interface QrSignedIn {
  userId: string;
  passToken: string;
  /** Set when the location hop gave one; otherwise the passToken chain gets it. */
  serviceToken?: string;
}

/** The sign-in was given up on (Ctrl-C): nothing was stored. */
export class QrCancelledError extends Error {
  constructor() {
    super('sign-in cancelled before the phone confirmed it; nothing was stored');
    this.name = 'QrCancelledError';
  }
}

/** A one-line StopRunError: the sign-in did not happen, nothing was stored. */
function notSignedIn(message: string): StopRunError {
  return new StopRunError('credentials', `${message}; nothing was stored`);
}

/** The JSON after the account service's `&&&START&&&` (every public client strips it; see qr-protocol.ts). */
export function parsePrefixed(text: string, step: string): Record<string, unknown> {
  const t = text.trimStart();
  const body = t.startsWith(JSON_PREFIX) ? t.slice(JSON_PREFIX.length) : t;
  let v: unknown;
  try {
    v = parseJsonKeepingBigInts(body);
  } catch {
    throw notSignedIn(`Xiaomi's sign-in service answered ${step} with something that is not JSON (${t.length} bytes)`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw notSignedIn(`Xiaomi's sign-in service answered ${step} with no JSON object`);
  return v as Record<string, unknown>;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : null);

export class QrLogin {
  private readonly attempts: number;

  constructor(private readonly o: QrLoginOptions) {
    this.attempts = Math.max(1, o.attempts ?? 3);
  }

  /** A URL the answers named, refused unless cookies may go there (hosts.ts: Xiaomi's hosts, https). */
  private checked(raw: string, what: string, relativeTo: URL): URL {
    let u: URL;
    try {
      u = new URL(raw, relativeTo);
    } catch {
      throw notSignedIn(`Xiaomi's sign-in service gave ${what} that is not a URL`);
    }
    const refusal = this.o.hosts.refusal(u);
    if (refusal) throw notSignedIn(`${refusal} (${what})`);
    return u;
  }

  private async get(url: URL, cookie: string, timeoutMs: number): Promise<Answer> {
    const c = new AbortController();
    const timer = setTimeout(() => c.abort(new DOMException('The operation timed out.', 'TimeoutError')), timeoutMs);
    const outer = this.o.signal;
    const follow = (): void => c.abort(outer!.reason);
    if (outer?.aborted) follow();
    outer?.addEventListener('abort', follow, { once: true });
    try {
      const res = await request(url, { headers: { Cookie: cookie, 'User-Agent': USER_AGENT, Accept: '*/*' }, signal: c.signal });
      // The body too may take its time (a long poll answers when it answers): the clock runs on.
      const text = res.text();
      await text.catch(() => undefined);
      return { ...res, text: () => text, discard: () => text.then(() => undefined) };
    } catch (err) {
      if (outer?.aborted) throw new QrCancelledError();
      throw err;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', follow);
    }
  }

  private deviceCookie(): string {
    return `deviceId=${this.o.deviceId}`;
  }

  async run(): Promise<QrSignedIn> {
    const page = await this.signInPage();
    const params = await this.signedParams(page);
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const qr = await this.newQr(page, params);
      this.o.onQr({ loginUrl: qr.loginUrl, attempt, attempts: this.attempts, timeoutS: qr.timeoutS });
      const done = await this.waitForPhone(qr.lp, Date.now() + qr.timeoutS * 1000);
      if (done) return this.finish(done, page);
      if (attempt < this.attempts) this.o.onExpired(attempt, this.attempts);
    }
    const minutes = Math.round((this.attempts * this.lastTimeoutS) / 60);
    throw notSignedIn(
      `no phone confirmed the sign-in: ${this.attempts} QR codes expired one after another (about ${minutes} min). Run \`gallery-bridge auth xiaomi\` again with the Xiaomi app at hand ` +
        '(if codes keep expiring after you confirm, sign in once at https://account.xiaomi.com in a browser first), or sign in with --cookie',
    );
  }

  private lastTimeoutS = DEFAULT_QR_TIMEOUT_S;

  /**
   * i.mi.com's own page asks /api/user/login where to sign in; data.loginUrl is the account
   * service's serviceLogin page for sid i.mi.com, with the STS callback (wangbjun/xiaomi-disk
   * `SecondLoginCheck`; Coooolfan/XiaomiAlbumSyncer `TokenManager.kt`).
   */
  private async signInPage(): Promise<URL> {
    const u = new URL(PATHS.login, this.o.base);
    u.searchParams.set('ts', String(Date.now()));
    u.searchParams.set('followUp', new URL('/', this.o.base).href);
    u.searchParams.set('_locale', 'zh_CN');
    const res = await this.step(() => this.get(u, this.deviceCookie(), STEP_TIMEOUT_MS), 'the sign-in page request (/api/user/login)');
    const text = await res.text();
    let loginUrl: string | null = null;
    try {
      const env = parseJsonKeepingBigInts(text) as { data?: { loginUrl?: unknown } };
      loginUrl = str(env?.data?.loginUrl);
    } catch {
      // said below
    }
    if (!loginUrl) throw notSignedIn(`i.mi.com did not name its sign-in page (HTTP ${res.status}, no data.loginUrl)`);
    return this.checked(loginUrl, 'the sign-in page', this.o.base);
  }

  /**
   * serviceLogin with `_json=true` and no passToken: `&&&START&&&` + code 70016, which is normal
   * here, with _sign, qs, callback and a location whose query holds serviceParam (Do1e/mijia-api
   * `_get_index` and `QRlogin`; PiotrMachowski `login_step_1` reads _sign the same way).
   */
  private async signedParams(page: URL): Promise<Record<string, string>> {
    const u = new URL(page);
    u.searchParams.set('_json', 'true');
    const res = await this.step(() => this.get(u, this.deviceCookie(), STEP_TIMEOUT_MS), 'the signed-parameters request (serviceLogin)');
    const j = parsePrefixed(await res.text(), 'serviceLogin');
    const sign = str(j._sign);
    const qs = str(j.qs);
    const callback = str(j.callback);
    if (!sign || !qs || !callback)
      throw notSignedIn(`Xiaomi's serviceLogin answer (code ${String(j.code)}) has no ${!sign ? '_sign' : !qs ? 'qs' : 'callback'}`);
    let serviceParam = str(j.serviceParam);
    const location = str(j.location);
    if (!serviceParam && location) {
      try {
        serviceParam = new URL(location, page).searchParams.get('serviceParam');
      } catch {
        // no serviceParam then
      }
    }
    return { sid: str(j.sid) ?? page.searchParams.get('sid') ?? 'i.mi.com', _sign: sign, qs, callback, serviceParam: serviceParam ?? '' };
  }

  /**
   * longPolling/loginUrl with those parameters (the names Do1e/mijia-api `QRlogin` sends, with
   * _hasLogo and _locale as PiotrMachowski `login_step_1`): loginUrl, qr, lp, timeout. lp and
   * loginUrl live on regional hosts (c3., sgp., ...): used exactly as returned, once the
   * allow-list has passed them.
   */
  private async newQr(page: URL, p: Record<string, string>): Promise<{ loginUrl: string; lp: URL; timeoutS: number }> {
    const u = new URL(QR_PATHS.loginUrl, page);
    const q: Record<string, string> = {
      _qrsize: '240',
      qs: p.qs!,
      bizDeviceType: '',
      callback: p.callback!,
      _json: 'true',
      theme: '',
      sid: p.sid!,
      needTheme: 'false',
      showActiveX: 'false',
      serviceParam: p.serviceParam!,
      _locale: 'zh_CN',
      _sign: p._sign!,
      _hasLogo: 'false',
      _dc: String(Date.now()),
    };
    for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
    const res = await this.step(() => this.get(u, this.deviceCookie(), STEP_TIMEOUT_MS), 'the QR code request (longPolling/loginUrl)');
    const j = parsePrefixed(await res.text(), 'longPolling/loginUrl');
    const loginUrl = str(j.loginUrl);
    const lp = str(j.lp);
    if (Number(j.code) !== 0 || !loginUrl || !lp) {
      throw notSignedIn(`Xiaomi gave no QR code (HTTP ${res.status}, code ${String(j.code)}${!loginUrl ? ', no loginUrl' : ''}${!lp ? ', no lp' : ''})`);
    }
    // The phone opens loginUrl; it is shown, never fetched, but a link elsewhere would send the person there.
    this.checked(loginUrl, 'the QR code link', page);
    const timeout = Number(j.timeout);
    this.lastTimeoutS = Number.isFinite(timeout) && timeout > 0 ? timeout : DEFAULT_QR_TIMEOUT_S;
    return { loginUrl, lp: this.checked(lp, 'the long-poll address', page), timeoutS: this.lastTimeoutS };
  }

  /**
   * The long poll is held open until the phone confirms. An answer without passToken and
   * location means "not yet" (PiotrMachowski polls again after its own 10 s timeout until
   * `timeout` runs out; some scripts read code 700/701 as waiting/scanned), and so does our own
   * per-poll timeout. Null when the code expired.
   */
  private async waitForPhone(lp: URL, deadline: number): Promise<Record<string, unknown> | null> {
    let networkErrors = 0;
    while (Date.now() < deadline) {
      const started = Date.now();
      let text: string;
      try {
        const res = await this.get(lp, this.deviceCookie(), Math.min(POLL_MS, deadline - Date.now() + 1000));
        text = await res.text();
        networkErrors = 0;
      } catch (err) {
        if (err instanceof QrCancelledError) throw err;
        if (err instanceof Error && err.name === 'TimeoutError') continue;
        if (++networkErrors > POLL_NETWORK_RETRIES)
          throw notSignedIn(`lost the connection to Xiaomi's sign-in service while waiting for the phone (${reason(err)})`);
        this.o.log?.debug(`xiaomi: the long poll failed (${reason(err)}); asking again`);
        await this.pause(1000 * networkErrors);
        continue;
      }
      let j: Record<string, unknown> | null = null;
      try {
        j = parsePrefixed(text, 'the long poll');
      } catch {
        j = null;
      }
      if (j && str(j.passToken) && str(j.location)) return j;
      // An answer that came at once would make this a busy loop: wait a moment before asking again.
      if (Date.now() - started < 1000) await this.pause(1000);
    }
    return null;
  }

  private async pause(ms: number): Promise<void> {
    if (this.o.signal?.aborted) throw new QrCancelledError();
    await sleep(ms, this.o.signal).catch(() => undefined);
    if (this.o.signal?.aborted) throw new QrCancelledError();
  }

  /**
   * The confirmed sign-in: passToken, userId, cUserId, ssecurity, nonce, psecurity, location
   * (Do1e/mijia-api requires them; PiotrMachowski `login_step_3` reads userId, ssecurity, cUserId,
   * passToken, location). The secrets are registered before anything can print them.
   */
  private async finish(j: Record<string, unknown>, page: URL): Promise<QrSignedIn> {
    for (const k of ['passToken', 'ssecurity', 'psecurity', 'cUserId']) registerSecret(str(j[k]));
    const userId = idString(j.userId);
    const passToken = str(j.passToken)!;
    if (!userId) throw notSignedIn("Xiaomi's confirmed sign-in carries no numeric userId");
    return { userId, passToken, serviceToken: await this.followLocation(j, userId, page) };
  }

  /**
   * GET location sets the serviceToken for the sid (PiotrMachowski `login_step_4`, Do1e/mijia-api
   * `QRlogin`), with clientSign = base64(sha1("nonce=NONCE&SSECURITY")) appended when the sid is
   * not xiaomiio (hass-xiaomi-miot; the same in migate's `get_service`). Redirects are followed by
   * hand, each checked against the allow-list (wangbjun/xiaomi-disk `location` follows them one by one).
   * A failure here is not fatal: the passToken chain (client.ts) gets a serviceToken next.
   */
  private async followLocation(j: Record<string, unknown>, userId: string, page: URL): Promise<string | undefined> {
    let next: URL | null = this.checked(str(j.location)!, 'the sign-in location', page);
    const nonce = str(j.nonce);
    const ssecurity = str(j.ssecurity);
    if (nonce && ssecurity && !/(^|&)sid=xiaomiio(&|$)/.test(next.search.slice(1))) {
      next.searchParams.set('clientSign', crypto.createHash('sha1').update(`nonce=${nonce}&${ssecurity}`).digest('base64'));
    }
    try {
      for (let hop = 0; next && hop < 5; hop++) {
        const res = await this.get(next, `userId=${userId}; ${this.deviceCookie()}`, STEP_TIMEOUT_MS);
        for (const line of res.setCookies()) {
          const m = /^\s*serviceToken=([^;]+)/.exec(line);
          if (m && !/^(deleted|EXPIRED)$/i.test(m[1]!)) {
            registerSecret(m[1]!);
            return m[1]!;
          }
        }
        const loc = res.status >= 300 && res.status < 400 ? res.header('location') : null;
        next = loc ? this.checked(loc, 'a sign-in redirect', next) : null;
      }
    } catch (err) {
      if (err instanceof QrCancelledError) throw err;
      this.o.log?.debug(`xiaomi: the sign-in location gave no serviceToken (${reason(err)}); the passToken chain gets one`);
    }
    return undefined;
  }

  /** One request of the set-up steps, its network failure said in one line. */
  private async step(send: () => Promise<Answer>, what: string): Promise<Answer> {
    try {
      const res = await send();
      if (res.status >= 500 || res.status === 429) throw new Error(`HTTP ${res.status}`);
      return res;
    } catch (err) {
      if (err instanceof QrCancelledError || err instanceof StopRunError) throw err;
      throw notSignedIn(`${what} failed: ${reason(err)}`);
    }
  }
}
