// A dated copy: the source's bytes with its capture date written in (jpeg-date.ts, mp4-date.ts),
// and the local proof that the copy differs from the source only by that date. The proof reads
// both streams as they flow, independently of the code that made the change:
//   - JPEG: the bytes before and after the planned splice hash the same in source and copy, the
//     copy's EXIF says the intended date, every EXIF tag the source had is unchanged, and (up to
//     PIXEL_CHECK_MAX) both decode with sharp to the same pixels;
//   - MP4/MOV: source and copy have the same length and differ only inside the creation_time
//     fields of mvhd/tkhd/mdhd, and the copy's mvhd reads as the intended time.
//   - PNG (for destinations that date by the file, Google): the same as JPEG, for the inserted
//     eXIf chunk (png-date.ts): bytes around it equal, the date reads back, pixels equal.
// Formats not listed here (WebP, HEIC, ...) are not changed: Google is not known to read a date
// from them, so they keep their bytes and are dated by upload where nothing else dates them.

import crypto from 'node:crypto';
import type { Transform } from 'node:stream';
import { loadExifr } from './exifr.ts';
import { planJpegDate, Splice, type SpliceEdit } from './jpeg-date.ts';
import { RAW_EXIF } from './metadata.ts';
import { planPngDate } from './png-date.ts';
import { Mp4TimeSetter, qtSeconds } from './mp4-date.ts';
import { MvhdScanner } from './mvhd.ts';
import { exifDateTime, offsetOfIso } from './zone.ts';

/** Images up to this size are also compared pixel by pixel (source and copy are held in memory to decode). */
export const PIXEL_CHECK_MAX = 16 * 1024 * 1024;
/**
 * At most this many pixel comparisons hold their bytes at once, so memory stays bounded at any
 * --concurrency; a copy made while all are taken is proven by its bytes alone (everything
 * outside the EXIF segment identical), and its detail says so.
 */
const PIXEL_SLOTS = 4;
let pixelSlotsFree = PIXEL_SLOTS;

const VIDEO_FORMATS = new Set(['mp4', 'mov', 'm4v', '3gp', '3g2']);

/**
 * Whether a dated copy can be made of this format (null) or why not. A PNG is changed only for a
 * destination that dates items by their file (Google Photos): elsewhere its date is carried in the
 * destination's own metadata and the PNG keeps its bytes.
 */
export function datingUnsupported(format: string | null, datesByFile: boolean): string | null {
  if (format === 'jpeg' || (format && VIDEO_FORMATS.has(format))) return null;
  if (format === 'png') return datesByFile ? null : 'png files get a date written only for a destination that dates by the file';
  return `${format ?? 'this format'} files keep their bytes: Google is not known to read a date written into them`;
}

export interface DatedCopy {
  format: 'jpeg' | 'png' | 'video';
  /** Byte count of the copy. */
  size: number;
  /** The date written, ISO 8601 with offset, and where it came from. */
  time: string;
  from: string;
  transform: Transform;
  check: CopyCheck;
}

export interface CopyVerdict {
  ok: boolean;
  /** What was compared (ok) or what differs (not ok): one line. */
  detail: string;
}

export interface CopyCheck {
  source(chunk: Buffer): void;
  copy(chunk: Buffer): void;
  /** After both streams ended. */
  verdict(): Promise<CopyVerdict>;
  /** Lets go of what the check holds (call it whatever happened to the upload). */
  dispose(): void;
}

/** Plans a dated copy, or says why the bytes stay as they are. */
export function planDatedCopy(args: {
  format: string | null;
  head: Buffer;
  size: number;
  time: string;
  from: string;
  datesByFile: boolean;
}): DatedCopy | { skip: string } {
  const unsupported = datingUnsupported(args.format, args.datesByFile);
  if (unsupported) return { skip: unsupported };
  const ms = Date.parse(args.time);
  const offset = offsetOfIso(args.time);
  if (!Number.isFinite(ms) || offset === null) return { skip: `no usable time to write (${args.time})` };
  if (args.format === 'jpeg') {
    const { dateTime, offset: off } = exifDateTime(ms, offset);
    const plan = planJpegDate(args.head, dateTime, off);
    if ('skip' in plan) return { skip: plan.skip };
    const size = args.size - plan.edit.remove + plan.edit.insert.length;
    return {
      format: 'jpeg',
      size,
      time: args.time,
      from: args.from,
      transform: new Splice(plan.edit),
      check: new SpliceCheck(plan.edit, args.size, dateTime, off, JPEG_ADDED_TAGS),
    };
  }
  if (args.format === 'png') {
    const { dateTime, offset: off } = exifDateTime(ms, offset);
    const plan = planPngDate(args.head, dateTime, off);
    if ('skip' in plan) return { skip: plan.skip };
    const size = args.size + plan.edit.insert.length;
    return {
      format: 'png',
      size,
      time: args.time,
      from: args.from,
      transform: new Splice(plan.edit),
      check: new SpliceCheck(plan.edit, args.size, dateTime, off, PNG_ADDED_TAGS),
    };
  }
  const setter = new Mp4TimeSetter(ms);
  return { format: 'video', size: args.size, time: args.time, from: args.from, transform: setter, check: new PatchCheck(setter, qtSeconds(ms)) };
}

/** Hashes of byte ranges of one stream, plus a copy of one small range. */
class Regions {
  private pos = 0;
  readonly hashes: crypto.Hash[];
  readonly captured: Buffer[] = [];
  whole: Buffer[] | null;
  constructor(
    private readonly ranges: Array<[number, number]>,
    private readonly capture: [number, number] | null,
    keepWhole: boolean,
  ) {
    this.hashes = ranges.map(() => crypto.createHash('sha256'));
    this.whole = keepWhole ? [] : null;
  }
  push(chunk: Buffer): void {
    const start = this.pos;
    const end = start + chunk.length;
    this.pos = end;
    this.whole?.push(chunk);
    this.ranges.forEach(([a, b], k) => {
      const s = Math.max(a, start);
      const e = Math.min(b, end);
      if (s < e) this.hashes[k]!.update(chunk.subarray(s - start, e - start));
    });
    if (this.capture) {
      const s = Math.max(this.capture[0], start);
      const e = Math.min(this.capture[1], end);
      if (s < e) this.captured.push(Buffer.from(chunk.subarray(s - start, e - start)));
    }
  }
  get length(): number {
    return this.pos;
  }
  digests(): string[] {
    return this.hashes.map((h) => h.digest('hex'));
  }
}

/** Every tag, thumbnail's and interop's too, by number: the check compares them all. */
const EXIF_OPTIONS = { ...RAW_EXIF, ifd1: true, interop: true, translateKeys: false } as const;
/** The tags a dated copy adds (DateTimeOriginal, OffsetTimeOriginal, ExifVersion, the Exif IFD pointer; a PNG's also CreateDate and OffsetTime). */
const JPEG_ADDED_TAGS = new Set([0x9003, 0x9011, 0x9000, 0x8769]);
const PNG_ADDED_TAGS = new Set([...JPEG_ADDED_TAGS, 0x9004, 0x9010]);

class SpliceCheck implements CopyCheck {
  private readonly src: Regions;
  private readonly dst: Regions;
  private slot = false;
  constructor(
    private readonly edit: SpliceEdit,
    private readonly srcSize: number,
    private readonly dateTime: string,
    private readonly offset: string,
    private readonly added: ReadonlySet<number>,
  ) {
    const keep = srcSize <= PIXEL_CHECK_MAX && pixelSlotsFree > 0;
    if (keep) {
      pixelSlotsFree--;
      this.slot = true;
    }
    const after = edit.at + edit.remove;
    // exifr wants a few bytes past the segment it reads; 4 KiB of what follows is plenty.
    this.src = new Regions(
      [
        [0, edit.at],
        [after, Infinity],
      ],
      [0, after + 4096],
      keep,
    );
    const insEnd = edit.at + edit.insert.length;
    this.dst = new Regions(
      [
        [0, edit.at],
        [insEnd, Infinity],
      ],
      [0, insEnd + 4096],
      keep,
    );
  }
  source(chunk: Buffer): void {
    this.src.push(chunk);
  }
  copy(chunk: Buffer): void {
    this.dst.push(chunk);
  }
  dispose(): void {
    this.src.whole = this.dst.whole = null;
    if (this.slot) pixelSlotsFree++;
    this.slot = false;
  }
  async verdict(): Promise<CopyVerdict> {
    try {
      return await this.judge();
    } finally {
      this.dispose();
    }
  }
  private async judge(): Promise<CopyVerdict> {
    const e = this.edit;
    const copySize = this.srcSize - e.remove + e.insert.length;
    if (this.src.length !== this.srcSize || this.dst.length !== copySize)
      return { ok: false, detail: `the copy has ${this.dst.length} bytes, ${copySize} were planned` };
    const [sBefore, sAfter] = this.src.digests();
    const [dBefore, dAfter] = this.dst.digests();
    if (sBefore !== dBefore || sAfter !== dAfter) return { ok: false, detail: 'the copy differs from the source outside the EXIF segment' };
    // The header as each file has it, for the EXIF comparison (a few KiB).
    const srcHead = Buffer.concat(this.src.captured);
    const dstHead = Buffer.concat(this.dst.captured);
    let before: Record<string, unknown> = {};
    let after: Record<string, unknown> = {};
    const exifr = await loadExifr();
    try {
      before = ((await exifr.parse(srcHead, EXIF_OPTIONS)) as Record<string, unknown> | undefined) ?? {};
    } catch {
      // No EXIF at the source is the common case.
    }
    try {
      after = ((await exifr.parse(dstHead, EXIF_OPTIONS)) as Record<string, unknown> | undefined) ?? {};
    } catch (err) {
      return { ok: false, detail: `the copy's EXIF does not parse: ${(err as Error).message}` };
    }
    const dto = String(after[String(0x9003)] ?? after.DateTimeOriginal ?? '');
    const oto = String(after[String(0x9011)] ?? after.OffsetTimeOriginal ?? '');
    if (dto !== this.dateTime || oto !== this.offset)
      return { ok: false, detail: `the copy's EXIF says ${dto || 'no date'} ${oto}, ${this.dateTime} ${this.offset} was planned` };
    for (const [k, v] of Object.entries(before)) {
      if (this.added.has(Number(k))) continue;
      if (JSON.stringify(after[k]) !== JSON.stringify(v)) return { ok: false, detail: `EXIF tag ${k} changed in the copy` };
    }
    const kept = Object.keys(before).filter((k) => !this.added.has(Number(k))).length;
    let pixels = `every byte outside the EXIF segment equal (pixels not decoded: ${this.srcSize > PIXEL_CHECK_MAX ? `larger than ${PIXEL_CHECK_MAX / 1048576} MiB` : 'other pixel checks were running'})`;
    if (this.src.whole && this.dst.whole) {
      const sharp = (await import('sharp')).default;
      const decode = async (b: Buffer[]) => {
        const { data, info } = await sharp(Buffer.concat(b), { failOn: 'none' }).raw().toBuffer({ resolveWithObject: true });
        return { digest: crypto.createHash('sha256').update(data).digest('hex'), shape: `${info.width}x${info.height}x${info.channels}` };
      };
      try {
        const [a, b] = await Promise.all([decode(this.src.whole), decode(this.dst.whole)]);
        if (a.digest !== b.digest || a.shape !== b.shape) return { ok: false, detail: 'the copy decodes to other pixels than the source' };
        pixels = `decoded pixels equal (${a.shape})`;
      } catch (err) {
        pixels = `not decodable here (${(err as Error).message.slice(0, 80)}); every byte outside the EXIF segment equal`;
      }
    }
    return {
      ok: true,
      detail: `${pixels}; only the EXIF date was added (${kept} existing tags unchanged, ${e.insert.length - e.remove} bytes added at offset ${e.at})`,
    };
  }
}

/** Same-length copies: records every byte range where source and copy differ. */
class PatchCheck implements CopyCheck {
  private srcQueue: Buffer[] = [];
  private srcQueued = 0;
  private compared = 0;
  private srcTotal = 0;
  private dstTotal = 0;
  private readonly diffs: Array<[number, number]> = [];
  private readonly scanner = new MvhdScanner();
  constructor(
    private readonly setter: Mp4TimeSetter,
    private readonly seconds: number,
  ) {}
  dispose(): void {
    this.srcQueue = [];
  }
  source(chunk: Buffer): void {
    this.srcQueue.push(chunk);
    this.srcQueued += chunk.length;
    this.srcTotal += chunk.length;
  }
  copy(chunk: Buffer): void {
    this.dstTotal += chunk.length;
    this.scanner.push(chunk);
    let i = 0;
    while (i < chunk.length) {
      const s = this.srcQueue[0];
      // The copy can only run ahead if the transform invented bytes: a difference by itself.
      if (!s) {
        this.diffs.push([this.compared, this.compared + chunk.length - i]);
        this.compared += chunk.length - i;
        return;
      }
      const n = Math.min(s.length, chunk.length - i);
      for (let k = 0; k < n; k++) {
        if (s[k] !== chunk[i + k]) {
          const at = this.compared + k;
          const last = this.diffs[this.diffs.length - 1];
          if (last && last[1] === at) last[1] = at + 1;
          else this.diffs.push([at, at + 1]);
        }
      }
      i += n;
      this.compared += n;
      this.srcQueued -= n;
      if (n === s.length) this.srcQueue.shift();
      else this.srcQueue[0] = s.subarray(n);
    }
  }
  async verdict(): Promise<CopyVerdict> {
    if (this.srcTotal !== this.dstTotal) return { ok: false, detail: `the copy has ${this.dstTotal} bytes, the source ${this.srcTotal}` };
    const fields = this.setter.patches;
    const inField = ([a, b]: [number, number]) => fields.some((f) => a >= f.at && b <= f.at + f.width);
    const stray = this.diffs.find((d) => !inField(d));
    if (stray) return { ok: false, detail: `the copy differs from the source at bytes ${stray[0]}..${stray[1]}, outside the header time fields` };
    if (fields.length === 0) {
      if (this.diffs.length) return { ok: false, detail: 'the copy differs from the source although no time field was written' };
      return { ok: true, detail: 'unchanged: the movie header already had a creation time' };
    }
    const t = this.scanner.result();
    const want = new Date((this.seconds - 2082844800) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (t !== want) return { ok: false, detail: `the copy's mvhd says ${t ?? 'no time'}, ${want} was planned` };
    return {
      ok: true,
      detail: `only the creation_time of ${fields.map((f) => f.box.split('/').pop()).join(', ')} changed (${this.diffs.length} byte ranges, all inside those fields); same length`,
    };
  }
}
