// The Google Photos destination against its emulator over loopback, driven the way the engine
// drives it (refuse, prepareContainer, upload, commit, verify), and checked from the outside:
// the bytes the emulator stored, its albums and its request counters.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import exifr from 'exifr';
import { googlePhotosProvider } from '../providers/google-photos/index.ts';
import type { Destination, Hashes, ItemFacts, ProviderContext, ProviderStore, SessionSlot, SourceItem, Staged } from '../providers/types.ts';
import { RejectedError, StopRunError } from '../providers/types.ts';
import { probeFacts } from '../src/engine/facts.ts';
import { MvhdScanner } from '../src/media/mvhd.ts';
import { FIXTURES, tmpDir } from './helpers.ts';
import { memorySessionSlot, memoryStore, quietLog } from './helpers/provider-fakes.ts';
import { startGoogleEmulator, type Emu } from './google-photos-emulator.ts';

const TOKEN = 'test-access-token-123456';

const startEmu = (extra: string[] = []): Promise<Emu> => startGoogleEmulator(TOKEN, ['--video-processing-ms', '300', ...extra]);

function ctxFor(emu: Emu, opts: { store?: ProviderStore; env?: Record<string, string>; home?: string } = {}): ProviderContext {
  return {
    arg: '',
    home: opts.home ?? tmpDir('gp-home-'),
    account: 'default',
    env: { GOOGLE_ACCESS_TOKEN: TOKEN, GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!, ...opts.env },
    options: {},
    store: opts.store ?? memoryStore(),
    log: quietLog,
  };
}

interface Prepared {
  item: SourceItem;
  facts: ItemFacts;
  hashes: Hashes;
  bytes: Buffer;
}

async function prepare(file: string | { name: string; bytes: Buffer }, albumName: string | null = null, name?: string): Promise<Prepared> {
  const bytes = typeof file === 'string' ? fs.readFileSync(path.join(FIXTURES, file)) : file.bytes;
  const n = name ?? (typeof file === 'string' ? file : file.name);
  const item: SourceItem = { id: n, name: n, albumId: albumName, albumName, size: bytes.length, kind: /\.(mp4|mov)$/i.test(n) ? 'video' : 'image' };
  const scanner = new MvhdScanner();
  scanner.push(bytes);
  const { facts } = await probeFacts(item, bytes.subarray(0, 1024 * 1024), scanner.result(), null);
  const h = (a: string) => crypto.createHash(a).update(bytes).digest('hex');
  return { item, facts, bytes, hashes: { sha1: h('sha1'), sha256: h('sha256'), quickXor: '', size: bytes.length } };
}

function chunked(buf: Buffer, size = 64 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let o = 0; o < buf.length; o += size) parts.push(buf.subarray(o, o + size));
  return Readable.from(parts);
}

async function stage(
  dest: Destination,
  p: Prepared,
  session: SessionSlot = memorySessionSlot(),
  body?: Readable,
): Promise<{ staged: Staged; container: string }> {
  expect(dest.refuse?.(p.item, p.facts) ?? null).toBeNull();
  const container = await dest.prepareContainer(p.item, p.facts);
  const staged = await dest.upload({
    item: p.item,
    facts: p.facts,
    container,
    name: p.item.name,
    size: p.bytes.length,
    body: body ?? chunked(p.bytes),
    session,
    signal: new AbortController().signal,
  });
  return { staged, container };
}

async function commit(dest: Destination, list: Array<{ p: Prepared; staged: Staged; container: string }>) {
  return dest.commit(
    list.map(({ p, staged, container }) => ({
      staged,
      hashes: p.hashes,
      input: { item: p.item, facts: p.facts, container, name: p.item.name, size: p.bytes.length, session: memorySessionSlot() },
    })),
  );
}

async function verifyUntilDone(dest: Destination, p: Prepared, destId: string, maxMs = 10_000) {
  const until = Date.now() + maxMs;
  for (;;) {
    const [r] = await dest.verify([{ destId, item: p.item, facts: p.facts, hashes: p.hashes, size: p.bytes.length }]);
    if (r!.outcome !== 'pending' || Date.now() > until) return r!;
    await new Promise((res) => setTimeout(res, Math.min(r!.retryAfterMs, 500)));
  }
}

async function migrateOne(dest: Destination, file: string, albumName: string | null = null) {
  const p = await prepare(file, albumName);
  const s = await stage(dest, p);
  const [res] = await commit(dest, [{ p, ...s }]);
  return { p, res: res!, ...s };
}

describe('google-photos destination against the emulator', () => {
  let emu: Emu;
  let dest: Destination;
  let ctx: ProviderContext;

  beforeAll(async () => {
    emu = await startEmu();
    ctx = ctxFor(emu);
    dest = await googlePhotosProvider.createDestination!(ctx);
  });
  afterAll(async () => {
    await dest.close?.();
    await emu.close();
  });

  it('uploads a GPS JPEG in one raw request, stores it byte for byte, and verifies it at the pixels level', async () => {
    const before = await emu.state();
    const { p, res } = await migrateOne(dest, 'IMG_20180725_163423.jpg');
    expect(res.outcome).toBe('created');
    const destId = (res as { destId: string }).destId;
    const after = await emu.state();
    expect((after.requests.uploads ?? 0) - (before.requests.uploads ?? 0)).toBe(1);
    const stored = after.mediaItems.find((m) => m.id === destId)!;
    expect(path.basename(stored.file)).toBe(`${destId}-IMG_20180725_163423.jpg`);
    expect(fs.readFileSync(path.join(emu.data, path.basename(stored.file))).equals(p.bytes)).toBe(true);
    const v = await verifyUntilDone(dest, p, destId);
    expect(v).toMatchObject({ outcome: 'verified', evidence: { level: 'pixels' } });
  });

  it('serves =d without the location: other bytes, same EXIF date, no GPS', async () => {
    const { res } = await migrateOne(dest, 'canon-dslr.jpg');
    const id = (res as { destId: string }).destId;
    const gps = await migrateOne(dest, 'png_with_exif_and_gps.png');
    const pngId = (gps.res as { destId: string }).destId;
    const r = await fetch(`${emu.env.GOOGLE_PHOTOS_BASE_URL}/v1/mediaItems:batchGet?mediaItemIds=${id}&mediaItemIds=${pngId}`, {
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    const body = (await r.json()) as { mediaItemResults: Array<{ mediaItem: { baseUrl: string } }> };
    const png = Buffer.from(await (await fetch(`${body.mediaItemResults[1]!.mediaItem.baseUrl}=d`)).arrayBuffer());
    expect(png.equals(gps.p.bytes)).toBe(false);
    const tags = await exifr.parse(png, { gps: true });
    expect(tags?.latitude).toBeUndefined();
    expect(tags?.DateTimeOriginal).toBeTruthy();
    const v = await verifyUntilDone(dest, gps.p, pngId);
    expect(v).toMatchObject({ outcome: 'verified', evidence: { level: 'pixels' } });
  });

  it('verifies a JPEG without location at the bytes level', async () => {
    const { p, res } = await migrateOne(dest, 'noexif.jpg');
    const v = await verifyUntilDone(dest, p, (res as { destId: string }).destId);
    expect(v).toMatchObject({ outcome: 'verified', evidence: { level: 'bytes' } });
  });

  it('verifies a HEIC (not decodable with prebuilt sharp) at the received level', async () => {
    const { p, res } = await migrateOne(dest, 'heic-iphone7.heic');
    expect(res.outcome).toBe('created');
    const v = await verifyUntilDone(dest, p, (res as { destId: string }).destId);
    expect(v).toMatchObject({ outcome: 'verified', evidence: { level: 'received' } });
  });

  it('sends a video resumably; it is pending while PROCESSING, then received', async () => {
    const before = await emu.state();
    const { p, res } = await migrateOne(dest, 'VID_20230514_101112.mp4');
    const after = await emu.state();
    expect((after.requests.uploads ?? 0) - (before.requests.uploads ?? 0)).toBe(2); // start, then upload+finalize
    const id = (res as { destId: string }).destId;
    const [first] = await dest.verify([{ destId: id, item: p.item, facts: p.facts, hashes: p.hashes, size: p.bytes.length }]);
    expect(first!.outcome).toBe('pending');
    const v = await verifyUntilDone(dest, p, id);
    expect(v).toMatchObject({ outcome: 'verified', evidence: { level: 'received' } });
    const stored = (await emu.state()).mediaItems.find((m) => m.id === id)!;
    expect(fs.readFileSync(stored.file).equals(p.bytes)).toBe(true);
  });

  it('refuses up front what Google does not take, and lets the service judge content', async () => {
    const big = await prepare('noexif.jpg');
    expect(dest.refuse!({ ...big.item, size: 201 * 1024 * 1024 }, big.facts)).toMatch(/200 MB/);
    expect(dest.refuse!(big.item, { ...big.facts, mimeType: 'image/svg+xml' })).toMatch(/does not take/);
    expect(dest.refuse!({ ...big.item, size: 21 * 1024 ** 3 }, { ...big.facts, kind: 'video', mimeType: 'video/mp4' })).toMatch(/20 GB/);
  });

  it('zero-byte and not-a-photo uploads are refused by the service at batchCreate', async () => {
    const empty = await prepare({ name: 'empty.jpg', bytes: Buffer.alloc(0) });
    const html = await prepare('not-a-photo.jpg');
    const a = await stage(dest, empty);
    const b = await stage(dest, html);
    const results = await commit(dest, [
      { p: empty, ...a },
      { p: html, ...b },
    ]);
    for (const r of results) {
      expect(r.outcome).toBe('error');
      expect((r as { error: Error }).error).toBeInstanceOf(RejectedError);
      expect((r as { error: Error }).error.message).toMatch(/error while trying to create this media item/);
    }
  });

  it('the same bytes under two names become one media item with the first name', async () => {
    const a = await prepare('f6t.jpg', null, 'first-name.jpg');
    const b = await prepare('f6t.jpg', null, 'second-name.jpg');
    const sa = await stage(dest, a);
    const sb = await stage(dest, b);
    const [ra, rb] = await commit(dest, [
      { p: a, ...sa },
      { p: b, ...sb },
    ]);
    expect(ra!.outcome).toBe('created');
    expect((rb as { destId: string }).destId).toBe((ra as { destId: string }).destId);
    const items = (await emu.state()).mediaItems.filter((m) => m.sha1 === a.hashes.sha1);
    expect(items.map((m) => m.filename)).toEqual(['first-name.jpg']);
  });
});

describe('google-photos resumable uploads', () => {
  it('resumes a killed upload from X-Goog-Upload-Size-Received with the saved session', async () => {
    const emu = await startEmu(['--granularity', '65536']);
    const ctx = ctxFor(emu, { env: { GOOGLE_PHOTOS_RESUMABLE_BUFFER_BYTES: '0' } });
    const dest = await googlePhotosProvider.createDestination!(ctx);
    try {
      const p = await prepare('VID_20211224_183000.mov');
      const session = memorySessionSlot();
      const container = await dest.prepareContainer(p.item, p.facts);
      // The first attempt dies after 300 KB (a kill, a dropped source stream).
      const broken = new Readable({ read() {} });
      broken.push(p.bytes.subarray(0, 300_000));
      setTimeout(() => broken.destroy(new Error('source connection reset')), 300);
      await expect(
        dest.upload({
          item: p.item,
          facts: p.facts,
          container,
          name: p.item.name,
          size: p.bytes.length,
          body: broken,
          session,
          signal: new AbortController().signal,
        }),
      ).rejects.toThrow();
      expect(session.value).toBeTruthy();
      // A new process (new destination) with the saved session resumes.
      const dest2 = await googlePhotosProvider.createDestination!(ctx);
      const before = (await emu.state()).requests.uploadBytes!;
      const staged = await dest2.upload({
        item: p.item,
        facts: p.facts,
        container,
        name: p.item.name,
        size: p.bytes.length,
        body: chunked(p.bytes),
        session,
        signal: new AbortController().signal,
      });
      // What Google took in for the resumed upload: the bytes the first attempt left it short, no more.
      const taken = (await emu.state()).requests.uploadBytes! - before;
      expect(taken).toBeLessThan(p.bytes.length);
      expect(taken).toBeLessThanOrEqual(p.bytes.length - 262144);
      const [res] = await commit(dest2, [{ p, staged, container }]);
      const id = (res as { destId: string }).destId;
      const stored = (await emu.state()).mediaItems.find((m) => m.id === id)!;
      expect(fs.readFileSync(stored.file).equals(p.bytes)).toBe(true);
      await dest2.close?.();
    } finally {
      await dest.close?.();
      await emu.close();
    }
  });
});

describe('google-photos large photos', () => {
  it('sends a photo over the raw threshold resumably (start, whole granules, finalize with X-Goog-Hash) and still proves pixels', async () => {
    const emu = await startEmu(['--granularity', '262144']);
    const dest = await googlePhotosProvider.createDestination!(ctxFor(emu, { env: { GOOGLE_PHOTOS_RAW_THRESHOLD: '1000000' } }));
    const before = await emu.state();
    const { p, res } = await migrateOne(dest, 'IMG_20180725_163423.jpg');
    const after = await emu.state();
    expect(after.requests.uploads! - before.requests.uploads!).toBe(3);
    const id = (res as { destId: string }).destId;
    expect(fs.readFileSync(after.mediaItems.find((m) => m.id === id)!.file).equals(p.bytes)).toBe(true);
    expect(await verifyUntilDone(dest, p, id)).toMatchObject({ outcome: 'verified', evidence: { level: 'pixels' } });
    await dest.close?.();
    await emu.close();
  });
});

describe('google-photos albums', () => {
  it('creates an album once, continues in "Name (2)" past the limit, and never creates one twice across restarts', async () => {
    const emu = await startEmu(['--album-limit', '3']);
    const store = memoryStore();
    const env = { GOOGLE_PHOTOS_ALBUM_LIMIT: '2' };
    const dest = await googlePhotosProvider.createDestination!(ctxFor(emu, { store, env }));
    for (const f of ['f6t.jpg', 'noexif.jpg', 'img_1771.jpg']) expect((await migrateOne(dest, f, 'Trip')).res.outcome).toBe('created');
    let st = await emu.state();
    expect(st.albums.map((a) => [a.title, a.count])).toEqual([
      ['Trip', 2],
      ['Trip (2)', 1],
    ]);
    // A restart with the same state reuses the ids; a restart that lost them finds the albums by title.
    const again = await googlePhotosProvider.createDestination!(ctxFor(emu, { store, env }));
    expect((await migrateOne(again, 'cookiezen.jpg', 'Trip')).res.outcome).toBe('created');
    const fresh = await googlePhotosProvider.createDestination!(ctxFor(emu, { env: { GOOGLE_PHOTOS_ALBUM_LIMIT: '20000' } }));
    expect((await migrateOne(fresh, 'issue-exifr-47.jpeg', 'Trip (2)')).res.outcome).toBe('created');
    st = await emu.state();
    expect(st.albums.map((a) => a.title).sort()).toEqual(['Trip', 'Trip (2)']);
    for (const d of [dest, again, fresh]) await d.close?.();
    await emu.close();
  });
});

describe('google-photos stops', () => {
  it('stops with quota on the daily 429, and goes on after the next day starts', async () => {
    const emu = await startEmu(['--daily-quota', '3']);
    const ctx = ctxFor(emu);
    const dest = await googlePhotosProvider.createDestination!(ctx);
    await migrateOne(dest, 'f6t.jpg'); // upload + batchCreate = 2
    await stage(dest, await prepare('noexif.jpg')); // 3
    const err = await stage(dest, await prepare('img_1771.jpg')).catch((e) => e);
    expect(err).toBeInstanceOf(StopRunError);
    expect((err as StopRunError).kind).toBe('quota');
    const cap = await dest.capacity!();
    expect(cap.requestBudget?.remainingToday).toBe(0);
    await emu.nextDay();
    expect((await migrateOne(dest, 'img_1771.jpg')).res.outcome).toBe('created');
    await dest.close?.();
    await emu.close();
  });

  it('stops with destination-full when the account storage is full', async () => {
    const emu = await startEmu(['--storage-limit', '1000']);
    const dest = await googlePhotosProvider.createDestination!(ctxFor(emu));
    const p = await prepare('noexif.jpg');
    const s = await stage(dest, p);
    const err = await commit(dest, [{ p, ...s }]).catch((e) => e);
    expect(err).toBeInstanceOf(StopRunError);
    expect((err as StopRunError).kind).toBe('destination-full');
    await dest.close?.();
    await emu.close();
  });

  it('stops with credentials on a token Google does not accept, without printing it', async () => {
    const emu = await startEmu();
    const dest = await googlePhotosProvider.createDestination!(ctxFor(emu, { env: { GOOGLE_ACCESS_TOKEN: 'not-a-valid-token-abc' } }));
    const err = await stage(dest, await prepare('f6t.jpg')).catch((e) => e);
    expect(err).toBeInstanceOf(StopRunError);
    expect((err as StopRunError).kind).toBe('credentials');
    expect(String(err.message)).not.toContain('not-a-valid-token-abc');
    await dest.close?.();
    await emu.close();
  });

  it('the emulator, like Google as far as anything public shows, does not check X-Goog-Hash: it is no proof', async () => {
    const emu = await startEmu();
    const r = await fetch(`${emu.env.GOOGLE_PHOTOS_BASE_URL}/v1/uploads`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${TOKEN}`,
        'X-Goog-Upload-Protocol': 'raw',
        'X-Goog-Upload-Content-Type': 'image/jpeg',
        'X-Goog-Hash': `sha1=${Buffer.alloc(20).toString('base64')}`,
      },
      body: fs.readFileSync(path.join(FIXTURES, 'f6t.jpg')),
    });
    expect(r.status).toBe(200);
    expect((await r.text()).length).toBeGreaterThan(10);
    await emu.close();
  });
});

describe('google-photos sign-in', () => {
  it('runs the installed-app loopback flow against the emulator, stores the refresh token 0600, and refreshes it', async () => {
    const emu = await startEmu(['--client-secret', 'sekret-value']);
    const home = tmpDir('gp-home-');
    const env = { GOOGLE_CLIENT_ID: 'client-123.apps.googleusercontent.com', GOOGLE_CLIENT_SECRET: 'sekret-value', ...emu.env };
    const ctx: ProviderContext = { arg: '', home, account: 'default', env, options: {}, store: memoryStore(), log: quietLog };
    let printed = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      printed += String(chunk);
      const m = /(http:\/\/127\.0\.0\.1:\d+\/o\/oauth2\/v2\/auth\S+)/.exec(printed);
      if (m && !printed.includes('#visited')) {
        printed += '#visited';
        void fetch(m[1]!); // the "browser": the emulator approves at once and redirects to the loopback
      }
      return true;
    });
    try {
      await googlePhotosProvider.auth!(ctx);
    } finally {
      spy.mockRestore();
    }
    const file = path.join(home, 'credentials', 'google-photos', 'default.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { refresh_token: string };
    expect(stored.refresh_token).toBeTruthy();
    expect(printed).not.toContain(stored.refresh_token);
    expect(printed).toMatch(/Testing/);
    const dest = await googlePhotosProvider.createDestination!({ ...ctx, env: { ...env, GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL! } });
    const { p, res } = await migrateOne(dest, 'f6t.jpg');
    expect(res.outcome).toBe('created');
    expect((await verifyUntilDone(dest, p, (res as { destId: string }).destId)).outcome).toBe('verified');
    await dest.close?.();
    await emu.close();
  });
});
