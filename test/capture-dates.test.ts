import { describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import exifr from 'exifr';
import { Readable, PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import { dateFromFileName, FILE_NAME_PATTERNS } from '../src/media/filename-date.ts';
import { resolveCaptureTime } from '../src/media/capture-time.ts';
import { planJpegDate, Splice } from '../src/media/jpeg-date.ts';
import { Mp4TimeSetter } from '../src/media/mp4-date.ts';
import { planDatedCopy } from '../src/media/dated-copy.ts';
import { exifDateTime, isoWithOffset, offsetAt, wallToInstant } from '../src/media/zone.ts';
import { readMvhdAt } from '../src/media/mvhd.ts';
import { exifDate, fixture, headerTimes, motionPhoto, trailingVideo, undatedVideo } from './dated-media.ts';

const NOW = Date.UTC(2026, 0, 1);

// Real file names, as the apps write them, and the wall clock (or instant) each one carries.
const NAME_TABLE: Array<[string, string | null, string | null]> = [
  // name, expected wall time (local, no zone) or instant (…Z), pattern
  ['IMG_20190701_101112.jpg', '2019-07-01T10:11:12', 'camera'],
  ['VID_20190701_101112.mp4', '2019-07-01T10:11:12', 'camera'],
  ['IMG_20190701_101112_1.jpg', '2019-07-01T10:11:12', 'camera'],
  ['IMG_20180725_163423.jpg', '2018-07-25T16:34:23', 'camera'],
  ['MVIMG_20190701_101112.jpg', '2019-07-01T10:11:12', 'camera'],
  ['PANO_20190701_101112.jpg', '2019-07-01T10:11:12', 'camera'],
  ['PORTRAIT_20190701_101112.jpg', '2019-07-01T10:11:12', 'camera'],
  ['20190701_101112.jpg', '2019-07-01T10:11:12', 'camera'],
  ['20190701_101112(0).jpg', '2019-07-01T10:11:12', 'camera'],
  ['IMG_20190701_101112_HDR.jpg', '2019-07-01T10:11:12', 'camera'],
  ['PXL_20190701_081112345.jpg', '2019-07-01T08:11:12Z', 'pixel'],
  ['PXL_20190701_081112345.NIGHT.jpg', '2019-07-01T08:11:12Z', 'pixel'],
  ['IMG-20190701-WA0003.jpg', '2019-07-01T12:00:00', 'whatsapp'],
  ['VID-20190701-WA0012.mp4', '2019-07-01T12:00:00', 'whatsapp'],
  ['Screenshot_2019-07-01-10-11-12-123_com.miui.home.png', '2019-07-01T10:11:12', 'miui-screenshot'],
  ['Screenshot_2019-07-01-10-11-12.png', '2019-07-01T10:11:12', 'miui-screenshot'],
  ['Screenshot_20190701-101112.png', '2019-07-01T10:11:12', 'android-screenshot'],
  ['Screenshot_20190701-101112_Chrome.jpg', '2019-07-01T10:11:12', 'android-screenshot'],
  ['Screenshot 2019-07-01 at 10.11.12.png', '2019-07-01T10:11:12', 'macos-screenshot'],
  ['Screen Shot 2019-07-01 at 10.11.12 PM.png', '2019-07-01T22:11:12', 'macos-screenshot'],
  ['Screen Shot 2019-07-01 at 12.11.12 AM.png', '2019-07-01T00:11:12', 'macos-screenshot'],
  ['Screenshot from 2019-07-01 10-11-12.png', '2019-07-01T10:11:12', 'gnome-screenshot'],
  ['Screenshot 2019-07-01 101112.png', '2019-07-01T10:11:12', 'windows-screenshot'],
  ['photo_2019-07-01_10-11-12.jpg', '2019-07-01T10:11:12', 'telegram'],
  ['video_2019-07-01_10-11-12.mp4', '2019-07-01T10:11:12', 'telegram'],
  ['signal-2019-07-01-101112.jpg', '2019-07-01T10:11:12', 'signal'],
  ['signal-2019-07-01-10-11-12-123.jpg', '2019-07-01T10:11:12', 'signal'],
  ['mmexport1562000000000.jpg', '2019-07-01T16:53:20Z', 'epoch-ms'],
  ['wx_camera_1562000000000.jpg', '2019-07-01T16:53:20Z', 'epoch-ms'],
  ['FB_IMG_1562000000000.jpg', '2019-07-01T16:53:20Z', 'epoch-ms'],
  ['received_1562000000000.jpeg', '2019-07-01T16:53:20Z', 'epoch-ms'],
  ['2019-07-01 10.11.12.jpg', '2019-07-01T10:11:12', 'dropbox'],
  ['IMG_20190701.jpg', '2019-07-01T12:00:00', 'compact-date'],
  ['albums/Camera/IMG_20190701_101112.jpg', '2019-07-01T10:11:12', 'camera'],
  // Not dates: counters, impossible dates, the future, names without one.
  ['IMG_1234.JPG', null, null],
  ['DSC01234.JPG', null, null],
  ['noexif.jpg', null, null],
  ['IMG_20190231_101112.jpg', null, null],
  ['IMG_20190701_251112.jpg', null, null],
  ['IMG_19800701_101112.jpg', null, null],
  ['IMG_20990701_101112.jpg', null, null],
  ['mmexport1900000000000.jpg', null, null],
  ['IMG-20190799-WA0003.jpg', null, null],
  ['Screenshot 2019-07-01 at 13.11.12 PM.png', null, null],
];

describe('file-name dates', () => {
  it.each(NAME_TABLE)('%s', (name, expected, pattern) => {
    const d = dateFromFileName(name, NOW);
    if (expected === null) {
      expect(d).toBeNull();
      return;
    }
    expect(d?.pattern).toBe(pattern);
    if (expected.endsWith('Z')) {
      expect(d?.clock).toBe('instant');
      expect(new Date((d as { instantMs: number }).instantMs).toISOString().replace('.000Z', 'Z')).toBe(expected);
    } else {
      expect(d?.clock).toBe('wall');
      const w = (d as { wall: { year: number; month: number; day: number; hour: number; minute: number; second: number } }).wall;
      const p = (n: number) => String(n).padStart(2, '0');
      expect(`${w.year}-${p(w.month)}-${p(w.day)}T${p(w.hour)}:${p(w.minute)}:${p(w.second)}`).toBe(expected);
    }
  });

  it('every pattern in the table is exercised by a real example', () => {
    const used = new Set(NAME_TABLE.map((r) => r[2]).filter(Boolean));
    expect([...FILE_NAME_PATTERNS].filter((p) => !used.has(p))).toEqual([]);
  });
});

describe('time zones', () => {
  it('reads wall clocks in a zone, across daylight saving', () => {
    expect(offsetAt('Europe/Prague', Date.UTC(2019, 6, 1))).toBe(120);
    expect(offsetAt('Europe/Prague', Date.UTC(2019, 0, 1))).toBe(60);
    expect(offsetAt('+05:30', 0)).toBe(330);
    // Offsets of half hours, west of UTC, and local mean times in seconds (rounded to the nearest minute, a half up).
    expect(offsetAt('America/St_Johns', Date.UTC(2019, 0, 1))).toBe(-210);
    expect(offsetAt('UTC', Date.UTC(2019, 6, 1))).toBe(0);
    expect(offsetAt('Europe/Prague', Date.UTC(1850, 0, 1))).toBe(58); // +00:57:44
    expect(offsetAt('Africa/Monrovia', Date.UTC(1960, 0, 1))).toBe(-44); // -00:44:30
    const { ms, offset } = wallToInstant('America/New_York', { year: 2019, month: 7, day: 1, hour: 10, minute: 11, second: 12 });
    expect(isoWithOffset(ms, offset)).toBe('2019-07-01T10:11:12-04:00');
    expect(exifDateTime(ms, offset)).toEqual({ dateTime: '2019:07:01 10:11:12', offset: '-04:00' });
  });
});

describe('capture-time resolution order', () => {
  const base = { embedded: null, declared: null, fileName: 'x.jpg', fileModified: null, zone: 'Europe/Prague', nowMs: NOW };
  it("the file's own EXIF date with its offset comes first", () => {
    const r = resolveCaptureTime({
      ...base,
      embedded: { kind: 'exif', wall: { year: 2019, month: 7, day: 1, hour: 10, minute: 11, second: 12 }, offset: 180 },
      declared: '2020-01-01T00:00:00Z',
      fileName: 'IMG_20210101_000000.jpg',
    });
    expect(r).toMatchObject({ time: '2019-07-01T10:11:12+03:00', source: 'exif', offsetFrom: 'file' });
  });
  it('EXIF without an offset is read in --timezone', () => {
    const r = resolveCaptureTime({
      ...base,
      embedded: { kind: 'exif', wall: { year: 2019, month: 7, day: 1, hour: 10, minute: 11, second: 12 }, offset: null },
    });
    expect(r).toMatchObject({ time: '2019-07-01T10:11:12+02:00', source: 'exif', offsetFrom: 'timezone' });
  });
  it('a video container time (UTC) is shown in --timezone', () => {
    const r = resolveCaptureTime({ ...base, embedded: { kind: 'container', iso: '2019-07-01T08:11:12Z' } });
    expect(r).toMatchObject({ time: '2019-07-01T10:11:12+02:00', source: 'container' });
  });
  it("then the source's declared date, named", () => {
    const r = resolveCaptureTime({
      ...base,
      declared: '2019-07-01T08:11:12.000Z',
      declaredLabel: "Xiaomi's dateTaken",
      fileName: 'IMG-20200101-WA0001.jpg',
      fileModified: '2024-01-01T00:00:00Z',
    });
    expect(r).toMatchObject({ time: '2019-07-01T10:11:12+02:00', source: 'declared', detail: "Xiaomi's dateTaken" });
  });
  it('then the file name, then the modification time, then nothing', () => {
    expect(resolveCaptureTime({ ...base, fileName: 'IMG-20190701-WA0003.jpg', fileModified: '2024-01-01T00:00:00Z' })).toMatchObject({
      time: '2019-07-01T12:00:00+02:00',
      source: 'filename',
    });
    expect(resolveCaptureTime({ ...base, fileModified: '2024-01-01T00:00:00Z' })).toMatchObject({ time: '2024-01-01T01:00:00+01:00', source: 'mtime' });
    expect(resolveCaptureTime(base)).toMatchObject({ time: null, source: 'none' });
  });
});

async function streamThrough(src: Buffer, t: NodeJS.ReadWriteStream, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => parts.push(c));
  const chunks = function* () {
    for (let i = 0; i < src.length; i += chunk) yield src.subarray(i, i + chunk);
  };
  await pipeline(Readable.from(chunks()), t as never, sink);
  return Buffer.concat(parts);
}

const pixels = async (b: Buffer) =>
  crypto
    .createHash('sha256')
    .update(await sharp(b).raw().toBuffer())
    .digest('hex');

describe('JPEG: the date goes into an EXIF segment, not a pixel changes', () => {
  it('inserts EXIF into a JPEG that has none, streamed in any chunk size', async () => {
    const src = fixture('noexif.jpg');
    expect(await exifDate(src)).toBeNull();
    const plan = planJpegDate(src.subarray(0, 1 << 20), '2019:07:01 10:11:12', '+02:00');
    if (!('edit' in plan)) throw new Error(plan.skip);
    expect(plan.how).toBe('inserted');
    for (const chunk of [1, 7, 4096, 1 << 20]) {
      const out = await streamThrough(src, new Splice(plan.edit), chunk);
      expect(out.length).toBe(src.length + plan.edit.insert.length);
      expect(await exifDate(out)).toBe('2019:07:01 10:11:12 +02:00');
      expect(out.subarray(plan.edit.at + plan.edit.insert.length).equals(src.subarray(plan.edit.at))).toBe(true);
      expect(out.subarray(0, plan.edit.at).equals(src.subarray(0, plan.edit.at))).toBe(true);
    }
    const out = await streamThrough(src, new Splice(plan.edit), 65536);
    expect(await pixels(out)).toBe(await pixels(src));
  });

  it('completes an EXIF block that lacks the date, keeping every other tag', async () => {
    const src = await sharp(fixture('noexif.jpg'))
      .withExif({ IFD0: { Make: 'Xiaomi', Model: 'Redmi Note 8', Software: 'editor' } })
      .jpeg()
      .toBuffer();
    const exifr = (await import('exifr')).default;
    const before = await exifr.parse(src, { reviveValues: false });
    expect(before.DateTimeOriginal).toBeUndefined();
    const plan = planJpegDate(src, '2019:07:01 10:11:12', '+02:00');
    if (!('edit' in plan)) throw new Error(plan.skip);
    expect(plan.how).toBe('completed');
    const out = await streamThrough(src, new Splice(plan.edit), 333);
    const after = await exifr.parse(out, { reviveValues: false });
    expect(after).toMatchObject({
      Make: 'Xiaomi',
      Model: 'Redmi Note 8',
      Software: 'editor',
      DateTimeOriginal: '2019:07:01 10:11:12',
      OffsetTimeOriginal: '+02:00',
    });
    expect(await pixels(out)).toBe(await pixels(src));
  });

  it('completes an EXIF with an Exif sub-IFD but no date, and keeps the thumbnail and GPS', async () => {
    // f6t.jpg carries an IFD1 thumbnail; drop its dates to make an undated EXIF with a sub-IFD.
    const src = Buffer.from(fixture('IMG_20180725_163423.jpg'));
    const exifr = (await import('exifr')).default;
    for (const tag of ['2018:07:25 16:34:23']) {
      for (let at = src.indexOf(tag); at >= 0 && at < 65536; at = src.indexOf(tag, at + 1)) src.write('0000:00:00 00:00:00', at, 'latin1');
    }
    const before = await exifr.parse(src, { reviveValues: false });
    const plan = planJpegDate(src.subarray(0, 1 << 20), '2018:07:25 16:34:23', '+02:00');
    if (!('edit' in plan)) throw new Error(plan.skip);
    expect(plan.how).toBe('completed');
    const out = await streamThrough(src, new Splice(plan.edit), 65536);
    const after = await exifr.parse(out, { reviveValues: false });
    expect(after.DateTimeOriginal).toBe('2018:07:25 16:34:23');
    expect(after.OffsetTimeOriginal).toBe('+02:00');
    for (const k of ['Make', 'Model', 'GPSLatitude', 'GPSLongitude', 'ExposureTime', 'ISO', 'FNumber']) expect(after[k]).toEqual(before[k]);
    expect(Buffer.compare(Buffer.from((await exifr.thumbnail(out))!), Buffer.from((await exifr.thumbnail(src))!))).toBe(0);
  });

  it("keeps a motion photo's trailing video byte-identical and findable from the end", async () => {
    const mp4 = fixture('VID_20230514_101112.mp4');
    const src = motionPhoto(fixture('noexif.jpg'), mp4);
    const copy = planDatedCopy({
      format: 'jpeg',
      head: src.subarray(0, 1 << 20),
      size: src.length,
      time: '2019-07-01T10:11:12+02:00',
      from: "Xiaomi's dateTaken",
      datesByFile: true,
    });
    if ('skip' in copy) throw new Error(copy.skip);
    const out: Buffer[] = [];
    copy.transform.on('data', (c: Buffer) => {
      out.push(c);
      copy.check.copy(c);
    });
    for (let i = 0; i < src.length; i += 1000) {
      const c = src.subarray(i, i + 1000);
      copy.check.source(c);
      copy.transform.write(c);
    }
    copy.transform.end();
    await new Promise((r) => copy.transform.on('end', r));
    const b = Buffer.concat(out);
    expect(b.length).toBe(copy.size);
    expect(trailingVideo(b).equals(mp4)).toBe(true);
    expect(await exifDate(b)).toBe('2019:07:01 10:11:12 +02:00');
    expect(await copy.check.verdict()).toMatchObject({ ok: true, detail: expect.stringMatching(/decoded pixels equal/) });
  });

  it('the local check catches a copy that differs elsewhere', async () => {
    const src = fixture('noexif.jpg');
    const copy = planDatedCopy({ format: 'jpeg', head: src, size: src.length, time: '2019-07-01T10:11:12+02:00', from: 'x', datesByFile: true });
    if ('skip' in copy) throw new Error(copy.skip);
    const bytes = await streamThrough(src, copy.transform, 4096);
    bytes[bytes.length - 100]! ^= 0xff;
    copy.check.source(src);
    copy.check.copy(bytes);
    const v = await copy.check.verdict();
    expect(v.ok).toBe(false);
    expect(v.detail).toMatch(/outside the EXIF segment/);
  });

  it('refuses what it cannot change safely, with a reason', () => {
    expect(planJpegDate(Buffer.from('<html>'), '2019:07:01 10:11:12', '+02:00')).toEqual({ skip: 'not a JPEG' });
    const src = fixture('noexif.jpg');
    expect(planJpegDate(src.subarray(0, 10), '2019:07:01 10:11:12', '+02:00')).toMatchObject({ skip: expect.stringMatching(/first MiB/) });
    expect(planDatedCopy({ format: 'webp', head: src, size: 1, time: '2019-07-01T10:11:12+02:00', from: 'x', datesByFile: true })).toMatchObject({
      skip: expect.stringMatching(/webp files keep their bytes/),
    });
    expect(planDatedCopy({ format: 'png', head: src, size: 1, time: '2019-07-01T10:11:12+02:00', from: 'x', datesByFile: false })).toMatchObject({
      skip: expect.stringMatching(/png files get a date written only for a destination that dates by the file/),
    });
  });
});

describe('PNG: an eXIf chunk after IHDR, pixels untouched', () => {
  const screenshot = () =>
    sharp({ create: { width: 64, height: 48, channels: 4, background: { r: 10, g: 120, b: 200, alpha: 0.5 } } })
      .png()
      .toBuffer();

  /** The chunk types of a PNG, in order, each with whether its CRC is right (checked here, not by our writer). */
  function chunks(b: Buffer): Array<{ type: string; crcOk: boolean }> {
    const out: Array<{ type: string; crcOk: boolean }> = [];
    for (let o = 8; o + 12 <= b.length; ) {
      const len = b.readUInt32BE(o);
      const type = b.toString('latin1', o + 4, o + 8);
      const crc = b.readUInt32BE(o + 8 + len);
      out.push({ type, crcOk: zlib.crc32(b.subarray(o + 4, o + 8 + len)) === crc });
      o += 12 + len;
    }
    return out;
  }

  it('writes DateTimeOriginal, CreateDate and both offsets as a reader of PNG eXIf sees them, and the check proves pixels equal', async () => {
    const src = await screenshot();
    const copy = planDatedCopy({ format: 'png', head: src, size: src.length, time: '2019-07-03T22:15:00-04:00', from: 'the file name', datesByFile: true });
    if ('skip' in copy) throw new Error(copy.skip);
    expect(copy.format).toBe('png');
    const out = await streamThrough(src, copy.transform, 37);
    expect(out.length).toBe(copy.size);
    expect(chunks(out)).toEqual([{ type: 'IHDR', crcOk: true }, { type: 'eXIf', crcOk: true }, ...chunks(src).slice(1)]);
    const tags = await exifr.parse(out, { reviveValues: false, tiff: true, exif: true });
    expect(tags).toMatchObject({
      DateTimeOriginal: '2019:07:03 22:15:00',
      CreateDate: '2019:07:03 22:15:00',
      OffsetTimeOriginal: '-04:00',
      OffsetTime: '-04:00',
    });
    expect(await pixels(out)).toBe(await pixels(src));
    copy.check.source(src);
    copy.check.copy(out);
    expect(await copy.check.verdict()).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^decoded pixels equal \(64x48x4\); only the EXIF date was added/),
    });
  });

  it('the check catches a copy whose image data differs, and a PNG with its own eXIf is left alone', async () => {
    const src = await screenshot();
    const copy = planDatedCopy({ format: 'png', head: src, size: src.length, time: '2019-07-03T22:15:00-04:00', from: 'x', datesByFile: true });
    if ('skip' in copy) throw new Error(copy.skip);
    const out = await streamThrough(src, copy.transform, 4096);
    out[out.length - 20]! ^= 0x01;
    copy.check.source(src);
    copy.check.copy(out);
    expect(await copy.check.verdict()).toMatchObject({ ok: false, detail: expect.stringMatching(/outside the EXIF segment/) });
    const withExif = await sharp(src)
      .withExif({ IFD0: { Software: 'x' } })
      .png()
      .toBuffer();
    expect(chunks(withExif).map((c) => c.type)).toContain('eXIf');
    expect(planDatedCopy({ format: 'png', head: withExif, size: withExif.length, time: '2019-07-03T22:15:00-04:00', from: 'x', datesByFile: true })).toEqual({
      skip: 'the PNG already has an eXIf chunk (its EXIF is left as it is)',
    });
  });
});

describe('MP4/MOV: creation times set in place as the bytes stream', () => {
  const T = Date.UTC(2019, 6, 1, 8, 11, 12);
  const QT = Math.floor(T / 1000) + 2082844800;

  it.each([
    ['moov after mdat (MP4)', 'VID_20230514_101112.mp4'],
    ['moov after mdat (MOV)', 'VID_20211224_183000.mov'],
    ['moov before mdat', 'QuickTime-stub.mov'],
  ])('%s', async (_label, name) => {
    const src = undatedVideo(fixture(name));
    expect(headerTimes(src).every((h) => h.seconds === 0)).toBe(true);
    for (const chunk of [1, 13, 65536]) {
      const setter = new Mp4TimeSetter(T);
      const out = await streamThrough(src, setter, chunk);
      expect(out.length).toBe(src.length);
      expect(headerTimes(out).every((h) => h.seconds === QT)).toBe(true);
      // Only the time fields changed.
      let diff = 0;
      for (let i = 0; i < src.length; i++) if (src[i] !== out[i]) diff++;
      expect(diff).toBeGreaterThan(0);
      expect(setter.patches.length).toBe(headerTimes(src).length);
      for (let i = 0; i < src.length; i++) {
        if (src[i] !== out[i]) expect(setter.patches.some((p) => i >= p.at && i < p.at + p.width)).toBe(true);
      }
      expect(await readMvhdAt(async (o, l) => out.subarray(o, o + l), out.length)).toBe('2019-07-01T08:11:12Z');
    }
  });

  it('leaves a video that already has a creation time alone', async () => {
    const src = fixture('VID_20230514_101112.mp4');
    const setter = new Mp4TimeSetter(T);
    const out = await streamThrough(src, setter, 4096);
    expect(out.equals(src)).toBe(true);
    expect(setter.patches).toEqual([]);
  });

  it('the local check accepts the header times and nothing else', async () => {
    const src = undatedVideo(fixture('VID_20230514_101112.mp4'));
    const copy = planDatedCopy({ format: 'mp4', head: src, size: src.length, time: '2019-07-01T10:11:12+02:00', from: 'the file name', datesByFile: true });
    if ('skip' in copy) throw new Error(copy.skip);
    copy.transform.on('data', (c: Buffer) => copy.check.copy(c));
    for (let i = 0; i < src.length; i += 5000) {
      const c = src.subarray(i, i + 5000);
      copy.check.source(c);
      copy.transform.write(c);
    }
    copy.transform.end();
    await new Promise((r) => copy.transform.on('end', r));
    expect(await copy.check.verdict()).toMatchObject({ ok: true, detail: expect.stringMatching(/only the creation_time of mvhd, tkhd, mdhd/) });
  });
});
