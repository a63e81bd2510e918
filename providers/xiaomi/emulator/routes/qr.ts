// Signing in by QR code, as the account service answers it to the public clients that use it
// (../shared/reference/xiaomi-cloud-gallery.md, "signing in by QR code"; each answer names the
// client it follows). The emulator stands in for account.xiaomi.com and its regional long-poll
// hosts on its own address, as it already does for the passToken chain.
//
// NOT PART OF THE REAL SERVICE: POST /_emulator/qr/scan and /_emulator/qr/confirm stand in for
// the phone (a test or a person "scans" the link the tool prints). The tool never calls them.

import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { encode } from 'uqr';
import { CODE_NEEDS_LOGIN, DEFAULT_QR_TIMEOUT_S, JSON_PREFIX, LP_EXPIRED, LP_SCANNED, LP_WAITING, QR_PATHS } from '../../qr-protocol.ts';
import type { EmulatorContext } from '../context.ts';
import type { Exchange } from '../exchange.ts';
import { loginRoutes } from './login.ts';
import type { Route } from './route.ts';

/** The QR sign-in's own settings (flags --qr-timeout, --qr-poll-hold, --qr-lp-host). */
export interface QrEmulatorOptions {
  /** Seconds a QR code lives: the `timeout` of the loginUrl answer (default 300, as the service says). */
  timeoutSeconds?: number;
  /** Seconds one long poll is held before a "still waiting" answer; 0 (default): until the code expires. */
  pollHoldSeconds?: number;
  /** Host name put in `lp` (a regional host of the real service); default the emulator's own 127.0.0.1. */
  lpHost?: string;
}

interface QrSession {
  ticket: string;
  key: string;
  sid: string;
  callback: string;
  loginUrl: string;
  expiresAt: number;
  scanned: boolean;
  confirmed: boolean;
  deviceId: string;
  waiters: Set<() => void>;
}

/** What one emulator remembers of its QR codes: held in memory, as a QR code does not outlive the service's restart. */
interface QrState {
  secret: Buffer;
  byTicket: Map<string, QrSession>;
  byKey: Map<string, QrSession>;
  /** STS tickets of confirmed sign-ins, with the nonce and ssecurity their clientSign must match. */
  sts: Map<string, { nonce: string; ssecurity: string; expiresAt: number }>;
}

const states = new WeakMap<EmulatorContext, QrState>();
function stateOf(ctx: EmulatorContext): QrState {
  let s = states.get(ctx);
  if (!s)
    states.set(
      ctx,
      (s = {
        secret: crypto.createHash('sha256').update(`qr:${ctx.opts.common.randomSeed}:${ctx.passToken}`).digest(),
        byTicket: new Map(),
        byKey: new Map(),
        sts: new Map(),
      }),
    );
  return s;
}

const qrOptions = (ctx: EmulatorContext): QrEmulatorOptions => (ctx.opts as { qr?: QrEmulatorOptions }).qr ?? {};

/** Every `_json=true` answer of the account service: the prefix, then JSON (see qr-protocol.ts). */
function prefixed(x: Exchange, body: Record<string, unknown>, status = 200): void {
  x.json(status, `${JSON_PREFIX}${JSON.stringify(body).replace(/"__raw:(\d+)"/g, '$1')}`);
}

function sign(ctx: EmulatorContext, sid: string, callback: string, qs: string): string {
  return crypto.createHmac('sha1', stateOf(ctx).secret).update(`${sid}\n${callback}\n${qs}`).digest('base64');
}

/**
 * serviceLogin?sid=…&_json=true without a passToken: code 70016 with the signed parameters
 * (Do1e/mijia-api `_get_index` reads qs, _sign, callback, location; its `QRlogin` takes
 * serviceParam from location's query). With a good passToken: code 0 and the STS location, as
 * the clients that renew with `_json=true` read it (ssecurity, nonce, location).
 */
function serviceLoginJson(ctx: EmulatorContext, x: Exchange): void {
  const q = x.query;
  const sid = q.get('sid') ?? 'passport';
  const callback = q.get('callback') ?? `${ctx.baseUrl}/sts`;
  const followup = q.get('followup');
  const fullCallback = followup
    ? `${callback}${callback.includes('?') ? '&' : '?'}followup=${encodeURIComponent(followup)}&sid=${encodeURIComponent(sid)}`
    : callback;
  const qs = encodeURIComponent(`?${new URLSearchParams({ sid, _json: 'true' }).toString()}`);
  const serviceParam = JSON.stringify({ checkSafePhone: false, checkSafeAddress: false, lsrp_score: 0.0 });
  const _sign = sign(ctx, sid, fullCallback, qs);
  const { cookies } = x;
  if (cookies.userId === ctx.userId && cookies.passToken === ctx.passToken) {
    ctx.count('serviceLoginJson');
    return prefixed(x, { code: 0, result: 'ok', desc: '成功', description: '成功', ...signedIn(ctx, fullCallback, cookies.deviceId ?? '') });
  }
  ctx.count('qrServiceLogin');
  const location = new URL('/fe/service/login/password', ctx.baseUrl);
  for (const [k, v] of Object.entries({
    _json: 'true',
    sid,
    qs,
    callback: fullCallback,
    _sign,
    serviceParam,
    showActiveX: 'false',
    theme: '',
    needTheme: 'false',
    bizDeviceType: '',
  }))
    location.searchParams.set(k, v);
  prefixed(x, {
    serviceParam,
    qs,
    code: CODE_NEEDS_LOGIN,
    description: '登录验证失败',
    securityStatus: 0,
    _sign,
    sid,
    result: 'error',
    captchaUrl: null,
    callback: fullCallback,
    location: location.href,
    pwd: 0,
    child: 0,
    desc: '登录验证失败',
  });
}

/** The fields of a confirmed sign-in, with an STS location whose ticket asks for clientSign. */
function signedIn(ctx: EmulatorContext, callback: string, deviceId: string): Record<string, unknown> {
  const st = stateOf(ctx);
  const ssecurity = crypto.randomBytes(16).toString('base64');
  // A bare integer beyond 2^53: a client that reads it as a double signs a different nonce.
  const nonce = (BigInt(`0x${crypto.randomBytes(8).toString('hex')}`) & ((1n << 63n) - 1n)).toString();
  const ticket = crypto.randomBytes(12).toString('hex');
  st.sts.set(ticket, { nonce, ssecurity, expiresAt: Date.now() + 60_000 });
  const location = new URL(callback, ctx.baseUrl);
  location.searchParams.set('d', deviceId);
  location.searchParams.set('ticket', ticket);
  location.searchParams.set('pwd', '1');
  location.searchParams.set('p_ts', String(Date.now()));
  location.searchParams.set('nonce', nonce);
  location.searchParams.set('_ssign', crypto.createHmac('sha1', st.secret).update(ticket).digest('base64'));
  return {
    passToken: ctx.passToken,
    userId: `__raw:${ctx.userId}`,
    cUserId: crypto.createHash('sha256').update(`c:${ctx.userId}`).digest('base64url').slice(0, 27),
    ssecurity,
    nonce: `__raw:${nonce}`,
    psecurity: crypto.randomBytes(16).toString('base64'),
    location: location.href,
    pwd: 1,
    child: 0,
  };
}

function serviceLogin(ctx: EmulatorContext, x: Exchange): void | Promise<void> {
  if (x.query.get('_json') === 'true') return serviceLoginJson(ctx, x);
  return loginRoutes.find((r) => r.path === QR_PATHS.serviceLogin)!.handle(ctx, x);
}

/**
 * longPolling/loginUrl with the signed parameters: loginUrl (what the phone opens), qr (a PNG of
 * it), lp (the long poll, on a regional host) and timeout (PiotrMachowski `login_step_1` reads
 * qr, loginUrl, lp, timeout; Do1e/mijia-api `QRlogin` sends _sign, qs, callback, sid, serviceParam).
 */
function loginUrl(ctx: EmulatorContext, x: Exchange): void {
  const q = x.query;
  const sid = q.get('sid') ?? '';
  const callback = q.get('callback') ?? '';
  const qs = q.get('qs') ?? '';
  const given = q.get('_sign') ?? '';
  const expected = sign(ctx, sid, callback, qs);
  // How the real service answers unsigned parameters is not public: the emulator refuses plainly.
  if (!sid || given.length !== expected.length || !crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
    ctx.count('qrBadSign');
    return x.plain(400, { 'Content-Type': 'text/plain' }, 'bad _sign');
  }
  ctx.count('qrIssued');
  const o = qrOptions(ctx);
  const timeout = o.timeoutSeconds ?? DEFAULT_QR_TIMEOUT_S;
  const ticket = crypto.randomBytes(16).toString('hex');
  const key = `lp_${crypto.randomBytes(24).toString('base64url')}`;
  const phone = new URL('/longPolling/login', ctx.baseUrl);
  phone.searchParams.set('ticket', ticket);
  phone.searchParams.set('dc', 'c3');
  phone.searchParams.set('sid', sid);
  const session: QrSession = {
    ticket,
    key,
    sid,
    callback,
    loginUrl: phone.href,
    expiresAt: Date.now() + timeout * 1000,
    scanned: false,
    confirmed: false,
    deviceId: x.cookies.deviceId ?? '',
    waiters: new Set(),
  };
  const st = stateOf(ctx);
  st.byTicket.set(ticket, session);
  st.byKey.set(key, session);
  // Answers the polls still held when the code expires.
  setTimeout(() => wake(session), timeout * 1000 + 5).unref();
  const lpOrigin = o.lpHost ? `http://${o.lpHost}:${ctx.port}` : ctx.baseUrl;
  prefixed(x, {
    code: 0,
    result: 'ok',
    desc: '成功',
    description: '成功',
    loginUrl: phone.href,
    qr: `${ctx.baseUrl}/longPolling/qr?ticket=${ticket}`,
    lp: `${lpOrigin}/lp/s?k=${key}`,
    timeout,
  });
}

function wake(s: QrSession): void {
  for (const w of [...s.waiters]) w();
}

/** The answer to a long poll now: the confirmed sign-in, "expired", or null (hold on). */
function pollAnswer(ctx: EmulatorContext, s: QrSession | undefined): Record<string, unknown> | null {
  const st = stateOf(ctx);
  if (!s || Date.now() >= s.expiresAt) return { code: LP_EXPIRED, result: 'error', desc: '二维码已过期', description: '二维码已过期' };
  if (!s.confirmed) return null;
  st.byKey.delete(s.key);
  st.byTicket.delete(s.ticket);
  ctx.count('qrSignedIn');
  return { code: 0, result: 'ok', desc: '成功', description: '成功', ...signedIn(ctx, s.callback, s.deviceId) };
}

/**
 * The long poll: held open until the phone confirms (reference notes; PiotrMachowski polls with
 * a 10 s client timeout until `timeout`, Do1e/mijia-api waits 60 s). What the real service says
 * when it lets a poll go unanswered that long is not public; the emulator, after --qr-poll-hold,
 * answers the code some scripts read (700 waiting, 701 scanned), which carries no passToken.
 */
function longPoll(ctx: EmulatorContext, x: Exchange): Promise<void> {
  const s = stateOf(ctx).byKey.get(x.query.get('k') ?? '');
  const now = pollAnswer(ctx, s);
  if (now || !s) {
    prefixed(x, now!);
    return Promise.resolve();
  }
  ctx.count('qrPolls');
  const holdS = qrOptions(ctx).pollHoldSeconds ?? 0;
  return new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      s.waiters.delete(answer);
      if (timer) clearTimeout(timer);
      x.res.off('close', gone);
      resolve();
    };
    const answer = (): void => {
      const body = pollAnswer(ctx, s) ?? { code: s.scanned ? LP_SCANNED : LP_WAITING, result: 'error', desc: s.scanned ? '已扫码' : '等待扫码' };
      finish();
      prefixed(x, body);
    };
    const gone = (): void => finish();
    s.waiters.add(answer);
    x.res.once('close', gone);
    if (holdS > 0) timer = setTimeout(answer, Math.min(holdS * 1000, Math.max(0, s.expiresAt - Date.now())));
  });
}

/**
 * The STS hop of a confirmed QR sign-in: it sets the serviceToken when the request carries
 * clientSign = base64(sha1("nonce=NONCE&SSECURITY")), which hass-xiaomi-miot adds for every sid
 * but xiaomiio (reference notes). Other STS hops are the passToken chain's (login.ts).
 */
function sts(ctx: EmulatorContext, x: Exchange): void | Promise<void> {
  const ticket = x.query.get('ticket') ?? '';
  const pending = stateOf(ctx).sts.get(ticket);
  if (!pending) return loginRoutes.find((r) => r.path === '/sts')!.handle(ctx, x);
  stateOf(ctx).sts.delete(ticket);
  const want = crypto.createHash('sha1').update(`nonce=${pending.nonce}&${pending.ssecurity}`).digest('base64');
  if (pending.expiresAt < Date.now() || x.query.get('clientSign') !== want) {
    ctx.count('qrBadClientSign');
    return x.plain(403, { 'Content-Type': 'text/plain' }, 'invalid clientSign');
  }
  ctx.count('renewals');
  const token = ctx.sessions.issueToken();
  x.plain(302, {
    Location: x.query.get('followup') ?? `${ctx.baseUrl}/`,
    'Set-Cookie': [`serviceToken=${token}; Path=/; HttpOnly`, `userId=${ctx.userId}; Path=/`],
  });
}

/** The page the phone opens (the QR code's content); the phone's app asks the person to confirm. */
function phonePage(ctx: EmulatorContext, x: Exchange): void {
  const s = stateOf(ctx).byTicket.get(x.query.get('ticket') ?? '');
  x.plain(
    200,
    { 'Content-Type': 'text/html;charset=UTF-8' },
    `<html><body>${s ? 'Confirm the sign-in in the Xiaomi app' : 'This QR code has expired'}</body></html>`,
  );
}

/** `qr`: a PNG of loginUrl, as the clients that show the service's picture fetch it (PiotrMachowski `login_step_2`). */
function qrPng(ctx: EmulatorContext, x: Exchange): void {
  const s = stateOf(ctx).byTicket.get(x.query.get('ticket') ?? '');
  if (!s) return x.plain(404, { 'Content-Type': 'text/plain' }, 'not found');
  const png = pngOf(encode(s.loginUrl, { border: 2 }).data, 4);
  x.res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': png.length });
  x.res.end(png);
}

function pngOf(modules: boolean[][], scale: number): Buffer {
  const n = modules.length * scale;
  const raw = Buffer.alloc((n + 1) * n, 255);
  for (let y = 0; y < n; y++) {
    raw[y * (n + 1)] = 0;
    for (let xx = 0; xx < n; xx++) if (modules[Math.floor(y / scale)]![Math.floor(xx / scale)]) raw[y * (n + 1) + 1 + xx] = 0;
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(n, 0);
  ihdr.writeUInt32BE(n, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The QR session a control request names: `ticket=`, or the whole link the tool printed (`loginUrl=`). */
async function controlled(ctx: EmulatorContext, x: Exchange): Promise<QrSession | undefined> {
  const body = await new Promise<string>((resolve) => {
    let b = '';
    x.req.setEncoding('utf8');
    x.req.on('data', (d: string) => (b += d.slice(0, 8192)));
    x.req.on('end', () => resolve(b));
  });
  const params = new URLSearchParams(body);
  let ticket = x.query.get('ticket') ?? params.get('ticket') ?? '';
  const link = x.query.get('loginUrl') ?? params.get('loginUrl');
  if (!ticket && link) ticket = new URL(link, ctx.baseUrl).searchParams.get('ticket') ?? '';
  return stateOf(ctx).byTicket.get(ticket);
}

/** Emulator only: the phone scanned (and, for confirm, the person tapped "confirm"). */
function control(action: 'scan' | 'confirm') {
  return async (ctx: EmulatorContext, x: Exchange): Promise<void> => {
    const s = await controlled(ctx, x);
    if (!s || Date.now() >= s.expiresAt) return x.json(410, { ok: false, error: 'no such QR code, or it has expired' });
    s.scanned = true;
    if (action === 'confirm') s.confirmed = true;
    ctx.count(action === 'confirm' ? 'qrConfirmed' : 'qrScanned');
    x.json(200, { ok: true, scanned: s.scanned, confirmed: s.confirmed });
    wake(s);
  };
}

export const qrRoutes: Route[] = [
  { method: 'GET', path: QR_PATHS.serviceLogin, handle: serviceLogin },
  { method: 'GET', path: QR_PATHS.loginUrl, handle: loginUrl },
  { method: 'GET', path: '/lp/s', handle: longPoll },
  { method: 'GET', path: '/longPolling/qr', handle: qrPng },
  { method: 'GET', path: '/longPolling/login', handle: phonePage },
  { method: 'GET', path: '/sts', handle: sts },
  // Not part of the real service: the test's (or the demo's) stand-in for the phone.
  { method: 'POST', path: '/_emulator/qr/scan', handle: control('scan') },
  { method: 'POST', path: '/_emulator/qr/confirm', handle: control('confirm') },
];

/** The QR sign-in's flags, for args.ts. */
export const QR_FLAGS = {
  'qr-timeout': { type: 'string', default: String(DEFAULT_QR_TIMEOUT_S) },
  'qr-poll-hold': { type: 'string', default: '0' },
  'qr-lp-host': { type: 'string' },
} as const;

export const QR_FLAG_HELP = `  --qr-timeout SEC           lifetime of a sign-in QR code (default ${DEFAULT_QR_TIMEOUT_S}, as the service says)
  --qr-poll-hold SEC         hold a long poll this long, then answer "still waiting" (default 0: until the code expires)
  --qr-lp-host HOST          host name put in the long-poll address (default 127.0.0.1); e.g. one off the allow-list
  (emulator only: POST /_emulator/qr/confirm with loginUrl=LINK or ticket=T stands in for the phone)`;

export function qrOptionsFromFlags(extra: Record<string, unknown>): QrEmulatorOptions {
  const seconds = (name: string, min: number): number => {
    const n = Number(extra[name]);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number of seconds (at least ${min})`);
    return n;
  };
  const lpHost = extra['qr-lp-host'];
  if (lpHost !== undefined && !/^[A-Za-z0-9.-]+$/.test(String(lpHost))) throw new Error('--qr-lp-host must be a host name');
  return { timeoutSeconds: seconds('qr-timeout', 1), pollHoldSeconds: seconds('qr-poll-hold', 0), lpHost: lpHost === undefined ? undefined : String(lpHost) };
}
