// Writing a creation time into a QuickTime/MP4 file as it streams by: the creation_time fields of
// moov/mvhd, moov/trak/tkhd and moov/trak/mdia/mdhd, overwritten in place. No box changes size and
// no other byte changes, so moov may come before or after mdat and nothing is buffered but the
// dozen bytes at the start of each of those boxes (the box walker of mp4-boxes.ts).
//
// Only unset times are written (0, or a value before 1970 that no reader takes as a date): a
// movie whose mvhd already has a time keeps it, and so do its tracks. The fields are UTC seconds
// since 1904-01-01, as ISO/IEC 14496-12 defines them (and as Google reads them).

import { Transform, type TransformCallback } from 'node:stream';
import { Mp4BoxWalker } from './mp4-boxes.ts';

const EPOCH_1904 = 2082844800;

export interface TimePatch {
  /** Box path, e.g. "moov/trak/tkhd". */
  box: string;
  /** Offset of the creation_time field in the file, and its width (4 or 8). */
  at: number;
  width: 4 | 8;
  before: number;
  after: number;
}

const CONTAINERS = new Set(['moov', 'moov/trak', 'moov/trak/mdia']);
const TARGETS = new Set(['moov/mvhd', 'moov/trak/tkhd', 'moov/trak/mdia/mdhd']);

export const qtSeconds = (ms: number): number => Math.floor(ms / 1000) + EPOCH_1904;
export const isUnsetQtTime = (seconds: number): boolean => seconds <= EPOCH_1904;

export class Mp4TimeSetter extends Transform {
  readonly patches: TimePatch[] = [];
  /** The movie header's own time when it had one (then nothing is written). */
  existing: number | null = null;
  private movieHadTime: boolean | null = null;
  private readonly seconds: number;
  private readonly walker = new Mp4BoxWalker({
    enter: (path, content) => {
      if (CONTAINERS.has(path)) return 'descend';
      return TARGETS.has(path) && content >= 12 ? { hold: 12 } : 'skip';
    },
    held: (b, path, at) => this.patch(b, path, at),
  });

  constructor(instantMs: number) {
    super();
    this.seconds = qtSeconds(instantMs);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out: Buffer[] = [];
    this.walker.push(chunk, out);
    cb(null, out.length === 1 ? out[0] : Buffer.concat(out));
  }

  /** `b`: version/flags + the first 8 bytes after them, starting at file offset `at`. */
  private patch(b: Buffer, box: string, at: number): Buffer {
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
    this.patches.push({ box, at: at + 4, width, before, after: this.seconds });
    return out;
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.walker.pending());
  }
}
