// Writing a creation time into a QuickTime/MP4 file as it streams by: the creation_time fields of
// moov/mvhd, moov/trak/tkhd and moov/trak/mdia/mdhd, overwritten in place. No box changes size and
// no other byte changes, so moov may come before or after mdat and nothing is buffered but the
// dozen bytes at the start of each of those boxes.
//
// Only unset times are written (0, or a value before 1970 that no reader takes as a date): a
// movie whose mvhd already has a time keeps it, and so do its tracks. The fields are UTC seconds
// since 1904-01-01, as ISO/IEC 14496-12 defines them (and as Google reads them).

import { Transform, type TransformCallback } from 'node:stream';

const EPOCH_1904 = 2082844800;
const MAX_BOXES = 100_000;

export interface TimePatch {
  /** Box path, e.g. "moov/trak/tkhd". */
  box: string;
  /** Offset of the creation_time field in the file, and its width (4 or 8). */
  at: number;
  width: 4 | 8;
  before: number;
  after: number;
}

interface Open {
  type: string;
  end: number;
}

const CONTAINERS: Record<string, string[]> = { '': ['moov'], moov: ['trak'], 'moov/trak': ['mdia'] };
const TARGETS = new Set(['moov/mvhd', 'moov/trak/tkhd', 'moov/trak/mdia/mdhd']);

export const qtSeconds = (ms: number): number => Math.floor(ms / 1000) + EPOCH_1904;
export const isUnsetQtTime = (seconds: number): boolean => seconds <= EPOCH_1904;

type Mode = { m: 'header' } | { m: 'skip'; left: number } | { m: 'hold'; want: number; path: string; after: number } | { m: 'pass' };

export class Mp4TimeSetter extends Transform {
  readonly patches: TimePatch[] = [];
  /** The movie header's own time when it had one (then nothing is written). */
  existing: number | null = null;
  private mode: Mode = { m: 'header' };
  private pos = 0;
  private stack: Open[] = [];
  private hdr = Buffer.alloc(16);
  private hdrLen = 0;
  private held: Buffer[] = [];
  private heldLen = 0;
  private heldAt = 0;
  private boxes = 0;
  private movieHadTime: boolean | null = null;
  private readonly seconds: number;

  constructor(instantMs: number) {
    super();
    this.seconds = qtSeconds(instantMs);
  }

  private path(): string {
    return this.stack.map((s) => s.type).join('/');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out: Buffer[] = [];
    let i = 0;
    let emitFrom = 0;
    const flushUpTo = (k: number) => {
      if (k > emitFrom) out.push(chunk.subarray(emitFrom, k));
      emitFrom = k;
    };
    while (i < chunk.length) {
      const st = this.mode;
      if (st.m === 'pass') {
        i = chunk.length;
        break;
      }
      if (st.m === 'skip') {
        const n = Math.min(st.left, chunk.length - i);
        i += n;
        this.pos += n;
        st.left -= n;
        if (st.left === 0) this.mode = { m: 'header' };
        continue;
      }
      if (st.m === 'hold') {
        if (this.heldLen === 0) {
          flushUpTo(i);
          this.heldAt = this.pos;
        }
        const n = Math.min(st.want - this.heldLen, chunk.length - i);
        this.held.push(chunk.subarray(i, i + n));
        this.heldLen += n;
        i += n;
        this.pos += n;
        emitFrom = i;
        if (this.heldLen === st.want) {
          out.push(this.patch(Buffer.concat(this.held), st.path));
          this.held = [];
          this.heldLen = 0;
          this.mode = st.after > 0 ? { m: 'skip', left: st.after } : { m: 'header' };
        }
        continue;
      }
      // Header: leave finished containers first.
      while (this.stack.length && this.pos >= this.stack[this.stack.length - 1]!.end) this.stack.pop();
      const parentEnd = this.stack.length ? this.stack[this.stack.length - 1]!.end : Infinity;
      if (this.hdrLen === 0 && parentEnd - this.pos < 8) {
        // Padding at the end of a container, not a box.
        this.mode = { m: 'skip', left: parentEnd - this.pos };
        continue;
      }
      const need = this.hdrLen < 8 ? 8 : 16;
      const n = Math.min(need - this.hdrLen, chunk.length - i);
      chunk.copy(this.hdr, this.hdrLen, i, i + n);
      this.hdrLen += n;
      i += n;
      this.pos += n;
      if (this.hdrLen < 8) continue;
      const size32 = this.hdr.readUInt32BE(0);
      if (size32 === 1 && this.hdrLen < 16) continue;
      const headerLen = this.hdrLen;
      this.hdrLen = 0;
      const type = this.hdr.toString('latin1', 4, 8);
      const start = this.pos - headerLen;
      const size = size32 === 1 ? Number(this.hdr.readBigUInt64BE(8)) : size32 === 0 ? parentEnd - start : size32;
      if (!/^[\x20-\x7e\xa9]{4}$/.test(type) || size < headerLen || ++this.boxes > MAX_BOXES) {
        // Not a box tree (or a corrupt one): the rest passes untouched.
        this.mode = { m: 'pass' };
        continue;
      }
      const end = Math.min(start + size, parentEnd);
      const parent = this.path();
      const here = parent ? `${parent}/${type}` : type;
      if (CONTAINERS[parent]?.includes(type)) {
        this.stack.push({ type, end });
        continue;
      }
      const content = end - this.pos;
      if (TARGETS.has(here) && content >= 12) {
        this.mode = { m: 'hold', want: 12, path: here, after: content - 12 };
        continue;
      }
      this.mode = content > 0 ? { m: 'skip', left: content } : { m: 'header' };
    }
    flushUpTo(i);
    cb(null, out.length === 1 ? out[0] : Buffer.concat(out));
  }

  /** `b`: version/flags + the first 8 bytes after them, starting at file offset heldAt. */
  private patch(b: Buffer, box: string): Buffer {
    const version = b[0];
    if (version !== 0 && version !== 1) return b;
    const width: 4 | 8 = version === 1 ? 8 : 4;
    const before = width === 8 ? Number(b.readBigUInt64BE(4)) : b.readUInt32BE(4);
    if (box === 'moov/mvhd') {
      this.movieHadTime = !isUnsetQtTime(before);
      if (this.movieHadTime) this.existing = before;
    }
    // Tracks follow their movie: a dated movie keeps its tracks as they are.
    if (this.movieHadTime === true || !isUnsetQtTime(before)) return b;
    if (width === 4 && this.seconds > 0xffffffff) return b;
    const out = Buffer.from(b);
    if (width === 8) out.writeBigUInt64BE(BigInt(this.seconds), 4);
    else out.writeUInt32BE(this.seconds, 4);
    this.patches.push({ box, at: this.heldAt + 4, width, before, after: this.seconds });
    return out;
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.heldLen ? Buffer.concat(this.held) : undefined);
  }
}
