// What Google does to a photo on `baseUrl=d`: the EXIF comes back without its location.
// The emulator removes the GPS IFD from the TIFF structure in place: the GPSInfo entry leaves
// IFD0 (the entries after it move up, the freed 12 bytes become zeros) and the GPS IFD with
// its out-of-line values is wiped. No other offset moves, so the file stays valid, its pixels
// stay identical, and its bytes differ. JPEG (APP1 Exif), PNG (eXIf, with a new CRC) and
// ISO-BMFF files (HEIC/AVIF Exif items) are handled.

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4 };
const TAG_GPS_IFD = 0x8825;

/** Removes the GPS IFD from a TIFF blob (`tiff` is a view into the file: changed in place). True when something was removed. */
export function stripGpsFromTiff(tiff: Buffer): boolean {
  if (tiff.length < 8) return false;
  const order = tiff.toString('latin1', 0, 2);
  const le = order === 'II';
  if (!le && order !== 'MM') return false;
  const u16 = (o: number) => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number) => (le ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  const w16 = (o: number, v: number) => (le ? tiff.writeUInt16LE(v, o) : tiff.writeUInt16BE(v, o));
  if (u16(2) !== 42) return false;
  const ifd0 = u32(4);
  if (ifd0 + 2 > tiff.length) return false;
  const n = u16(ifd0);
  const end = ifd0 + 2 + n * 12 + 4;
  if (end > tiff.length) return false;
  let index = -1;
  for (let i = 0; i < n; i++) if (u16(ifd0 + 2 + i * 12) === TAG_GPS_IFD) index = i;
  if (index < 0) return false;
  const gps = u32(ifd0 + 2 + index * 12 + 8);
  // Drop the entry: move the following entries and the next-IFD pointer up by 12 bytes.
  const at = ifd0 + 2 + index * 12;
  tiff.copy(tiff, at, at + 12, end);
  tiff.fill(0, end - 12, end);
  w16(ifd0, n - 1);
  // Wipe the GPS IFD and the values it points to.
  if (gps + 2 <= tiff.length) {
    const m = u16(gps);
    const gEnd = Math.min(tiff.length, gps + 2 + m * 12 + 4);
    for (let i = 0; i < m; i++) {
      const e = gps + 2 + i * 12;
      if (e + 12 > tiff.length) break;
      const size = (TYPE_SIZE[u16(e + 2)] ?? 1) * u32(e + 4);
      if (size > 4) {
        const off = u32(e + 8);
        if (off + size <= tiff.length) tiff.fill(0, off, off + size);
      }
    }
    tiff.fill(0, gps, gEnd);
  }
  return true;
}

function stripJpeg(buf: Buffer): boolean {
  let o = 2;
  let changed = false;
  while (o + 4 <= buf.length) {
    if (buf[o] !== 0xff) break;
    const marker = buf[o + 1]!;
    if (marker === 0xff) {
      o += 1;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      o += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break;
    const len = buf.readUInt16BE(o + 2);
    const seg = buf.subarray(o + 4, Math.min(buf.length, o + 2 + len));
    if (marker === 0xe1 && seg.length > 14 && seg.toString('latin1', 0, 6) === 'Exif\0\0') {
      if (stripGpsFromTiff(seg.subarray(6))) changed = true;
    }
    o += 2 + len;
  }
  return changed;
}

let crcTable: Int32Array | null = null;
function crc32(data: Buffer): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = -1;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function stripPng(buf: Buffer): boolean {
  let o = 8;
  let changed = false;
  while (o + 12 <= buf.length) {
    const len = buf.readUInt32BE(o);
    const type = buf.toString('latin1', o + 4, o + 8);
    if (o + 12 + len > buf.length) break;
    if (type === 'eXIf') {
      let data = buf.subarray(o + 8, o + 8 + len);
      if (data.toString('latin1', 0, 6) === 'Exif\0\0') data = data.subarray(6);
      if (stripGpsFromTiff(data)) {
        buf.writeUInt32BE(crc32(buf.subarray(o + 4, o + 8 + len)), o + 8 + len);
        changed = true;
      }
    }
    if (type === 'IEND') break;
    o += 12 + len;
  }
  return changed;
}

function stripBmff(buf: Buffer): boolean {
  let changed = false;
  for (const header of ['Exif\0\0II*\0', 'Exif\0\0MM\0*']) {
    let at = buf.indexOf(Buffer.from(header, 'latin1'));
    while (at >= 0) {
      if (stripGpsFromTiff(buf.subarray(at + 6))) changed = true;
      at = buf.indexOf(Buffer.from(header, 'latin1'), at + 1);
    }
  }
  return changed;
}

/** A copy of `file` without location metadata, and whether anything was removed. */
export function stripLocation(file: Buffer, format: string): { bytes: Buffer; changed: boolean } {
  const out = Buffer.from(file);
  let changed = false;
  if (format === 'jpeg') changed = stripJpeg(out);
  else if (format === 'png') changed = stripPng(out);
  else if (format === 'heic' || format === 'avif') changed = stripBmff(out);
  else if (format === 'tiff') changed = stripGpsFromTiff(out);
  return { bytes: changed ? out : file, changed };
}
