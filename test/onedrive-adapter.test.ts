// The OneDrive destination adapter against the Graph emulator over HTTPS on loopback:
// upload / commit / verify / abort with real fixtures and generated files, resumed sessions,
// conflicts, name mapping, 507, the upload-URL rules. Checked from the outside: the bytes the
// emulator stored on disk, and QuickXorHash computed independently (src/hash/quickxor.ts).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { OneDriveConfig, OneDriveDestination } from '../providers/onedrive/destination.ts';
import { startOneDriveEmulator, type OneDriveEmulator } from '../providers/onedrive/emulator/server.ts';
import { GraphHttp } from '../providers/onedrive/graph.ts';
import { decodeName, encodeName } from '../providers/onedrive/names.ts';
import type { CommitRequest, ItemFacts, SourceItem } from '../providers/types.ts';
import { StopRunError } from '../providers/types.ts';
import { hashBuffer } from '../src/hash/multihash.ts';
import { quickXorBase64 } from '../src/hash/quickxor.ts';
import { FIXTURES, tmpDir, tlsArgs } from './helpers.ts';
import { oneDriveDestination, smallOneDriveConfig } from './helpers/onedrive-destination.ts';
import { memorySessionSlot as slot, memoryStore } from './helpers/provider-fakes.ts';
import { oneDriveKit } from './onedrive-kit.ts';

const TOKEN = 'test-token-adapter-0123456789';
/** Emulators of a test's own (other flags than the shared one), closed after each test. */
const own = oneDriveKit(TOKEN);

function item(name: string, size: number, album: string | null = 'Camera'): SourceItem {
  return { id: `id-${name}-${size}-${crypto.randomUUID()}`, name, albumId: album, albumName: album, size, kind: 'image' };
}

const facts: ItemFacts = { captureTime: '2021-12-24T18:30:00', captureTimeSource: 'exif', mimeType: 'image/jpeg', kind: 'image' };

/** Streams a buffer in uneven pieces, as a network source would. */
function body(buf: Buffer, piece = 65_537): Readable {
  return Readable.from(
    (function* () {
      for (let o = 0; o < buf.length; o += piece) yield buf.subarray(o, o + piece);
    })(),
  );
}

describe('OneDrive destination adapter', () => {
  let emu: { env: Record<string, string>; emulator: OneDriveEmulator; close(): Promise<void> };
  let data: string;
  const dests: OneDriveDestination[] = [];

  function makeDest(over: Partial<OneDriveConfig> = {}, store = memoryStore()): OneDriveDestination {
    const config = smallOneDriveConfig(emu.env.GRAPH_BASE_URL!, {
      root: '/Pictures/Xiaomi',
      chunkSize: 327_680 * 2,
      verifyBatchSize: 4,
      hashRetryMs: 50,
      maxSessionAgeMs: 23 * 3600_000,
      ...over,
    });
    return keep(oneDriveDestination(config, TOKEN, { store, account: 'default' }));
  }

  /** A destination with the smallest settings on an emulator of the test's own. */
  function smallDest(e: { env: Record<string, string> }): OneDriveDestination {
    return keep(oneDriveDestination(smallOneDriveConfig(e.env.GRAPH_BASE_URL!), TOKEN));
  }

  function keep(d: OneDriveDestination): OneDriveDestination {
    dests.push(d);
    return d;
  }

  async function send(d: OneDriveDestination, it: SourceItem, bytes: Buffer, s = slot()) {
    const container = await d.prepareContainer(it, facts);
    const staged = await d.upload({
      item: it,
      facts,
      container,
      name: it.name,
      size: bytes.length,
      body: body(bytes),
      session: s,
      signal: new AbortController().signal,
    });
    const hashes = hashBuffer(bytes);
    const req: CommitRequest = { staged, input: { item: it, facts, container, name: it.name, size: bytes.length, session: s }, hashes };
    return { container, staged, hashes, req, slot: s };
  }

  beforeAll(async () => {
    data = tmpDir('gb-od-adapter-');
    emu = await startOneDriveEmulator(['--port', '0', '--data', data, '--accept-token', TOKEN, '--request-log', ...tlsArgs()]);
  });
  afterAll(async () => {
    for (const d of dests) await d.close();
    await emu.close();
  });

  it('uploads, commits and verifies every fixture; the stored bytes equal the source', async () => {
    const d = makeDest();
    for (const f of fs.readdirSync(FIXTURES)) {
      const bytes = fs.readFileSync(path.join(FIXTURES, f));
      const it = item(f, bytes.length);
      const { req, hashes, slot: s } = await send(d, it, bytes);
      // The session was saved before any fragment (behind when the file fits in its last one).
      expect(s.saves + s.behind).toBeGreaterThanOrEqual(1);
      const [res] = await d.commit([req]);
      expect(res!.outcome, f).toBe('created');
      if (res!.outcome !== 'created') continue;
      expect(res!.destPath).toBe(`/Pictures/Xiaomi/Camera/${f}`);
      const stored = fs.readFileSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Camera', f));
      expect(stored.equals(bytes), f).toBe(true);
      const [v] = await d.verify([{ destId: res!.destId, destPath: res!.destPath, item: it, facts, hashes, size: bytes.length }]);
      expect(v!.outcome).toBe('verified');
      if (v!.outcome === 'verified') expect(v!.evidence.level).toBe('bytes');
    }
    expect(emu.emulator.metrics.authHeaderOnUploadUrl).toBe(0);
  });

  it("the emulator's quickXorHash equals the QuickXorHash of the stored bytes, computed independently", async () => {
    const d = makeDest();
    for (const size of [1, 159, 160, 161, 327_680, 327_681, 1_000_003]) {
      const bytes = crypto.randomBytes(size);
      const it = item(`rand-${size}.bin`, size, 'Hashes');
      const { req } = await send(d, it, bytes);
      const [res] = await d.commit([req]);
      expect(res!.outcome).toBe('created');
      const item2 = (await d.http.api<{ file: { hashes: { quickXorHash: string } } }>('get', `/me/drive/items/${(res as { destId: string }).destId}`)).file
        .hashes.quickXorHash;
      const onDisk = fs.readFileSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Hashes', `rand-${size}.bin`));
      expect(item2).toBe(quickXorBase64(onDisk));
      expect(onDisk.equals(bytes)).toBe(true);
    }
  });

  it('sets fileSystemInfo from the capture time in the session itself', async () => {
    const d = makeDest();
    const bytes = crypto.randomBytes(500_000);
    const it = item('dated.jpg', bytes.length);
    const { req } = await send(d, it, bytes);
    const [res] = await d.commit([req]);
    const got = await d.http.api<{ fileSystemInfo: { createdDateTime: string } }>('get', `/me/drive/items/${(res as { destId: string }).destId}`);
    expect(got.fileSystemInfo.createdDateTime).toBe(new Date(Date.parse(facts.captureTime!)).toISOString());
  });

  it('zero-byte files go through the simple PUT at commit', async () => {
    const d = makeDest();
    const it = item('empty.jpg', 0);
    const { req } = await send(d, it, Buffer.alloc(0));
    const [res] = await d.commit([req]);
    expect(res!.outcome).toBe('created');
    expect(fs.statSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Camera', 'empty.jpg')).size).toBe(0);
  });

  it('keeps the last fragment for commit; canCommitLater is false once that buffer is gone', async () => {
    const d = makeDest();
    const bytes = crypto.randomBytes(327_680 * 5 + 1234);
    const it = item('held.bin', bytes.length);
    const before = emu.emulator.metrics.uploadBytesReceived;
    const { staged, req } = await send(d, it, bytes);
    expect(emu.emulator.metrics.uploadBytesReceived - before).toBe(327_680 * 5);
    expect(fs.existsSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Camera', 'held.bin'))).toBe(false);
    expect(d.canCommitLater(staged.handle)).toBe(true);
    const fresh = makeDest(); // a new process: the buffer is gone
    expect(fresh.canCommitLater(JSON.parse(JSON.stringify(staged.handle)))).toBe(false);
    const [res] = await d.commit([req]);
    expect(res!.outcome).toBe('created');
  });

  it('a file that fits in its last fragment saves its session behind (no byte goes before commit); a larger one saves it durably before its first', async () => {
    const d = makeDest();
    const small = crypto.randomBytes(327_680);
    const before = emu.emulator.metrics.uploadBytesReceived;
    const a = await send(d, item('fits.bin', small.length), small);
    expect({ saves: a.slot.saves, behind: a.slot.behind }).toEqual({ saves: 0, behind: 1 });
    expect(emu.emulator.metrics.uploadBytesReceived).toBe(before);
    expect((await d.commit([a.req]))[0]!.outcome).toBe('created');
    expect(emu.emulator.metrics.uploadBytesReceived - before).toBe(small.length);

    const large = crypto.randomBytes(327_680 + 1);
    let receivedAtSave = -1;
    const s = slot();
    const save = s.save;
    s.save = (v) => {
      receivedAtSave = emu.emulator.metrics.uploadBytesReceived;
      save(v);
    };
    const start = emu.emulator.metrics.uploadBytesReceived;
    const b = await send(d, item('two-fragments.bin', large.length), large, s);
    expect({ saves: s.saves, behind: s.behind, receivedAtSave }).toEqual({ saves: 1, behind: 0, receivedAtSave: start });
    expect(emu.emulator.metrics.uploadBytesReceived - start).toBe(327_680);
    expect((await d.commit([b.req]))[0]!.outcome).toBe('created');
    expect(fs.readFileSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Camera', 'fits.bin')).equals(small)).toBe(true);
    expect(fs.readFileSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Camera', 'two-fragments.bin')).equals(large)).toBe(true);
  });

  it('resumes a saved session from nextExpectedRanges, sending only what is missing', async () => {
    const bytes = crypto.randomBytes(327_680 * 8 + 99);
    const it = item('resume.bin', bytes.length);
    const s = slot();
    const first = makeDest();
    const atStart = emu.emulator.metrics.uploadBytesReceived;
    await send(first, it, bytes, s);
    expect(emu.emulator.metrics.uploadBytesReceived - atStart).toBe(327_680 * 8);
    // Restart: a new destination object, same session slot; the body comes again from 0.
    const second = makeDest();
    const before = emu.emulator.metrics.uploadBytesReceived;
    const again = await send(second, it, bytes, s);
    expect(emu.emulator.metrics.uploadBytesReceived).toBe(before);
    const [res] = await second.commit([again.req]);
    expect(res!.outcome).toBe('created');
    expect(emu.emulator.metrics.uploadBytesReceived - before).toBe(99);
    expect(fs.readFileSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Camera', 'resume.bin')).equals(bytes)).toBe(true);
  });

  it('killed right after the last fragment: the rerun finds the file, sends nothing, and commits by hash', async () => {
    const bytes = crypto.randomBytes(327_680 * 4 + 3);
    const it = item('landed.bin', bytes.length);
    const s = slot();
    const d = makeDest();
    const first = await send(d, it, bytes, s);
    const [created] = await d.commit([first.req]);
    expect(created!.outcome).toBe('created');
    // A new process with the same saved session (the engine had not recorded the commit).
    const before = emu.emulator.metrics.uploadBytesReceived;
    const d2 = makeDest();
    const again = await send(d2, it, bytes, s);
    expect(emu.emulator.metrics.uploadBytesReceived).toBe(before);
    expect(d2.canCommitLater(again.staged.handle)).toBe(true);
    const [res] = await d2.commit([again.req]);
    expect(res).toMatchObject({ outcome: 'created', destId: (created as { destId: string }).destId });
    expect(emu.emulator.metrics.uploadBytesReceived).toBe(before);
  });

  it('starts a new session when the saved one is gone or too old', async () => {
    const bytes = crypto.randomBytes(327_680 * 3 + 7);
    const it = item('stale.bin', bytes.length);
    const s = slot();
    await send(makeDest(), it, bytes, s);
    const oldUrl = (s.value as { url: string }).url;
    // Make the saved session look 24 hours old.
    s.value = { ...(s.value as object), createdAt: Date.now() - 24 * 3600_000 };
    const d = makeDest();
    const beforeNew = emu.emulator.metrics.uploadBytesReceived;
    const again = await send(d, it, bytes, s);
    expect((s.value as { url: string }).url).not.toBe(oldUrl);
    expect(emu.emulator.metrics.uploadBytesReceived - beforeNew).toBe(327_680 * 3);
    const [res] = await d.commit([again.req]);
    expect(res!.outcome).toBe('created');
    // A session the service forgot (404) also starts over.
    const it2 = item('gone.bin', bytes.length);
    const s2 = slot();
    const d2 = makeDest();
    const st = await send(d2, it2, bytes, s2);
    await d2.abort(st.staged);
    const beforeGone = emu.emulator.metrics.uploadBytesReceived;
    await send(makeDest(), it2, bytes, s2);
    expect(emu.emulator.metrics.uploadBytesReceived - beforeGone).toBe(327_680 * 3);
  });

  it('an upload session that expired before commit is replaced by a new one', async () => {
    const short = await own.emulator(tmpDir('gb-od-ttl-'), ['--session-ttl', '1', '--token-ttl', '3600']);
    const bytes = crypto.randomBytes(327_680 * 2 + 10);
    const it = item('late.bin', bytes.length);
    const s = slot();
    const d = smallDest(short);
    const first = await send(d, it, bytes, s);
    await new Promise((r) => setTimeout(r, 1300));
    const [res] = await d.commit([first.req]);
    expect(res!.outcome).toBe('error'); // the engine uploads it again
    const beforeAgain = short.emulator.metrics.uploadBytesReceived;
    const d2 = smallDest(short);
    const again = await send(d2, it, bytes, s);
    expect(short.emulator.metrics.uploadBytesReceived - beforeAgain).toBe(327_680 * 2);
    const [ok] = await d2.commit([again.req]);
    expect(ok!.outcome).toBe('created');
    expect(short.emulator.metrics.sessionsCreated).toBe(2);
  });

  it('429 with Retry-After pauses every request of the destination, through the one shared pacer', async () => {
    const busy = await own.emulator(tmpDir('gb-od-429-'), ['--fault-429', '0.3', '--retry-after', '3', '--random-seed', '5']);
    const d = smallDest(busy);
    const pauses: number[] = [];
    for (const p of d.http.opts.pacers as Array<{ pauseFor(ms: number): void }>) {
      const orig = p.pauseFor.bind(p);
      p.pauseFor = (ms: number) => {
        pauses.push(ms);
        orig(ms);
      };
    }
    const bytes = crypto.randomBytes(327_680 * 3 + 1);
    const results = await Promise.all(
      [1, 2, 3, 4].map(async (i) => {
        const { req } = await send(d, item(`t${i}.bin`, bytes.length), bytes);
        return (await d.commit([req]))[0]!;
      }),
    );
    expect(results.map((r) => r.outcome)).toEqual(['created', 'created', 'created', 'created']);
    expect(d.http.stats.throttled).toBeGreaterThan(0);
    // Retry-After 3 s, scaled by GALLERY_BRIDGE_BACKOFF_SCALE (0.01 in tests): a floor of 30 ms.
    expect(pauses.length).toBe(d.http.stats.throttled);
    expect(Math.min(...pauses)).toBeGreaterThanOrEqual(3000 * Number(process.env.GALLERY_BRIDGE_BACKOFF_SCALE ?? 1) - 1);
  });

  it('never sends the token to another host: a Graph path that leaves the API origin stops the run', async () => {
    const d = makeDest();
    const before = emu.emulator.metrics.requests;
    const api = new URL(emu.env.GRAPH_BASE_URL!);
    for (const other of [`https://127.0.0.1:${api.port}/v1.0/me/drive`, `https://localhost:${Number(api.port) + 1}/v1.0/me/drive`]) {
      await expect(d.http.api('get', other)).rejects.toSatisfy((e: unknown) => e instanceof StopRunError && /left the API host/.test(e.message));
    }
    expect(emu.emulator.metrics.requests).toBe(before);
    expect(await d.http.api<{ id: string }>('get', `${api.origin}/v1.0/me/drive`)).toHaveProperty('id');
  });

  it('a 409 with the same bytes is a duplicate with byte evidence; different bytes get "name (2)"', async () => {
    const store = memoryStore();
    const d = makeDest({}, store);
    const bytes = crypto.randomBytes(700_000);
    const a = await send(d, item('same.jpg', bytes.length), bytes);
    expect((await d.commit([a.req]))[0]!.outcome).toBe('created');
    const b = await send(d, item('same.jpg', bytes.length), bytes);
    const [dup] = await d.commit([b.req]);
    expect(dup!.outcome).toBe('duplicate');
    if (dup!.outcome === 'duplicate') expect(dup!.evidence?.level).toBe('bytes');
    expect(fs.readdirSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Camera')).filter((n) => n.startsWith('same'))).toEqual(['same.jpg']);

    const other = crypto.randomBytes(700_000);
    const it = item('same.jpg', other.length);
    const c = await send(d, it, other);
    const [res] = await d.commit([c.req]);
    expect(res!.outcome).toBe('error'); // retried by the engine under the new name
    expect(store.keys!('rename:')).toEqual([`rename:${it.id}`]);
    // Retried by the next run: a new destination over the same store finds the name chosen.
    const rerun = makeDest({}, store);
    const again = await send(rerun, it, other);
    const [res2] = await rerun.commit([again.req]);
    expect(res2!.outcome).toBe('created');
    if (res2!.outcome === 'created') expect(res2!.destPath).toBe('/Pictures/Xiaomi/Camera/same (2).jpg');
    expect(store.keys!('rename:')).toEqual([]);
    expect(fs.readFileSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Camera', 'same (2).jpg')).equals(other)).toBe(true);
  });

  it('a fragment that landed while its answer was lost: the 416 is resolved by asking the session', async () => {
    const d = makeDest();
    const s = await d.http.createUploadSession('/me/drive/root:/Lost/f.bin:/createUploadSession', { item: { '@microsoft.graph.conflictBehavior': 'fail' } });
    const frag = crypto.randomBytes(327_680);
    // The service already has this fragment (the earlier answer never arrived).
    expect((await d.http.uploadRequest('PUT', s.url, frag, { start: 0, total: 327_680 * 2 })).status).toBe(202);
    const before = emu.emulator.metrics.byStatus['416'] ?? 0;
    const send = (d as unknown as { sendFragment(u: string, b: Buffer, st: number, t: number, sig: AbortSignal): Promise<number> }).sendFragment.bind(d);
    await send(s.url, frag, 0, 327_680 * 2, new AbortController().signal);
    expect(emu.emulator.metrics.byStatus['416']).toBe(before + 1);
    // ...and the upload goes on from where the session stands.
    await send(s.url, frag, 327_680, 327_680 * 2, new AbortController().signal);
    expect(fs.readFileSync(path.join(data, 'me', 'Lost', 'f.bin')).equals(Buffer.concat([frag, frag]))).toBe(true);
  });

  it('abort deletes the upload session', async () => {
    const d = makeDest();
    const bytes = crypto.randomBytes(327_680 * 2 + 5);
    const it = item('aborted.bin', bytes.length);
    const { staged, slot: s } = await send(d, it, bytes);
    await d.abort(staged);
    const r = await d.http.uploadRequest('GET', (s.value as { url: string }).url);
    expect(r.status).toBe(404);
  });

  it('verify: pending while the hash is missing, mismatch on other bytes', async () => {
    const d = makeDest();
    const bytes = crypto.randomBytes(400_000);
    const it = item('verify.bin', bytes.length);
    const { req, hashes } = await send(d, it, bytes);
    const [res] = await d.commit([req]);
    const destId = (res as { destId: string }).destId;
    const wrong = { ...hashes, quickXor: quickXorBase64(Buffer.from('other')) };
    const [m] = await d.verify([{ destId, item: it, facts, hashes: wrong, size: bytes.length }]);
    expect(m!.outcome).toBe('mismatch');
    const [gone] = await d.verify([{ destId: 'ME!nothere', item: it, facts, hashes, size: bytes.length }]);
    expect(gone!.outcome).toBe('mismatch');
  });

  it('maps names OneDrive refuses, reversibly, and the service accepts them', async () => {
    const names = [
      'a:b*c?.jpg',
      'CON.jpg',
      ' lead.jpg',
      'trail. ',
      '~$tmp.jpg',
      'x_vti_y.jpg',
      'desktop.ini',
      'pipe|<>"\\.png',
      '已有：全角.jpg',
      '（１）.jpg',
      'tab\there.jpg',
    ];
    const d = makeDest();
    for (const n of names) {
      const enc = encodeName(n);
      expect(decodeName(enc)).toBe(n);
      const bytes = crypto.randomBytes(1000);
      const { req } = await send(d, item(n, bytes.length, 'Names'), bytes);
      const [res] = await d.commit([req]);
      expect(res!.outcome, n).toBe('created');
      expect(fs.readFileSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Names', enc)).equals(bytes)).toBe(true);
    }
    expect(encodeName('（１）.jpg')).toBe('（１）.jpg'); // CJK full-width brackets stay as they are
  });

  it('layout date puts items under YYYY/MM; no capture time goes to Undated', async () => {
    const d = makeDest({ layout: 'date' });
    expect(await d.prepareContainer(item('x.jpg', 1), facts)).toBe('/Pictures/Xiaomi/2021/12');
    expect(await d.prepareContainer(item('x.jpg', 1), { ...facts, captureTime: null })).toBe('/Pictures/Xiaomi/Undated');
    expect(fs.statSync(path.join(data, 'me', 'Pictures', 'Xiaomi', '2021', '12')).isDirectory()).toBe(true);
  });

  it('reports quota.remaining for plan, and a file that cannot fit stops the run (507) before any byte is sent (fileSize, personal)', async () => {
    const small = await own.emulator(tmpDir('gb-od-full-'), ['--quota-bytes', '1000000']);
    const d = smallDest(small);
    expect((await d.capacity()).remainingBytes).toBe(1_000_000);
    const bytes = crypto.randomBytes(1_200_000);
    const it = item('big.bin', bytes.length);
    const container = await d.prepareContainer(it, facts);
    await expect(
      d.upload({ item: it, facts, container, name: it.name, size: bytes.length, body: body(bytes), session: slot(), signal: new AbortController().signal }),
    ).rejects.toSatisfy((e: unknown) => e instanceof StopRunError && e.kind === 'destination-full');
    expect(small.emulator.metrics.uploadBytesReceived).toBe(0);
  });

  it('the emulator is strict about upload URLs: no token, 320 KiB multiples, in order, 416 on overlap', async () => {
    const d = makeDest();
    const s = await d.http.createUploadSession('/me/drive/root:/Strict/x.bin:/createUploadSession', { item: { '@microsoft.graph.conflictBehavior': 'fail' } });
    const u = new URL(s.url);
    expect(u.hostname).toBe('127.0.0.1');
    const put = (range: string, buf: Buffer, extra: Record<string, string> = {}) =>
      fetch(s.url, { method: 'PUT', body: new Uint8Array(buf), headers: { 'Content-Range': range, ...extra } });
    expect((await put('bytes 0-327679/700000', Buffer.alloc(327_680), { Authorization: `Bearer ${TOKEN}` })).status).toBe(401);
    expect((await put('bytes 0-99999/700000', Buffer.alloc(100_000))).status).toBe(400);
    expect((await put('bytes 0-327679/700000', Buffer.alloc(327_680))).status).toBe(202);
    expect((await put('bytes 0-327679/700000', Buffer.alloc(327_680))).status).toBe(416);
    expect((await put('bytes 655360-699999/700000', Buffer.alloc(44_640))).status).toBe(400);
    expect((await put('bytes 327680-655359/700001', Buffer.alloc(327_680))).status).toBe(400);
    const st = (await (await fetch(s.url)).json()) as { nextExpectedRanges: string[] };
    expect(st.nextExpectedRanges[0]).toBe('327680-699999');
    // The API host refuses requests without a token.
    expect((await fetch(`${emu.env.GRAPH_BASE_URL}/me/drive`)).status).toBe(401);
  });

  it("the run's stop ends the requests in flight at once, with an AbortError, and any sent after it", async () => {
    const slow = await own.emulator(tmpDir('gb-od-stop-'), ['--latency-ms', '20000']);
    const run = new AbortController();
    const h = new GraphHttp({ baseUrl: slow.env.GRAPH_BASE_URL!, tokens: { kind: 'static', get: async () => TOKEN }, pacers: [], signal: run.signal });
    try {
      const get = () =>
        h.send({ method: 'GET', url: `${slow.env.GRAPH_BASE_URL}/me/drive`, headers: { Authorization: `Bearer ${TOKEN}` }, signal: run.signal });
      const started = Date.now();
      const inFlight = [get(), get(), get()].map((p) =>
        p.then(
          () => 'answered',
          (e: Error) => e.name,
        ),
      );
      setTimeout(() => run.abort(), 200);
      expect(await Promise.all(inFlight)).toEqual(['AbortError', 'AbortError', 'AbortError']);
      expect(Date.now() - started).toBeLessThan(5000);
      await expect(get()).rejects.toMatchObject({ name: 'AbortError' });
    } finally {
      h.close();
    }
  });
});
