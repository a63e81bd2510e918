// A QuickTime/MP4 movie's creation time, from the `mvhd` box inside `moov`.
//
// Phones write moov after mdat (the media data), so for a streamed item it arrives last; the
// scanner rides along with the upload stream on the box walker of mp4-boxes.ts, which reads box
// headers only and never holds media data, so memory is a few dozen bytes whatever the file
// size. For random-access sources, readMvhdAt() hops from header to header with small reads.

import { type BoxHeader, MAX_BOXES, Mp4BoxWalker, parseBoxHeader } from './mp4-boxes.ts';

/** Seconds from 1904-01-01 (the QuickTime epoch) to 1970-01-01. */
const EPOCH_1904 = 2082844800;
/** version/flags (4) + creation_time (8 in version 1). */
const MVHD_NEEDED = 12;
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

/**
 * Feed it a stream's chunks in order; ask result() at the end (or any time: once mvhd has been
 * seen the answer is final). Holds at most a 16-byte header and the first 12 bytes of mvhd.
 */
export class MvhdScanner {
  private found: string | null = null;
  private readonly walker = new Mp4BoxWalker({
    enter: (path, content) => {
      if (path === 'moov') return 'descend';
      if (path !== 'moov/mvhd') return 'skip';
      const want = Math.min(MVHD_NEEDED, content);
      return want < 8 ? 'stop' : { hold: want };
    },
    held: (payload) => {
      this.found = mvhdTime(payload);
      this.walker.stop();
      return payload;
    },
  });

  /** True once further bytes cannot change the result (found, or the data is not a box tree). */
  get finished(): boolean {
    return this.walker.stopped;
  }

  push(chunk: Uint8Array): void {
    if (this.walker.stopped) return;
    this.walker.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
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
export async function readMvhdAt(readAt: (offset: number, length: number) => Promise<Buffer>, size: number): Promise<string | null> {
  let boxes = 0;
  const readHeader = async (offset: number, end: number): Promise<BoxHeader | null> => {
    if (end - offset < 8 || ++boxes > MAX_BOXES) return null;
    const b = await readAt(offset, Math.min(16, end - offset));
    const h = parseBoxHeader(b);
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
