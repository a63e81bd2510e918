// Capture time, place, camera and pixel size of a photo, from the first bytes of the file.
//
// Dates are taken from EXIF's raw "YYYY:MM:DD HH:MM:SS" strings and converted here, never
// revived by exifr into a Date: a revived value is read in the machine's time zone, so the same
// photo would get a different capture time on a laptop in Prague and a server in UTC.

import { loadExifr } from './exifr.ts';
import type { WallTime } from './filename-date.ts';

export interface ImageMetadata {
  /** ISO 8601 UTC (e.g. 2018-07-25T16:34:23Z), or null. */
  captureTime: string | null;
  gps: { lat: number; lon: number } | null;
  camera: string | null;
  width: number | null;
  height: number | null;
}

const HEAD_BYTES = 1024 * 1024;

/** How many bytes from the start of a file imageMetadata wants: EXIF lives in the first 64 KiB of
 * a JPEG, but HEIC/AVIF place it after their item tables and PNG wherever the eXIf chunk falls. */
export function metadataNeedsBytes(): number {
  return HEAD_BYTES;
}

const TAGS = [
  'DateTimeOriginal',
  'CreateDate',
  'OffsetTimeOriginal',
  'OffsetTimeDigitized',
  'Make',
  'Model',
  'ImageWidth',
  'ImageHeight',
  'ExifImageWidth',
  'ExifImageHeight',
  'GPSLatitude',
  'GPSLatitudeRef',
  'GPSLongitude',
  'GPSLongitudeRef',
] as const;

type Tags = Partial<Record<(typeof TAGS)[number], unknown>>;

const NOTHING: ImageMetadata = { captureTime: null, gps: null, camera: null, width: null, height: null };

/**
 * EXIF "YYYY:MM:DD HH:MM:SS" (plus the offset from the matching OffsetTime* tag, else UTC) to
 * ISO 8601 with Z. Null for blank placeholders ("0000:00:00 00:00:00", spaces) and impossible dates.
 */
export function exifDateToIso(value: unknown, offset: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?/.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '00', inlineOffset] = m;
  const year = Number(y),
    month = Number(mo),
    day = Number(d),
    hour = Number(h),
    minute = Number(mi),
    second = Number(s);
  if (year < 1800 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  let utcMs = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
  // Date.UTC rolls 31 February into March; a date that does not survive the round trip is bogus.
  if (new Date(utcMs).getUTCDate() !== day) return null;
  utcMs -= parseOffset(inlineOffset ?? offset) * 60_000;
  return new Date(utcMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** EXIF's wall clock and offset, kept apart (null offset: the file does not say), or null when blank or impossible. */
export function exifWall(value: unknown, offset: unknown): { wall: WallTime; offset: number | null } | null {
  if (exifDateToIso(value, offset) === null) return null;
  const m = /^\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?/.exec(value as string)!;
  const wall: WallTime = {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4]),
    minute: Number(m[5]),
    second: Math.min(59, Number(m[6] ?? 0)),
  };
  const raw = m[7] ?? (typeof offset === 'string' ? offset.replace(/\0/g, '').trim() : '');
  const valid = /^(Z|[+-]\d{2}:?\d{2})$/.test(raw);
  return { wall, offset: valid ? parseOffset(raw === 'Z' ? '+00:00' : raw) : null };
}

/**
 * "+02:00" -> 120 minutes. Missing, blank or malformed -> 0: the date is still good, and UTC is
 * what we assume whenever the file does not say otherwise.
 */
function parseOffset(value: unknown): number {
  if (typeof value !== 'string') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(value.replace(/\0/g, '').trim());
  if (!m) return 0;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (minutes > 14 * 60) return 0;
  return m[1] === '-' ? -minutes : minutes;
}

function dmsToDegrees(value: unknown, ref: unknown, negative: string): number | null {
  let deg: number;
  if (Array.isArray(value) && value.length >= 1 && value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    const [d, m = 0, s = 0] = value as number[];
    deg = d! + m / 60 + s / 3600;
  } else if (typeof value === 'number' && Number.isFinite(value)) {
    deg = value;
  } else {
    return null;
  }
  if (typeof ref === 'string' && ref.trim().toUpperCase().startsWith(negative)) deg = -Math.abs(deg);
  return deg;
}

function gpsOf(t: Tags): { lat: number; lon: number } | null {
  const lat = dmsToDegrees(t.GPSLatitude, t.GPSLatitudeRef, 'S');
  const lon = dmsToDegrees(t.GPSLongitude, t.GPSLongitudeRef, 'W');
  if (lat === null || lon === null) return null;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  // Phones without a fix write 0/0; nobody photographs that spot in the Gulf of Guinea by accident.
  if (lat === 0 && lon === 0) return null;
  return { lat, lon };
}

function text(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const v = value.replace(/\0/g, '').trim();
  return v === '' ? null : v;
}

function cameraOf(t: Tags): string | null {
  const make = text(t.Make);
  const model = text(t.Model);
  if (!make) return model;
  if (!model) return make;
  // "Canon" + "Canon EOS 1300D" reads better as the model alone.
  return model.toLowerCase().startsWith(make.toLowerCase()) ? model : `${make} ${model}`;
}

const positiveInt = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);

/** PNG's IHDR is always the first chunk; read it directly when the rest of the file is too short for sharp. */
function pngSize(head: Buffer): { width: number; height: number } | null {
  if (head.length < 24 || head.readUInt32BE(0) !== 0x89504e47 || head.toString('latin1', 12, 16) !== 'IHDR') return null;
  const width = head.readUInt32BE(16);
  const height = head.readUInt32BE(20);
  return width > 0 && height > 0 ? { width, height } : null;
}

/**
 * A baseline or progressive JPEG's pixel size from its frame header (SOFn), walking the marker
 * segments from SOI up to the first scan. It is the header sharp reads for a JPEG too, without a
 * decoder hand-off through the libuv pool: for a phone library that was the largest cost of
 * probing a photo. Null when the head ends (or the markers break) before a frame header.
 */
export function jpegSize(head: Buffer): { width: number; height: number } | null {
  if (head.length < 4 || head[0] !== 0xff || head[1] !== 0xd8) return null;
  let i = 2;
  while (i + 3 < head.length) {
    if (head[i] !== 0xff) return null;
    const marker = head[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    // Markers without a length: TEM and RST0-7 (not expected before a scan, but legal).
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return null; // end of image, or a scan before any frame
    const len = head.readUInt16BE(i + 2);
    if (len < 2) return null;
    // SOF0-SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 > head.length || len < 8) return null;
      const height = head.readUInt16BE(i + 5);
      const width = head.readUInt16BE(i + 7);
      return width > 0 && height > 0 ? { width, height } : null;
    }
    i += 2 + len;
  }
  return null;
}

export async function imageMetadata(head: Buffer): Promise<ImageMetadata> {
  return (await imageFacts(head)).meta;
}

/**
 * imageMetadata and the capture date as the file writes it (its wall clock, and its offset in
 * minutes when the file gives one; null offset: read it in --timezone) from one EXIF parse: the
 * transfer of every photo wants both, and the parse was the second largest cost of probing it.
 */
/**
 * exifr reading the TIFF, EXIF and GPS tags' values as stored (no XMP, ICC, IPTC, JFIF or maker
 * notes, nothing revived or translated): the capture-time probe and the dated copy's check both
 * read tags this way, each adding the blocks it needs.
 */
export const RAW_EXIF = {
  tiff: true,
  exif: true,
  gps: true,
  xmp: false,
  icc: false,
  iptc: false,
  jfif: false,
  makerNote: false,
  userComment: false,
  reviveValues: false,
  translateValues: false,
} as const;

/**
 * One object for every parse: exifr keeps the options it built from each object it was given in
 * a Map keyed by that object (Options.useCached), never emptied. A fresh object a photo built
 * its filters again each time (70 KB of garbage a photo, the largest allocation of a small
 * photo's transfer) and kept them for the rest of the run.
 */
const FACTS_OPTIONS = { ...RAW_EXIF, ihdr: true, ifd1: false, interop: false, pick: [...TAGS] };

export async function imageFacts(head: Buffer): Promise<{ meta: ImageMetadata; wall: { wall: WallTime; offset: number | null } | null }> {
  if (!head || head.length === 0) return { meta: { ...NOTHING }, wall: null };

  let tags: Tags = {};
  const exifr = await loadExifr();
  try {
    const parsed = (await exifr.parse(head, FACTS_OPTIONS)) as Tags | undefined;
    if (parsed && typeof parsed === 'object') tags = parsed;
  } catch {
    // Not an image exifr knows, or corrupt EXIF: nothing to learn from it.
  }

  const captureTime =
    exifDateToIso(tags.DateTimeOriginal, tags.OffsetTimeOriginal) ?? exifDateToIso(tags.CreateDate, tags.OffsetTimeDigitized ?? tags.OffsetTimeOriginal);
  const wall = captureTime
    ? (exifWall(tags.DateTimeOriginal, tags.OffsetTimeOriginal) ?? exifWall(tags.CreateDate, tags.OffsetTimeDigitized ?? tags.OffsetTimeOriginal))
    : null;

  // The codec's own header (JPEG SOF, PNG IHDR, HEIF ispe) gives the real pixel size; EXIF's
  // ExifImageWidth is what the camera wrote before any editor resized the picture.
  let width: number | null = null;
  let height: number | null = null;
  const jpeg = jpegSize(head);
  if (jpeg) ({ width, height } = jpeg);
  else {
    try {
      // Loaded here, not at start: only runs that meet such an image pay for it (import() loads it once).
      const sharp = (await import('sharp')).default;
      const meta = await sharp(head, { failOn: 'none' }).metadata();
      width = positiveInt(meta.width);
      height = positiveInt(meta.height);
    } catch {
      // Truncated or unsupported: fall back to what the tags say.
    }
  }
  if (width === null || height === null) {
    const png = pngSize(head);
    width = png?.width ?? positiveInt(tags.ImageWidth) ?? positiveInt(tags.ExifImageWidth);
    height = png?.height ?? positiveInt(tags.ImageHeight) ?? positiveInt(tags.ExifImageHeight);
    if (width === null || height === null) width = height = null;
  }

  return { meta: { captureTime, gps: gpsOf(tags), camera: cameraOf(tags), width, height }, wall };
}
