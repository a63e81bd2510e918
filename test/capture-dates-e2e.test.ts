// Capture dates end to end, through the CLI and the emulators, checked from the outside: the
// creation time the Google Photos emulator gives each item (it dates as Google does: the date
// inside the file, else the upload), the pixels and bytes it stored, the file times a folder
// destination holds, and what the Xiaomi emulator deleted.

import { afterAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { runCli, tmpDir, tlsArgs } from './helpers.ts';
import { startGoogleEmulator } from './google-photos-emulator.ts';
import { startOneDriveEmulator } from '../providers/onedrive/emulator/server.ts';
import { readEmulatorState, startEmulator } from '../providers/xiaomi/test-support.ts';
import { exifDate, fixture, headerTimes, motionPhoto, trailingVideo, undatedVideo } from './dated-media.ts';

const TOKEN = 'capture-dates-token-4711';
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers) await c().catch(() => undefined);
});

/** The CLI with its output in one string (stdout, then stderr). */
async function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const run = await runCli(args, { env, timeoutMs: 110_000 });
  return { code: run.code, out: run.stdout + run.stderr };
}

const pixels = async (b: Buffer | string) => {
  const { data, info } = await sharp(b).raw().toBuffer({ resolveWithObject: true });
  return `${info.width}x${info.height}x${info.channels}:${crypto.createHash('sha256').update(data).digest('hex')}`;
};

function put(dir: string, name: string, bytes: Buffer, mtime?: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  if (mtime) fs.utimesSync(file, new Date(mtime), new Date(mtime));
  return file;
}

const undatedPng = () =>
  sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 80, b: 20 } } })
    .png()
    .toBuffer();

function stateRows(file: string) {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare('SELECT name, state, capture_time, capture_source, capture_detail, date_note, copy_sha256, evidence_level, evidence_detail FROM items')
      .all() as Array<Record<string, string | null>>;
  } finally {
    db.close();
  }
}

describe('capture dates survive the move', () => {
  it('Xiaomi to Google Photos: undated JPEG, motion photo, PNG and MP4 get dateTaken written in; deletions only at the required evidence', async () => {
    const t = tmpDir('gb-dates-xg-');
    const seed = path.join(t, 'seed', 'Camera');
    const mp4 = fixture('VID_20230514_101112.mp4');
    const clip = undatedVideo(mp4);
    // The Xiaomi emulator dates a file without EXIF by its file time: that becomes dateTaken.
    const files = {
      'edited.jpg': put(seed, 'edited.jpg', fixture('noexif.jpg'), '2019-07-01T08:11:12Z'),
      'MVIMG_motion.jpg': put(seed, 'MVIMG_motion.jpg', motionPhoto(fixture('noexif.jpg'), mp4), '2019-07-02T09:00:00Z'),
      'clip.mp4': put(seed, 'clip.mp4', clip, '2019-07-03T18:30:00Z'),
      'drawing.png': put(seed, 'drawing.png', await undatedPng(), '2019-07-04T07:00:00Z'),
    };
    const source = Object.fromEntries(Object.entries(files).map(([n, f]) => [n, fs.readFileSync(f)]));
    const xiaomi = await startEmulator(path.join(t, 'xdata'), {
      seed: path.join(t, 'seed'),
      userMeta: { 'edited.jpg': { description: 'First day at the sea' } },
    });
    closers.push(() => xiaomi.close());
    const google = await startGoogleEmulator(TOKEN, [], 'gb-dates-gp-');
    closers.push(() => google.close());
    const stateFile = path.join(t, 'state.db');
    const started = Date.now();
    const run = await cli(
      [
        'migrate',
        '--from',
        'xiaomi',
        '--to',
        'google-photos',
        '--state',
        stateFile,
        '--delete-source',
        '--timezone',
        'Europe/Prague',
        '--verify-wait',
        '60',
        '--report',
        path.join(t, 'report.json'),
      ],
      { ...xiaomi.env, GALLERY_BRIDGE_HOME: path.join(t, 'home'), GOOGLE_PHOTOS_BASE_URL: google.env.GOOGLE_PHOTOS_BASE_URL!, GOOGLE_ACCESS_TOKEN: TOKEN },
    );
    const st = await google.state();
    const items = new Map(st.mediaItems.map((m) => [m.filename, m as typeof m & { creationTime: string }]));
    expect([...items.keys()].sort(), run.out).toEqual(Object.keys(files).sort());
    const stored = (name: string) => fs.readFileSync(path.join(google.data, path.basename(items.get(name)!.file)));

    // Every item dated by dateTaken at Google: the PNG by the eXIf chunk written into it.
    expect(items.get('edited.jpg')!.creationTime).toBe('2019-07-01T08:11:12Z');
    expect(items.get('MVIMG_motion.jpg')!.creationTime).toBe('2019-07-02T09:00:00Z');
    expect(items.get('clip.mp4')!.creationTime).toBe('2019-07-03T18:30:00Z');
    expect(items.get('drawing.png')!.creationTime).toBe('2019-07-04T07:00:00Z');
    // Asked through the API, as a client sees it: the date, not the upload's.
    const png = (await (
      await fetch(`${google.env.GOOGLE_PHOTOS_BASE_URL}/v1/mediaItems/${items.get('drawing.png')!.id}`, { headers: { Authorization: `Bearer ${TOKEN}` } })
    ).json()) as { mediaMetadata: { creationTime: string } };
    expect(png.mediaMetadata.creationTime).toBe('2019-07-04T07:00:00Z');
    expect(Date.parse(png.mediaMetadata.creationTime)).toBeLessThan(started);

    // Xiaomi's caption is the item's description at Google.
    expect((items.get('edited.jpg') as unknown as { description: string }).description).toBe('First day at the sea');

    // Pixels equal the source's; the motion photo's trailing video is byte-identical; the PNG's
    // bytes are the source's with one eXIf chunk after IHDR.
    for (const name of ['edited.jpg', 'MVIMG_motion.jpg', 'drawing.png']) expect(await pixels(stored(name))).toBe(await pixels(source[name]!));
    expect(trailingVideo(stored('MVIMG_motion.jpg')).equals(mp4)).toBe(true);
    const storedPng = stored('drawing.png');
    const exifLen = storedPng.readUInt32BE(33);
    expect(storedPng.toString('latin1', 37, 41)).toBe('eXIf');
    expect(Buffer.concat([storedPng.subarray(0, 33), storedPng.subarray(33 + 12 + exifLen)]).equals(source['drawing.png']!)).toBe(true);
    // The video: same length, different only in the header time fields.
    const v = stored('clip.mp4');
    expect(v.length).toBe(clip.length);
    const times = headerTimes(v);
    expect(times.map((h) => h.box)).toEqual(headerTimes(clip).map((h) => h.box));
    expect(new Set(times.map((h) => h.seconds))).toEqual(new Set([Date.parse('2019-07-03T18:30:00Z') / 1000 + 2082844800]));
    const restored = undatedVideo(v);
    expect(restored.equals(clip)).toBe(true);

    // The state says where each date came from, and the evidence says what was added.
    const rows = new Map(stateRows(stateFile).map((r) => [r.name!, r]));
    expect(rows.get('edited.jpg')).toMatchObject({
      capture_source: 'declared',
      capture_time: '2019-07-01T10:11:12+02:00',
      capture_detail: "Xiaomi's dateTaken",
    });
    expect(rows.get('edited.jpg')!.evidence_detail).toMatch(/^date added: 2019-07-01T10:11:12\+02:00 from Xiaomi's dateTaken; decoded pixels equal/);
    expect(rows.get('drawing.png')!.evidence_detail).toMatch(
      /^date added: 2019-07-04T09:00:00\+02:00 from Xiaomi's dateTaken; decoded pixels equal \(40x30x3\)/,
    );
    expect(rows.get('drawing.png')!.copy_sha256).toBe(crypto.createHash('sha256').update(storedPng).digest('hex'));

    // Deleted at Xiaomi only with bytes or pixels evidence (the default); the video ('received') stays.
    const deleted = readEmulatorState(path.join(t, 'xdata')).deleted;
    const deletedNames = Object.values(deleted)
      .map((d) => d.fileName)
      .sort();
    for (const [name, r] of rows) {
      expect(['bytes', 'pixels'].includes(r.evidence_level ?? '') ? r.state : 'kept', name).toBe(deletedNames.includes(name) ? 'source-deleted' : 'kept');
    }
    expect(deletedNames).toEqual(['MVIMG_motion.jpg', 'drawing.png', 'edited.jpg']);
    expect(rows.get('clip.mp4')!.evidence_level).toBe('received');

    // The report says how many had no date in the file, where it came from, and what is left to the upload.
    const summary = (JSON.parse(fs.readFileSync(path.join(t, 'report.json'), 'utf8')) as { summary: { dates: Record<string, unknown> } }).summary.dates;
    expect(summary).toMatchObject({ timeZone: 'Europe/Prague', examined: 4, inFile: 0, dateAdded: 4, noDateInFile: { total: 4 } });
    expect(summary.datedByUpload).toEqual([]);
    expect(run.out).toMatch(/4 dated from Xiaomi's dateTaken/);
  });

  it('the Google Photos emulator dates a PNG by its eXIf as Google does: the offset applied, OffsetTime when OffsetTimeOriginal is absent', async () => {
    // The file of m-hayabusa/VRCImageHelper#1, as exiftool wrote it then: CreateDate and
    // DateTimeOriginal 2023:11:24 08:27:35, OffsetTime +09:00; Google Photos dated it 23:27 the day before.
    const png = await sharp(await undatedPng())
      .withExif({ IFD0: { Software: 'exiftool' }, IFD2: { DateTimeOriginal: '2023:11:24 08:27:35', CreateDate: '2023:11:24 08:27:35', OffsetTime: '+09:00' } })
      .png()
      .toBuffer();
    const google = await startGoogleEmulator(TOKEN, [], 'gb-dates-gp-png-');
    closers.push(() => google.close());
    const base = google.env.GOOGLE_PHOTOS_BASE_URL!;
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const uploadToken = await (
      await fetch(`${base}/v1/uploads`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/octet-stream', 'X-Goog-Upload-Content-Type': 'image/png', 'X-Goog-Upload-Protocol': 'raw' },
        body: new Uint8Array(png),
      })
    ).text();
    const created = (await (
      await fetch(`${base}/v1/mediaItems:batchCreate`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ newMediaItems: [{ simpleMediaItem: { uploadToken, fileName: 'VRChat.png' } }] }),
      })
    ).json()) as { newMediaItemResults: Array<{ mediaItem: { id: string } }> };
    const id = created.newMediaItemResults[0]!.mediaItem.id;
    const item = (await (await fetch(`${base}/v1/mediaItems/${id}`, { headers: auth })).json()) as { mediaMetadata: { creationTime: string } };
    expect(item.mediaMetadata.creationTime).toBe('2023-11-23T23:27:35Z');
  });

  it('folder to folder: WhatsApp and screenshot names date undated files; file times and --layout date follow the resolved time', async () => {
    const t = tmpDir('gb-dates-ff-');
    const src = path.join(t, 'src');
    put(path.join(src, 'WhatsApp'), 'IMG-20190701-WA0003.jpg', fixture('noexif.jpg'));
    put(path.join(src, 'WhatsApp'), 'VID-20190702-WA0012.mp4', undatedVideo(fixture('VID_20230514_101112.mp4')));
    put(path.join(src, 'Screenshots'), 'Screenshot_2019-07-03-22-15-00-123_com.miui.home.png', await undatedPng());
    const dst = path.join(t, 'dst');
    const run = await cli(
      ['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', path.join(t, 's.db'), '--layout', 'date', '--timezone', 'America/New_York'],
      {},
    );
    expect(run.code, run.out).toBe(0);
    const expectTime = (rel: string, iso: string) => expect(fs.statSync(path.join(dst, rel)).mtime.toISOString()).toBe(new Date(iso).toISOString());
    // Wall clocks read in New York: the date-only WhatsApp name is placed at noon.
    expectTime('2019/07/IMG-20190701-WA0003.jpg', '2019-07-01T12:00:00-04:00');
    expectTime('2019/07/VID-20190702-WA0012.mp4', '2019-07-02T12:00:00-04:00');
    // 22:15 in New York is already July 4th in UTC: the folder follows the wall clock.
    expectTime('2019/07/Screenshot_2019-07-03-22-15-00-123_com.miui.home.png', '2019-07-03T22:15:00-04:00');
    // A folder keeps the bytes: nothing is written into the files.
    expect(fs.readFileSync(path.join(dst, '2019/07/IMG-20190701-WA0003.jpg')).equals(fixture('noexif.jpg'))).toBe(true);
    expect(run.out).toMatch(/2 dated from the file name \(whatsapp pattern\)/);
  });

  it('Xiaomi to OneDrive: fileSystemInfo and the caption carried, --embed-dates writes the JPEG date; favourites reported as not carried', async () => {
    const t = tmpDir('gb-dates-xo-');
    const seed = path.join(t, 'seed', 'Camera');
    put(seed, 'edited.jpg', fixture('noexif.jpg'), '2019-07-01T08:11:12Z');
    const png = await undatedPng();
    put(seed, 'drawing.png', png, '2019-07-04T07:00:00Z');
    const xiaomi = await startEmulator(path.join(t, 'xdata'), {
      seed: path.join(t, 'seed'),
      userMeta: { 'edited.jpg': { description: "Grandma's 80th", isFavorite: true } },
    });
    closers.push(() => xiaomi.close());
    const od = await startOneDriveEmulator(['--port', '0', '--data', path.join(t, 'od'), '--accept-token', TOKEN, ...tlsArgs()]);
    closers.push(() => od.close());
    const run = await cli(
      [
        'migrate',
        '--from',
        'xiaomi',
        '--to',
        'onedrive:/Pictures',
        '--state',
        path.join(t, 's.db'),
        '--embed-dates',
        '--timezone',
        'Europe/Prague',
        '--report',
        path.join(t, 'report.csv'),
      ],
      {
        ...xiaomi.env,
        GALLERY_BRIDGE_HOME: path.join(t, 'home'),
        GRAPH_BASE_URL: od.env.GRAPH_BASE_URL!,
        NODE_EXTRA_CA_CERTS: od.env.NODE_EXTRA_CA_CERTS ?? '',
        ONEDRIVE_ACCESS_TOKEN: TOKEN,
      },
    );
    expect(run.code, run.out).toBe(0);
    const get = async (rel: string) =>
      (await (await fetch(`${od.env.GRAPH_BASE_URL}/me/drive/root:/Pictures/${rel}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()) as {
        fileSystemInfo: Record<string, string>;
        description?: string;
        id: string;
      };
    const jpg = await get('Camera/edited.jpg');
    expect(Date.parse(jpg.fileSystemInfo.createdDateTime!)).toBe(Date.parse('2019-07-01T08:11:12Z'));
    expect(Date.parse(jpg.fileSystemInfo.lastModifiedDateTime!)).toBe(Date.parse('2019-07-01T08:11:12Z'));
    expect(jpg.description).toBe("Grandma's 80th");
    const drawing = await get('Camera/drawing.png');
    expect(Date.parse(drawing.fileSystemInfo.createdDateTime!)).toBe(Date.parse('2019-07-04T07:00:00Z'));
    // The bytes OneDrive holds: the JPEG carries its date, pixels unchanged; the PNG is as it was.
    const stored = (rel: string) => fs.readFileSync(path.join(t, 'od', 'me', 'Pictures', rel));
    expect(await exifDate(stored('Camera/edited.jpg'))).toBe('2019:07:01 10:11:12 +02:00');
    expect(await pixels(stored('Camera/edited.jpg'))).toBe(await pixels(fixture('noexif.jpg')));
    expect(stored('Camera/drawing.png').equals(png)).toBe(true);
    // The favourite mark has nowhere to go: the report says so.
    const csv = fs.readFileSync(path.join(t, 'report.csv'), 'utf8');
    expect(csv.split('\n').find((l) => l.includes('edited.jpg'))).toMatch(/favorite mark/);
  });

  it('plan says what will be dated how; --keep-bytes uploads files unchanged and reports them as dated by upload', async () => {
    const t = tmpDir('gb-dates-fg-');
    const src = path.join(t, 'src');
    put(path.join(src, 'WhatsApp'), 'IMG-20190701-WA0003.jpg', fixture('noexif.jpg'));
    const png = await undatedPng();
    put(path.join(src, 'WhatsApp'), 'sticker.png', png, '2020-02-02T12:00:00Z');
    put(path.join(src, 'Camera'), 'IMG_20180725_163423.jpg', fixture('IMG_20180725_163423.jpg'));
    const google = await startGoogleEmulator(TOKEN, [], 'gb-dates-fg-');
    closers.push(() => google.close());
    const env = { GALLERY_BRIDGE_HOME: path.join(t, 'home'), GOOGLE_PHOTOS_BASE_URL: google.env.GOOGLE_PHOTOS_BASE_URL!, GOOGLE_ACCESS_TOKEN: TOKEN };
    const stateFile = path.join(t, 's.db');
    const plan = await cli(['plan', '--from', `folder:${src}`, '--to', 'google-photos', '--state', stateFile, '--json', '--timezone', 'UTC'], env);
    expect(plan.code, plan.out).toBe(0);
    const dates = (JSON.parse(plan.out.split('\n').find((l) => l.startsWith('{'))!) as { dates: Record<string, unknown> }).dates;
    expect(dates).toEqual({
      opened: 3,
      inFile: 1,
      noDateInFile: { total: 2, from: { 'the file name (whatsapp pattern)': 1, "the file's modification time (nothing better found)": 1 } },
      dateAdded: 2,
      datedByUpload: { items: 0, why: {} },
    });

    const run = await cli(
      ['migrate', '--from', `folder:${src}`, '--to', 'google-photos', '--state', stateFile, '--keep-bytes', '--timezone', 'UTC', '--verify-wait', '60'],
      env,
    );
    expect(run.code, run.out).toBe(0);
    const st = await google.state();
    const items = new Map(st.mediaItems.map((m) => [m.filename, m as typeof m & { creationTime: string | null }]));
    // Unchanged bytes: the WhatsApp image has no date inside, so the service dates it by its upload.
    expect(fs.readFileSync(path.join(google.data, path.basename(items.get('IMG-20190701-WA0003.jpg')!.file))).equals(fixture('noexif.jpg'))).toBe(true);
    expect(items.get('IMG-20190701-WA0003.jpg')!.creationTime).toBeNull();
    expect(items.get('IMG_20180725_163423.jpg')!.creationTime).toBe('2018-07-25T16:34:23Z');
    const rows = new Map(stateRows(stateFile).map((r) => [r.name!, r]));
    expect(rows.get('IMG-20190701-WA0003.jpg')!.date_note).toBe(
      'will be dated by upload: the file has no date and --keep-bytes keeps it that way (the file name (whatsapp pattern) says 2019-07-01T12:00:00+00:00)',
    );
    expect(run.out).toMatch(/2 will be dated by upload: the file has no date and --keep-bytes keeps it that way/);
  });

  it('a kill while dated copies are being committed, then a rerun: each item once, each dated by its name', async () => {
    const t = tmpDir('gb-dates-kill-');
    const src = path.join(t, 'src', 'WhatsApp');
    const names: string[] = [];
    for (let i = 1; i <= 12; i++) {
      const name = `IMG-201907${String(i).padStart(2, '0')}-WA00${String(i).padStart(2, '0')}.jpg`;
      put(
        src,
        name,
        await sharp({ create: { width: 32 + i, height: 24, channels: 3, background: { r: 10 * i, g: 100, b: 200 - 10 * i } } })
          .jpeg()
          .toBuffer(),
      );
      names.push(name);
    }
    put(src, 'VID-20190720-WA0099.mp4', undatedVideo(fixture('VID_20230514_101112.mp4')));
    const google = await startGoogleEmulator(TOKEN, ['--latency-ms', '150', '--video-processing-ms', '0'], 'gb-dates-kill-');
    closers.push(() => google.close());
    const env = { GALLERY_BRIDGE_HOME: path.join(t, 'home'), GOOGLE_PHOTOS_BASE_URL: google.env.GOOGLE_PHOTOS_BASE_URL!, GOOGLE_ACCESS_TOKEN: TOKEN };
    const stateFile = path.join(t, 's.db');
    const args = [
      'migrate',
      '--from',
      `folder:${path.join(t, 'src')}`,
      '--to',
      'google-photos',
      '--state',
      stateFile,
      '--timezone',
      'UTC',
      '--concurrency',
      '8',
      '--verify-wait',
      '60',
    ];
    // First run: killed as soon as a batchCreate has started.
    const first = await runCli(args, { env, killWhen: async () => (await google.state()).requests.batchCreateStarted! >= 1 });
    expect(first.killed).toBe(true);
    const again = await cli(args, env);
    expect(again.code, again.out).toBe(0);
    const st = await google.state();
    const byName = new Map<string, Array<{ creationTime: string | null }>>();
    for (const m of st.mediaItems) byName.set(m.filename, [...(byName.get(m.filename) ?? []), m as unknown as { creationTime: string | null }]);
    expect([...byName.keys()].sort()).toEqual([...names, 'VID-20190720-WA0099.mp4'].sort());
    for (const [name, list] of byName) {
      expect(list, name).toHaveLength(1);
      const day = /-(\d{4})(\d{2})(\d{2})-WA/.exec(name)!;
      expect(list[0]!.creationTime, name).toBe(`${day[1]}-${day[2]}-${day[3]}T12:00:00Z`);
    }
    expect(stateRows(stateFile).every((r) => r.state === 'verified' && !!r.copy_sha256)).toBe(true);
  });
});
