// A streaming walker over the box tree of a QuickTime/MP4 file (ISO/IEC 14496-12), shared by the
// mvhd reader (mvhd.ts) and the date writer (mp4-date.ts). It rides along with a stream, reads box
// headers only, descends into the containers its visitor names and holds the first bytes of the
// boxes its visitor asks for; everything else is skipped without being kept, so memory is a
// 16-byte header plus the held bytes whatever the file size. When given an output list, it
// passes every byte through, the held ones as the visitor returns them (same length).

/** Keeps a corrupt file (zero-size children, loops) from walking forever. */
export const MAX_BOXES = 100_000;

export interface BoxHeader {
  type: string;
  headerLen: number;
  /** Total box size, or null when it runs to the end of its parent (size field 0). */
  size: number | null;
}

function isBoxType(b: Buffer, at: number): boolean {
  // Box types are four printable bytes ('©' is 0xA9 in QuickTime's own atoms). Anything else
  // means we are not looking at a box tree, and should stop rather than guess.
  for (let k = 0; k < 4; k++) {
    const c = b[at + k]!;
    if (!((c >= 0x20 && c <= 0x7e) || c === 0xa9)) return false;
  }
  return true;
}

/** Parses a box header from `b` (at least 8 bytes, 16 if the size field is 1). */
export function parseBoxHeader(b: Buffer): BoxHeader | 'need-more' | 'invalid' {
  if (b.length < 8) return 'need-more';
  if (!isBoxType(b, 4)) return 'invalid';
  const size32 = b.readUInt32BE(0);
  const type = b.toString('latin1', 4, 8);
  if (size32 === 1) {
    if (b.length < 16) return 'need-more';
    const large = Number(b.readBigUInt64BE(8));
    if (large < 16) return 'invalid';
    return { type, headerLen: 16, size: large };
  }
  if (size32 === 0) return { type, headerLen: 8, size: null };
  if (size32 < 8) return 'invalid';
  return { type, headerLen: 8, size: size32 };
}

/** What to do with a box: walk its children, hold its first n content bytes, pass it, or stop walking. */
export type BoxStep = 'descend' | 'skip' | 'stop' | { hold: number };

export interface BoxVisitor {
  /** A box at `path` ("moov/trak/tkhd") whose content has `content` bytes after its header. */
  enter(path: string, content: number): BoxStep;
  /** The held bytes of a box, starting at file offset `at`; returns what goes out in their place (same length). */
  held(bytes: Buffer, path: string, at: number): Buffer;
}

type Mode = { m: 'header' } | { m: 'skip'; left: number } | { m: 'hold'; want: number; path: string; after: number } | { m: 'stopped' };

export class Mp4BoxWalker {
  private mode: Mode = { m: 'header' };
  /** File offset of the next byte pushed. */
  private pos = 0;
  /** The containers we are inside, outermost first, with their end offsets. */
  private readonly stack: Array<{ type: string; end: number }> = [];
  private readonly hdr = Buffer.alloc(16);
  private hdrLen = 0;
  private held: Buffer[] = [];
  private heldLen = 0;
  private heldAt = 0;
  private boxes = 0;

  constructor(private readonly visitor: BoxVisitor) {}

  /** True once the walk has ended (the visitor stopped it, or the data is not a box tree). */
  get stopped(): boolean {
    return this.mode.m === 'stopped';
  }

  /** Ends the walk: later bytes pass through untouched. */
  stop(): void {
    this.mode = { m: 'stopped' };
  }

  /** Bytes held when the stream ended inside a held range: they go out unchanged. */
  pending(): Buffer | undefined {
    return this.heldLen ? Buffer.concat(this.held) : undefined;
  }

  /** Walks one chunk. With `out`, appends the chunk's bytes to it, held ranges as the visitor returned them. */
  push(chunk: Buffer, out?: Buffer[]): void {
    let i = 0;
    let emitFrom = 0;
    const flushUpTo = (k: number) => {
      if (out && k > emitFrom) out.push(chunk.subarray(emitFrom, k));
      emitFrom = k;
    };
    while (i < chunk.length) {
      const st = this.mode;
      if (st.m === 'stopped') {
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
        if (this.heldLen === st.want) this.release(st, out);
        continue;
      }
      i = this.header(chunk, i);
    }
    flushUpTo(i);
  }

  /** A held range is complete: the visitor sees it (and may stop the walk), the rest of its box is skipped. */
  private release(st: Extract<Mode, { m: 'hold' }>, out?: Buffer[]): void {
    const bytes = Buffer.concat(this.held);
    this.held = [];
    this.heldLen = 0;
    this.mode = st.after > 0 ? { m: 'skip', left: st.after } : { m: 'header' };
    const replaced = this.visitor.held(bytes, st.path, this.heldAt);
    out?.push(replaced);
  }

  /** Collects a box header from chunk[i..]; returns where reading stopped. */
  private header(chunk: Buffer, i: number): number {
    // Leave finished containers first.
    while (this.stack.length && this.pos >= this.stack[this.stack.length - 1]!.end) this.stack.pop();
    const parentEnd = this.stack.length ? this.stack[this.stack.length - 1]!.end : Infinity;
    if (this.hdrLen === 0 && parentEnd - this.pos < 8) {
      // Padding at the end of a container, not a box.
      this.mode = { m: 'skip', left: parentEnd - this.pos };
      return i;
    }
    const need = this.hdrLen < 8 ? 8 : 16;
    const n = Math.min(need - this.hdrLen, chunk.length - i);
    chunk.copy(this.hdr, this.hdrLen, i, i + n);
    this.hdrLen += n;
    this.pos += n;
    if (this.hdrLen < need) return i + n;
    const h = parseBoxHeader(this.hdr.subarray(0, this.hdrLen));
    if (h === 'need-more') return i + n;
    this.hdrLen = 0;
    if (h === 'invalid' || ++this.boxes > MAX_BOXES) {
      this.stop();
      return i + n;
    }
    this.enter(h, parentEnd);
    return i + n;
  }

  private enter(h: BoxHeader, parentEnd: number): void {
    const start = this.pos - h.headerLen;
    // A child claiming to run past its parent is clamped: the parent's size is the better witness.
    const end = Math.min(h.size === null ? parentEnd : start + h.size, parentEnd);
    const content = end - this.pos;
    if (content < 0) return this.stop();
    const parent = this.stack.map((s) => s.type).join('/');
    const path = parent ? `${parent}/${h.type}` : h.type;
    const step = this.visitor.enter(path, content);
    if (step === 'descend') {
      this.stack.push({ type: h.type, end });
      this.mode = { m: 'header' };
    } else if (step === 'stop') this.stop();
    else if (step === 'skip') this.mode = content > 0 ? { m: 'skip', left: content } : { m: 'header' };
    else this.mode = { m: 'hold', want: step.hold, path, after: content - step.hold };
  }
}
