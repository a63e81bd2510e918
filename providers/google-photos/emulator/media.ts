// What the emulated service learns from an upload's content, as Google does: the format by its
// magic bytes (the file name and the declared type do not count), the dimensions, and the
// creation time (EXIF for photos, the QuickTime/MP4 `mvhd` box for videos).

import fs from 'node:fs';
import sharp from 'sharp';
import exifr from 'exifr';

export interface Detected {
  format: string;
  kind: 'image' | 'video';
  mimeType: string;
}

const IMAGE_MIME: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  bmp: 'image/bmp',
  tiff: 'image/tiff',
  webp: 'image/webp',
  ico: 'image/x-icon',
  heic: 'image/heif',
  avif: 'image/avif',
  cr3: 'image/x-canon-cr3',
  orf: 'image/x-olympus-orf',
  rw2: 'image/x-panasonic-rw2',
  raf: 'image/x-fuji-raf',
};
const VIDEO_MIME: Record<string, string> = {
  mp4: 'video/mp4',
  mov: 'video/quicktime',
  '3gp': 'video/3gpp',
  '3g2': 'video/3gpp2',
  m4v: 'video/x-m4v',
  avi: 'video/x-msvideo',
  asf: 'video/x-ms-asf',
  mkv: 'video/x-matroska',
  mpeg: 'video/mpeg',
  mts: 'video/mp2t',
};

const img = (format: string): Detected => ({ format, kind: 'image', mimeType: IMAGE_MIME[format]! });
const vid = (format: string): Detected => ({ format, kind: 'video', mimeType: VIDEO_MIME[format]! });

/** The media format of a file by its first bytes (64 KiB is plenty), or null when Google would not take it. */
export function detectFormat(head: Buffer): Detected | null {
  const s = (a: number, b: number) => head.toString('latin1', a, b);
  if (head.length < 12) return null;
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return img('jpeg');
  if (s(0, 8) === '\x89PNG\r\n\x1a\n') return img('png');
  if (s(0, 6) === 'GIF87a' || s(0, 6) === 'GIF89a') return img('gif');
  if (s(0, 2) === 'BM' && head.readUInt32LE(2) > 26) return img('bmp');
  if (s(0, 4) === 'IIRO' || s(0, 4) === 'IIRS') return img('orf');
  if (s(0, 4) === 'IIU\0') return img('rw2');
  if (s(0, 4) === 'II*\0' || s(0, 4) === 'MM\0*') return img('tiff');
  if (s(0, 15) === 'FUJIFILMCCD-RAW') return img('raf');
  if (s(0, 4) === 'RIFF' && s(8, 12) === 'WEBP') return img('webp');
  if (s(0, 4) === 'RIFF' && s(8, 12) === 'AVI ') return vid('avi');
  if (head.readUInt32BE(0) === 0x00000100 && head.readUInt16LE(4) > 0) return img('ico');
  if (head.readUInt32BE(0) === 0x3026b275) return vid('asf');
  if (head.readUInt32BE(0) === 0x1a45dfa3) return s(0, 64).includes('webm') ? null : vid('mkv');
  if (head.readUInt32BE(0) === 0x000001ba) return vid('mpeg');
  if (head[0] === 0x47 && head.length > 376 && head[188] === 0x47) return vid('mts');
  if (head.length > 196 && head[4] === 0x47 && head[196] === 0x47) return vid('mts'); // M2TS: 4-byte timestamps
  const box = s(4, 8);
  if (box === 'ftyp') {
    const size = Math.min(head.readUInt32BE(0), head.length);
    const brands = [s(8, 12)];
    for (let o = 16; o + 4 <= size; o += 4) brands.push(s(o, o + 4));
    const has = (...b: string[]) => brands.some((x) => b.includes(x));
    if (has('avif', 'avis')) return img('avif');
    if (has('heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1')) return img('heic');
    if (has('crx ')) return img('cr3');
    if (brands[0] === 'qt  ') return vid('mov');
    if (brands[0]!.startsWith('3g2')) return vid('3g2');
    if (brands[0]!.startsWith('3gp')) return vid('3gp');
    if (brands[0] === 'M4V ' || brands[0] === 'M4VH') return vid('m4v');
    return vid('mp4');
  }
  if (['moov', 'mdat', 'wide', 'free', 'skip', 'pnot'].includes(box)) return vid('mov');
  return null;
}

export interface MediaInfo {
  width: number | null;
  height: number | null;
  /** ISO 8601 UTC, or null when the content carries no date. */
  creationTime: string | null;
  cameraMake?: string;
  cameraModel?: string;
  /** Videos: true when the container has a movie header and media data (Google can process it). */
  playable?: boolean;
}

function exifTimeToIso(value: unknown, offset: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(value);
  if (!m) return null;
  const off = typeof offset === 'string' && /^[+-]\d{2}:\d{2}$/.test(offset) ? offset : 'Z';
  const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${off}`);
  return Number.isFinite(t) ? new Date(t).toISOString().replace('.000Z', 'Z') : null;
}

// One options object for every upload: exifr caches the options it builds per object given, in a
// map it never empties, so a fresh object per photo grew the emulator's memory with every upload.
const EXIF_TAGS = {
  reviveValues: false,
  pick: [
    'DateTimeOriginal',
    'CreateDate',
    'OffsetTimeOriginal',
    'OffsetTime',
    'Make',
    'Model',
    'ImageWidth',
    'ImageHeight',
    'ExifImageWidth',
    'ExifImageHeight',
  ],
};

async function imageInfo(file: string, format: string): Promise<MediaInfo> {
  let width: number | null = null;
  let height: number | null = null;
  try {
    const meta = await sharp(file).metadata();
    width = meta.width ?? null;
    height = meta.height ?? null;
  } catch {
    // Google keeps items it cannot measure; the dimensions stay unknown.
  }
  let creationTime: string | null = null;
  let cameraMake: string | undefined;
  let cameraModel: string | undefined;
  try {
    // A PNG's date is read from its eXIf chunk (exifr reads it as it reads a JPEG's APP1).
    const tags = (await exifr.parse(file, EXIF_TAGS)) as Record<string, unknown> | undefined;
    if (tags) {
      // m-hayabusa/VRCImageHelper#1: a PNG with DateTimeOriginal/CreateDate 08:27:35 and only
      // OffsetTime +09:00 was dated 23:27 the day before by Google Photos: the offset was applied.
      const offset = tags.OffsetTimeOriginal ?? (format === 'png' ? tags.OffsetTime : undefined);
      creationTime = exifTimeToIso(tags.DateTimeOriginal ?? tags.CreateDate, offset);
      if (typeof tags.Make === 'string') cameraMake = tags.Make.trim();
      if (typeof tags.Model === 'string') cameraModel = tags.Model.trim();
      if (width == null && typeof tags.ExifImageWidth === 'number') width = tags.ExifImageWidth;
      if (height == null && typeof tags.ExifImageHeight === 'number') height = tags.ExifImageHeight;
    }
  } catch {
    // No EXIF: Google dates the item by its upload.
  }
  return { width, height, creationTime, cameraMake, cameraModel };
}

/** Reads the QuickTime/MP4 box tree far enough to find mvhd (creation time) and the video tkhd (size). */
function videoInfo(file: string): MediaInfo {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const read = (pos: number, len: number) => {
      const b = Buffer.alloc(len);
      const n = fs.readSync(fd, b, 0, len, pos);
      return b.subarray(0, n);
    };
    let moov: Buffer | null = null;
    let hasMdat = false;
    for (let pos = 0; pos + 8 <= size; ) {
      const h = read(pos, 16);
      if (h.length < 8) break;
      let len = h.readUInt32BE(0);
      const type = h.toString('latin1', 4, 8);
      if (len === 1 && h.length >= 16) len = Number(h.readBigUInt64BE(8));
      else if (len === 0) len = size - pos;
      if (len < 8) break;
      if (type === 'moov' && len < 64 * 1024 * 1024) moov = read(pos, len);
      if (type === 'mdat' && len > 8) hasMdat = true;
      pos += len;
    }
    const info: MediaInfo = { width: null, height: null, creationTime: null, playable: false };
    if (!moov) return info;
    const children = (buf: Buffer, start: number, end: number, fn: (type: string, s: number, e: number) => void) => {
      for (let o = start; o + 8 <= end; ) {
        const len = buf.readUInt32BE(o);
        if (len < 8 || o + len > end) break;
        fn(buf.toString('latin1', o + 4, o + 8), o + 8, o + len);
        o += len;
      }
    };
    let hasMvhd = false;
    children(moov, 8, moov.length, (type, s, e) => {
      if (type === 'mvhd' && e - s >= 12) {
        hasMvhd = true;
        const v = moov![s]!;
        const secs = v === 1 ? Number(moov!.readBigUInt64BE(s + 4)) : moov!.readUInt32BE(s + 4);
        if (secs > 0) info.creationTime = new Date((secs - 2082844800) * 1000).toISOString().replace('.000Z', 'Z');
      }
      if (type === 'trak') {
        let w = 0;
        let hgt = 0;
        let isVideo = false;
        children(moov!, s, e, (t2, s2, e2) => {
          if (t2 === 'tkhd') {
            const v = moov![s2]!;
            const at = s2 + (v === 1 ? 88 : 76);
            if (at + 8 <= e2) {
              w = moov!.readUInt32BE(at) / 65536;
              hgt = moov!.readUInt32BE(at + 4) / 65536;
            }
          }
          if (t2 === 'mdia')
            children(moov!, s2, e2, (t3, s3) => {
              if (t3 === 'hdlr' && moov!.toString('latin1', s3 + 8, s3 + 12) === 'vide') isVideo = true;
            });
        });
        if (isVideo && w > 0 && info.width == null) {
          info.width = Math.round(w);
          info.height = Math.round(hgt);
        }
      }
    });
    info.playable = hasMvhd && hasMdat;
    return info;
  } finally {
    fs.closeSync(fd);
  }
}

export async function mediaInfo(file: string, detected: Detected): Promise<MediaInfo> {
  if (detected.kind === 'image') return imageInfo(file, detected.format);
  if (['mp4', 'mov', '3gp', '3g2', 'm4v'].includes(detected.format)) return videoInfo(file);
  return { width: null, height: null, creationTime: null, playable: true };
}
