// What can be proved about a photo Google gives back. Google reports no hash, and `=d` returns
// the image without its location, so the proof is graded:
//   bytes    - the download equals the source byte for byte;
//   pixels   - the download decodes (sharp) to the same pixels as the source, and the EXIF
//              capture time (exifr) is the same: only metadata (the location) differs;
//   received - the format cannot be decoded here (HEIC with prebuilt sharp): the dimensions and
//              the capture time match.
// The source side of the comparison (its pixel digest and capture time) is taken while the bytes
// flow during upload, because verify() does not see the source again.
// Photos too large to hold (up to Google's 200 MB) go through a temporary file and are decoded a
// band of rows at a time: the digest is the same SHA-256 of every pixel, in bounded memory.

import crypto from 'node:crypto';
import sharp from 'sharp';
import exifr from 'exifr';
import { closeQuietly, openFd, readFdUpTo } from '../../src/lib/fd.ts';

export interface Fingerprint {
  /** SHA-256 of the decoded pixels (raw, as stored), or null when not decodable here. */
  pixels: string | null;
  /** width x height x channels of the decoded pixels. */
  shape: string | null;
  /** EXIF DateTimeOriginal (or CreateDate) as written, with OffsetTimeOriginal when present. */
  time: string | null;
  width: number | null;
  height: number | null;
  decodeError?: string;
}

const MIME_ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'image/heif': 'image/heic',
  'image/heic-sequence': 'image/heic',
  'image/heif-sequence': 'image/heic',
  'image/x-tiff': 'image/tiff',
  'image/x-ms-bmp': 'image/bmp',
  'image/vnd.microsoft.icon': 'image/x-icon',
  'video/mov': 'video/quicktime',
  'video/avi': 'video/x-msvideo',
  'video/msvideo': 'video/x-msvideo',
  'video/x-ms-asf': 'video/x-ms-wmv',
  'audio/3gpp': 'video/3gpp',
  'video/x-m4v': 'video/mp4',
  'video/mpeg2': 'video/mpeg',
  'video/vnd.dlna.mpeg-tts': 'video/mp2t',
};
export const normalizeMime = (m: string | null | undefined): string => {
  const x = (m ?? '').toLowerCase().split(';')[0]!.trim();
  return MIME_ALIASES[x] ?? x;
};

const DECODABLE = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/avif', 'image/tiff', 'image/gif']);
export const decodableHere = (mime: string) => DECODABLE.has(normalizeMime(mime));

/** Pixel digest; throws when sharp cannot decode the bytes. */
export async function pixelDigest(bytes: Buffer): Promise<{ digest: string; shape: string; width: number; height: number }> {
  const { data, info } = await sharp(bytes, { limitInputPixels: 512 * 1024 * 1024 })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const digest = crypto.createHash('sha256').update(data).digest('hex');
  return { digest, shape: `${info.width}x${info.height}x${info.channels}`, width: info.width, height: info.height };
}

// Each photo is decoded once or twice, never again: libvips' operation cache (50 MB by default)
// only adds to the memory a large photo needs.
sharp.cache(false);

/** Raw pixels decoded per band when a photo is digested from a file. */
const BAND_BYTES = 8 * 1024 * 1024;

/**
 * The same digest as pixelDigest, decoded from a file one band of rows at a time, so memory stays
 * bounded whatever the photo's size (libvips reads PNG, JPEG and TIFF sequentially).
 */
export async function pixelDigestFile(file: string): Promise<{ digest: string; shape: string; width: number; height: number }> {
  const open = () => sharp(file, { sequentialRead: true, limitInputPixels: false });
  const meta = await open().metadata();
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (!width || !height) throw new Error('no dimensions in the image header');
  // Bands of rows concatenate to the whole image's rows: the same SHA-256 as one decode.
  const rowBytes = width * Math.max(1, meta.channels ?? 4) * (meta.depth && /16|32|64/.test(meta.depth) ? 2 : 1);
  const rows = Math.max(1, Math.floor(BAND_BYTES / rowBytes));
  const h = crypto.createHash('sha256');
  let channels = 0;
  for (let top = 0; top < height; top += rows) {
    const band = Math.min(rows, height - top);
    const { data, info } = await (band === height ? open() : open().extract({ left: 0, top, width, height: band })).raw().toBuffer({ resolveWithObject: true });
    channels = info.channels;
    h.update(data);
  }
  return { digest: h.digest('hex'), shape: `${width}x${height}x${channels}`, width, height };
}

/** The first bytes of a file, where EXIF lives: read on to them after a short read (a network file system). */
export async function fileHead(file: string, n = 512 * 1024): Promise<Buffer> {
  const fd = await openFd(file, 'r');
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, await readFdUpTo(fd, b, n));
  } finally {
    closeQuietly(fd);
  }
}

/** fingerprint() of a photo kept in a file, in bounded memory. */
export async function fingerprintFile(file: string, mimeType: string): Promise<Fingerprint> {
  const time = await captureTime(await fileHead(file));
  const dims = () => dimensions(file);
  if (!decodableHere(mimeType)) return { pixels: null, shape: null, time, ...(await dims()) };
  try {
    const p = await pixelDigestFile(file);
    return { pixels: p.digest, shape: p.shape, time, width: p.width, height: p.height };
  } catch (err) {
    return { pixels: null, shape: null, time, ...(await dims()), decodeError: (err as Error).message.slice(0, 200) };
  }
}

/** One object for every parse: exifr caches the options it builds per object given, in a Map it never empties. */
const TIME_OPTIONS = { reviveValues: false, pick: ['DateTimeOriginal', 'CreateDate', 'OffsetTimeOriginal'] };

export async function captureTime(bytes: Buffer): Promise<string | null> {
  try {
    const t = (await exifr.parse(bytes, TIME_OPTIONS)) as Record<string, unknown> | undefined;
    const v = t?.DateTimeOriginal ?? t?.CreateDate;
    if (typeof v !== 'string') return null;
    return typeof t?.OffsetTimeOriginal === 'string' ? `${v} ${t.OffsetTimeOriginal}` : v;
  } catch {
    return null;
  }
}

/** Width and height from the image header, of bytes in memory or of a file (sharp reads only the header). */
export async function dimensions(image: Buffer | string): Promise<{ width: number | null; height: number | null }> {
  try {
    const m = await sharp(image).metadata();
    return { width: m.width ?? null, height: m.height ?? null };
  } catch {
    return { width: null, height: null };
  }
}

export async function fingerprint(bytes: Buffer, mimeType: string): Promise<Fingerprint> {
  const time = await captureTime(bytes);
  if (!decodableHere(mimeType)) {
    const d = await dimensions(bytes);
    return { pixels: null, shape: null, time, ...d };
  }
  try {
    const p = await pixelDigest(bytes);
    return { pixels: p.digest, shape: p.shape, time, width: p.width, height: p.height };
  } catch (err) {
    const d = await dimensions(bytes);
    return { pixels: null, shape: null, time, ...d, decodeError: (err as Error).message.slice(0, 200) };
  }
}
