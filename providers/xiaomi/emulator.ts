// An emulator of i.mi.com's gallery API, built from the public description of the web client's
// protocol (../shared/reference/xiaomi-cloud-gallery.md) and from what public clients that work
// against the real service send and expect (each format fact names the client it follows),
// never from our client. It serves a
// seed folder (sub-folders are albums), keeps deletions and counters in DATA/.emulator/ so they
// survive restarts, checks cookies, expires sessions, renews serviceTokens through the login
// chain and injects the common faults plus its own (wrong SHA-1 in the listing, expired links).
//
//   gallery-bridge emulator xiaomi --port 0 --seed SEED --data DATA [flags]

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import exifr from 'exifr';
import {
  COMMON_FLAG_HELP,
  Faults,
  listenLoopback,
  parseEmulatorArgs,
  readBody,
  sendBody,
  sendStream,
  seededRandom,
  type CommonFlags,
} from '../../src/emulator/kit.ts';
import type { EmulatorHandle } from '../types.ts';
import { EmulatorState } from './emulator-state.ts';
import { ALBUM_CAMERA, ALBUM_PRIVATE, ALBUM_SCREENSHOTS, CODE_DELETED, CODE_NOT_RETRIABLE, CODE_OK, JSONP_CALLBACK, PATHS } from './protocol.ts';

export const EMULATOR_DEFAULTS = {
  userId: '1234567890',
  passToken: 'emulator-pass-token',
  serviceToken: 'emulator-service-token',
  linkTtlSeconds: 60,
} as const;

export const EMULATOR_HELP = `gallery-bridge emulator xiaomi --seed DIR --data DIR [flags]

  --seed DIR                 folder to serve (read only): sub-folders are albums; Camera = 1,
                             Screenshots = 2, Private = 1000, files at the top go to Camera
  --synthetic N              add N generated items (album "Synthetic"), no files needed
  --user-id ID               the account's userId (default ${EMULATOR_DEFAULTS.userId})
  --pass-token T             the account's passToken (default ${EMULATOR_DEFAULTS.passToken})
  --service-token T          a serviceToken valid from start (default ${EMULATOR_DEFAULTS.serviceToken})
  --fault-wrong-sha1 RATE    share of items whose listing reports a wrong sha1 (stable per item)
  --fault-expired-link RATE  share of download-link requests answered as expired (403)
  --fault-delete RATE        share of delete requests answered 503 before anything is deleted
  --link-ttl SEC             lifetime of download links (default ${EMULATOR_DEFAULTS.linkTtlSeconds})
  --download-host HOST       host name put in download links (default 127.0.0.1)
  --file-host HOST           host name of the final POST url only (default: --download-host)
  --session-ttl SEC          lifetime of serviceTokens (0: never expire)

${COMMON_FLAG_HELP}`;

interface EmItem {
  id: string;
  albumId: string;
  fileName: string;
  /** Absolute path in the seed folder, or null for synthetic items. */
  file: string | null;
  synthetic: number | null;
  size: number;
  sha1: string;
  mimeType: string;
  type: 'image' | 'video';
  dateTaken: number;
  /** yyyyMMdd of dateTaken (UTC), for startDate/endDate. */
  day: string;
  dateModified: number;
  /** `exifInfo` as listed, from the seed file's own EXIF. */
  exifInfo: Record<string, unknown>;
  /** Decimal coordinates from the seed file's EXIF GPS, or null. */
  gps: { latitude: number; longitude: number; altitude?: number } | null;
}

interface EmAlbum {
  albumId: string;
  name: string;
  items: EmItem[];
}

interface Link {
  itemId: string;
  expiresAt: number;
  meta: string;
  /** The JSONP function name: /gallery/storage's `callBack`, else dl_img_cb. */
  callback: string;
}

const MIME: Record<string, [string, 'image' | 'video']> = {
  '.jpg': ['image/jpeg', 'image'],
  '.jpeg': ['image/jpeg', 'image'],
  '.png': ['image/png', 'image'],
  '.gif': ['image/gif', 'image'],
  '.webp': ['image/webp', 'image'],
  '.heic': ['image/heic', 'image'],
  '.heif': ['image/heif', 'image'],
  '.avif': ['image/avif', 'image'],
  '.tif': ['image/tiff', 'image'],
  '.tiff': ['image/tiff', 'image'],
  '.dng': ['image/x-adobe-dng', 'image'],
  '.mp4': ['video/mp4', 'video'],
  '.mov': ['video/quicktime', 'video'],
  '.3gp': ['video/3gpp', 'video'],
  '.mkv': ['video/x-matroska', 'video'],
};

/** A 17-digit decimal id derived from a string: stable across restarts, above 2^53. */
export function stableId(key: string): string {
  const h = crypto.createHash('sha1').update(key).digest();
  const n = h.readBigUInt64BE(0) % 90_000_000_000_000_000n;
  return (10_000_000_000_000_000n + n).toString();
}

function albumIdFor(name: string): string {
  const lower = name.toLowerCase();
  if (lower === 'camera') return ALBUM_CAMERA;
  if (lower === 'screenshots') return ALBUM_SCREENSHOTS;
  if (lower === 'private') return ALBUM_PRIVATE;
  return stableId(`album:${name}`);
}

function syntheticBytes(n: number): Buffer {
  const line = Buffer.from(`gallery-bridge synthetic item ${n}\n`);
  const size = 200 + (n % 300);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += line.length) line.copy(out, i);
  return out;
}

async function sha1File(file: string): Promise<string> {
  const h = crypto.createHash('sha1');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function exifOf(file: string): Promise<Record<string, unknown> | null> {
  try {
    const e = (await exifr.parse(file, { tiff: true, exif: true, gps: true, xmp: false, icc: false, iptc: false, translateValues: false })) as
      | Record<string, unknown>
      | undefined;
    return e ?? null;
  } catch {
    return null;
  }
}

/** "YYYY:MM:DD HH:MM:SS", as EXIF writes it (exifr revives it as a local-time Date). */
function exifDateString(d: unknown): string | undefined {
  if (!(d instanceof Date) || !Number.isFinite(d.getTime())) return undefined;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}:${p(d.getMonth() + 1)}:${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

const finite = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Decimal coordinates exifr computed from the file's GPS tags, or null. */
function gpsOf(e: Record<string, unknown> | null): EmItem['gps'] {
  const latitude = finite(e?.latitude);
  const longitude = finite(e?.longitude);
  if (latitude === undefined || longitude === undefined) return null;
  const alt = finite(e?.GPSAltitude);
  return { latitude, longitude, ...(alt !== undefined ? { altitude: alt } : {}) };
}

/**
 * The listing's `exifInfo` from the file's own EXIF: dateTime, make, model, orientation and the
 * GPS values (reference notes: `exifInfo{dateTime, GPSLatitude, make, model, orientation, ...}`),
 * imageWidth/imageLength (Coooolfan/XiaomiAlbumSyncer docs/plan/xiaomi-webapi-incremental-sync.md)
 * and the exposure values. Numbers go out as plain JSON decimals, as many digits as they have.
 */
function exifInfoOf(e: Record<string, unknown> | null, gps: EmItem['gps']): Record<string, unknown> {
  if (!e) return {};
  const out: Record<string, unknown> = {
    dateTime: exifDateString(e.DateTimeOriginal ?? e.CreateDate ?? e.ModifyDate),
    make: typeof e.Make === 'string' ? e.Make : undefined,
    model: typeof e.Model === 'string' ? e.Model : undefined,
    orientation: finite(e.Orientation),
    imageWidth: finite(e.ExifImageWidth ?? e.ImageWidth),
    imageLength: finite(e.ExifImageHeight ?? e.ImageHeight),
    exposureTime: finite(e.ExposureTime),
    fNumber: finite(e.FNumber),
    ISOSpeedRatings: finite(e.ISO),
    focalLength: finite(e.FocalLength),
    flash: finite(e.Flash),
    whiteBalance: finite(e.WhiteBalance),
  };
  if (gps) {
    out.GPSLatitude = Math.abs(gps.latitude);
    out.GPSLatitudeRef = gps.latitude < 0 ? 'S' : 'N';
    out.GPSLongitude = Math.abs(gps.longitude);
    out.GPSLongitudeRef = gps.longitude < 0 ? 'W' : 'E';
    if (gps.altitude !== undefined) out.GPSAltitude = gps.altitude;
  }
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (ent.name.startsWith('.')) continue;
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...walk(p));
    else if (ent.isFile()) out.push(p);
  }
  return out;
}

async function loadSeed(seed: string | undefined, synthetic: number): Promise<Map<string, EmAlbum>> {
  const albums = new Map<string, EmAlbum>();
  const albumOf = (name: string): EmAlbum => {
    const id = albumIdFor(name);
    let a = albums.get(id);
    if (!a) albums.set(id, (a = { albumId: id, name, items: [] }));
    return a;
  };
  if (seed) {
    const root = path.resolve(seed);
    for (const file of walk(root)) {
      const rel = path.relative(root, file).split(path.sep).join('/');
      const parts = rel.split('/');
      const albumName = parts.length > 1 ? parts[0]! : 'Camera';
      const st = fs.statSync(file);
      const ext = path.extname(file).toLowerCase();
      const [mimeType, type] = MIME[ext] ?? ['application/octet-stream', 'image'];
      const exif = type === 'image' ? await exifOf(file) : null;
      const gps = gpsOf(exif);
      const taken = (exif?.DateTimeOriginal ?? exif?.CreateDate ?? exif?.ModifyDate) as unknown;
      const dateTaken = taken instanceof Date && Number.isFinite(taken.getTime()) ? taken.getTime() : Math.floor(st.mtimeMs);
      albumOf(albumName).items.push({
        id: stableId(`seed:${rel}`),
        albumId: albumIdFor(albumName),
        fileName: path.basename(file),
        file,
        synthetic: null,
        size: st.size,
        sha1: await sha1File(file),
        mimeType,
        type,
        dateTaken,
        day: ymd(dateTaken),
        dateModified: Math.floor(st.mtimeMs),
        exifInfo: exifInfoOf(exif, gps),
        gps,
      });
    }
  }
  if (synthetic > 0) {
    const a = albumOf('Synthetic');
    const base = Date.UTC(2020, 0, 1);
    for (let n = 0; n < synthetic; n++) {
      const bytes = syntheticBytes(n);
      a.items.push({
        id: stableId(`synthetic:${n}`),
        albumId: a.albumId,
        fileName: `SYN_${String(n).padStart(6, '0')}.jpg`,
        file: null,
        synthetic: n,
        size: bytes.length,
        sha1: crypto.createHash('sha1').update(bytes).digest('hex'),
        mimeType: 'image/jpeg',
        type: 'image',
        dateTaken: base + n * 60_000,
        day: ymd(base + n * 60_000),
        dateModified: base + n * 60_000,
        exifInfo: {},
        gps: null,
      });
    }
  }
  // The service lists newest first.
  for (const a of albums.values()) a.items.sort((x, y) => y.dateTaken - x.dateTaken || (BigInt(y.id) > BigInt(x.id) ? 1 : -1));
  return albums;
}

function ymd(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
}

/** JSON with some values written as bare numbers, as the service writes its big ids. */
function jsonWithRawNumbers(value: unknown): string {
  return JSON.stringify(value).replace(/"__raw:(\d+)"/g, '$1');
}
const raw = (digits: string): string => `__raw:${digits}`;

function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export interface XiaomiEmulatorOptions {
  common: CommonFlags;
  seed?: string;
  synthetic?: number;
  userId?: string;
  passToken?: string;
  serviceToken?: string;
  faultWrongSha1?: number;
  faultExpiredLink?: number;
  /** Share of delete requests answered 503 (nothing deleted), from their own seeded sequence. */
  faultDelete?: number;
  linkTtlSeconds?: number;
  downloadHost?: string;
  fileHost?: string;
  /** Answers as a hostile real account may: for tests of the client's robustness. */
  hostile?: HostileListing;
  /** What the account's owner set in the gallery app, by file name: a caption, a favourite mark. */
  userMeta?: Record<string, { description?: string; isFavorite?: boolean }>;
}

/** Listing quirks a real account may serve, by file name or album name (deterministic, for tests). */
export interface HostileListing {
  /** These files' dateTaken is written in microseconds instead of milliseconds. */
  microsecondDateTaken?: string[];
  /** These pages of these albums answer code 0 with `galleries` missing. */
  missingGalleries?: Array<{ album: string; pageNum: number }>;
  /** These albums' listings end (isLastPage true) after this many items, while mediaCount counts them all. */
  truncate?: Record<string, number>;
  /** These pages of the album list answer code 0 with `albums` missing. */
  missingAlbumPages?: number[];
  /** These albums ignore pageNum (every page is the first) and never say isLastPage true. */
  endlessPages?: string[];
  /** /gallery/storage answers this error for these files. */
  storageErrors?: Record<string, { code: number; retriable: boolean }>;
}

export interface XiaomiEmulator extends EmulatorHandle {
  port: number;
  baseUrl: string;
  /** Where the emulator keeps its state (deletions, download counts). */
  stateFile: string;
  /** Every item the seed produced, for tests that look from the outside. */
  manifest(): Array<{ id: string; albumId: string; albumName: string; fileName: string; file: string | null; sha1: string; size: number }>;
}

export async function startXiaomiEmulator(opts: XiaomiEmulatorOptions): Promise<XiaomiEmulator> {
  const { common } = opts;
  const userId = opts.userId ?? EMULATOR_DEFAULTS.userId;
  const passToken = opts.passToken ?? EMULATOR_DEFAULTS.passToken;
  const initialToken = opts.serviceToken ?? EMULATOR_DEFAULTS.serviceToken;
  const ttlMs = common.sessionTtl > 0 ? common.sessionTtl * 1000 : 0;
  const linkTtlMs = (opts.linkTtlSeconds ?? EMULATOR_DEFAULTS.linkTtlSeconds) * 1000;
  const faults = new Faults(common);
  const wrongSha1Rate = opts.faultWrongSha1 ?? 0;
  const expiredRate = opts.faultExpiredLink ?? 0;
  const deleteFaultRate = opts.faultDelete ?? 0;
  // Own sequence: which delete fails depends only on how many deletes came before, not on timing.
  const deleteFaultRandom = seededRandom(common.randomSeed + 1);

  const albums = await loadSeed(opts.seed, opts.synthetic ?? 0);
  const byId = new Map<string, EmItem>();
  for (const a of albums.values()) for (const it of a.items) byId.set(it.id, it);
  const albumOrder = [...albums.values()].sort((x, y) => {
    const rank = (a: EmAlbum) => (a.albumId === ALBUM_CAMERA ? 0 : a.albumId === ALBUM_SCREENSHOTS ? 1 : a.albumId === ALBUM_PRIVATE ? 3 : 2);
    return rank(x) - rank(y) || x.name.localeCompare(y.name);
  });

  // ---- persistent state ----
  const record = new EmulatorState(common.data);
  const { state } = record;
  const stateDir = path.dirname(record.file);
  const stateFile = record.file;
  const save = (): void => record.save();
  const count = (name: string): void => {
    record.set('counters', name, (state.counters[name] ?? 0) + 1);
    // Counters are read from the outside by tests: write them through (the plain request count rides along).
    if (name !== 'requests') save();
  };
  // The configured token is valid from start (for one session lifetime).
  record.set('tokens', initialToken, ttlMs ? Date.now() + ttlMs : 0);
  const manifestRows = [...byId.values()].map((it) => ({
    id: it.id,
    albumId: it.albumId,
    albumName: albums.get(it.albumId)!.name,
    fileName: it.fileName,
    file: it.file,
    sha1: it.sha1,
    size: it.size,
  }));
  fs.writeFileSync(path.join(stateDir, 'xiaomi-manifest.json'), JSON.stringify(manifestRows, null, 1));
  save();

  const wrongSha1 = (it: EmItem): boolean => {
    if (wrongSha1Rate <= 0) return false;
    const h = crypto.createHash('sha1').update(`${common.randomSeed}:wrong-sha1:${it.id}`).digest();
    return h.readUInt32BE(0) / 2 ** 32 < wrongSha1Rate;
  };
  const alive = (it: EmItem): boolean => !state.deleted[it.id];
  const hostile = opts.hostile ?? {};
  const microseconds = new Set(hostile.microsecondDateTaken ?? []);
  const missingPage = (album: EmAlbum, pageNum: number): boolean => (hostile.missingGalleries ?? []).some((m) => m.album === album.name && m.pageNum === pageNum);

  const links = new Map<string, Link>();
  // An expired link is answered as one whether it is kept or not: forget it, so the map holds
  // the last TTL's links, not one per item ever served. Links live equally long, so the oldest come first.
  const addLink = (id: string, link: Link): void => {
    const now = Date.now();
    for (const [k, l] of links) {
      if (l.expiresAt >= now) break;
      links.delete(k);
    }
    links.set(id, link);
  };
  const tickets = new Map<string, number>();

  let baseUrl = '';
  const loginUrl = (): string => `${baseUrl}/pass/serviceLogin?sid=i.mi.com&callback=${encodeURIComponent(`${baseUrl}/sts`)}&_locale=zh_CN`;

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void => {
    const text = Buffer.from(typeof body === 'string' ? body : jsonWithRawNumbers(body));
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    sendBody(res, faults, status, { 'Content-Type': 'application/json;charset=UTF-8' }, text);
  };
  const ok = (res: http.ServerResponse, data: unknown, headers?: Record<string, string | string[]>): void =>
    json(res, 200, { code: CODE_OK, result: 'ok', description: '成功', data, ts: Date.now() }, headers);
  // Error answers carry `retriable`, false for 50050 (deleted) and 50202 (reference notes, 2026-11-29).
  const fail = (res: http.ServerResponse, code: number, description: string, status = 200, retriable = code !== CODE_DELETED && code !== CODE_NOT_RETRIABLE): void =>
    json(res, status, { code, result: 'error', retriable, description, data: {}, ts: Date.now() });
  const unauthorized = (res: http.ServerResponse): void => {
    count('unauthorized');
    json(res, 401, JSON.stringify({ R: 401, S: 'Err', D: loginUrl() }));
  };

  const issueToken = (): string => {
    const t = `emu-st-${crypto.randomBytes(18).toString('base64url')}`;
    record.set('tokens', t, ttlMs ? Date.now() + ttlMs : 0);
    // Forget long-expired tokens so the state file stays small.
    const now = Date.now();
    for (const [k, exp] of Object.entries(state.tokens)) if (exp && exp < now - 3600_000) record.remove('tokens', k);
    save();
    return t;
  };
  const sessionOk = (cookies: Record<string, string>): boolean => {
    if (cookies.userId !== userId) return false;
    const t = cookies.serviceToken;
    if (!t || !(t in state.tokens)) return false;
    const exp = state.tokens[t]!;
    return exp === 0 || exp > Date.now();
  };

  // An album's listing changes only when an item of it is deleted: worked out once per change,
  // not once per page (a 100,000-item album is 2,000 pages).
  let deletions = 0;
  const listing = (album: EmAlbum, keep: (it: EmItem) => boolean = () => true): { live: EmItem[]; indexHash: string } => {
    let live = album.items.filter((it) => alive(it) && keep(it));
    const cut = hostile.truncate?.[album.name];
    if (cut !== undefined) live = live.slice(0, cut);
    return { live, indexHash: crypto.createHash('sha256').update(live.map((it) => `${it.id}:${it.dateTaken}:${it.size}:${it.sha1}`).join(';')).digest('hex') };
  };
  const listings = new Map<string, { deletions: number; live: EmItem[]; indexHash: string }>();
  const wholeListing = (album: EmAlbum): { live: EmItem[]; indexHash: string } => {
    let l = listings.get(album.albumId);
    if (!l || l.deletions !== deletions) listings.set(album.albumId, (l = { deletions, ...listing(album) }));
    return l;
  };

  const findAlbum = (q: string | null): EmAlbum | undefined => (q == null ? undefined : albums.get(String(q).trim()));

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    await faults.latency();
    const url = new URL(req.url ?? '/', baseUrl);
    const p = url.pathname;
    const q = url.searchParams;
    const cookies = parseCookies(req.headers.cookie);
    count('requests');

    if (faults.roll('429')) {
      count('fault429');
      return json(res, 429, { code: 429, result: 'error', description: 'too many requests' }, { 'Retry-After': '1' });
    }
    if (faults.roll('5xx')) {
      count('fault5xx');
      return json(res, faults.random() < 0.5 ? 500 : 503, { code: 500, result: 'error', description: 'server busy' });
    }

    // ---- the login chain ----
    if (req.method === 'GET' && p === PATHS.login) {
      const followUp = q.get('followUp') ?? `${baseUrl}/`;
      return ok(res, { loginUrl: `${loginUrl()}&followup=${encodeURIComponent(followUp)}` });
    }
    if (req.method === 'GET' && p === '/pass/serviceLogin') {
      count('serviceLogin');
      const good = cookies.userId === userId && cookies.passToken === passToken && /^wb_[0-9a-f-]{36}$/i.test(cookies.deviceId ?? '');
      if (!good) {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        return void res.end('<html><body>Sign in to your Xiaomi account</body></html>');
      }
      const ticket = crypto.randomBytes(12).toString('hex');
      tickets.set(ticket, Date.now() + 60_000);
      const followUp = q.get('followup') ?? `${baseUrl}/`;
      res.writeHead(302, { Location: `${baseUrl}/sts?d=${encodeURIComponent(cookies.deviceId!)}&ticket=${ticket}&followup=${encodeURIComponent(followUp)}` });
      return void res.end();
    }
    if (req.method === 'GET' && p === '/sts') {
      const ticket = q.get('ticket') ?? '';
      const exp = tickets.get(ticket);
      tickets.delete(ticket);
      if (!exp || exp < Date.now()) {
        res.writeHead(403, { 'Content-Type': 'text/plain' });
        return void res.end('invalid ticket');
      }
      count('renewals');
      const token = issueToken();
      res.writeHead(302, {
        Location: q.get('followup') ?? `${baseUrl}/`,
        'Set-Cookie': [`serviceToken=${token}; Path=/; HttpOnly`, `userId=${userId}; Path=/`],
      });
      return void res.end();
    }

    // ---- the download links (a separate, host-looking path; they expire) ----
    // The URLs are signed: neither hop asks for a cookie. Coooolfan/XiaomiAlbumSyncer
    // (XiaoMiApi.downloadAsset) sends both with a User-Agent alone, and they work. A cookie that
    // arrives anyway is counted, so tests can see from here that none leaked.
    const dl = /^\/_dl\/[^/]+\/(jsonp|file)\/([A-Za-z0-9_-]+)$/.exec(p);
    if (dl) {
      const [, step, linkId] = dl;
      if (req.headers.cookie) count('cookiesOnDownloadHops');
      const link = links.get(linkId!);
      if (!link || link.expiresAt < Date.now() || faults.random() < expiredRate) {
        count('expiredLinks');
        res.writeHead(403, { 'Content-Type': 'application/xml' });
        return void res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      }
      const it = byId.get(link.itemId)!;
      if (!alive(it)) return fail(res, CODE_DELETED, 'file has been deleted', 404);
      if (step === 'jsonp' && req.method === 'GET') {
        count('jsonp');
        const fileLink = crypto.randomBytes(16).toString('base64url');
        const meta = crypto.randomBytes(24).toString('base64');
        addLink(fileLink, { itemId: it.id, expiresAt: Date.now() + linkTtlMs, meta, callback: link.callback });
        const fileHost = opts.fileHost ?? opts.downloadHost ?? '127.0.0.1';
        const fileUrl = `http://${fileHost}:${port}/_dl/micloudfs.fds.api.xiaomi.com/file/${fileLink}?Expires=${Date.now() + linkTtlMs}`;
        // Exactly NAME({...}), nothing after the ")": diredocks/MiCloudAlbumDownloader and
        // QSMX816/xiaomi2icloud check startswith('dl_img_cb(') and endswith(')');
        // CLOUDERHEM/MiCloud cuts the body at its last character.
        const body = `${link.callback}(${JSON.stringify({ url: fileUrl, meta })})`;
        res.writeHead(200, { 'Content-Type': 'application/javascript;charset=UTF-8' });
        return void res.end(body);
      }
      if (step === 'file' && req.method === 'POST') {
        const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
        if (form.get('meta') !== link.meta) {
          res.writeHead(403, { 'Content-Type': 'text/plain' });
          return void res.end('bad meta');
        }
        links.delete(linkId!);
        count('downloads');
        record.set('downloads', it.id, (state.downloads[it.id] ?? 0) + 1);
        save();
        const headers = { 'Content-Type': it.mimeType, 'Content-Disposition': `attachment; filename="${encodeURIComponent(it.fileName)}"` };
        if (it.file) return sendStream(res, faults, 200, headers, fs.createReadStream(it.file), it.size, { corruptible: true });
        return sendBody(res, faults, 200, headers, syntheticBytes(it.synthetic!), { corruptible: true });
      }
      res.writeHead(405);
      return void res.end();
    }

    // ---- everything below needs a live session ----
    const known = new Set<string>([PATHS.albums, PATHS.galleries, PATHS.storage, PATHS.delete, PATHS.keepAlive, PATHS.quota, PATHS.recycleBin]);
    if (!known.has(p)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      return void res.end('not found');
    }
    if (!sessionOk(cookies)) return unauthorized(res);

    if (req.method === 'GET' && p === PATHS.albums) {
      const pageNum = Math.max(0, Number(q.get('pageNum') ?? 0) || 0);
      const pageSize = Math.min(100, Math.max(1, Number(q.get('pageSize') ?? 10) || 10));
      const slice = albumOrder.slice(pageNum * pageSize, pageNum * pageSize + pageSize);
      if ((hostile.missingAlbumPages ?? []).includes(pageNum)) {
        count('missingAlbums');
        return ok(res, { isLastPage: (pageNum + 1) * pageSize >= albumOrder.length });
      }
      return ok(res, {
        albums: slice.map((a, i) => {
          const live = a.items.filter(alive);
          return {
            // albumId arrives as a number in some answers and a string in others.
            albumId: i % 2 === 0 ? raw(a.albumId) : a.albumId,
            name: a.name,
            mediaCount: live.length,
            lastUpdateTime: live.reduce((m, it) => Math.max(m, it.dateModified), 0),
            userId: raw(userId),
            thumbnails: [],
          };
        }),
        isLastPage: (pageNum + 1) * pageSize >= albumOrder.length,
        indexHash: crypto.createHash('sha256').update(albumOrder.map((a) => a.albumId).join(',')).digest('hex'),
      });
    }

    if (req.method === 'GET' && p === PATHS.galleries) {
      const album = findAlbum(q.get('albumId'));
      const pageNum = Math.max(0, Number(q.get('pageNum') ?? 0) || 0);
      const pageSize = Number(q.get('pageSize') ?? 30) || 30;
      if (pageSize > 200) {
        // Large pages time out at the real service.
        return json(res, 504, '<html><body>504 Gateway Time-out</body></html>');
      }
      if (!album) return ok(res, { galleries: [], isLastPage: true });
      const start = q.get('startDate');
      const end = q.get('endDate');
      const { live, indexHash } = start || end ? listing(album, (it) => (!start || it.day >= start) && (!end || it.day <= end)) : wholeListing(album);
      const endless = (hostile.endlessPages ?? []).includes(album.name);
      const isLastPage = endless ? false : (pageNum + 1) * pageSize >= live.length;
      if (missingPage(album, pageNum)) {
        count('missingGalleries');
        return ok(res, { isLastPage, indexHash: '' });
      }
      const first = endless ? 0 : pageNum * pageSize;
      const slice = live.slice(first, first + pageSize);
      return ok(res, {
        galleries: slice.map((it) => ({
          id: raw(it.id),
          fileName: it.fileName,
          title: it.fileName.replace(/\.[^.]*$/, ''),
          type: it.type,
          mimeType: it.mimeType,
          size: it.size,
          sha1: wrongSha1(it) ? crypto.createHash('sha1').update(`wrong:${it.id}`).digest('hex') : it.sha1,
          dateTaken: microseconds.has(it.fileName) ? it.dateTaken * 1000 : it.dateTaken,
          createTime: it.dateModified,
          dateModified: it.dateModified,
          sortTime: it.dateTaken,
          status: 'normal',
          tag: it.dateModified,
          groupId: raw(it.albumId),
          description: opts.userMeta?.[it.fileName]?.description ?? '',
          isFavorite: opts.userMeta?.[it.fileName]?.isFavorite === true,
          // geoInfo{address, gps, isAccurate} (reference notes; MifansCloud's survey of MiCloud).
          // The exact form of gps is not public: decimal coordinates, as the issue reports them
          // breaking a parser, and '' when the file has none.
          geoInfo: { address: {}, gps: it.gps ?? '', isAccurate: it.gps !== null },
          exifInfo: it.exifInfo,
          thumbnailInfo: { data: '', isUrl: false },
        })),
        // A JSON boolean, as Coooolfan/XiaomiAlbumSyncer reads it (asBoolean on /data/isLastPage).
        isLastPage,
        indexHash,
      });
    }

    if (req.method === 'GET' && p === PATHS.storage) {
      count('storage');
      const it = byId.get(String(q.get('id') ?? ''));
      if (!it || !alive(it)) return fail(res, CODE_DELETED, 'file has been deleted');
      const refusal = hostile.storageErrors?.[it.fileName];
      if (refusal) return fail(res, refusal.code, 'the file cannot be served', 200, refusal.retriable);
      const linkId = crypto.randomBytes(16).toString('base64url');
      // Without callBack the JSONP function is dl_img_cb (XiaomiAlbumSyncer, diredocks); the web
      // client and CLOUDERHEM/MiCloud pass callBack=dl_img_cb_<ts>_0 and parse whatever name comes.
      const cb = q.get('callBack') || JSONP_CALLBACK;
      addLink(linkId, { itemId: it.id, expiresAt: Date.now() + linkTtlMs, meta: '', callback: /^[\w$.]{1,64}$/.test(cb) ? cb : JSONP_CALLBACK });
      const host = opts.downloadHost ?? '127.0.0.1';
      return ok(res, { url: `http://${host}:${port}/_dl/storage.mi.com/jsonp/${linkId}?Expires=${Date.now() + linkTtlMs}`, id: raw(it.id) });
    }

    // POST with a form (the reference notes) or GET with a query (CLOUDERHEM/MiCloud DeleteGallery).
    if ((req.method === 'POST' || req.method === 'GET') && p === PATHS.delete) {
      const form = req.method === 'POST' ? new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8')) : q;
      if (form.get('serviceToken') !== cookies.serviceToken) return fail(res, 10017, 'serviceToken mismatch', 200);
      const id = form.get('id') ?? '';
      const it = byId.get(id);
      count('deleteRequests');
      if (deleteFaultRate > 0 && deleteFaultRandom() < deleteFaultRate) {
        count('faultDelete');
        return json(res, 503, { code: 500, result: 'error', description: 'server busy' });
      }
      if (!it || !alive(it)) {
        record.logDeletion({ at: new Date().toISOString(), id, code: CODE_DELETED });
        save();
        return fail(res, CODE_DELETED, 'file has been deleted');
      }
      // Soft: the item moves to the recycle bin that /gallery/deleted_v2 lists.
      const tag = (state.counters.tag ?? 0) + 1;
      record.set('counters', 'tag', tag);
      record.set('deleted', id, { at: new Date().toISOString(), fileName: it.fileName, albumId: it.albumId, sha1: it.sha1, deleteTime: Date.now(), tag });
      record.logDeletion({ at: new Date().toISOString(), id, code: CODE_OK });
      deletions++;
      save();
      return ok(res, { id: raw(id), deleted: true });
    }

    // The recycle bin, newest deletion first, paged by maxTag (0: from the newest), as
    // Coooolfan/XiaomiAlbumSyncer docs/plan/xiaomi-webapi-incremental-sync.md describes it:
    // data{content[], lastPage, syncTag}; each entry as listed plus deleteTime, status "deleted".
    if (req.method === 'GET' && p === PATHS.recycleBin) {
      const maxTag = Number(q.get('maxTag') ?? 0) || 0;
      const limit = Math.min(200, Math.max(1, Number(q.get('limit') ?? 50) || 50));
      const binned = Object.entries(state.deleted)
        .map(([id, d]) => ({ id, tag: d.tag ?? 0, deleteTime: d.deleteTime ?? Date.parse(d.at) }))
        .filter((d) => maxTag === 0 || d.tag < maxTag)
        .sort((a, b) => b.tag - a.tag);
      const page = binned.slice(0, limit);
      return ok(res, {
        content: page.map((d) => {
          const it = byId.get(d.id);
          return {
            id: raw(d.id),
            tag: d.tag,
            status: 'deleted',
            deleteTime: d.deleteTime,
            groupId: it ? raw(it.albumId) : undefined,
            fileName: it?.fileName,
            title: it?.fileName.replace(/\.[^.]*$/, ''),
            type: it?.type,
            mimeType: it?.mimeType,
            sha1: it?.sha1,
            size: it?.size,
            dateTaken: it?.dateTaken,
            dateModified: it?.dateModified,
            createTime: it?.dateModified,
          };
        }),
        lastPage: binned.length <= limit,
        syncTag: page.length ? page[page.length - 1]!.tag : maxTag,
      });
    }

    if (req.method === 'GET' && p === PATHS.keepAlive) {
      count('keepAlive');
      // The session is renewed: a fresh serviceToken comes back in Set-Cookie.
      const token = issueToken();
      return ok(res, { type: q.get('type'), inactiveTime: Number(q.get('inactiveTime') ?? 10) }, { 'Set-Cookie': [`serviceToken=${token}; Path=/; HttpOnly`] });
    }

    if (req.method === 'GET' && p === PATHS.quota) {
      // Items in the recycle bin still take space: deletion is soft.
      let used = 0;
      for (const it of byId.values()) used += it.size;
      return ok(res, {
        totalQuota: 5 * 1024 ** 3,
        used,
        usedDetail: { GalleryImage: { size: used, text: 'Gallery' }, Recorder: { size: 0 }, AppList: { size: 0 } },
        levelInfo: 'normal',
      });
    }

    res.writeHead(405);
    res.end();
  };

  let port = 0;
  const server = await listenLoopback((req, res) => {
    handler(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`emulator error: ${err instanceof Error ? err.message : String(err)}`);
      } else res.destroy();
    });
  }, common.port);
  port = server.port;
  baseUrl = `http://127.0.0.1:${port}`;

  return {
    port,
    baseUrl,
    stateFile,
    env: {
      XIAOMI_BASE_URL: baseUrl,
      XIAOMI_COOKIE: `userId=${userId}; serviceToken=${initialToken}; passToken=${passToken}`,
    },
    manifest: () => manifestRows,
    close: async () => {
      await server.close();
      record.close();
    },
  };
}

/** `gallery-bridge emulator xiaomi ...`: parses the flags and starts the emulator. */
export async function runXiaomiEmulator(args: string[]): Promise<XiaomiEmulator> {
  const { common, extra } = parseEmulatorArgs(args, {
    seed: { type: 'string' },
    synthetic: { type: 'string', default: '0' },
    'user-id': { type: 'string', default: EMULATOR_DEFAULTS.userId },
    'pass-token': { type: 'string', default: EMULATOR_DEFAULTS.passToken },
    'service-token': { type: 'string', default: EMULATOR_DEFAULTS.serviceToken },
    'fault-wrong-sha1': { type: 'string', default: '0' },
    'fault-expired-link': { type: 'string', default: '0' },
    'fault-delete': { type: 'string', default: '0' },
    'link-ttl': { type: 'string', default: String(EMULATOR_DEFAULTS.linkTtlSeconds) },
    'download-host': { type: 'string' },
    'file-host': { type: 'string' },
  });
  const rate = (name: string, v: string | undefined): number => {
    const n = Number(v ?? 0);
    if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`--${name} must be a number from 0 to 1, got ${String(v)}`);
    return n;
  };
  const synthetic = Number(extra.synthetic ?? 0);
  if (!Number.isInteger(synthetic) || synthetic < 0) throw new Error(`--synthetic must be a whole number, got ${String(extra.synthetic)}`);
  if (!extra.seed && synthetic === 0) throw new Error('--seed DIR (or --synthetic N) is required');
  if (extra.seed && !fs.statSync(extra.seed, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--seed ${extra.seed} is not a folder`);
  const linkTtl = Number(extra['link-ttl']);
  if (!Number.isFinite(linkTtl) || linkTtl <= 0) throw new Error('--link-ttl must be a positive number of seconds');
  const host = (name: string, v: string | undefined): string | undefined => {
    if (v !== undefined && !/^[A-Za-z0-9.-]+$/.test(v)) throw new Error(`--${name} must be a host name`);
    return v;
  };
  if (!/^\d{1,20}$/.test(String(extra['user-id']))) throw new Error('--user-id must be digits');
  return startXiaomiEmulator({
    common,
    seed: extra.seed,
    synthetic,
    userId: String(extra['user-id']),
    passToken: String(extra['pass-token']),
    serviceToken: String(extra['service-token']),
    faultWrongSha1: rate('fault-wrong-sha1', extra['fault-wrong-sha1']),
    faultExpiredLink: rate('fault-expired-link', extra['fault-expired-link']),
    faultDelete: rate('fault-delete', extra['fault-delete']),
    linkTtlSeconds: linkTtl,
    downloadHost: host('download-host', extra['download-host']),
    fileHost: host('file-host', extra['file-host']),
  });
}
