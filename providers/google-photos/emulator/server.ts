// An emulator of the Google Photos Library API (and of Google's OAuth endpoints), built from
// the service's documentation (../shared/reference/google-photos-library-api.md), never from
// our client. It speaks the raw and resumable upload protocols, batchCreate with per-item
// statuses, albums, batchGet, list, baseUrl downloads (`=d` without location), videos that
// stay PROCESSING for a while, a daily quota and a per-minute write limit, and the installed-app
// OAuth flow. Media bytes live in DIR/<media item id>-<file name>; its own state in DIR/.emulator/.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { Faults, listenLoopback, parseEmulatorArgs, readBody, sendBody, type CommonFlags } from '../../../src/emulator/kit.ts';
import * as P from '../protocol.ts';
import { detectFormat, mediaInfo } from './media.ts';
import { stripLocation } from './exif.ts';

export const EMULATOR_FLAG_HELP = `Google Photos emulator flags:
  --accept-token TOKEN        accept this bearer token (repeatable) with every scope
  --daily-quota N             API requests per project per day (default 10000)
  --writes-per-minute N       write requests (uploads, batchCreate, albums) per minute per user (default 0: no limit)
  --granularity N             X-Goog-Upload-Chunk-Granularity in bytes (default 262144)
  --video-processing-ms N     how long a new video stays PROCESSING (default 3000)
  --album-limit N             items per album (default 20000)
  --storage-limit BYTES       storage of the account (default: unlimited)
  --client-secret S           require this client secret at the token endpoint
  --refresh-token-ttl SEC     refresh tokens expire after this long (an app in "Testing" status: 604800)
  --retry-after SEC           Retry-After of the 429s that --fault-429 injects (default 1)
  --preexisting DIR           files already in the library, uploaded by another app (a phone's backup): this
                              app cannot read them, and uploading the same bytes gets one of Google's answers
  --preexisting-answer KIND   exists (code 6), failed (generic code 3), item (Success with the other app's
                              item) or mixed (each file always gets the same one of the three; default)`;

interface Options {
  common: CommonFlags;
  acceptTokens: string[];
  dailyQuota: number;
  writesPerMinute: number;
  granularity: number;
  videoProcessingMs: number;
  albumLimit: number;
  storageLimit: number;
  clientSecret: string | null;
  refreshTokenTtlMs: number;
  preexisting: string | null;
  retryAfter: number;
  preexistingAnswer: 'exists' | 'failed' | 'item' | 'mixed';
}

const GENERIC_CREATE_FAILURE = 'Failed: There was an error while trying to create this media item.';
const EXISTS_FAILURE = 'EXISTS: There was an error while trying to create this media item.';
/** The owner of items another app (the phone's own backup) put in the library. */
const OTHER_APP = 'other-app:com.google.android.apps.photos';
const SCOPE_EDIT = 'https://www.googleapis.com/auth/photoslibrary.edit.appcreateddata';
const CONSUMER = "for consumer 'project_number:000000000000'";

function parseOptions(args: string[]): Options {
  const { common, extra } = parseEmulatorArgs(args, {
    'accept-token': { type: 'string', multiple: true },
    'daily-quota': { type: 'string', default: String(P.DEFAULT_DAILY_QUOTA) },
    'writes-per-minute': { type: 'string', default: '0' },
    granularity: { type: 'string', default: '262144' },
    'video-processing-ms': { type: 'string', default: '3000' },
    'album-limit': { type: 'string', default: String(P.MAX_ALBUM_ITEMS) },
    'storage-limit': { type: 'string', default: '0' },
    'client-secret': { type: 'string' },
    'refresh-token-ttl': { type: 'string', default: '0' },
    preexisting: { type: 'string' },
    'retry-after': { type: 'string', default: '1' },
    'preexisting-answer': { type: 'string', default: 'mixed' },
  });
  const answer = String(extra['preexisting-answer']);
  if (!['exists', 'failed', 'item', 'mixed'].includes(answer)) throw new Error(`--preexisting-answer must be exists, failed, item or mixed, got ${answer}`);
  const int = (name: string, v: unknown, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(v)}`);
    return n;
  };
  return {
    common,
    acceptTokens: (extra['accept-token'] as string[] | undefined) ?? [],
    dailyQuota: int('daily-quota', extra['daily-quota'], 0),
    writesPerMinute: int('writes-per-minute', extra['writes-per-minute'], 0),
    granularity: int('granularity', extra.granularity, 1),
    videoProcessingMs: int('video-processing-ms', extra['video-processing-ms'], 0),
    albumLimit: int('album-limit', extra['album-limit'], 1),
    storageLimit: int('storage-limit', extra['storage-limit'], 0),
    clientSecret: (extra['client-secret'] as string | undefined) ?? null,
    refreshTokenTtlMs: int('refresh-token-ttl', extra['refresh-token-ttl'], 0) * 1000,
    preexisting: (extra.preexisting as string | undefined) ?? null,
    retryAfter: int('retry-after', extra['retry-after'], 0),
    preexistingAnswer: answer as Options['preexistingAnswer'],
  };
}

const b64url = (n: number) => crypto.randomBytes(n).toString('base64url');
const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The Pacific-time calendar date, as Google resets its daily quota. */
const PACIFIC = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Los_Angeles', year: 'numeric', month: '2-digit', day: '2-digit' });
function pacificDate(ms = Date.now()): string {
  return PACIFIC.format(ms);
}

function safeFileName(name: string): string {
  const clean = name.replace(/[/\\\0]/g, '_').replace(/^\.+/, '_');
  // Keep the on-disk name within 255 bytes (the id prefix takes ~45).
  let out = clean;
  while (Buffer.byteLength(out) > 200) out = out.slice(0, -1);
  return out || '_';
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly grpc: string, readonly headers: Record<string, string> = {}, readonly details?: unknown[]) {
    super(message);
  }
}

interface MediaRow {
  id: string; owner: string; sha1: string; size: number; filename: string; file: string; mime: string; kind: string; format: string;
  width: number | null; height: number | null; creation_time: string | null; camera_make: string | null; camera_model: string | null;
  description: string | null; created_at: number; playable: number; seq: number;
}
interface SessionRow { id: string; owner: string; size: number; received: number; mime: string | null; file_name: string | null; created_at: number; status: string; token: string | null }

export async function startGooglePhotosEmulator(args: string[]): Promise<{ env: Record<string, string>; close(): Promise<void>; port: number }> {
  const opt = parseOptions(args);
  const dataDir = path.resolve(opt.common.data);
  const own = path.join(dataDir, '.emulator');
  fs.mkdirSync(path.join(own, 'uploads'), { recursive: true });
  fs.mkdirSync(path.join(own, 'sessions'), { recursive: true });
  const db = new Database(path.join(own, 'state.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS media_items (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL, sha1 TEXT NOT NULL, size INTEGER NOT NULL,
      filename TEXT NOT NULL, file TEXT NOT NULL, mime TEXT NOT NULL, kind TEXT NOT NULL, format TEXT NOT NULL, width INTEGER, height INTEGER,
      creation_time TEXT, camera_make TEXT, camera_model TEXT, description TEXT, created_at INTEGER NOT NULL, playable INTEGER NOT NULL DEFAULT 1);
    CREATE INDEX IF NOT EXISTS media_by_hash ON media_items(owner, sha1, size);
    CREATE TABLE IF NOT EXISTS albums (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL, title TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS album_items (album_id TEXT NOT NULL, media_id TEXT NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (album_id, media_id));
    CREATE TABLE IF NOT EXISTS uploads (token TEXT PRIMARY KEY, owner TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, sha1 TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, owner TEXT NOT NULL, size INTEGER NOT NULL, received INTEGER NOT NULL, mime TEXT, file_name TEXT,
      created_at INTEGER NOT NULL, status TEXT NOT NULL, token TEXT);
    CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL, expires_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS codes (code TEXT PRIMARY KEY, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, challenge TEXT, method TEXT, scopes TEXT NOT NULL,
      offline INTEGER NOT NULL, expires_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `);
  const kvGet = <T>(key: string, dflt: T): T => {
    const row = db.prepare('SELECT value FROM kv WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : dflt;
  };
  const kvSet = (key: string, value: unknown) => db.prepare('INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value));
  let urlSecret = kvGet<string>('urlSecret', '');
  if (!urlSecret) kvSet('urlSecret', (urlSecret = b64url(32)));

  // Expired upload tokens and sessions go, with their bytes.
  const now0 = Date.now();
  for (const u of db.prepare('SELECT token, file FROM uploads WHERE created_at < ?').all(now0 - P.UPLOAD_TOKEN_TTL_MS) as Array<{ token: string; file: string }>) {
    fs.rmSync(u.file, { force: true });
    db.prepare('DELETE FROM uploads WHERE token = ?').run(u.token);
  }

  const faults = new Faults(opt.common);
  const sessionTtlMs = opt.common.sessionTtl > 0 ? opt.common.sessionTtl * 1000 : 7 * 86400 * 1000;
  const accessTtlMs = opt.common.sessionTtl > 0 ? opt.common.sessionTtl * 1000 : 3600 * 1000;
  const writeStamps = new Map<string, number[]>();
  const committing = new Set<string>();
  const stats = { preexistingAnswered: 0, batchCreateStarted: 0, api: 0, uploads: 0, batchCreate: 0, batchGet: 0, albums: 0, list: 0, other: 0, media: 0, quotaRefused: 0, writeLimited: 0, faults: 0 };
  let base = '';

  // ---- quota ----
  type QuotaState = { date: string; day: number; used: Record<string, number> };
  const quota = (): QuotaState => {
    const q = kvGet<QuotaState>('quota', { date: pacificDate(), day: 1, used: {} });
    if (q.date !== pacificDate()) return { date: pacificDate(), day: q.day + 1, used: {} };
    return q;
  };

  // ---- helpers ----
  const jsonError = (res: http.ServerResponse, e: HttpError) => {
    const body = Buffer.from(JSON.stringify({ error: { code: e.status, message: e.message, status: e.grpc, ...(e.details ? { details: e.details } : {}) } }));
    sendBody(res, faults, e.status, { 'Content-Type': 'application/json; charset=UTF-8', ...e.headers }, body, { droppable: false });
  };
  const json = (res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) =>
    sendBody(res, faults, status, { 'Content-Type': 'application/json; charset=UTF-8', ...headers }, Buffer.from(JSON.stringify(value)));
  const bad = (message: string) => new HttpError(400, message, 'INVALID_ARGUMENT');

  const baseUrlFor = (id: string) => {
    const exp = Date.now() + P.BASE_URL_TTL_MS;
    const sig = crypto.createHmac('sha256', urlSecret).update(`${id}.${exp}`).digest('base64url').slice(0, 32);
    return `${base}/lr/${id}/${exp}.${sig}`;
  };
  const videoStatus = (m: MediaRow) => (Date.now() - m.created_at < opt.videoProcessingMs ? 'PROCESSING' : m.playable ? 'READY' : 'FAILED');
  const mediaJson = (m: MediaRow) => {
    const meta: Record<string, unknown> = { creationTime: m.creation_time ?? iso(m.created_at) };
    const status = m.kind === 'video' ? videoStatus(m) : 'READY';
    if (m.width != null && status === 'READY') meta.width = String(m.width);
    if (m.height != null && status === 'READY') meta.height = String(m.height);
    if (m.kind === 'image') meta.photo = { ...(m.camera_make ? { cameraMake: m.camera_make } : {}), ...(m.camera_model ? { cameraModel: m.camera_model } : {}) };
    else meta.video = { ...(status === 'READY' ? { fps: 30 } : {}), status };
    return {
      id: m.id,
      ...(m.description ? { description: m.description } : {}),
      productUrl: `https://photos.google.com/lr/photo/${m.id}`,
      baseUrl: baseUrlFor(m.id),
      mimeType: m.mime,
      mediaMetadata: meta,
      filename: m.filename,
    };
  };
  const albumJson = (a: { id: string; title: string }) => {
    const n = (db.prepare('SELECT COUNT(*) AS n FROM album_items WHERE album_id = ?').get(a.id) as { n: number }).n;
    return { id: a.id, title: a.title, productUrl: `https://photos.google.com/lr/album/${a.id}`, isWriteable: true, mediaItemsCount: String(n) };
  };

  // ---- auth ----
  interface Caller { owner: string; scopes: Set<string> }
  const authenticate = (req: http.IncomingMessage): Caller => {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    const unauth = new HttpError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'UNAUTHENTICATED', { 'WWW-Authenticate': 'Bearer realm="https://accounts.google.com/"' });
    if (!m) throw unauth;
    const token = m[1]!;
    if (opt.acceptTokens.includes(token)) return { owner: 'accepted-token', scopes: new Set([...P.SCOPES, SCOPE_EDIT]) };
    const row = db.prepare("SELECT client_id, scopes, expires_at FROM tokens WHERE hash = ? AND kind = 'access'").get(sha256(token)) as { client_id: string; scopes: string; expires_at: number } | undefined;
    if (!row || row.expires_at < Date.now()) throw unauth;
    return { owner: row.client_id, scopes: new Set(row.scopes.split(' ')) };
  };
  /**
   * The scopes that admit a call since 31 March 2025: uploading, creating items and albums need
   * appendonly; reading (get, batchGet, list, search, albums) needs readonly.appcreateddata;
   * edit.appcreateddata changes what the app created (and may add to its albums) but neither
   * uploads nor reads. Anything else answers 403 as Google does.
   */
  const scopesFor = (p: string, method: string): string[] => {
    if (p === P.PATH_UPLOADS || p === P.PATH_BATCH_CREATE || (p === P.PATH_ALBUMS && method === 'POST')) return [P.SCOPE_APPENDONLY];
    if (/^\/v1\/albums\/[^/:]+:batchAddMediaItems$/.test(p)) return [P.SCOPE_APPENDONLY, SCOPE_EDIT];
    if (method === 'PATCH') return [SCOPE_EDIT];
    return [P.SCOPE_READ_APPCREATED];
  };
  const requireScope = (c: Caller, p: string, method: string) => {
    if (!scopesFor(p, method).some((s) => c.scopes.has(s))) {
      throw new HttpError(403, 'Request had insufficient authentication scopes.', 'PERMISSION_DENIED', {}, [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT', domain: 'googleapis.com', metadata: { service: 'photoslibrary.googleapis.com' } },
      ]);
    }
  };

  /** Counts the request against the project's daily quota and the user's write limit, as Google does. */
  const admit = (c: Caller, write: boolean) => {
    const q = quota();
    const used = q.used[c.owner] ?? 0;
    if (used >= opt.dailyQuota) {
      stats.quotaRefused++;
      throw new HttpError(429, `Quota exceeded for quota metric 'All requests' and limit 'All requests per day' of service 'photoslibrary.googleapis.com' ${CONSUMER}.`, 'RESOURCE_EXHAUSTED', {}, [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com', metadata: { quota_metric: 'photoslibrary.googleapis.com/all_requests', quota_limit: 'AllRequestsPerDayPerProject', service: 'photoslibrary.googleapis.com' } },
      ]);
    }
    if (write && opt.writesPerMinute > 0) {
      const now = Date.now();
      const stamps = (writeStamps.get(c.owner) ?? []).filter((t) => t > now - 60_000);
      writeStamps.set(c.owner, stamps);
      if (stamps.length >= opt.writesPerMinute) {
        stats.writeLimited++;
        throw new HttpError(429, `Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user' of service 'photoslibrary.googleapis.com' ${CONSUMER}.`, 'RESOURCE_EXHAUSTED', {}, [
          { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com', metadata: { quota_metric: 'photoslibrary.googleapis.com/write_requests', quota_limit: 'WritesPerMinutePerUser', service: 'photoslibrary.googleapis.com' } },
        ]);
      }
      stamps.push(now);
    }
    q.used[c.owner] = used + 1;
    kvSet('quota', q);
    stats.api++;
  };

  // ---- uploads ----
  /** Streams the request body into `file` (appending), hashing nothing; returns the bytes written, or -1 when the client went away. */
  const receive = (req: http.IncomingMessage, file: string, flags: 'w' | 'a'): Promise<number> =>
    new Promise((resolve) => {
      const out = fs.createWriteStream(file, { flags });
      let n = 0;
      let aborted = false;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (!out.write(c)) {
          req.pause();
          out.once('drain', () => req.resume());
        }
      });
      req.on('aborted', () => (aborted = true));
      req.on('error', () => (aborted = true));
      req.on('close', () => {
        if (!req.complete) aborted = true;
        out.end(() => resolve(aborted ? -(n + 1) : n));
      });
    });
  const fileSha1 = (file: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const h = crypto.createHash('sha1');
      fs.createReadStream(file).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('base64'))).on('error', reject);
    });
  const newToken = (owner: string, file: string, size: number, sha1hex: string) => {
    const token = `CAIS${b64url(96)}`;
    const dest = path.join(own, 'uploads', sha256(token).slice(0, 32));
    fs.renameSync(file, dest);
    db.prepare('INSERT INTO uploads(token, owner, file, size, sha1, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(token, owner, dest, size, sha1hex, Date.now());
    return token;
  };
  const b64ToHex = (b: string) => Buffer.from(b, 'base64').toString('hex');

  async function rawUpload(req: http.IncomingMessage, res: http.ServerResponse, c: Caller) {
    const tmp = path.join(own, 'uploads', `raw-${b64url(12)}.part`);
    const n = await receive(req, tmp, 'w');
    if (n < 0) {
      fs.rmSync(tmp, { force: true });
      return; // the client went away: nothing was uploaded
    }
    const declared = req.headers['content-length'] ? Number(req.headers['content-length']) : n;
    if (declared !== n) {
      fs.rmSync(tmp, { force: true });
      throw bad('The request body was shorter than its Content-Length.');
    }
    const sha1 = await fileSha1(tmp);
    const token = newToken(c.owner, tmp, n, b64ToHex(sha1));
    sendBody(res, faults, 200, { 'Content-Type': 'text/plain; charset=UTF-8' }, Buffer.from(token));
  }

  function startSession(req: http.IncomingMessage, res: http.ServerResponse, c: Caller) {
    const size = Number(req.headers[P.H_RAW_SIZE]);
    if (!Number.isInteger(size) || size < 0) throw bad('X-Goog-Upload-Raw-Size is required with a resumable upload.');
    const id = b64url(24);
    db.prepare('INSERT INTO sessions(id, owner, size, received, mime, file_name, created_at, status) VALUES (?, ?, ?, 0, ?, ?, ?, ?)').run(
      id, c.owner, size, String(req.headers[P.H_CONTENT_TYPE] ?? '') || null, String(req.headers[P.H_FILE_NAME] ?? '') || null, Date.now(), 'active');
    fs.writeFileSync(path.join(own, 'sessions', id), '');
    req.resume();
    sendBody(res, faults, 200, {
      'X-Goog-Upload-URL': `${base}${P.PATH_UPLOADS}?upload_id=${id}&upload_protocol=resumable`,
      'X-Goog-Upload-Chunk-Granularity': String(opt.granularity),
      'X-Goog-Upload-Status': 'active',
      'Content-Type': 'text/plain; charset=UTF-8',
    }, Buffer.alloc(0));
  }

  async function sessionRequest(req: http.IncomingMessage, res: http.ServerResponse, c: Caller, id: string) {
    const s = db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    if (!s || s.owner !== c.owner) throw new HttpError(404, 'No upload session with this id.', 'NOT_FOUND');
    const file = path.join(own, 'sessions', id);
    if (s.status === 'active' && Date.now() - s.created_at > sessionTtlMs) {
      db.prepare("UPDATE sessions SET status = 'cancelled' WHERE id = ?").run(id);
      s.status = 'cancelled';
      fs.rmSync(file, { force: true });
    }
    const command = String(req.headers[P.H_COMMAND] ?? '').toLowerCase().split(',').map((x) => x.trim()).filter(Boolean);
    const state = (st: string, received: number) => ({ 'X-Goog-Upload-Status': st, 'X-Goog-Upload-Size-Received': String(received) });
    if (command.includes('query')) {
      req.resume();
      sendBody(res, faults, 200, state(s.status, s.received), Buffer.alloc(0));
      return;
    }
    if (command.includes('cancel')) {
      req.resume();
      db.prepare("UPDATE sessions SET status = 'cancelled' WHERE id = ?").run(id);
      fs.rmSync(file, { force: true });
      sendBody(res, faults, 200, state('cancelled', s.received), Buffer.alloc(0));
      return;
    }
    const upload = command.includes('upload');
    const finalize = command.includes('finalize');
    if (!upload && !finalize) throw bad('X-Goog-Upload-Command must be upload, finalize, query or cancel.');
    if (s.status !== 'active') {
      req.resume();
      throw new HttpError(400, `The upload session is ${s.status}.`, 'FAILED_PRECONDITION', state(s.status, s.received));
    }
    let received = s.received;
    if (upload) {
      const offset = Number(req.headers[P.H_OFFSET]);
      if (offset !== s.received) {
        req.resume();
        throw new HttpError(400, `X-Goog-Upload-Offset ${String(req.headers[P.H_OFFSET])} does not match the ${s.received} bytes received.`, 'INVALID_ARGUMENT', state('active', s.received));
      }
      const n = await receive(req, file, 'a');
      const got = n < 0 ? -n - 1 : n;
      const declared = req.headers['content-length'] ? Number(req.headers['content-length']) : got;
      const complete = n >= 0 && declared === got;
      received = s.received + got;
      if (received > s.size) {
        received = s.received;
        fs.truncateSync(file, received);
        db.prepare('UPDATE sessions SET received = ? WHERE id = ?').run(received, id);
        throw new HttpError(400, 'More bytes than X-Goog-Upload-Raw-Size.', 'INVALID_ARGUMENT', state('active', received));
      }
      if (!complete) {
        // A cut chunk keeps what arrived, down to the granularity.
        received = s.received + Math.floor(got / opt.granularity) * opt.granularity;
        fs.truncateSync(file, received);
        db.prepare('UPDATE sessions SET received = ? WHERE id = ?').run(received, id);
        if (n < 0) return;
        throw new HttpError(400, 'The chunk was shorter than its Content-Length.', 'INVALID_ARGUMENT', state('active', received));
      }
      if (!finalize && got % opt.granularity !== 0) {
        received = s.received;
        fs.truncateSync(file, received);
        throw new HttpError(400, `Every chunk but the last must be a multiple of ${opt.granularity} bytes.`, 'INVALID_ARGUMENT', state('active', received));
      }
      db.prepare('UPDATE sessions SET received = ? WHERE id = ?').run(received, id);
    } else req.resume();
    if (!finalize) {
      sendBody(res, faults, 200, state('active', received), Buffer.alloc(0));
      return;
    }
    if (received !== s.size) throw new HttpError(400, `Finalized with ${received} of ${s.size} bytes.`, 'INVALID_ARGUMENT', state('active', received));
    // X-Goog-Hash is not checked: no Google document defines it for this API and nothing public shows a refusal.
    const sha1 = await fileSha1(file);
    const token = newToken(c.owner, file, received, b64ToHex(sha1));
    db.prepare("UPDATE sessions SET status = 'final', token = ? WHERE id = ?").run(token, id);
    sendBody(res, faults, 200, { ...state('final', received), 'Content-Type': 'text/plain; charset=UTF-8' }, Buffer.from(token));
  }

  // ---- media items ----
  const readHead = (file: string) => {
    const fd = fs.openSync(file, 'r');
    try {
      const b = Buffer.alloc(65536);
      return b.subarray(0, fs.readSync(fd, b, 0, b.length, 0));
    } finally {
      fs.closeSync(fd);
    }
  };
  /** Files another app put in the library before this app ran: stored as that app's media items, which this app can never read. */
  async function seedPreexisting(dir: string) {
    const walk = (d: string): string[] =>
      fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.isFile() ? [path.join(d, e.name)] : []));
    for (const file of walk(path.resolve(dir))) {
      const sha1 = Buffer.from(await fileSha1(file), 'base64').toString('hex');
      const size = fs.statSync(file).size;
      if (db.prepare('SELECT 1 FROM media_items WHERE owner = ? AND sha1 = ? AND size = ?').get(OTHER_APP, sha1, size)) continue;
      const detected = detectFormat(readHead(file));
      if (!detected || size === 0) continue;
      const info = await mediaInfo(file, detected);
      const id = `A${b64url(48)}`.slice(0, 64);
      db.prepare(`INSERT INTO media_items(id, owner, sha1, size, filename, file, mime, kind, format, width, height, creation_time, camera_make, camera_model, description, created_at, playable)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 1)`).run(
        id, OTHER_APP, sha1, size, path.basename(file), file, detected.mimeType, detected.kind, detected.format, info.width, info.height, info.creationTime,
        info.cameraMake ?? null, info.cameraModel ?? null, Date.now() - 86400_000);
    }
  }

  /**
   * How Google answers a batchCreate for bytes another app already put in the library: code 6
   * "EXISTS" (data-transfer-project#1009), a generic code 3 (jiotty-photos-uploader#129), or
   * Success with the existing item, added to the album (jiotty-photos-uploader#49), which this
   * app then cannot read. "mixed" picks one per item, always the same for the same bytes.
   */
  const preexistingAnswer = (m: MediaRow): 'exists' | 'failed' | 'item' => {
    if (opt.preexistingAnswer !== 'mixed') return opt.preexistingAnswer;
    return (['exists', 'failed', 'item'] as const)[parseInt(m.sha1.slice(0, 8), 16) % 3]!;
  };

  const storageUsed = () => (db.prepare('SELECT COALESCE(SUM(size), 0) AS n FROM media_items').get() as { n: number }).n;
  const addToAlbum = (albumId: string, mediaId: string) => {
    const pos = (db.prepare('SELECT COALESCE(MAX(pos), 0) + 1 AS p FROM album_items WHERE album_id = ?').get(albumId) as { p: number }).p;
    db.prepare('INSERT OR IGNORE INTO album_items(album_id, media_id, pos) VALUES (?, ?, ?)').run(albumId, mediaId, pos);
  };

  async function batchCreate(req: http.IncomingMessage, res: http.ServerResponse, c: Caller) {
    const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as {
      albumId?: string;
      newMediaItems?: Array<{ description?: string; simpleMediaItem?: { uploadToken?: string; fileName?: string } }>;
    };
    const items = body.newMediaItems ?? [];
    if (items.length === 0) throw bad('Request must contain at least one new media item.');
    if (items.length > P.MAX_BATCH_CREATE) throw bad('Request must have less than 50 items.');
    if (committing.has(c.owner)) {
      throw new HttpError(429, `Quota exceeded for quota metric 'Concurrent write requests' and limit 'Concurrent write requests per user' of service 'photoslibrary.googleapis.com' ${CONSUMER}.`, 'RESOURCE_EXHAUSTED');
    }
    committing.add(c.owner);
    try {
      let album: { id: string; owner: string } | undefined;
      if (body.albumId) {
        album = db.prepare('SELECT id, owner FROM albums WHERE id = ?').get(body.albumId) as typeof album;
        if (!album || album.owner !== c.owner) throw bad('Invalid album ID or the album was not created by this app.');
        const n = (db.prepare('SELECT COUNT(*) AS n FROM album_items WHERE album_id = ?').get(album.id) as { n: number }).n;
        // The limit is on what the album holds: an item it already holds does not count twice.
        const already = items.filter((it) => {
          const u = db.prepare('SELECT sha1, size FROM uploads WHERE token = ?').get(it.simpleMediaItem?.uploadToken ?? '') as { sha1: string; size: number } | undefined;
          return !!u && !!db.prepare('SELECT 1 FROM album_items a JOIN media_items m ON m.id = a.media_id WHERE a.album_id = ? AND m.sha1 = ? AND m.size = ?').get(album!.id, u.sha1, u.size);
        }).length;
        if (n + items.length - already > opt.albumLimit) throw bad(`The album is full: an album holds at most ${opt.albumLimit} items.`);
      }
      // Storage: what the new (not yet stored) items add.
      if (opt.storageLimit > 0) {
        let adding = 0;
        for (const it of items) {
          const u = db.prepare('SELECT size, sha1 FROM uploads WHERE token = ?').get(it.simpleMediaItem?.uploadToken ?? '') as { size: number; sha1: string } | undefined;
          if (u && !db.prepare('SELECT 1 FROM media_items WHERE owner = ? AND sha1 = ? AND size = ?').get(c.owner, u.sha1, u.size)) adding += u.size;
        }
        if (storageUsed() + adding > opt.storageLimit) throw bad("The remaining storage in the user's account is not enough to perform this operation.");
      }
      const results: unknown[] = [];
      for (const it of items) {
        const token = it.simpleMediaItem?.uploadToken ?? '';
        const fileName = it.simpleMediaItem?.fileName ?? '';
        const fail = (message: string, code = 3) => results.push({ uploadToken: token, status: { code, message } });
        const u = db.prepare('SELECT * FROM uploads WHERE token = ?').get(token) as { owner: string; file: string; size: number; sha1: string; created_at: number } | undefined;
        if (!u || u.owner !== c.owner || Date.now() - u.created_at > P.UPLOAD_TOKEN_TTL_MS) {
          fail('Request must contain a valid upload token.');
          continue;
        }
        if (fileName.length > P.MAX_FILE_NAME) {
          fail(`fileName must be at most ${P.MAX_FILE_NAME} characters.`);
          continue;
        }
        if ((it.description ?? '').length >= P.MAX_DESCRIPTION) {
          fail(`description must be shorter than ${P.MAX_DESCRIPTION} characters.`);
          continue;
        }
        if (u.size === 0) {
          fail(GENERIC_CREATE_FAILURE);
          continue;
        }
        const detected = detectFormat(readHead(u.file));
        if (!detected) {
          fail(GENERIC_CREATE_FAILURE);
          continue;
        }
        let m = db.prepare('SELECT * FROM media_items WHERE owner = ? AND sha1 = ? AND size = ?').get(c.owner, u.sha1, u.size) as MediaRow | undefined;
        const other = m ? undefined : (db.prepare('SELECT * FROM media_items WHERE owner = ? AND sha1 = ? AND size = ?').get(OTHER_APP, u.sha1, u.size) as MediaRow | undefined);
        if (other) {
          stats.preexistingAnswered++;
          const kind = preexistingAnswer(other);
          if (kind === 'exists') fail(EXISTS_FAILURE, 6);
          else if (kind === 'failed') fail(GENERIC_CREATE_FAILURE);
          else {
            if (album) addToAlbum(album.id, other.id);
            results.push({ uploadToken: token, status: { message: 'Success' }, mediaItem: mediaJson(other) });
          }
          continue;
        }
        if (!m) {
          const id = `A${b64url(48)}`.slice(0, 64);
          const name = fileName || `${id}.${detected.format}`;
          const file = path.join(dataDir, `${id}-${safeFileName(name)}`);
          fs.copyFileSync(u.file, file);
          const info = await mediaInfo(file, detected);
          db.prepare(`INSERT INTO media_items(id, owner, sha1, size, filename, file, mime, kind, format, width, height, creation_time, camera_make, camera_model, description, created_at, playable)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
            id, c.owner, u.sha1, u.size, name, file, detected.mimeType, detected.kind, detected.format, info.width, info.height, info.creationTime,
            info.cameraMake ?? null, info.cameraModel ?? null, it.description ?? null, Date.now(), info.playable === false ? 0 : 1);
          m = db.prepare('SELECT * FROM media_items WHERE id = ?').get(id) as MediaRow;
        }
        if (album) addToAlbum(album.id, m.id);
        results.push({ uploadToken: token, status: { message: 'Success' }, mediaItem: mediaJson(m) });
      }
      json(res, 200, { newMediaItemResults: results });
    } finally {
      committing.delete(c.owner);
    }
  }

  const ownItem = (c: Caller, id: string) => {
    const m = db.prepare('SELECT * FROM media_items WHERE id = ?').get(id) as MediaRow | undefined;
    return m && m.owner === c.owner ? m : undefined;
  };

  function batchGet(url: URL, res: http.ServerResponse, c: Caller) {
    const ids = url.searchParams.getAll('mediaItemIds');
    if (ids.length === 0) throw bad('mediaItemIds is required.');
    if (ids.length > P.MAX_BATCH_GET) throw bad('Request must have at most 50 media item ids.');
    const results = ids.map((id) => {
      const m = ownItem(c, id);
      // Since March 2025 an item this app did not create is an invalid id to it (code 3), not a missing one.
      return m ? { mediaItem: mediaJson(m) } : { status: { code: 3, message: 'Invalid media item ID.' } };
    });
    json(res, 200, { mediaItemResults: results });
  }

  const page = <T>(rows: T[], url: URL, max: number, dflt: number) => {
    const size = Math.min(max, Math.max(1, Number(url.searchParams.get('pageSize') ?? dflt) || dflt));
    const start = Number(url.searchParams.get('pageToken') ? Buffer.from(url.searchParams.get('pageToken')!, 'base64url').toString() : '0') || 0;
    const slice = rows.slice(start, start + size);
    const next = start + size < rows.length ? Buffer.from(String(start + size)).toString('base64url') : undefined;
    return { slice, next };
  };

  // ---- downloads ----
  async function download(pathname: string, res: http.ServerResponse) {
    const m = /^\/lr\/([^/]+)\/(\d+)\.([A-Za-z0-9_-]+)(?:=(.*))?$/.exec(pathname);
    if (!m) throw new HttpError(404, 'Not found.', 'NOT_FOUND');
    const [, id, exp, sig, opts = ''] = m;
    const want = crypto.createHmac('sha256', urlSecret).update(`${id}.${exp}`).digest('base64url').slice(0, 32);
    if (sig !== want || Number(exp) < Date.now()) throw new HttpError(403, 'The baseUrl has expired or is not valid.', 'PERMISSION_DENIED');
    const item = db.prepare('SELECT * FROM media_items WHERE id = ?').get(id!) as MediaRow | undefined;
    if (!item) throw new HttpError(404, 'Not found.', 'NOT_FOUND');
    stats.media++;
    const bytes = fs.readFileSync(item.file);
    const flags = opts.split('-');
    if (item.kind === 'video') {
      if (videoStatus(item) !== 'READY') throw new HttpError(404, 'The video is not ready.', 'NOT_FOUND');
      if (!flags.includes('dv')) throw bad('Videos download with =dv.');
      // =dv is a transcode, never the original.
      const trailer = Buffer.alloc(16);
      trailer.writeUInt32BE(16, 0);
      trailer.write('free', 4, 'latin1');
      trailer.write('transcoded', 6, 'latin1');
      sendBody(res, faults, 200, { 'Content-Type': item.mime }, Buffer.concat([bytes, trailer]), { corruptible: true });
      return;
    }
    if (flags.includes('d')) {
      const { bytes: out } = stripLocation(bytes, item.format);
      sendBody(res, faults, 200, { 'Content-Type': item.mime }, out, { corruptible: true });
      return;
    }
    // Without =d Google serves a resized rendition.
    const w = Number(/w(\d+)/.exec(opts)?.[1] ?? 512);
    const h = Number(/h(\d+)/.exec(opts)?.[1] ?? 512);
    try {
      const out = await sharp(bytes).resize({ width: w, height: h, fit: 'inside', withoutEnlargement: true }).jpeg().toBuffer();
      sendBody(res, faults, 200, { 'Content-Type': 'image/jpeg' }, out, { corruptible: true });
    } catch {
      sendBody(res, faults, 200, { 'Content-Type': item.mime }, bytes, { corruptible: true });
    }
  }

  // ---- OAuth ----
  function authorize(url: URL, res: http.ServerResponse) {
    const q = url.searchParams;
    const redirect = q.get('redirect_uri') ?? '';
    let target: URL;
    try {
      target = new URL(redirect);
    } catch {
      throw bad('redirect_uri is missing or invalid.');
    }
    if (target.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) throw bad('redirect_uri must be a loopback address for an installed app.');
    if (q.get('response_type') !== 'code') throw bad('response_type must be code.');
    const clientId = q.get('client_id');
    if (!clientId) throw bad('client_id is required.');
    const scopes = (q.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const known = new Set([...P.SCOPES, SCOPE_EDIT]);
    if (scopes.length === 0 || scopes.some((s) => !known.has(s))) {
      target.searchParams.set('error', 'invalid_scope');
    } else {
      const code = `4/${b64url(32)}`;
      db.prepare('INSERT INTO codes(code, client_id, redirect_uri, challenge, method, scopes, offline, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
        code, clientId, redirect, q.get('code_challenge'), q.get('code_challenge_method'), scopes.join(' '), q.get('access_type') === 'offline' ? 1 : 0, Date.now() + 600_000);
      target.searchParams.set('code', code);
      target.searchParams.set('scope', scopes.join(' '));
    }
    if (q.get('state')) target.searchParams.set('state', q.get('state')!);
    res.writeHead(302, { Location: target.toString(), 'Content-Length': 0 });
    res.end();
  }

  async function token(req: http.IncomingMessage, res: http.ServerResponse) {
    const raw = (await readBody(req)).toString('utf8');
    const form: Record<string, string> = String(req.headers['content-type'] ?? '').includes('json')
      ? (JSON.parse(raw || '{}') as Record<string, string>)
      : Object.fromEntries(new URLSearchParams(raw));
    const oauthError = (status: number, error: string, description: string) =>
      sendBody(res, faults, status, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify({ error, error_description: description })), { droppable: false });
    if (opt.clientSecret && form.client_secret !== opt.clientSecret) return oauthError(401, 'invalid_client', 'Unauthorized');
    const issue = (clientId: string, scopes: string, refresh: string | null) => {
      const access = `ya29.${b64url(48)}`;
      db.prepare('INSERT INTO tokens(hash, kind, client_id, scopes, expires_at) VALUES (?, ?, ?, ?, ?)').run(sha256(access), 'access', clientId, scopes, Date.now() + accessTtlMs);
      return { access_token: access, expires_in: Math.floor(accessTtlMs / 1000), scope: scopes, token_type: 'Bearer', ...(refresh ? { refresh_token: refresh } : {}) };
    };
    if (form.grant_type === 'authorization_code') {
      const row = db.prepare('SELECT * FROM codes WHERE code = ?').get(form.code ?? '') as { client_id: string; redirect_uri: string; challenge: string | null; method: string | null; scopes: string; offline: number; expires_at: number } | undefined;
      if (row) db.prepare('DELETE FROM codes WHERE code = ?').run(form.code);
      if (!row || row.expires_at < Date.now() || row.client_id !== form.client_id || row.redirect_uri !== form.redirect_uri) return oauthError(400, 'invalid_grant', 'Bad Request');
      if (row.challenge) {
        const v = form.code_verifier ?? '';
        const got = row.method === 'S256' ? crypto.createHash('sha256').update(v).digest('base64url') : v;
        if (got !== row.challenge) return oauthError(400, 'invalid_grant', 'Invalid code verifier.');
      }
      let refresh: string | null = null;
      if (row.offline) {
        refresh = `1//${b64url(48)}`;
        const exp = opt.refreshTokenTtlMs > 0 ? Date.now() + opt.refreshTokenTtlMs : Number.MAX_SAFE_INTEGER;
        db.prepare('INSERT INTO tokens(hash, kind, client_id, scopes, expires_at) VALUES (?, ?, ?, ?, ?)').run(sha256(refresh), 'refresh', row.client_id, row.scopes, exp);
      }
      return sendBody(res, faults, 200, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify(issue(row.client_id, row.scopes, refresh))), { droppable: false });
    }
    if (form.grant_type === 'refresh_token') {
      const row = db.prepare("SELECT client_id, scopes, expires_at FROM tokens WHERE hash = ? AND kind = 'refresh'").get(sha256(form.refresh_token ?? '')) as { client_id: string; scopes: string; expires_at: number } | undefined;
      if (!row || row.expires_at < Date.now() || (form.client_id && form.client_id !== row.client_id)) return oauthError(400, 'invalid_grant', 'Token has been expired or revoked.');
      return sendBody(res, faults, 200, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify(issue(row.client_id, row.scopes, null))), { droppable: false });
    }
    return oauthError(400, 'unsupported_grant_type', 'Invalid grant_type.');
  }

  // ---- control ----
  const snapshot = () => {
    const q = quota();
    const items = db.prepare('SELECT * FROM media_items ORDER BY seq').all() as MediaRow[];
    const albums = db.prepare('SELECT id, title, owner FROM albums ORDER BY seq').all() as Array<{ id: string; title: string; owner: string }>;
    const links = db.prepare('SELECT album_id, media_id FROM album_items ORDER BY pos').all() as Array<{ album_id: string; media_id: string }>;
    return {
      quota: { date: q.date, day: q.day, used: q.used, limit: opt.dailyQuota },
      requests: { ...stats },
      mediaItems: items.map((m) => ({
        id: m.id, owner: m.owner === OTHER_APP ? 'other-app' : 'this-app', filename: m.filename, file: m.file, sha1: m.sha1, size: m.size, mimeType: m.mime, kind: m.kind, width: m.width, height: m.height,
        creationTime: m.creation_time, description: m.description, status: m.kind === 'video' ? videoStatus(m) : 'READY',
        albumIds: links.filter((l) => l.media_id === m.id).map((l) => l.album_id),
      })),
      albums: albums.map((a) => ({ id: a.id, title: a.title, count: links.filter((l) => l.album_id === a.id).length })),
      uploadTokens: (db.prepare('SELECT COUNT(*) AS n FROM uploads').get() as { n: number }).n,
      sessions: (db.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n,
    };
  };

  // ---- routing ----
  const handler: http.RequestListener = (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', base || 'http://127.0.0.1');
      const p = url.pathname;
      try {
        if (p === P.PATH_BATCH_CREATE) stats.batchCreateStarted++;
        await faults.latency();
        if (p.startsWith('/__emulator/')) {
          req.resume();
          if (p === '/__emulator/next-day' && req.method === 'POST') {
            const q = quota();
            kvSet('quota', { date: q.date, day: q.day + 1, used: {} });
            writeStamps.clear();
            return json(res, 200, { day: q.day + 1 });
          }
          if (p === '/__emulator/state') return res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(snapshot()));
          if (p === '/__emulator/reset-counters' && req.method === 'POST') {
            for (const k of Object.keys(stats)) (stats as Record<string, number>)[k] = 0;
            return json(res, 200, {});
          }
          throw new HttpError(404, 'Not found.', 'NOT_FOUND');
        }
        if (p === '/o/oauth2/v2/auth' && req.method === 'GET') return authorize(url, res);
        if (p === '/token' && req.method === 'POST') return await token(req, res);
        if (p.startsWith('/lr/') && req.method === 'GET') {
          if (faults.roll('5xx')) throw new HttpError(503, 'The service is currently unavailable.', 'UNAVAILABLE');
          return await download(p, res);
        }
        if (!p.startsWith('/v1/')) throw new HttpError(404, 'Not found.', 'NOT_FOUND');

        const c = authenticate(req);
        const isUpload = p === P.PATH_UPLOADS;
        const command = String(req.headers[P.H_COMMAND] ?? '').toLowerCase();
        const write = (isUpload && !command.includes('query')) || (req.method === 'POST' && (p === P.PATH_BATCH_CREATE || p === P.PATH_ALBUMS || /:batchAddMediaItems$/.test(p)));
        requireScope(c, p, req.method ?? 'GET');
        admit(c, write);
        if (faults.roll('429')) {
          stats.faults++;
          throw new HttpError(429, 'Resource has been exhausted (e.g. check quota).', 'RESOURCE_EXHAUSTED', { 'Retry-After': String(opt.retryAfter) });
        }
        if (faults.roll('5xx')) {
          stats.faults++;
          const status = faults.random() < 0.5 ? 500 : 503;
          throw new HttpError(status, status === 500 ? 'Internal error encountered.' : 'The service is currently unavailable.', status === 500 ? 'INTERNAL' : 'UNAVAILABLE');
        }
        if (isUpload && req.method === 'POST') {
          stats.uploads++;
          const id = url.searchParams.get('upload_id');
          if (id) return await sessionRequest(req, res, c, id);
          const protocol = String(req.headers[P.H_PROTOCOL] ?? '').toLowerCase();
          if (protocol === 'resumable' && command.includes('start')) return startSession(req, res, c);
          if (protocol === 'raw') return await rawUpload(req, res, c);
          throw bad('X-Goog-Upload-Protocol must be raw, or resumable with X-Goog-Upload-Command: start.');
        }
        if (p === P.PATH_BATCH_CREATE && req.method === 'POST') {
          stats.batchCreate++;
          return await batchCreate(req, res, c);
        }
        if (p === P.PATH_BATCH_GET && req.method === 'GET') {
          stats.batchGet++;
          return batchGet(url, res, c);
        }
        if (p === P.PATH_MEDIA_ITEMS && req.method === 'GET') {
          stats.list++;
          const rows = db.prepare('SELECT * FROM media_items WHERE owner = ? ORDER BY seq').all(c.owner) as MediaRow[];
          const { slice, next } = page(rows, url, 100, 25);
          return json(res, 200, { ...(slice.length ? { mediaItems: slice.map(mediaJson) } : {}), ...(next ? { nextPageToken: next } : {}) });
        }
        if (p === `${P.PATH_MEDIA_ITEMS}:search` && req.method === 'POST') {
          stats.list++;
          const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { albumId?: string; pageSize?: number; pageToken?: string };
          if (body.pageSize) url.searchParams.set('pageSize', String(body.pageSize));
          if (body.pageToken) url.searchParams.set('pageToken', body.pageToken);
          const rows = (body.albumId
            ? db.prepare('SELECT m.* FROM album_items a JOIN media_items m ON m.id = a.media_id WHERE a.album_id = ? AND m.owner = ? ORDER BY a.pos').all(body.albumId, c.owner)
            : db.prepare('SELECT * FROM media_items WHERE owner = ? ORDER BY seq').all(c.owner)) as MediaRow[];
          const { slice, next } = page(rows, url, 100, 25);
          return json(res, 200, { ...(slice.length ? { mediaItems: slice.map(mediaJson) } : {}), ...(next ? { nextPageToken: next } : {}) });
        }
        const itemMatch = /^\/v1\/mediaItems\/([^/:]+)$/.exec(p);
        if (itemMatch && req.method === 'GET') {
          stats.other++;
          const m = ownItem(c, itemMatch[1]!);
          if (!m) throw bad('Invalid media item ID.');
          return json(res, 200, mediaJson(m));
        }
        if (p === P.PATH_ALBUMS && req.method === 'POST') {
          stats.albums++;
          const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { album?: { title?: string } };
          const title = body.album?.title ?? '';
          if (!title || title.length > 500) throw bad('album.title is required and must be at most 500 characters.');
          const id = `A${b64url(40)}`.slice(0, 56);
          db.prepare('INSERT INTO albums(id, owner, title, created_at) VALUES (?, ?, ?, ?)').run(id, c.owner, title, Date.now());
          return json(res, 200, albumJson({ id, title }));
        }
        if (p === P.PATH_ALBUMS && req.method === 'GET') {
          stats.albums++;
          const rows = db.prepare('SELECT id, title FROM albums WHERE owner = ? ORDER BY seq').all(c.owner) as Array<{ id: string; title: string }>;
          const { slice, next } = page(rows, url, 50, 20);
          return json(res, 200, { ...(slice.length ? { albums: slice.map(albumJson) } : {}), ...(next ? { nextPageToken: next } : {}) });
        }
        const albumMatch = /^\/v1\/albums\/([^/:]+)(:batchAddMediaItems)?$/.exec(p);
        if (albumMatch) {
          stats.albums++;
          const a = db.prepare('SELECT id, title, owner FROM albums WHERE id = ?').get(albumMatch[1]!) as { id: string; title: string; owner: string } | undefined;
          if (!a || a.owner !== c.owner) throw new HttpError(404, 'Album not found or not created by this app.', 'NOT_FOUND');
          if (!albumMatch[2] && req.method === 'GET') return json(res, 200, albumJson(a));
          if (albumMatch[2] && req.method === 'POST') {
            const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { mediaItemIds?: string[] };
            const ids = body.mediaItemIds ?? [];
            if (ids.length === 0 || ids.length > 50) throw bad('mediaItemIds must hold 1 to 50 ids.');
            if (ids.some((id) => !ownItem(c, id))) throw bad('Every media item must have been created by this app.');
            const n = (db.prepare('SELECT COUNT(*) AS n FROM album_items WHERE album_id = ?').get(a.id) as { n: number }).n;
            if (n + ids.length > opt.albumLimit) throw bad(`The album is full: an album holds at most ${opt.albumLimit} items.`);
            for (const id of ids) addToAlbum(a.id, id);
            return json(res, 200, {});
          }
        }
        throw new HttpError(404, 'Not found.', 'NOT_FOUND');
      } catch (err) {
        if (res.headersSent || res.destroyed) return;
        const e = err instanceof HttpError ? err : new HttpError(500, `Internal error: ${(err as Error).message}`, 'INTERNAL');
        if (!req.complete) {
          // The answer comes before the body was read: close the connection rather than read it all.
          res.setHeader('Connection', 'close');
          res.once('finish', () => req.socket?.destroy());
        }
        jsonError(res, e);
      }
    })();
  };

  if (opt.preexisting) await seedPreexisting(opt.preexisting);
  const server = await listenLoopback(handler, opt.common.port);
  base = `http://127.0.0.1:${server.port}`;
  return {
    port: server.port,
    env: {
      GOOGLE_PHOTOS_BASE_URL: base,
      GOOGLE_OAUTH_AUTH_URL: `${base}/o/oauth2/v2/auth`,
      GOOGLE_OAUTH_TOKEN_URL: `${base}/token`,
    },
    close: async () => {
      await server.close();
      db.close();
    },
  };
}
