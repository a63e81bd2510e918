// The Xiaomi source against what the real i.mi.com serves, as public clients that work against
// it show (see providers/xiaomi/README.md): long decimals beside 17-digit ids, hostile listings
// (bad fields, a page without its galleries, an album that ends short of its mediaCount),
// cookie-free download hops, the exact JSONP body, and `retriable: false`.
// What happened is checked at the emulator (its counters and raw answers) and on the bytes.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RejectedError, RetryableError, type SourceItem } from '../providers/types.ts';
import { authXiaomi, SIGN_IN_HELP } from '../providers/xiaomi/auth.ts';
import { downloadHopRefusal, lastPageFlag } from '../providers/xiaomi/client.ts';
import { readItem } from '../providers/xiaomi/fields.ts';
import { createXiaomiSource } from '../providers/xiaomi/index.ts';
import { parseJsonKeepingBigInts, parseJsonp } from '../providers/xiaomi/json.ts';
import type { XiaomiSource } from '../providers/xiaomi/source.ts';
import { makeSeed, readEmulatorState, startEmulator, testContext, tmpDir } from '../providers/xiaomi/test-support.ts';

async function listAll(src: XiaomiSource): Promise<{ items: SourceItem[]; warnings: string[] }> {
  const items: SourceItem[] = [];
  const warnings: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await src.listItems(cursor);
    items.push(...page.items);
    warnings.push(...(page.warnings ?? []));
    cursor = page.cursor;
    pages++;
  } while (cursor !== null && pages < 10_000);
  return { items, warnings };
}

async function sha1Of(stream: Readable): Promise<string> {
  const h = crypto.createHash('sha1');
  for await (const chunk of stream) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** An API call to the emulator with the session cookie, as the web client makes it; the raw text. */
async function apiText(env: Record<string, string>, pathAndQuery: string): Promise<string> {
  const res = await fetch(new URL(pathAndQuery, env.XIAOMI_BASE_URL), { headers: { Cookie: env.XIAOMI_COOKIE! } });
  return res.text();
}

const CLI = path.resolve('bin/gallery-bridge.js');

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1))));
  clearTimeout(timer);
  return { code, out };
}

const sha1File = (f: string) => crypto.createHash('sha1').update(fs.readFileSync(f)).digest('hex');

const GPS_FILES = ['IMG_20180725_163423.jpg', 'heic-iphone7.heic'];

describe('the JSON reader', () => {
  it('keeps big integer ids exact and every other number a number, long decimals included', () => {
    const v = parseJsonKeepingBigInts(
      '{"id":24886749771271584,"neg":-9007199254740993,"lng":-0.12780555555555556,"alt":1.3998794163752561,"lat":50.29960277777778,"e":1.5e-7,"ms":1700000000000,"s":"12345678901234567","max":9007199254740991}',
    ) as Record<string, unknown>;
    expect(v.id).toBe('24886749771271584');
    expect(v.neg).toBe('-9007199254740993');
    expect(v.lng).toBe(-0.12780555555555556);
    expect(v.alt).toBe(1.3998794163752561);
    expect(v.lat).toBe(50.29960277777778);
    expect(v.e).toBe(1.5e-7);
    expect(v.ms).toBe(1700000000000);
    expect(v.s).toBe('12345678901234567');
    expect(v.max).toBe(9007199254740991);
  });

  it('reads JSONP under any callback name, exact or with trailing bits', () => {
    const obj = { url: 'https://cdn.example/x', meta: 'm(e)ta' };
    for (const t of [`dl_img_cb(${JSON.stringify(obj)})`, `dl_img_cb_1700000000000_0(${JSON.stringify(obj)})`, ` dl_img_cb(${JSON.stringify(obj)});\n`]) {
      expect(parseJsonp(t)).toEqual(obj);
    }
  });

  it('reads isLastPage as the service sends it and treats anything else as unknown', () => {
    expect([true, false, 'true', 'false', null, undefined, 1, 'yes'].map(lastPageFlag)).toEqual([true, false, true, false, null, null, null, null]);
  });
});

describe('listing fields, one by one', () => {
  const album = { albumId: '1', name: 'Camera', mediaCount: 3 };
  it('drops a bad field with a one-line note and keeps the item', () => {
    const r = readItem(
      {
        id: 24886749771271584n.toString(),
        fileName: 'a.jpg',
        sha1: 'A'.repeat(40),
        size: 10,
        dateTaken: 1_690_000_000_000_000,
        mimeType: 'image/jpeg',
        type: 'image',
      },
      album,
    );
    expect(r.item?.id).toBe('24886749771271584');
    expect(r.item?.declaredCaptureTime).toBeNull();
    expect(r.item?.sha1).toBe('a'.repeat(40));
    expect(r.notes).toHaveLength(1);
    expect(r.notes[0]).toMatch(/^album "Camera" \(1\): item 24886749771271584 \("a\.jpg"\): dateTaken 1690000000000000 is not a time in milliseconds/);
    expect(r.notes[0]).not.toMatch(/\n/);
  });
  it('an entry without a usable id cannot move and says so', () => {
    const r = readItem({ id: 1.5, fileName: 'b.jpg' }, album);
    expect(r.item).toBeNull();
    expect(r.notes[0]).toMatch(/"b\.jpg" has no usable id \(1\.5\); it cannot be moved/);
    expect(readItem('nonsense', album).item).toBeNull();
  });
  it('takes a millisecond dateTaken, a numeric-string size and a caption; not the app flags as a caption', () => {
    const r = readItem(
      { id: 5, fileName: 'c.jpg', sha1: 'b'.repeat(40), size: '12', dateTaken: Date.UTC(2019, 9, 20), description: '{"isFavorite":true}' },
      album,
    );
    expect(r.item?.declaredCaptureTime).toBe('2019-10-20T00:00:00.000Z');
    expect(r.item?.size).toBe(12);
    expect(r.item?.description).toBeNull();
    expect(r.notes).toEqual([]);
    expect(readItem({ id: 5, sha1: 'b'.repeat(40), size: 1, description: 'Sunset at the pier' }, album).item?.description).toBe('Sunset at the pier');
  });
});

describe('a hostile listing never stalls the run', () => {
  it('long decimals, a microsecond dateTaken and a page without galleries: every other item arrives, the odd ones are reported', async () => {
    const data = tmpDir('hostile');
    const seed = makeSeed(tmpDir('seed-h'), undefined, (n) => [...GPS_FILES, 'canon-dslr.jpg', 'img_1771.jpg'].includes(n));
    const emu = await startEmulator(data, {
      seed,
      synthetic: 25,
      hostile: { microsecondDateTaken: ['canon-dslr.jpg'], missingGalleries: [{ album: 'Synthetic', pageNum: 1 }] },
    });
    try {
      // The raw answer holds the long decimals from the seed files' GPS tags (from the outside).
      const rawPage = await apiText(emu.env, '/gallery/user/galleries?albumId=1&pageNum=0&pageSize=50');
      expect(rawPage).toMatch(/"GPSAltitude":1\.3998794163752561\b/);
      expect(rawPage).toMatch(/"latitude":50\.29960277777778\b/);
      expect(rawPage).toMatch(/"dateTaken":15\d{14}\b/);

      const ctx = testContext({ ...emu.env, XIAOMI_PAGE_SIZE: '10' }, { includePrivate: true });
      const src = await createXiaomiSource(ctx);
      const { items, warnings } = await listAll(src);
      await src.close();

      const synthetic = emu.manifest().filter((m) => m.albumName === 'Synthetic');
      const listedIds = new Set(items.map((i) => i.id));
      // Newest first: the service's page 1 holds items 10..19 of the album in its order.
      const missing = synthetic.filter((m) => !listedIds.has(m.id));
      expect(missing).toHaveLength(10);
      for (const m of emu.manifest().filter((r) => r.albumName !== 'Synthetic')) expect(listedIds.has(m.id), m.fileName).toBe(true);
      expect(items).toHaveLength(emu.manifest().length - 10);

      const gps = items.find((i) => i.name === 'heic-iphone7.heic')!;
      expect(gps.declaredCaptureTime).not.toBeNull();
      const odd = items.find((i) => i.name === 'canon-dslr.jpg')!;
      expect(odd.declaredCaptureTime).toBeNull();
      expect(odd.sha1).toMatch(/^[0-9a-f]{40}$/);

      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /album "Synthetic" \(\d+\) page 1: Xiaomi's answer has no galleries list \(3 tries\); up to 10 item\(s\) of this page are not listed this run/,
      );
      const notes = ctx.lines.filter((l) => l.startsWith('warn xiaomi:'));
      expect(notes).toHaveLength(1);
      expect(notes[0]).toMatch(/item \d{17} \("canon-dslr\.jpg"\): dateTaken 15\d{14} is not a time in milliseconds/);
      // The bad page was asked three times, then the listing went on.
      expect(readEmulatorState(data).counters.missingGalleries).toBe(3);
    } finally {
      await emu.close();
    }
  });

  it('an album that ends short of its mediaCount gives a warning', async () => {
    const data = tmpDir('short');
    const seed = makeSeed(tmpDir('seed-s'), undefined, (n) => n.endsWith('.jpg') && !n.startsWith('IMG_'));
    const emu = await startEmulator(data, { seed, hostile: { truncate: { Camera: 2 } } });
    try {
      const camera = emu.manifest().filter((m) => m.albumName === 'Camera');
      expect(camera.length).toBeGreaterThan(2);
      const src = await createXiaomiSource(testContext(emu.env));
      const { items, warnings } = await listAll(src);
      await src.close();
      expect(items.filter((i) => i.albumName === 'Camera')).toHaveLength(2);
      expect(warnings).toEqual([
        `xiaomi: album "Camera" (1) listed 2 item(s) but Xiaomi's album list says it holds ${camera.length}; ${camera.length - 2} item(s) may be left at Xiaomi this run — rerun to list it again`,
      ]);
    } finally {
      await emu.close();
    }
  });
});

describe('an album list page without its albums', () => {
  it('lists the albums of the pages that came, reports the page, and goes on', async () => {
    const seed = tmpDir('seed-albums');
    for (let a = 0; a < 13; a++) {
      fs.mkdirSync(path.join(seed, `Album ${String(a).padStart(2, '0')}`));
      fs.writeFileSync(path.join(seed, `Album ${String(a).padStart(2, '0')}`, `p${a}.jpg`), Buffer.from(`not really a jpeg ${a}\n`));
    }
    const data = tmpDir('albums');
    const emu = await startEmulator(data, { seed, hostile: { missingAlbumPages: [1] } });
    try {
      const src = await createXiaomiSource(testContext(emu.env));
      const { items, warnings } = await listAll(src);
      await src.close();
      // Ten albums a page, as the web client asks: the first ten arrive, the three after are reported.
      expect(new Set(items.map((i) => i.albumName)).size).toBe(10);
      expect(warnings).toEqual([
        `xiaomi: Xiaomi's album list page 1 carries no albums list (3 tries); albums listed after it are not moved this run — rerun to try again`,
      ]);
      expect(readEmulatorState(data).counters.missingAlbums).toBe(3);
    } finally {
      await emu.close();
    }
  });
});

describe('a service that never ends a listing', () => {
  it('gives the album up with a warning once it pages past its mediaCount, and lists the rest', async () => {
    const data = tmpDir('endless');
    const emu = await startEmulator(data, {
      synthetic: 15,
      seed: makeSeed(tmpDir('seed-e'), undefined, (n) => n === 'canon-dslr.jpg'),
      hostile: { endlessPages: ['Synthetic'] },
    });
    try {
      const src = await createXiaomiSource(testContext({ ...emu.env, XIAOMI_PAGE_SIZE: '10' }));
      const { items, warnings } = await listAll(src);
      await src.close();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/album "Synthetic" \(\d+\): Xiaomi keeps sending pages \(page 3\) past the 15 item\(s\) it holds/);
      // The first page over and over: its ten items, four times; the Camera album still listed.
      expect(new Set(items.filter((i) => i.albumName === 'Synthetic').map((i) => i.id)).size).toBe(10);
      expect(items.some((i) => i.name === 'canon-dslr.jpg')).toBe(true);
    } finally {
      await emu.close();
    }
  });
});

describe('a run over an album that ends short of its mediaCount', () => {
  it('migrates what was listed, prints the warning and exits 1', async () => {
    const t = tmpDir('short-run');
    const seed = makeSeed(path.join(t, 'seed'), undefined, (n) =>
      ['canon-dslr.jpg', 'IMG_20180725_163423.jpg', 'heic-iphone7.heic', 'f6t.jpg', 'noexif.jpg', 'img_1771.jpg'].includes(n),
    );
    const emu = await startEmulator(path.join(t, 'emu'), { seed, hostile: { truncate: { Camera: 2 } } });
    try {
      const out = path.join(t, 'out');
      const run = await cli(
        ['migrate', '--from', 'xiaomi', '--to', `folder:${out}`, '--state', path.join(t, 'state.db'), '--report', path.join(t, 'report.json')],
        emu.env,
      );
      expect(run.code, run.out).toBe(1);
      const camera = emu.manifest().filter((m) => m.albumName === 'Camera');
      expect(camera).toHaveLength(3);
      expect(run.out).toContain(`album "Camera" (1) listed 2 item(s) but Xiaomi's album list says it holds 3; 1 item(s) may be left at Xiaomi this run`);
      // What was listed arrived, byte for byte: every other album whole, two of Camera's three.
      const got = new Set<string>();
      const walk = (d: string): void => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (!e.name.startsWith('.')) got.add(sha1File(p));
        }
      };
      walk(out);
      const others = emu.manifest().filter((m) => m.albumName !== 'Camera' && m.albumName !== 'Private');
      for (const m of others) expect(got.has(m.sha1), m.fileName).toBe(true);
      expect(camera.filter((m) => got.has(m.sha1))).toHaveLength(2);
      expect(got.size).toBe(others.length + 2);
    } finally {
      await emu.close();
    }
  });
});

describe('downloads as the service takes them', () => {
  const seed = makeSeed(tmpDir('seed-d'), undefined, (n) => ['f6t.jpg', 'noexif.jpg', 'img_1771.jpg', 'canon-dslr.jpg'].includes(n));

  it('sends no cookie on either download hop (seen at the emulator), and the bytes match', async () => {
    const data = tmpDir('nocookie');
    const emu = await startEmulator(data, { seed });
    try {
      const src = await createXiaomiSource(testContext(emu.env, { includePrivate: true }));
      const { items } = await listAll(src);
      for (const it of items) expect(await sha1Of(await src.open(it))).toBe(emu.manifest().find((m) => m.id === it.id)!.sha1);
      await src.close();
      const c = readEmulatorState(data).counters;
      expect(c.jsonp).toBe(items.length);
      expect(c.downloads).toBe(items.length);
      expect(c.cookiesOnDownloadHops ?? 0).toBe(0);
      // The emulator does see a cookie when one is sent there.
      const env = JSON.parse(await apiText(emu.env, `/gallery/storage?id=${items[0]!.id}`)) as { data: { url: string } };
      await (await fetch(env.data.url, { headers: { Cookie: 'userId=1' } })).text();
      expect(readEmulatorState(data).counters.cookiesOnDownloadHops).toBe(1);
    } finally {
      await emu.close();
    }
  });

  it('follows a download host it has never heard of when it is https, refuses plain http elsewhere', () => {
    const base = new URL('https://i.mi.com');
    expect(downloadHopRefusal(new URL('https://some-new-cdn.example.net/f?sig=1'), base)).toBeNull();
    expect(downloadHopRefusal(new URL('http://some-new-cdn.example.net/f'), base)).toMatch(/not https/);
    const local = new URL('http://127.0.0.1:4000');
    expect(downloadHopRefusal(new URL('http://127.0.0.1:4000/_dl/x'), local)).toBeNull();
    expect(downloadHopRefusal(new URL('http://localhost:4000/_dl/x'), local)).toMatch(/not https/);
  });

  it('answers the JSONP step byte-exact: dl_img_cb({...}) with nothing after it, or the callBack name', async () => {
    const emu = await startEmulator(tmpDir('jsonp'), { seed });
    try {
      const id = emu.manifest()[0]!.id;
      for (const [query, name] of [
        ['', 'dl_img_cb'],
        ['&callBack=dl_img_cb_1700000000000_0', 'dl_img_cb_1700000000000_0'],
      ] as const) {
        const env = JSON.parse(await apiText(emu.env, `/gallery/storage?ts=1&id=${id}${query}`)) as { code: number; data: { url: string } };
        expect(env.code).toBe(0);
        const res = await fetch(env.data.url, { headers: { 'User-Agent': 'test' } });
        expect(res.status).toBe(200);
        const body = await res.text();
        const m = /^([\w]+)\(\{"url":"([^"\\]+)","meta":"([^"\\]+)"\}\)$/.exec(body);
        expect(m, body).not.toBeNull();
        expect(m![1]).toBe(name);
        expect(body).toBe(`${name}(${JSON.stringify({ url: m![2], meta: m![3] })})`);
        // What public downloaders check, verbatim in spirit: startswith('dl_img_cb(') and endswith(')').
        if (name === 'dl_img_cb') expect(body.startsWith('dl_img_cb(') && body.endsWith(')')).toBe(true);
        expect(parseJsonp(body)).toEqual({ url: m![2], meta: m![3] });
      }
    } finally {
      await emu.close();
    }
  });

  it('takes the meta as each public downloader posts it: raw "meta=%s" (diredocks) or form-encoded (XiaomiAlbumSyncer, SyncXiaomiCloud)', async () => {
    const emu = await startEmulator(tmpDir('meta'), { seed });
    try {
      const item = emu.manifest()[0]!;
      const hop = async () => {
        const env = JSON.parse(await apiText(emu.env, `/gallery/storage?ts=1&id=${item.id}`)) as { data: { url: string } };
        return parseJsonp(await (await fetch(env.data.url)).text()) as { url: string; meta: string };
      };
      // diredocks/MiCloudAlbumDownloader: session.post(url, data="meta=%s" % meta); requests sends
      // a str body as it is, with no Content-Type.
      const rawPost = (url: string, body: string) =>
        new Promise<{ status: number; sha1: string }>((resolve, reject) => {
          const req = http.request(url, { method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body) } }, (res) => {
            const h = crypto.createHash('sha1');
            res.on('data', (d: Buffer) => h.update(d));
            res.on('end', () => resolve({ status: res.statusCode!, sha1: h.digest('hex') }));
          });
          req.on('error', reject);
          req.end(body);
        });
      // Enough links that a meta with a character form decoding changes would have shown up.
      for (let i = 0; i < 24; i++) {
        const raw = await hop();
        expect(await rawPost(raw.url, `meta=${raw.meta}`), raw.meta).toEqual({ status: 200, sha1: item.sha1 });
        const encoded = await hop();
        const res = await fetch(encoded.url, { method: 'POST', body: new URLSearchParams({ meta: encoded.meta }) });
        expect(res.status, encoded.meta).toBe(200);
        expect(
          crypto
            .createHash('sha1')
            .update(Buffer.from(await res.arrayBuffer()))
            .digest('hex'),
        ).toBe(item.sha1);
      }
      // A meta that is not the one issued is still refused.
      const wrong = await hop();
      expect((await rawPost(wrong.url, `meta=${wrong.meta.slice(1)}`)).status).toBe(403);
    } finally {
      await emu.close();
    }
  });

  it('honours retriable: false (one request, rejected) and retries an error that is retriable', async () => {
    const data = tmpDir('retriable');
    const emu = await startEmulator(data, {
      seed,
      hostile: { storageErrors: { 'f6t.jpg': { code: 50202, retriable: false }, 'noexif.jpg': { code: 50001, retriable: true } } },
    });
    try {
      const src = await createXiaomiSource(testContext(emu.env));
      const { items } = await listAll(src);
      const hard = items.find((i) => i.name === 'f6t.jpg')!;
      const soft = items.find((i) => i.name === 'noexif.jpg')!;
      const err = await src.open(hard).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RejectedError);
      expect((err as Error).message).toMatch(/code 50202 .*not worth retrying/);
      expect(readEmulatorState(data).counters.storage).toBe(1);
      const err2 = await src.open(soft).catch((e: unknown) => e);
      expect(err2).toBeInstanceOf(RetryableError);
      expect(readEmulatorState(data).counters.storage).toBeGreaterThan(2);
      await src.close();
    } finally {
      await emu.close();
    }
  });

  it('deletes softly: the item goes to the recycle bin that /gallery/deleted_v2 lists, and still takes space', async () => {
    const data = tmpDir('bin');
    const emu = await startEmulator(data, { seed });
    try {
      const src = await createXiaomiSource(testContext(emu.env));
      const { items } = await listAll(src);
      const usedBefore = (JSON.parse(await apiText(emu.env, '/status/lite/alldetail')) as { data: { used: number } }).data.used;
      for (const it of items.slice(0, 2)) expect((await src.client.deleteItem(it.id)).code).toBe(0);
      await src.close();
      const bin = parseJsonKeepingBigInts(await apiText(emu.env, '/gallery/deleted_v2?maxTag=0&limit=1')) as {
        code: number;
        data: { content: Array<{ id: string; status: string; deleteTime: number; sha1: string }>; lastPage: boolean; syncTag: number };
      };
      expect(bin.code).toBe(0);
      expect(bin.data.content.map((c) => c.id)).toEqual([items[1]!.id]);
      expect(bin.data.content[0]!.status).toBe('deleted');
      expect(bin.data.lastPage).toBe(false);
      const rest = parseJsonKeepingBigInts(await apiText(emu.env, `/gallery/deleted_v2?maxTag=${bin.data.syncTag}&limit=1`)) as {
        data: { content: Array<{ id: string }>; lastPage: boolean };
      };
      expect(rest.data.content.map((c) => c.id)).toEqual([items[0]!.id]);
      expect(rest.data.lastPage).toBe(true);
      const usedAfter = (JSON.parse(await apiText(emu.env, '/status/lite/alldetail')) as { data: { used: number } }).data.used;
      expect(usedAfter).toBe(usedBefore);
      const gone = JSON.parse(await apiText(emu.env, `/gallery/storage?id=${items[0]!.id}`)) as { code: number; retriable: boolean };
      expect(gone).toMatchObject({ code: 50050, retriable: false });
    } finally {
      await emu.close();
    }
  });
});

describe('sign-in and plan say how the service really is', () => {
  it('points to account.xiaomi.com for the passToken, warns that a serviceToken alone expires, names Advanced Data Protection', async () => {
    expect(SIGN_IN_HELP).toMatch(/https:\/\/account\.xiaomi\.com: copy the values of passToken and userId/);
    expect(SIGN_IN_HELP).toMatch(/serviceToken alone[\s\S]*expires within minutes to an hour/);
    expect(SIGN_IN_HELP).toMatch(/Advanced Data Protection/);
    const emu = await startEmulator(tmpDir('auth'), { synthetic: 2 });
    try {
      const ctx = testContext({ XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!, XIAOMI_COOKIE: 'userId=1234567890; serviceToken=emulator-service-token' });
      await authXiaomi(ctx);
      const warn = ctx.lines.find((l) => l.startsWith('warn no passToken'));
      expect(warn).toMatch(/expires within minutes to an hour.*exit 3.*account\.xiaomi\.com/);
      expect(ctx.lines.some((l) => /Advanced Data Protection/.test(l))).toBe(true);
      const src = await createXiaomiSource(testContext(emu.env));
      const notes = await src.planNotes();
      await src.close();
      expect(notes.some((n) => /moves items to Xiaomi's recycle bin: the cloud storage they use is freed only when the bin is emptied/.test(n.message))).toBe(
        true,
      );
    } finally {
      await emu.close();
    }
  });
});
