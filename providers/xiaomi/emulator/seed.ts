// The emulated account's library: a seed folder (sub-folders are albums) and synthetic items,
// with what the service lists for each item (sha1, dates, exifInfo, gps) worked out once at start.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import exifr from 'exifr';
import { ALBUM_CAMERA, ALBUM_PRIVATE, ALBUM_SCREENSHOTS } from '../protocol.ts';

export interface EmItem {
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

export interface EmAlbum {
  albumId: string;
  name: string;
  items: EmItem[];
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

export function syntheticBytes(n: number): Buffer {
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

// One options object for every photo: exifr caches the options it builds per object given, in a
// map it never empties.
const EXIF_OPTIONS = { tiff: true, exif: true, gps: true, xmp: false, icc: false, iptc: false, translateValues: false };

async function exifOf(file: string): Promise<Record<string, unknown> | null> {
  try {
    const e = (await exifr.parse(file, EXIF_OPTIONS)) as Record<string, unknown> | undefined;
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

/** One seed file as the service lists it. */
async function seedItem(file: string, rel: string, albumName: string): Promise<EmItem> {
  const st = fs.statSync(file);
  const ext = path.extname(file).toLowerCase();
  const [mimeType, type] = MIME[ext] ?? ['application/octet-stream', 'image'];
  const exif = type === 'image' ? await exifOf(file) : null;
  const gps = gpsOf(exif);
  const taken = (exif?.DateTimeOriginal ?? exif?.CreateDate ?? exif?.ModifyDate) as unknown;
  const dateTaken = taken instanceof Date && Number.isFinite(taken.getTime()) ? taken.getTime() : Math.floor(st.mtimeMs);
  return {
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
  };
}

/** Generated item n: a minute apart from 2020-01-01, with bytes from syntheticBytes(n). */
function syntheticItem(albumId: string, n: number): EmItem {
  const bytes = syntheticBytes(n);
  const at = Date.UTC(2020, 0, 1) + n * 60_000;
  return {
    id: stableId(`synthetic:${n}`),
    albumId,
    fileName: `SYN_${String(n).padStart(6, '0')}.jpg`,
    file: null,
    synthetic: n,
    size: bytes.length,
    sha1: crypto.createHash('sha1').update(bytes).digest('hex'),
    mimeType: 'image/jpeg',
    type: 'image',
    dateTaken: at,
    day: ymd(at),
    dateModified: at,
    exifInfo: {},
    gps: null,
  };
}

export async function loadSeed(seed: string | undefined, synthetic: number): Promise<Map<string, EmAlbum>> {
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
      albumOf(albumName).items.push(await seedItem(file, rel, albumName));
    }
  }
  if (synthetic > 0) {
    const a = albumOf('Synthetic');
    for (let n = 0; n < synthetic; n++) a.items.push(syntheticItem(a.albumId, n));
  }
  // The service lists newest first.
  for (const a of albums.values()) a.items.sort((x, y) => y.dateTaken - x.dateTaken || (BigInt(y.id) > BigInt(x.id) ? 1 : -1));
  return albums;
}

function ymd(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
}
