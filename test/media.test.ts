import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { sniffMedia } from '../src/media/sniff.ts';
import { MvhdScanner, readMvhdAt } from '../src/media/mvhd.ts';
import sharp from 'sharp';
import { exifDateToIso, imageMetadata, jpegSize, metadataNeedsBytes } from '../src/media/metadata.ts';
import { seeded } from './helpers.ts';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const fixture = (name: string): Buffer => fs.readFileSync(path.join(FIXTURES, name));
const head = (name: string): Buffer => fixture(name).subarray(0, metadataNeedsBytes());

/** Deterministic 32-bit pseudo-random numbers, from the tests' shared seeded source, so a failure can be repeated. */
function prng(seed: number): () => number {
  const r = seeded(seed);
  return () => (r() * 4294967296) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Box building helpers for synthetic QuickTime/MP4 files.

function box(type: string, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const h = Buffer.alloc(8);
  h.writeUInt32BE(8 + body.length, 0);
  h.write(type, 4, 'latin1');
  return Buffer.concat([h, body]);
}

/** Header only, with a 64-bit largesize (size field 1). */
function largeHeader(type: string, totalSize: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(1, 0);
  h.write(type, 4, 'latin1');
  h.writeBigUInt64BE(BigInt(totalSize), 8);
  return h;
}

/** Header with size 0: the box runs to the end of the file. */
function openHeader(type: string): Buffer {
  const h = Buffer.alloc(8);
  h.write(type, 4, 'latin1');
  return h;
}

const EPOCH_1904 = 2082844800;
const qtSeconds = (iso: string): number => Date.parse(iso) / 1000 + EPOCH_1904;

function mvhd(iso: string | 0, version: 0 | 1 = 0): Buffer {
  const seconds = iso === 0 ? 0 : qtSeconds(iso);
  if (version === 1) {
    const b = Buffer.alloc(4 + 8 + 8 + 4 + 8 + 80);
    b[0] = 1;
    b.writeBigUInt64BE(BigInt(seconds), 4);
    b.writeBigUInt64BE(BigInt(seconds), 12);
    return box('mvhd', b);
  }
  const b = Buffer.alloc(100);
  b.writeUInt32BE(seconds, 4);
  b.writeUInt32BE(seconds, 8);
  return box('mvhd', b);
}

const ftypMp4 = box('ftyp', Buffer.from('isom\0\0\x02\0isomiso2avc1mp41', 'latin1'));

interface TopBox {
  type: string;
  bytes: Buffer;
}

/** Split a file into its top-level boxes (32-bit sizes only: enough for the fixtures). */
function topBoxes(file: Buffer): TopBox[] {
  const out: TopBox[] = [];
  for (let p = 0; p < file.length; ) {
    const size = file.readUInt32BE(p);
    const type = file.toString('latin1', p + 4, p + 8);
    expect(size).toBeGreaterThanOrEqual(8);
    out.push({ type, bytes: file.subarray(p, p + size) });
    p += size;
  }
  return out;
}

function scanInChunks(file: Buffer, seed: number, maxChunk: number): MvhdScanner {
  const next = prng(seed);
  const s = new MvhdScanner();
  for (let p = 0; p < file.length; ) {
    const n = 1 + (next() % maxChunk);
    // A copy, so the scanner cannot lean on bytes outside the chunk it was given.
    s.push(Buffer.from(file.subarray(p, p + n)));
    p += n;
  }
  return s;
}

const readerOf = (file: Buffer) => {
  const reads: Array<[number, number]> = [];
  const readAt = async (offset: number, length: number): Promise<Buffer> => {
    reads.push([offset, length]);
    return file.subarray(offset, offset + length);
  };
  return { readAt, reads };
};

/** A sparse "file" of zeros with some byte runs placed at given offsets, for multi-GiB layouts. */
function virtualFile(size: number, parts: Array<[number, Buffer]>) {
  const reads: Array<[number, number]> = [];
  const readAt = async (offset: number, length: number): Promise<Buffer> => {
    reads.push([offset, length]);
    const out = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
    for (const [at, bytes] of parts) {
      const from = Math.max(at, offset);
      const to = Math.min(at + bytes.length, offset + out.length);
      if (from < to) bytes.copy(out, from - offset, from - at, to - at);
    }
    return out;
  };
  return { readAt, reads, size };
}

// ---------------------------------------------------------------------------------------------

describe('sniffMedia', () => {
  it.each([
    ['IMG_20180725_163423.jpg', 'image/jpeg', 'image', 'jpeg'],
    ['canon-dslr.jpg', 'image/jpeg', 'image', 'jpeg'],
    ['noexif.jpg', 'image/jpeg', 'image', 'jpeg'],
    ['truncated.jpg', 'image/jpeg', 'image', 'jpeg'],
    ['broken1.jpg', 'image/jpeg', 'image', 'jpeg'],
    ['heic-iphone7.heic', 'image/heic', 'image', 'heic'],
    // ftyp major brand mif1, compatible heic: an HEIC still, not generic HEIF.
    ['heic-single.heic', 'image/heic', 'image', 'heic'],
    ['Irvine_CA.avif', 'image/avif', 'image', 'avif'],
    ['png_with_exif_and_gps.png', 'image/png', 'image', 'png'],
    ['Bush-dog.tif', 'image/tiff', 'image', 'tiff'],
    ['VID_20230514_101112.mp4', 'video/mp4', 'video', 'mp4'],
    ['VID_20211224_183000.mov', 'video/quicktime', 'video', 'mov'],
    // No ftyp at all: the file starts with its moov atom.
    ['QuickTime-stub.mov', 'video/quicktime', 'video', 'mov'],
    ['not-a-photo.jpg', 'application/octet-stream', 'other', null],
  ])('%s is %s', (name, mimeType, kind, format) => {
    expect(sniffMedia(head(name), name)).toEqual({ mimeType, kind, format });
  });

  it('goes by content, not by name', () => {
    expect(sniffMedia(head('heic-iphone7.heic'), 'IMG_0001.JPG')).toEqual({ mimeType: 'image/heic', kind: 'image', format: 'heic' });
    expect(sniffMedia(head('noexif.jpg'), 'clip.mp4').format).toBe('jpeg');
    expect(sniffMedia(head('VID_20211224_183000.mov'), 'holiday.jpg').mimeType).toBe('video/quicktime');
    expect(sniffMedia(head('not-a-photo.jpg'), 'photo.heic')).toEqual({ mimeType: 'application/octet-stream', kind: 'other', format: null });
    expect(sniffMedia(Buffer.from('{"error":"not found"}'), 'IMG_1.jpg').kind).toBe('other');
    expect(sniffMedia(Buffer.alloc(0), 'IMG_1.jpg').kind).toBe('other');
    expect(sniffMedia(Buffer.alloc(4096), 'VID_1.mp4').format).toBeNull();
  });

  it('recognises the other image formats by their magic bytes', () => {
    expect(sniffMedia(Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00', 'latin1'), 'x').format).toBe('gif');
    expect(sniffMedia(Buffer.from('GIF87a\x01\x00\x01\x00\x00\x00\x00', 'latin1'), 'x').mimeType).toBe('image/gif');
    expect(sniffMedia(Buffer.from('RIFF\x24\x00\x00\x00WEBPVP8 ', 'latin1'), 'x')).toEqual({ mimeType: 'image/webp', kind: 'image', format: 'webp' });
    const bmp = Buffer.alloc(54);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(54, 2);
    bmp.writeUInt32LE(40, 14);
    expect(sniffMedia(bmp, 'x').mimeType).toBe('image/bmp');
    // Text that happens to start with "BM" is not a bitmap.
    expect(sniffMedia(Buffer.from('BMW service history, please keep this file'), 'x').kind).toBe('other');
    const ico = Buffer.concat([Buffer.from('00000100' + '0100' + '10100000' + '01002000' + '68040000' + '16000000', 'hex'), Buffer.alloc(64)]);
    expect(sniffMedia(ico, 'favicon.ico')).toEqual({ mimeType: 'image/x-icon', kind: 'image', format: 'ico' });
    expect(sniffMedia(Buffer.from('MM\x00\x2a\x00\x00\x00\x08', 'latin1'), 'x').format).toBe('tiff');
    // TIFF-structured camera RAW: the content says TIFF, the name says which RAW.
    expect(sniffMedia(fixture('Bush-dog.tif'), 'DSC_0001.NEF').mimeType).toBe('image/x-nikon-nef');
    expect(sniffMedia(Buffer.from('II\x2a\x00\x10\x00\x00\x00CR\x02\x00', 'latin1'), 'IMG_1.CR2').format).toBe('cr2');
  });

  it('reads ISO-BMFF brands, using the extension only between brands the file declares', () => {
    const ftyp = (major: string, ...compat: string[]) => box('ftyp', Buffer.from(major + '\0\0\0\0' + compat.join(''), 'latin1'));
    expect(sniffMedia(ftyp('qt  ', 'qt  '), 'x.mp4').mimeType).toBe('video/quicktime');
    expect(sniffMedia(ftyp('3gp4', 'isom', '3gp4'), 'x').mimeType).toBe('video/3gpp');
    expect(sniffMedia(ftyp('3g2a', '3g2a'), 'x').mimeType).toBe('video/3gpp2');
    expect(sniffMedia(ftyp('mp42', 'isom', 'mp42'), 'x.mov').mimeType).toBe('video/mp4');
    // M4V and MP4 brands together: the name settles it, either way.
    expect(sniffMedia(ftyp('mp42', 'isom', 'M4V '), 'clip.m4v').mimeType).toBe('video/x-m4v');
    expect(sniffMedia(ftyp('M4V ', 'isom', 'mp42'), 'clip.mp4').mimeType).toBe('video/mp4');
    expect(sniffMedia(ftyp('M4V ', 'isom', 'mp42'), 'clip').mimeType).toBe('video/x-m4v');
    expect(sniffMedia(ftyp('mif1', 'mif1', 'avif'), 'x').format).toBe('avif');
    expect(sniffMedia(ftyp('heix', 'mif1', 'heix'), 'x').format).toBe('heic');
    expect(sniffMedia(ftyp('msf1', 'msf1'), 'x')).toEqual({ mimeType: 'image/heif', kind: 'image', format: 'heif' });
    expect(sniffMedia(ftyp('avis', 'avis', 'msf1'), 'x').format).toBe('avif');
    expect(sniffMedia(ftyp('crx ', 'crx ', 'isom'), 'x').format).toBe('cr3');
    // Audio in an MP4 container is known, but not a photo or video.
    expect(sniffMedia(ftyp('M4A ', 'M4A ', 'mp42', 'isom'), 'song.m4a')).toEqual({ mimeType: 'audio/mp4', kind: 'other', format: 'm4a' });
    // An ftyp whose brands mean nothing to us is not a guess at MP4.
    expect(sniffMedia(ftyp('zzzz', 'yyyy'), 'x.mp4').kind).toBe('other');
  });

  it('recognises a QuickTime file without ftyp by its first atom', () => {
    expect(sniffMedia(Buffer.concat([box('wide'), openHeader('mdat')]), 'x').mimeType).toBe('video/quicktime');
    expect(sniffMedia(Buffer.concat([box('mdat', Buffer.alloc(32))]), 'x').mimeType).toBe('video/quicktime');
    expect(sniffMedia(Buffer.concat([box('free', Buffer.alloc(8)), box('moov', mvhd('2020-01-01T00:00:00Z'))]), 'x').format).toBe('mov');
    // The atom names at offset 4 of a text file are not a movie.
    for (const text of ['abcdmoov is a word in this text file', 'xxxxmdat', 'abcdwide open spaces', 'Yes free shipping on all orders over 50']) {
      expect(sniffMedia(Buffer.from(text), 'x.mov').kind, text).toBe('other');
    }
  });

  it('recognises Matroska/WebM, AVI, MPEG-TS and ASF', () => {
    const ebml = (docType: string) =>
      Buffer.concat([Buffer.from('1a45dfa3', 'hex'), Buffer.from([0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x80 | docType.length]), Buffer.from(docType)]);
    expect(sniffMedia(ebml('webm'), 'x.mkv')).toEqual({ mimeType: 'video/webm', kind: 'video', format: 'webm' });
    expect(sniffMedia(ebml('matroska'), 'x.webm')).toEqual({ mimeType: 'video/x-matroska', kind: 'video', format: 'mkv' });
    expect(sniffMedia(Buffer.from('RIFF\x00\x10\x00\x00AVI LIST', 'latin1'), 'x')).toEqual({ mimeType: 'video/x-msvideo', kind: 'video', format: 'avi' });
    expect(sniffMedia(Buffer.from('RIFF\x00\x10\x00\x00WAVEfmt ', 'latin1'), 'x.avi').kind).toBe('other');

    const ts = Buffer.alloc(188 * 4);
    for (let p = 0; p < ts.length; p += 188) ts[p] = 0x47;
    expect(sniffMedia(ts, 'x')).toEqual({ mimeType: 'video/mp2t', kind: 'video', format: 'ts' });
    const m2ts = Buffer.alloc(192 * 4);
    for (let p = 4; p < m2ts.length; p += 192) m2ts[p] = 0x47;
    expect(sniffMedia(m2ts, 'x').format).toBe('m2ts');
    // One 'G' is the start of a word, not a sync byte.
    expect(sniffMedia(Buffer.from('G'.padEnd(1000, 'x')), 'x.ts').kind).toBe('other');

    const asf = Buffer.concat([Buffer.from('3026b2758e66cf11a6d900aa0062ce6c', 'hex'), Buffer.alloc(16)]);
    expect(sniffMedia(asf, 'x.wmv')).toEqual({ mimeType: 'video/x-ms-wmv', kind: 'video', format: 'wmv' });
    expect(sniffMedia(asf, 'x.wma').kind).toBe('other');
  });
});

// ---------------------------------------------------------------------------------------------

describe('mvhd creation time', () => {
  const videos: Array<[string, string]> = [
    ['VID_20230514_101112.mp4', '2023-05-14T10:11:12Z'],
    ['VID_20211224_183000.mov', '2021-12-24T18:30:00Z'],
    ['QuickTime-stub.mov', '2005-08-11T14:03:54Z'],
  ];

  it.each(videos)('%s: scanner over random chunk splits and readMvhdAt agree on %s', async (name, iso) => {
    const file = fixture(name);
    for (const [seed, maxChunk] of [
      [1, 1],
      [2, 13],
      [3, 4096],
      [4, 1 << 20],
    ] as const) {
      expect(scanInChunks(file, seed, maxChunk).result(), `seed ${seed}`).toBe(iso);
    }
    const { readAt, reads } = readerOf(file);
    expect(await readMvhdAt(readAt, file.length)).toBe(iso);
    // Header hops only: no read is larger than a box header.
    expect(Math.max(...reads.map(([, l]) => l))).toBeLessThanOrEqual(16);
  });

  it('finds mvhd with moov before mdat as well as after it', async () => {
    const original = fixture('VID_20230514_101112.mp4');
    const boxes = topBoxes(original);
    expect(boxes.map((b) => b.type)).toEqual(['ftyp', 'free', 'mdat', 'moov']);
    // "Fast start" order, as an upload-optimised export writes it. Chunk offsets inside moov are
    // not rewritten: the copy would not play, but the box walk is all that is under test.
    const moovFirst = Buffer.concat(['ftyp', 'moov', 'free', 'mdat'].map((t) => boxes.find((b) => b.type === t)!.bytes));
    expect(moovFirst.length).toBe(original.length);
    expect(moovFirst.equals(original)).toBe(false);
    for (const file of [original, moovFirst]) {
      for (const seed of [5, 6, 7]) expect(scanInChunks(file, seed, 997).result()).toBe('2023-05-14T10:11:12Z');
      expect(await readMvhdAt(readerOf(file).readAt, file.length)).toBe('2023-05-14T10:11:12Z');
    }
  });

  it('reads version 1 (64-bit) mvhd and skips other children of moov', async () => {
    const file = Buffer.concat([
      ftypMp4,
      box('moov', box('udta', Buffer.alloc(5000, 0x41)), box('meta', Buffer.alloc(300)), mvhd('2024-02-29T23:59:58Z', 1), box('trak', Buffer.alloc(64))),
      box('mdat', Buffer.alloc(10_000, 7)),
    ]);
    for (const seed of [1, 2, 3]) expect(scanInChunks(file, seed, 200).result()).toBe('2024-02-29T23:59:58Z');
    expect(await readMvhdAt(readerOf(file).readAt, file.length)).toBe('2024-02-29T23:59:58Z');
  });

  it('skips a 64-bit mdat of several GiB without holding it, then finds moov after it', async () => {
    const mdatSize = 5 * 1024 * 1024 * 1024 + 123; // past 2^32: only expressible as largesize
    const tail = box('moov', mvhd('2019-06-01T08:00:00Z'));
    const headBytes = Buffer.concat([ftypMp4, largeHeader('mdat', mdatSize)]);
    const total = ftypMp4.length + mdatSize + tail.length;

    const scanner = new MvhdScanner();
    scanner.push(headBytes);
    const zeros = Buffer.alloc(1 << 20);
    let left = mdatSize - 16;
    const rssBefore = process.memoryUsage().rss;
    while (left > 0) {
      const n = Math.min(left, zeros.length);
      scanner.push(n === zeros.length ? zeros : zeros.subarray(0, n));
      left -= n;
    }
    expect(scanner.result()).toBeNull();
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
    // Split moov's own header across pushes too.
    scanner.push(tail.subarray(0, 5));
    scanner.push(tail.subarray(5));
    expect(scanner.result()).toBe('2019-06-01T08:00:00Z');

    const v = virtualFile(total, [
      [0, headBytes],
      [ftypMp4.length + mdatSize, tail],
    ]);
    expect(await readMvhdAt(v.readAt, v.size)).toBe('2019-06-01T08:00:00Z');
    expect(v.reads.length).toBeLessThanOrEqual(6);
    expect(v.reads.every(([, l]) => l <= 16)).toBe(true);
  });

  it('handles boxes that run to the end of the file (size 0)', async () => {
    // moov first, then an mdat "to end of file", as a recorder that never went back to fix up writes.
    const a = Buffer.concat([ftypMp4, box('moov', mvhd('2020-01-02T03:04:05Z')), openHeader('mdat'), Buffer.alloc(3000, 1)]);
    expect(scanInChunks(a, 9, 50).result()).toBe('2020-01-02T03:04:05Z');
    expect(await readMvhdAt(readerOf(a).readAt, a.length)).toBe('2020-01-02T03:04:05Z');
    // moov itself open-ended, last in the file.
    const b = Buffer.concat([ftypMp4, box('mdat', Buffer.alloc(3000, 2)), openHeader('moov'), box('free', Buffer.alloc(10)), mvhd('2020-01-02T03:04:06Z')]);
    expect(scanInChunks(b, 10, 50).result()).toBe('2020-01-02T03:04:06Z');
    expect(await readMvhdAt(readerOf(b).readAt, b.length)).toBe('2020-01-02T03:04:06Z');
  });

  it('returns null for an unset creation time, a file without moov, or data that is not a box tree', async () => {
    const unset = Buffer.concat([ftypMp4, box('moov', mvhd(0)), box('mdat', Buffer.alloc(100))]);
    expect(scanInChunks(unset, 1, 30).result()).toBeNull();
    expect(await readMvhdAt(readerOf(unset).readAt, unset.length)).toBeNull();

    const noMoov = Buffer.concat([ftypMp4, box('mdat', Buffer.alloc(100))]);
    expect(scanInChunks(noMoov, 1, 30).result()).toBeNull();
    expect(await readMvhdAt(readerOf(noMoov).readAt, noMoov.length)).toBeNull();

    for (const name of ['heic-iphone7.heic', 'IMG_20180725_163423.jpg', 'not-a-photo.jpg']) {
      const file = fixture(name);
      const s = scanInChunks(file, 2, 65536);
      expect(s.result(), name).toBeNull();
      expect(await readMvhdAt(readerOf(file).readAt, file.length), name).toBeNull();
    }
    // A JPEG is not a box tree: the scanner gives up at once instead of skipping garbage "sizes".
    const jpeg = new MvhdScanner();
    jpeg.push(fixture('noexif.jpg').subarray(0, 64));
    expect(jpeg.finished).toBe(true);

    // Truncated mid-mdat: no answer, and no exception.
    const cut = fixture('VID_20211224_183000.mov').subarray(0, 100_000);
    expect(scanInChunks(cut, 3, 4096).result()).toBeNull();
    expect(await readMvhdAt(readerOf(cut).readAt, cut.length)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------

describe('imageMetadata', () => {
  const savedTz = process.env.TZ;
  afterEach(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });

  it('wants the first MiB', () => {
    expect(metadataNeedsBytes()).toBe(1024 * 1024);
  });

  it('reads a phone JPEG: capture time as UTC, GPS, camera, size (only the first MiB given)', async () => {
    expect(fixture('IMG_20180725_163423.jpg').length).toBeGreaterThan(metadataNeedsBytes());
    const m = await imageMetadata(head('IMG_20180725_163423.jpg'));
    expect(m.captureTime).toBe('2018-07-25T16:34:23Z');
    expect(m.gps!.lat).toBeCloseTo(50 + 17 / 60 + 58.57 / 3600, 9);
    expect(m.gps!.lon).toBeCloseTo(14 + 49 / 60 + 13.06 / 3600, 9);
    expect(m.camera).toBe('Google Pixel');
    expect([m.width, m.height]).toEqual([4048, 3036]);
  });

  it('applies OffsetTimeOriginal (iPhone HEIC at +02:00)', async () => {
    const m = await imageMetadata(head('heic-iphone7.heic'));
    // DateTimeOriginal 2019:10:20 18:34:30, OffsetTimeOriginal +02:00.
    expect(m.captureTime).toBe('2019-10-20T16:34:30Z');
    expect(m.gps!.lat).toBeCloseTo(38 + 2 / 60 + 47.91 / 3600, 9);
    expect(m.gps!.lon).toBeCloseTo(12 + 59 / 60 + 39.88 / 3600, 9);
    expect(m.camera).toBe('Apple iPhone 7');
    expect([m.width, m.height]).toEqual([4032, 3024]);
  });

  it('does not depend on the machine time zone', async () => {
    const results = [];
    for (const tz of ['UTC', 'Pacific/Kiritimati', 'America/Los_Angeles']) {
      process.env.TZ = tz;
      results.push((await imageMetadata(head('canon-dslr.jpg'))).captureTime, (await imageMetadata(head('heic-iphone7.heic'))).captureTime);
    }
    expect(results).toEqual(Array(3).fill(['2019-10-26T16:07:24Z', '2019-10-20T16:34:30Z']).flat());
  });

  it.each([
    ['canon-dslr.jpg', { captureTime: '2019-10-26T16:07:24Z', gps: null, camera: 'Canon EOS 1300D', width: 5184, height: 3456 }],
    // Cut off at 512 KiB: EXIF and the frame header are still there.
    ['truncated.jpg', { captureTime: '2019-10-26T16:07:24Z', gps: null, camera: 'Canon EOS 1300D', width: 5184, height: 3456 }],
    // EXIF says 3504x2336 (the camera's original); the JPEG frame holds 600x900 pixels.
    ['broken1.jpg', { captureTime: '2007-08-15T10:13:13Z', gps: null, camera: 'Canon EOS 30D', width: 600, height: 900 }],
    ['Irvine_CA.avif', { captureTime: '2010-05-11T10:51:45Z', gps: null, camera: 'Apple iPhone 3GS', width: 480, height: 640 }],
    // Only a ModifyDate: that is when it was edited, not taken.
    ['Bush-dog.tif', { captureTime: null, gps: null, camera: null, width: 40, height: 40 }],
    ['noexif.jpg', { captureTime: null, gps: null, camera: null, width: 250, height: 188 }],
    ['heic-single.heic', { captureTime: null, gps: null, camera: null, width: 1440, height: 960 }],
    ['not-a-photo.jpg', { captureTime: null, gps: null, camera: null, width: null, height: null }],
    ['VID_20230514_101112.mp4', { captureTime: null, gps: null, camera: null, width: null, height: null }],
  ])('%s', async (name, expected) => {
    expect(await imageMetadata(head(name))).toEqual(expected);
  });

  it('reads EXIF and GPS from a PNG eXIf chunk, with the size from IHDR', async () => {
    const m = await imageMetadata(head('png_with_exif_and_gps.png'));
    expect(m.captureTime).toBe('2003-12-14T12:01:44Z');
    expect(m.camera).toBe('Canon PowerShot S40');
    expect(m.gps!.lat).toBeCloseTo(50.2996027778, 9);
    expect(m.gps!.lon).toBeCloseTo(14.8202944444, 9);
    // IHDR says 1x1; the embedded EXIF claims 2272x1704 from the original camera file.
    expect([m.width, m.height]).toEqual([1, 1]);
  });

  it('still finds the size in a file cut short before the codec can open it', async () => {
    // 40 bytes of PNG: sharp gives up, IHDR (the first chunk) is complete.
    expect(await imageMetadata(fixture('png_with_exif_and_gps.png').subarray(0, 40))).toMatchObject({ width: 1, height: 1 });
    // 300 bytes of TIFF: the IFD0 tags are there, the strips are not.
    expect(await imageMetadata(fixture('Bush-dog.tif').subarray(0, 300))).toMatchObject({ width: 40, height: 40 });
    // 30 kB of a 4 MB phone JPEG: EXIF and frame header are both early.
    expect(await imageMetadata(fixture('IMG_20180725_163423.jpg').subarray(0, 30_000))).toMatchObject({
      captureTime: '2018-07-25T16:34:23Z',
      camera: 'Google Pixel',
      width: 4048,
      height: 3036,
    });
  });

  it('never throws on corrupt, truncated or non-image input', async () => {
    const nothing = { captureTime: null, gps: null, camera: null, width: null, height: null };
    const rnd = prng(99);
    const noise = Buffer.alloc(100_000);
    for (let i = 0; i < noise.length; i++) noise[i] = rnd() & 0xff;
    expect(await imageMetadata(noise)).toEqual(nothing);
    expect(await imageMetadata(Buffer.alloc(0))).toEqual(nothing);
    expect(await imageMetadata(Buffer.from([0xff, 0xd8, 0xff]))).toEqual(nothing);
    // Cut inside the EXIF segment: neither exifr nor sharp can make sense of it.
    expect(await imageMetadata(fixture('canon-dslr.jpg').subarray(0, 3000))).toEqual(nothing);
    // A JPEG with its middle overwritten by noise still yields what survives, or nulls, never an error.
    const mangled = Buffer.from(fixture('IMG_20180725_163423.jpg').subarray(0, 200_000));
    noise.copy(mangled, 30, 0, 2000);
    const m = await imageMetadata(mangled);
    expect(m.captureTime === null || /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(m.captureTime)).toBe(true);
    // Every fixture cut at many lengths.
    for (const name of ['heic-iphone7.heic', 'png_with_exif_and_gps.png', 'Bush-dog.tif', 'Irvine_CA.avif']) {
      const file = fixture(name);
      for (const n of [1, 7, 12, 33, 100, 1000, 5000]) await expect(imageMetadata(file.subarray(0, n)), `${name}:${n}`).resolves.toBeTypeOf('object');
    }
  });
});

describe('jpegSize', () => {
  it.each(fs.readdirSync(FIXTURES).filter((f) => /\.jpe?g$/i.test(f)))('reads the frame header of %s as sharp does', async (name) => {
    const bytes = fixture(name);
    const byCodec = await sharp(bytes, { failOn: 'none' })
      .metadata()
      .then((m) => ({ width: m.width, height: m.height }))
      .catch(() => null);
    expect(jpegSize(bytes)).toEqual(byCodec);
  });

  it('gives up (null) on a head that ends before the frame header, and on garbage markers', () => {
    expect(jpegSize(fixture('canon-dslr.jpg').subarray(0, 3000))).toBeNull();
    expect(jpegSize(Buffer.from([0xff, 0xd8, 0xff]))).toBeNull();
    expect(jpegSize(Buffer.from([0xff, 0xd8, 0x00, 0x10, 0, 0, 0, 0]))).toBeNull();
    expect(jpegSize(Buffer.from('GIF89a'))).toBeNull();
  });
});

describe('exifDateToIso', () => {
  it.each([
    ['2018:07:25 16:34:23', undefined, '2018-07-25T16:34:23Z'],
    ['2019:10:20 18:34:30', '+02:00', '2019-10-20T16:34:30Z'],
    ['2019:10:20 18:34:30', '-05:30', '2019-10-21T00:04:30Z'],
    // Crossing midnight and a year boundary backwards.
    ['2020:01:01 00:30:00', '+01:00', '2019-12-31T23:30:00Z'],
    ['2019:10:20 18:34:30\0', '+0200', '2019-10-20T16:34:30Z'],
    ['2019-10-20T18:34:30+02:00', undefined, '2019-10-20T16:34:30Z'],
    ['2019:10:20 18:34', undefined, '2019-10-20T18:34:00Z'],
    // A malformed offset does not throw away the date.
    ['2019:10:20 18:34:30', 'garbage', '2019-10-20T18:34:30Z'],
    ['0000:00:00 00:00:00', undefined, null],
    ['    :  :     :  :  ', undefined, null],
    ['2019:02:30 10:00:00', undefined, null],
    ['2019:13:01 10:00:00', undefined, null],
    ['', undefined, null],
  ])('%j with offset %j -> %s', (value, offset, expected) => {
    expect(exifDateToIso(value, offset)).toBe(expected);
  });

  it('ignores values that are not strings (a revived Date would carry the local zone)', () => {
    expect(exifDateToIso(new Date(0), undefined)).toBeNull();
    expect(exifDateToIso(1234, undefined)).toBeNull();
  });
});
