// Writing a capture date into a PNG without touching a pixel: one new eXIf chunk right after
// IHDR (the PNG specification wants eXIf before the image data; right after IHDR is before
// everything else that could hold it). The chunk holds a TIFF structure as the JPEG path writes
// it, without the "Exif\0\0" header, which eXIf does not have.
//
// Why eXIf: Google Photos reads a date from a PNG's EXIF. m-hayabusa/VRCImageHelper#1 shows a
// PNG whose exiftool-written CreateDate and DateTimeOriginal (08:27:35) with OffsetTime +09:00
// Google Photos dated 23:27 the day before: read, and shifted by the offset (shown in UTC). So
// the chunk carries DateTimeOriginal and CreateDate with both OffsetTimeOriginal (the offset the
// EXIF standard pairs with DateTimeOriginal) and OffsetTime (the one Google was seen to apply).
// No XMP is written: nothing public shows Google reading XMP from a PNG.
//
// A PNG that already has an eXIf chunk is left alone (its EXIF would be merged, not replaced,
// and screenshots, the undated PNGs of a phone, carry none).

import { freshTiff, type SpliceEdit } from './jpeg-date.ts';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const TAG_CREATE_DATE = 0x9004;
const TAG_OFFSET_TIME = 0x9010;

export type PngDatePlan = { edit: SpliceEdit } | { skip: string };

let crcTable: Int32Array | null = null;
/** The CRC-32 PNG puts after each chunk (over its type and data). */
export function pngCrc(data: Buffer): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = -1;
  for (const byte of data) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(pngCrc(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** The eXIf chunk for this date ("YYYY:MM:DD HH:MM:SS", "+02:00"). */
export function exifChunk(dateTime: string, offset: string): Buffer {
  const ascii = (s: string) => Buffer.from(`${s}\0`, 'latin1');
  return chunk(
    'eXIf',
    freshTiff(dateTime, offset, [
      { tag: TAG_CREATE_DATE, type: 2, count: 20, value: ascii(dateTime) },
      { tag: TAG_OFFSET_TIME, type: 2, count: 7, value: ascii(offset) },
    ]),
  );
}

/**
 * Plans the insertion of an eXIf chunk after IHDR. `head` is the start of the file: the chunks
 * before the first IDAT must lie within it, so that an existing eXIf is seen.
 */
export function planPngDate(head: Buffer, dateTime: string, offset: string): PngDatePlan {
  if (head.length < 8 + 25 || !head.subarray(0, 8).equals(SIGNATURE)) return { skip: 'not a PNG' };
  if (head.readUInt32BE(8) !== 13 || head.toString('latin1', 12, 16) !== 'IHDR') return { skip: 'the PNG does not start with its IHDR chunk' };
  const afterIhdr = 8 + 12 + 13;
  for (let o = afterIhdr; ; ) {
    if (o + 8 > head.length) return { skip: 'the PNG chunks before the image data do not fit in the first MiB read' };
    const len = head.readUInt32BE(o);
    const type = head.toString('latin1', o + 4, o + 8);
    if (type === 'eXIf') return { skip: 'the PNG already has an eXIf chunk (its EXIF is left as it is)' };
    if (type === 'IDAT' || type === 'IEND') break;
    o += 12 + len;
  }
  return { edit: { at: afterIhdr, remove: 0, insert: exifChunk(dateTime, offset) } };
}
