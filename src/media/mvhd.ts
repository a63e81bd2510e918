// A QuickTime/MP4 movie's creation time, from the `mvhd` box inside `moov`.
//
// Phones write moov after mdat (the media data), so for a streamed item it arrives last; the
// scanner rides along with the upload stream and walks box headers only, never holding media
// data, so memory is a few dozen bytes whatever the file size. For random-access sources,
// readMvhdAt() hops from header to header with small reads instead.

/** Seconds from 1904-01-01 (the QuickTime epoch) to 1970-01-01. */
const EPOCH_1904 = 2082844800;
/** version/flags (4) + creation_time (8 in version 1). */
const MVHD_NEEDED = 12;
/** Keeps a corrupt file (zero-size children, loops) from walking forever. */
const MAX_BOXES = 100_000;

function isBoxType(b: Buffer, at: number): boolean {
  // Box types are four printable bytes ('©' is 0xA9 in QuickTime's own atoms). Anything else
  // means we are not looking at a box tree, and should stop rather than guess.
  for (let k = 0; k < 4; k++) {
    const c = b[at + k]!;
    if (!((c >= 0x20 && c <= 0x7e) || c === 0xa9)) return false;
  }
  return true;
}

/** mvhd payload (from its version byte) -> ISO 8601 UTC, or null when unset or implausible. */
function mvhdTime(payload: Buffer): string | null {
  if (payload.length < 8) return null;
  const version = payload[0];
  let seconds: number;
  if (version === 1) {
    if (payload.length < 12) return null;
    seconds = Number(payload.readBigUInt64BE(4));
  } else if (version === 0) {
    seconds = payload.readUInt32BE(4);
  } else {
    return null;
  }
  // 0 means the writer never set it. Anything before 1970 is not a real recording date (some
  // writers put Unix time here, which reads as 1904..1950); a wrong date is worse than none.
  if (seconds <= EPOCH_1904) return null;
  const ms = (seconds - EPOCH_1904) * 1000;
  if (!Number.isFinite(ms) || ms > 8.64e15) return null;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface Header {
  type: string;
  headerLen: number;
  /** Total box size, or null when it runs to the end of its parent (size field 0). */
  size: number | null;
}

/** Parse a box header from `b` (at least 8 bytes, 16 if the size field is 1). */
function parseHeader(b: Buffer): Header | 'need-more' | 'invalid' {
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

type State =
  | { mode: 'header' } // collecting a box header into hdr
  | { mode: 'skip'; left: number } // inside content we do not want (Infinity: to end of file)
  | { mode: 'mvhd'; want: number } // collecting the start of mvhd's payload
  | { mode: 'done' };

/**
 * Feed it a stream's chunks in order; ask result() at the end (or any time: once mvhd has been
 * seen the answer is final). Holds at most a 16-byte header and the first 12 bytes of mvhd.
 */
export class MvhdScanner {
  private state: State = { mode: 'header' };
  /** Absolute stream offset of the next byte pushed. */
  private pos = 0;
  /** End offset of the moov box we are inside (null at top level; Infinity if it runs to EOF). */
  private moovEnd: number | null = null;
  private hdr = Buffer.alloc(16);
  private hdrLen = 0;
  private payload = Buffer.alloc(MVHD_NEEDED);
  private payloadLen = 0;
  private boxes = 0;
  private found: string | null = null;

  /** True once further bytes cannot change the result (found, or the data is not a box tree). */
  get finished(): boolean {
    return this.state.mode === 'done';
  }

  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    let i = 0;
    while (i < buf.length) {
      const st = this.state;
      if (st.mode === 'done') return;

      if (st.mode === 'skip') {
        const n = Math.min(st.left, buf.length - i);
        i += n;
        this.pos += n;
        st.left -= n;
        if (st.left === 0) this.afterBox();
        continue;
      }

      if (st.mode === 'mvhd') {
        const n = Math.min(st.want - this.payloadLen, buf.length - i);
        buf.copy(this.payload, this.payloadLen, i, i + n);
        this.payloadLen += n;
        i += n;
        this.pos += n;
        if (this.payloadLen === st.want) {
          this.found = mvhdTime(this.payload.subarray(0, this.payloadLen));
          this.state = { mode: 'done' };
        }
        continue;
      }

      // Header: inside moov, fewer than 8 bytes left before its end is padding, not a box.
      if (this.moovEnd !== null && this.hdrLen === 0 && this.moovEnd - this.pos < 8) {
        const left = this.moovEnd - this.pos;
        this.moovEnd = null;
        this.state = left > 0 ? { mode: 'skip', left } : { mode: 'header' };
        continue;
      }
      const need = this.hdrLen < 8 ? 8 : 16;
      const n = Math.min(need - this.hdrLen, buf.length - i);
      buf.copy(this.hdr, this.hdrLen, i, i + n);
      this.hdrLen += n;
      i += n;
      this.pos += n;
      if (this.hdrLen < need) continue;
      const h = parseHeader(this.hdr.subarray(0, this.hdrLen));
      if (h === 'need-more') continue;
      this.hdrLen = 0;
      if (h === 'invalid' || ++this.boxes > MAX_BOXES) {
        this.state = { mode: 'done' };
        return;
      }
      this.enterBox(h);
    }
  }

  private enterBox(h: Header): void {
    const start = this.pos - h.headerLen;
    const parentEnd = this.moovEnd ?? Infinity;
    let end = h.size === null ? parentEnd : start + h.size;
    // A child claiming to run past its parent is clamped: the parent's size is the better witness.
    if (end > parentEnd) end = parentEnd;
    const contentLeft = end - this.pos;
    if (contentLeft < 0) {
      this.state = { mode: 'done' };
      return;
    }
    if (this.moovEnd === null && h.type === 'moov') {
      this.moovEnd = end;
      this.state = { mode: 'header' };
      return;
    }
    if (this.moovEnd !== null && h.type === 'mvhd') {
      const want = Math.min(MVHD_NEEDED, contentLeft);
      if (want < 8) {
        this.state = { mode: 'done' };
        return;
      }
      this.payloadLen = 0;
      this.state = { mode: 'mvhd', want };
      return;
    }
    this.state = { mode: 'skip', left: contentLeft };
    if (contentLeft === 0) this.afterBox();
  }

  /** A box's content has been passed: leave moov if that was its last child. */
  private afterBox(): void {
    if (this.moovEnd !== null && this.pos >= this.moovEnd) this.moovEnd = null;
    this.state = { mode: 'header' };
  }

  /** ISO 8601 UTC creation time, or null (no mvhd seen, unset, or not a QuickTime/MP4 stream). */
  result(): string | null {
    return this.found;
  }
}

/**
 * The same answer from a random-access source: reads box headers (16 bytes each) and the start of
 * mvhd, nothing else, so a moov at the end of a multi-gigabyte file costs a handful of requests.
 */
export async function readMvhdAt(
  readAt: (offset: number, length: number) => Promise<Buffer>,
  size: number,
): Promise<string | null> {
  let boxes = 0;
  const readHeader = async (offset: number, end: number): Promise<Header | null> => {
    if (end - offset < 8 || ++boxes > MAX_BOXES) return null;
    const b = await readAt(offset, Math.min(16, end - offset));
    const h = parseHeader(b);
    return typeof h === 'string' ? null : h;
  };

  let offset = 0;
  while (offset < size) {
    const h = await readHeader(offset, size);
    if (!h) return null;
    const end = h.size === null ? size : Math.min(size, offset + h.size);
    if (h.type === 'moov') {
      let child = offset + h.headerLen;
      while (child < end) {
        const c = await readHeader(child, end);
        if (!c) break;
        const cEnd = c.size === null ? end : Math.min(end, child + c.size);
        if (c.type === 'mvhd') {
          const at = child + c.headerLen;
          const len = Math.min(MVHD_NEEDED, cEnd - at);
          if (len < 8) return null;
          return mvhdTime(await readAt(at, len));
        }
        child = cEnd;
      }
    }
    offset = end;
  }
  return null;
}
