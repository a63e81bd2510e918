// Writing a capture date into a JPEG without touching a pixel: one splice in the file's header.
//
// A JPEG without EXIF gets a new APP1 "Exif" segment (DateTimeOriginal, OffsetTimeOriginal,
// ExifVersion 0232) right after SOI, or after a leading JFIF APP0 as JFIF requires. A JPEG whose
// EXIF lacks the date keeps its TIFF block byte for byte; the IFD that needs the new entries is
// rewritten at the end of the block and the one pointer to it is changed, so every offset inside
// the block (maker notes, thumbnail) still points where it did.
//
// Nothing after the splice moves relative to the end of the file, so a motion photo's trailing
// video (located by GCamera:MicroVideoOffset / Container:Item lengths, counted from the end)
// stays valid and byte-identical.
//
// The splice is planned from the file's first bytes (the header segments); the rest of the file
// is streamed through Splice unchanged, so memory does not depend on the file size.

import { Transform, type TransformCallback } from 'node:stream';

export interface SpliceEdit {
  /** Offset in the source where the change starts. */
  at: number;
  /** Source bytes replaced (0 = pure insertion). */
  remove: number;
  insert: Buffer;
}

export type JpegDatePlan = { edit: SpliceEdit; how: 'inserted' | 'completed' } | { skip: string };

const TAG_EXIF_IFD = 0x8769;
const TAG_EXIF_VERSION = 0x9000;
const TAG_DATE_TIME_ORIGINAL = 0x9003;
const TAG_OFFSET_TIME_ORIGINAL = 0x9011;
const EXIF_HEADER = Buffer.from('Exif\0\0', 'latin1');

interface Entry {
  tag: number;
  /** The 12 raw bytes as they are in the file (kept verbatim: their offsets stay valid). */
  raw: Buffer;
}

/** Entries to add: [tag, type, count, value bytes]. */
export type NewEntry = { tag: number; type: number; count: number; value: Buffer };

function dateEntries(dateTime: string, offset: string): NewEntry[] {
  const ascii = (s: string) => Buffer.from(`${s}\0`, 'latin1');
  return [
    { tag: TAG_DATE_TIME_ORIGINAL, type: 2, count: 20, value: ascii(dateTime) },
    { tag: TAG_OFFSET_TIME_ORIGINAL, type: 2, count: 7, value: ascii(offset) },
  ];
}

class Tiff {
  readonly le: boolean;
  constructor(readonly b: Buffer) {
    this.le = b.toString('latin1', 0, 2) === 'II';
  }
  u16(o: number) {
    return this.le ? this.b.readUInt16LE(o) : this.b.readUInt16BE(o);
  }
  u32(o: number) {
    return this.le ? this.b.readUInt32LE(o) : this.b.readUInt32BE(o);
  }
  w16(buf: Buffer, o: number, v: number) {
    if (this.le) buf.writeUInt16LE(v, o);
    else buf.writeUInt16BE(v, o);
  }
  w32(buf: Buffer, o: number, v: number) {
    if (this.le) buf.writeUInt32LE(v, o);
    else buf.writeUInt32BE(v, o);
  }
  /** Entries and next-IFD pointer of the IFD at `at`, or null when it runs off the block. */
  ifd(at: number): { entries: Entry[]; next: number } | null {
    if (at < 8 || at + 2 > this.b.length) return null;
    const n = this.u16(at);
    if (at + 2 + n * 12 + 4 > this.b.length) return null;
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const o = at + 2 + i * 12;
      entries.push({ tag: this.u16(o), raw: Buffer.from(this.b.subarray(o, o + 12)) });
    }
    return { entries, next: this.u32(at + 2 + n * 12) };
  }
  entryValue(e: Entry): number {
    return this.le ? e.raw.readUInt32LE(8) : e.raw.readUInt32BE(8);
  }
  /**
   * An IFD written at `at` (even): the kept entries plus new ones, sorted by tag as TIFF requires,
   * with the new entries' long values right after it. Returns the bytes.
   */
  buildIfd(at: number, kept: Entry[], added: NewEntry[], next: number): Buffer {
    const all = [
      ...kept.map((e) => ({ tag: e.tag, raw: e.raw as Buffer | null, add: null as NewEntry | null })),
      ...added.map((a) => ({ tag: a.tag, raw: null, add: a })),
    ];
    all.sort((x, y) => x.tag - y.tag);
    const head = 2 + all.length * 12 + 4;
    const parts: Buffer[] = [];
    const ifd = Buffer.alloc(head);
    this.w16(ifd, 0, all.length);
    let valueAt = at + head;
    all.forEach((e, i) => {
      const o = 2 + i * 12;
      if (e.raw) {
        e.raw.copy(ifd, o);
        return;
      }
      const a = e.add!;
      this.w16(ifd, o, a.tag);
      this.w16(ifd, o + 2, a.type);
      this.w32(ifd, o + 4, a.count);
      if (a.value.length <= 4) {
        a.value.copy(ifd, o + 8);
      } else {
        this.w32(ifd, o + 8, valueAt);
        const padded = a.value.length % 2 ? Buffer.concat([a.value, Buffer.alloc(1)]) : a.value;
        parts.push(padded);
        valueAt += padded.length;
      }
    });
    this.w32(ifd, head - 4, next);
    return Buffer.concat([ifd, ...parts]);
  }
}

function u16be(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function segment(marker: number, payload: Buffer): Buffer | null {
  if (payload.length + 2 > 0xffff) return null;
  return Buffer.concat([Buffer.from([0xff, marker]), u16be(payload.length + 2), payload]);
}

/**
 * A fresh big-endian TIFF structure: IFD0 with the Exif pointer, the Exif IFD with the date
 * (and `more` entries beside it).
 */
export function freshTiff(dateTime: string, offset: string, more: NewEntry[] = []): Buffer {
  const t = new Tiff(Buffer.from('MM\0*\0\0\0\x08', 'latin1'));
  const exifAt = 8 + 2 + 12 + 4;
  const ifd0 = t.buildIfd(8, [], [{ tag: TAG_EXIF_IFD, type: 4, count: 1, value: Buffer.from([0, 0, 0, exifAt]) }], 0);
  const exif = t.buildIfd(
    exifAt,
    [],
    [{ tag: TAG_EXIF_VERSION, type: 7, count: 4, value: Buffer.from('0232', 'latin1') }, ...dateEntries(dateTime, offset), ...more],
    0,
  );
  return Buffer.concat([t.b, ifd0, exif]);
}

/** A fresh APP1 Exif payload: the header, then the TIFF structure. */
function freshExif(dateTime: string, offset: string): Buffer {
  return Buffer.concat([EXIF_HEADER, freshTiff(dateTime, offset)]);
}

/** The existing EXIF block with the date added, or a reason it cannot be done safely. */
function completedExif(payload: Buffer, dateTime: string, offset: string): Buffer | string {
  const tiffBuf = payload.subarray(EXIF_HEADER.length);
  const order = tiffBuf.toString('latin1', 0, 2);
  if (tiffBuf.length < 8 || (order !== 'II' && order !== 'MM')) return 'the EXIF block is not a TIFF structure';
  const t = new Tiff(tiffBuf);
  if (t.u16(2) !== 42) return 'the EXIF block is not a TIFF structure';
  const ifd0At = t.u32(4);
  const ifd0 = t.ifd(ifd0At);
  if (!ifd0) return 'the EXIF IFD0 runs past its segment';
  // Appended data starts on an even offset, as TIFF wants.
  const base = tiffBuf.length + (tiffBuf.length % 2);
  const pad = Buffer.alloc(base - tiffBuf.length);
  const replacing = new Set([TAG_DATE_TIME_ORIGINAL, TAG_OFFSET_TIME_ORIGINAL]);
  const pointer = ifd0.entries.find((e) => e.tag === TAG_EXIF_IFD);
  const out = Buffer.from(tiffBuf);
  let appended: Buffer;
  if (pointer) {
    const exifAt = t.entryValue(pointer);
    const exif = t.ifd(exifAt);
    if (!exif) return 'the EXIF sub-IFD runs past its segment';
    appended = t.buildIfd(
      base,
      exif.entries.filter((e) => !replacing.has(e.tag)),
      dateEntries(dateTime, offset),
      exif.next,
    );
    // The pointer's value, in place inside IFD0 (entry value field at +8).
    const idx = ifd0.entries.indexOf(pointer);
    t.w32(out, ifd0At + 2 + idx * 12 + 8, base);
  } else {
    const ifd0Bytes = 2 + (ifd0.entries.length + 1) * 12 + 4;
    const exifAt = base + ifd0Bytes;
    const newIfd0 = t.buildIfd(base, ifd0.entries, [{ tag: TAG_EXIF_IFD, type: 4, count: 1, value: Buffer.alloc(4) }], ifd0.next);
    // The pointer entry was written with a zero value; set it now that its place is known.
    const idx = [...ifd0.entries.map((e) => e.tag), TAG_EXIF_IFD].sort((a, b) => a - b).indexOf(TAG_EXIF_IFD);
    t.w32(newIfd0, 2 + idx * 12 + 8, exifAt);
    const exif = t.buildIfd(
      exifAt,
      [],
      [{ tag: TAG_EXIF_VERSION, type: 7, count: 4, value: Buffer.from('0232', 'latin1') }, ...dateEntries(dateTime, offset)],
      0,
    );
    appended = Buffer.concat([newIfd0, exif]);
    t.w32(out, 4, base);
  }
  return Buffer.concat([EXIF_HEADER, out, pad, appended]);
}

/**
 * Plans the splice that writes `dateTime` ("YYYY:MM:DD HH:MM:SS") and `offset` ("+02:00") into
 * a JPEG. `head` is the start of the file (the header segments must lie within it).
 */
export function planJpegDate(head: Buffer, dateTime: string, offset: string): JpegDatePlan {
  if (head.length < 4 || head[0] !== 0xff || head[1] !== 0xd8) return { skip: 'not a JPEG' };
  let o = 2;
  let insertAt = 2;
  for (;;) {
    if (o + 4 > head.length) return { skip: 'the JPEG header segments do not fit in the first MiB read' };
    if (head[o] !== 0xff) return { skip: 'the JPEG header is malformed (no marker where one belongs)' };
    const marker = head[o + 1]!;
    if (marker === 0xff) {
      o++;
      continue;
    }
    const isApp = marker >= 0xe0 && marker <= 0xef;
    if (!isApp && marker !== 0xfe) break;
    const len = head.readUInt16BE(o + 2);
    if (len < 2) return { skip: 'the JPEG header is malformed (segment length below 2)' };
    if (o + 2 + len > head.length) return { skip: 'the JPEG header segments do not fit in the first MiB read' };
    const payload = head.subarray(o + 4, o + 2 + len);
    if (marker === 0xe1 && payload.subarray(0, 6).equals(EXIF_HEADER)) {
      const done = completedExif(payload, dateTime, offset);
      if (typeof done === 'string') return { skip: done };
      const seg = segment(0xe1, done);
      if (!seg) return { skip: 'the EXIF segment would outgrow 64 KiB' };
      return { edit: { at: o, remove: 2 + len, insert: seg }, how: 'completed' };
    }
    // JFIF wants its APP0 first; the EXIF segment goes right after it.
    if (o === 2 && marker === 0xe0 && /^JF(IF|XX)\0/.test(payload.toString('latin1', 0, 5))) insertAt = o + 2 + len;
    o += 2 + len;
  }
  const seg = segment(0xe1, freshExif(dateTime, offset))!;
  return { edit: { at: insertAt, remove: 0, insert: seg }, how: 'inserted' };
}

/** Streams a source through one splice; every other byte passes unchanged. */
export class Splice extends Transform {
  private pos = 0;
  private done = false;
  constructor(private readonly edit: SpliceEdit) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const start = this.pos;
    const end = start + chunk.length;
    this.pos = end;
    const { at, remove, insert } = this.edit;
    // Before the splice, or past it: the chunk passes as it is.
    if (end < at || (this.done && start >= at + remove)) return cb(null, chunk);
    const parts: Buffer[] = [];
    if (start < at) parts.push(chunk.subarray(0, Math.min(end, at) - start));
    if (!this.done) {
      parts.push(insert);
      this.done = true;
    }
    const keepFrom = Math.max(start, at + remove);
    if (keepFrom < end) parts.push(chunk.subarray(keepFrom - start));
    cb(null, parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }
  override _flush(cb: TransformCallback): void {
    if (!this.done && this.pos >= this.edit.at) {
      this.done = true;
      return cb(null, this.edit.insert);
    }
    cb(this.done ? null : new Error(`the file ended at ${this.pos} bytes, before the planned date splice at ${this.edit.at}`));
  }
}
