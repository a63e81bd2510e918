// The Xiaomi Source against the i.mi.com emulator over loopback: listing, downloads checked by
// hashing the bytes here, 50050, session renewal, the download-host allow-list.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ItemGoneError, RejectedError, RetryableError, StopRunError, type SourceItem } from '../providers/types.ts';
import { createXiaomiSource } from '../providers/xiaomi/index.ts';
import type { XiaomiSource } from '../providers/xiaomi/source.ts';
import { parseJsonKeepingBigInts, parseJsonp } from '../providers/xiaomi/json.ts';
import { HostPolicy } from '../providers/xiaomi/hosts.ts';
import { credentialsFromText } from '../providers/xiaomi/session.ts';
import { redact, registerPassingSecret } from '../src/lib/redact.ts';
import { credentialsFromCookies, parseCookieString, XiaomiClient } from '../providers/xiaomi/client.ts';
import type { XiaomiEmulator } from '../providers/xiaomi/emulator/server.ts';
import { makeSeed, readEmulatorState, startEmulator, testContext, tmpDir } from '../providers/xiaomi/test-support.ts';

async function listAll(src: XiaomiSource): Promise<{ items: SourceItem[]; pages: number }> {
  const items: SourceItem[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await src.listItems(cursor);
    items.push(...page.items);
    cursor = page.cursor;
    pages++;
  } while (cursor !== null && pages < 10_000);
  return { items, pages };
}

async function sha1Of(stream: Readable): Promise<{ sha1: string; size: number }> {
  const h = crypto.createHash('sha1');
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha1: h.digest('hex'), size };
}

const sha1File = (f: string) => crypto.createHash('sha1').update(fs.readFileSync(f)).digest('hex');

/** The proof the engine would pass: the bytes read matched the SHA-1 the listing declared. */
function proofOf(it: SourceItem) {
  return { hashes: { sha1: it.sha1 ?? '', sha256: '', quickXor: '', size: it.size ?? 0 }, readThisRun: true };
}

describe('json helpers', () => {
  it('keeps ids above 2^53 exact and leaves strings alone', () => {
    const v = parseJsonKeepingBigInts('{"id":24886749771271584,"s":"x 12345678901234567 y","n":1700000000000,"a":[-12345678901234567]}') as Record<
      string,
      unknown
    >;
    expect(v.id).toBe('24886749771271584');
    expect(v.s).toBe('x 12345678901234567 y');
    expect(v.n).toBe(1700000000000);
    expect(v.a).toEqual(['-12345678901234567']);
  });
  it('reads JSONP whatever the callback name and trailing bits', () => {
    for (const t of [
      'dl_img_cb({"url":"https://a.mi.com/x","meta":"m"})',
      '  dl_img_cb_171_0( {"url":"https://a.mi.com/x","meta":"m"} );\n',
      'try{cb({"url":"https://a.mi.com/x","meta":"m"})}catch(e){}',
      '{"url":"https://a.mi.com/x","meta":"m"}',
    ]) {
      expect(parseJsonp(t)).toEqual({ url: 'https://a.mi.com/x', meta: 'm' });
    }
    expect(() => parseJsonp('<html>nope</html>')).toThrow(/not JSONP/);
  });
  it('allows Xiaomi hosts over https and the API base, nothing else', () => {
    const p = new HostPolicy(new URL('http://127.0.0.1:4000'), ['.example-cdn.net']);
    expect(p.refusal(new URL('https://micloudfs.fds.api.xiaomi.com/x'))).toBeNull();
    expect(p.refusal(new URL('https://account.xiaomi.com/pass'))).toBeNull();
    expect(p.refusal(new URL('http://127.0.0.1:4000/_dl/x'))).toBeNull();
    expect(p.refusal(new URL('https://a.example-cdn.net/x'))).toBeNull();
    expect(p.refusal(new URL('http://127.0.0.1:4001/_dl/x'))).toMatch(/allow-list/);
    expect(p.refusal(new URL('https://evilmi.com/x'))).toMatch(/allow-list/);
    expect(p.refusal(new URL('https://xiaomi.com.evil.org/x'))).toMatch(/allow-list/);
    expect(p.refusal(new URL('http://i.mi.com/x'))).toMatch(/not https/);
  });
});

describe('xiaomi credentials', () => {
  it('reads a cookie string, name=value lines or the stored JSON, and registers the secrets', () => {
    const a = credentialsFromText('Cookie: userId=123; serviceToken="abc-def-ghi"; uLocale=zh_CN');
    expect(a).toMatchObject({ userId: '123', serviceToken: 'abc-def-ghi', cookies: { uLocale: 'zh_CN' } });
    const b = credentialsFromText('userId=123\npassToken=V1:pass-token-value\n');
    expect(b).toMatchObject({ userId: '123', passToken: 'V1:pass-token-value' });
    const c = credentialsFromText(JSON.stringify({ userId: '123', passToken: 'another-pass', deviceId: 'wb_x', savedAt: 'now' }));
    expect(c).toMatchObject({ userId: '123', passToken: 'another-pass', deviceId: 'wb_x' });
    expect(redact('token V1:pass-token-value and abc-def-ghi')).not.toMatch(/pass-token-value|abc-def-ghi/);
    expect(() => credentialsFromText('serviceToken=abc')).toThrow(/userId/);
    expect(() => credentialsFromText('userId=1; foo=bar')).toThrow(/serviceToken nor a passToken/);
  });

  it("masks a download's meta while the download lasts, then lets go of it (a library's worth never piles up)", () => {
    const first = registerPassingSecret('meta+signed/abc==');
    const second = registerPassingSecret('meta+signed/abc==');
    expect(redact('POST meta+signed/abc== failed')).toBe('POST [redacted] failed');
    first();
    first();
    expect(redact('POST meta+signed/abc== failed')).toBe('POST [redacted] failed');
    second();
    expect(redact('POST meta+signed/abc== failed')).toBe('POST meta+signed/abc== failed');
  });
});

describe('xiaomi source: 10,000 items', () => {
  let emu: XiaomiEmulator;
  const data = tmpDir('big');
  beforeAll(async () => {
    emu = await startEmulator(data, { synthetic: 10_000 });
  });
  afterAll(() => emu.close());

  it('lists every item across pages with big ids intact', async () => {
    const src = await createXiaomiSource(testContext(emu.env));
    const t0 = Date.now();
    const { items, pages } = await listAll(src);
    const ms = Date.now() - t0;
    await src.close();
    expect(items.length).toBe(10_000);
    expect(pages).toBeGreaterThanOrEqual(200);
    const expected = new Set(emu.manifest().map((m) => m.id));
    const got = new Set(items.map((i) => i.id));
    expect(got.size).toBe(10_000);
    for (const id of got) expect(expected.has(id)).toBe(true);
    for (const it of items.slice(0, 50)) {
      expect(it.id).toMatch(/^\d{17}$/);
      expect(BigInt(it.id) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
      expect(it.sha1).toMatch(/^[0-9a-f]{40}$/);
      expect(it.albumName).toBe('Synthetic');
      expect(it.declaredCaptureTime).toMatch(/Z$/);
    }
    console.log(`xiaomi listing: 10000 items, ${pages} pages, ${ms} ms, ${Math.round(10_000 / (ms / 1000))} items/s`);
  });

  it('does not skip items when listed items are deleted while the listing goes on', async () => {
    const small = await startEmulator(tmpDir('shift'), { synthetic: 500 });
    // Unpaced deletions: this is about the listing; the pacing has its own tests below.
    const src = await createXiaomiSource(testContext({ ...small.env, XIAOMI_PAGE_SIZE: '10', XIAOMI_DELETE_PAUSE_MS: '0' }));
    const seen = new Set<string>();
    let cursor: string | null = null;
    let deleted = 0;
    let pages = 0;
    do {
      const page = await src.listItems(cursor);
      cursor = page.cursor;
      for (const it of page.items) seen.add(it.id);
      // Delete what this page listed (as the engine does once items are verified), for a few pages.
      if (pages < 6)
        for (const it of page.items) {
          await src.delete(it, proofOf(it));
          deleted++;
        }
      pages++;
    } while (cursor !== null);
    await src.close();
    await small.close();
    expect(deleted).toBe(60);
    expect(seen.size).toBe(500);
  });
});

describe('xiaomi source: deletions racing the listing', () => {
  it('never skips an item while deletions run concurrently with page reads', async () => {
    for (let round = 0; round < 3; round++) {
      const emu = await startEmulator(tmpDir('race'), { synthetic: 150, latencyMs: 3 + round });
      const src = await createXiaomiSource(testContext({ ...emu.env, XIAOMI_PAGE_SIZE: '10', XIAOMI_MAX_RPS: '0', XIAOMI_DELETE_PAUSE_MS: '0' }));
      const seen = new Set<string>();
      const queue: SourceItem[] = [];
      let listing = true;
      const deleter = (async () => {
        while (listing || queue.length) {
          const it = queue.shift();
          if (!it) {
            await new Promise((r) => setTimeout(r, 1));
            continue;
          }
          await new Promise((r) => setTimeout(r, Math.random() * 4));
          await src.delete(it, proofOf(it));
        }
      })();
      let cursor: string | null = null;
      do {
        const page = await src.listItems(cursor);
        for (const it of page.items) {
          if (!seen.has(it.id)) queue.push(it);
          seen.add(it.id);
        }
        cursor = page.cursor;
      } while (cursor);
      listing = false;
      await deleter;
      await src.close();
      await emu.close();
      expect(seen.size).toBe(150);
      expect(Object.keys(readEmulatorState(emu.stateFile.replace(/\/\.emulator\/.*$/, '')).deleted).length).toBe(150);
    }
  });
});

describe('xiaomi source: paced deletions', () => {
  it('spaces its own deletions by XIAOMI_DELETE_PAUSE_MS, whoever calls delete()', async () => {
    const dir = tmpDir('paced');
    const emu = await startEmulator(dir, { synthetic: 3 });
    try {
      const src = await createXiaomiSource(testContext({ ...emu.env, XIAOMI_DELETE_PAUSE_MS: '250' }));
      const { items } = await listAll(src);
      const t0 = Date.now();
      for (const it of items) await src.delete(it, proofOf(it));
      // Three deletions, two pauses between them; none after the last.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2 * 250 - 5);
      await src.close();
    } finally {
      await emu.close();
    }
    expect(Object.keys(readEmulatorState(dir).deleted).length).toBe(3);
  });
});

describe('xiaomi source: deletions paced by the answers', () => {
  it('backs off while the service answers busy, comes back to the floor when it stops, and deletes everything', async () => {
    const dir = tmpDir('paced-busy');
    const emu = await startEmulator(dir, { synthetic: 30, faultDelete: 0.3 });
    try {
      const src = await createXiaomiSource(testContext({ ...emu.env, XIAOMI_DELETE_PAUSE_MS: '5' }));
      const { items } = await listAll(src);
      let maxGap = 0;
      for (const it of items) {
        // A deletion whose five tries all met a busy answer is retried, as the engine would.
        for (let tries = 0; ; tries++) {
          try {
            await src.delete(it, proofOf(it));
            break;
          } catch (err) {
            if (!(err instanceof RetryableError) || tries > 3) throw err;
          }
        }
        maxGap = Math.max(maxGap, src.deletePacer.currentGapMs);
      }
      const faults = readEmulatorState(dir).counters.faultDelete ?? 0;
      expect(faults).toBeGreaterThan(0);
      // Every 503 the emulator gave was seen as busy, and widened the gap past the floor.
      expect(src.deletePacer.stats.busy).toBe(faults);
      expect(maxGap).toBeGreaterThanOrEqual(20);
      // Then enough deletions taken in a row bring it back toward the floor.
      for (let i = 0; i < 20; i++) src.deletePacer.took();
      expect(src.deletePacer.currentGapMs).toBe(5);
      await src.close();
    } finally {
      await emu.close();
    }
    expect(Object.keys(readEmulatorState(dir).deleted).length).toBe(30);
  });
});

describe('xiaomi source: sample media', () => {
  let emu: XiaomiEmulator;
  const seed = makeSeed(tmpDir('seed'));
  const data = tmpDir('data');
  beforeAll(async () => {
    emu = await startEmulator(data, { seed });
  });
  afterAll(() => emu.close());

  it('lists albums with names, skips the private album and says so', async () => {
    const src = await createXiaomiSource(testContext(emu.env));
    const { items } = await listAll(src);
    const notes = await src.planNotes();
    await src.close();
    const manifest = emu.manifest();
    expect(items.length).toBe(manifest.filter((m) => m.albumName !== 'Private').length);
    expect(new Set(items.map((i) => i.albumName))).toEqual(new Set(['Camera', 'Screenshots', 'Holidays 2019']));
    expect(items.find((i) => i.albumName === 'Camera')!.albumId).toBe('1');
    expect(items.find((i) => i.albumName === 'Screenshots')!.albumId).toBe('2');
    expect(items.find((i) => i.albumName === 'Holidays 2019')!.albumId).toMatch(/^\d{17}$/);
    const priv = notes.find((n) => /private album/.test(n.message));
    expect(priv?.items).toBe(2);
    expect(priv?.message).toMatch(/--include-private/);
    expect(notes.some((n) => /storage/.test(n.message))).toBe(true);
  });

  it('includes the private album with --include-private', async () => {
    const src = await createXiaomiSource(testContext(emu.env, { includePrivate: true }));
    const { items } = await listAll(src);
    await src.close();
    expect(items.filter((i) => i.albumId === '1000').length).toBe(2);
  });

  it('downloads every item through the three steps, bytes equal to the seed and the declared SHA-1', async () => {
    const src = await createXiaomiSource(testContext(emu.env, { includePrivate: true }));
    const { items } = await listAll(src);
    const byId = new Map(emu.manifest().map((m) => [m.id, m]));
    for (const item of items) {
      const got = await sha1Of(await src.open(item));
      const m = byId.get(item.id)!;
      expect(got.sha1).toBe(item.sha1);
      expect(got.size).toBe(item.size);
      expect(got.sha1).toBe(sha1File(m.file!));
    }
    await src.close();
    const state = readEmulatorState(data);
    expect(Object.keys(state.downloads).length).toBe(items.length);
  });

  it('answers 50050 for a deleted item, keeps the deletion across restarts, never touches the seed', async () => {
    const d2 = tmpDir('data2');
    const e2 = await startEmulator(d2, { seed });
    const src = await createXiaomiSource(testContext(e2.env));
    const { items } = await listAll(src);
    const victim = items.find((i) => i.name === 'noexif.jpg')!;
    const res = await src.delete(victim, proofOf(victim));
    expect(res.response).toMatch(/"code":0/);
    await expect(src.open(victim)).rejects.toBeInstanceOf(ItemGoneError);
    const again = await src.delete(victim, proofOf(victim));
    expect(again.response).toMatch(/already deleted/);
    await expect(src.delete({ ...items[0]!, sha1: null }, proofOf(items[0]!))).rejects.toBeInstanceOf(RejectedError);
    await src.close();
    await e2.close();
    const e3 = await startEmulator(d2, { seed });
    const src3 = await createXiaomiSource(testContext(e3.env));
    const { items: after } = await listAll(src3);
    await src3.close();
    await e3.close();
    expect(after.length).toBe(items.length - 1);
    expect(after.find((i) => i.id === victim.id)).toBeUndefined();
    expect(items.find((i) => i.id === victim.id)).toBeDefined();
    expect(fs.existsSync(path.join(seed, 'Screenshots', 'noexif.jpg'))).toBe(true);
    expect(readEmulatorState(d2).deleted[victim.id]?.fileName).toBe('noexif.jpg');
  });

  it('keeps its record through a kill: each change is in DATA before it is answered, and a restart takes it up', async () => {
    const d = tmpDir('killed');
    const e = await startEmulator(d, { seed });
    const src = await createXiaomiSource(testContext(e.env));
    const { items } = await listAll(src);
    const [read, victim] = items;
    await sha1Of(await src.open(read!));
    await src.delete(victim!, proofOf(victim!));
    await src.close();
    // No close(): as if killed. The record is read from the outside, then a new emulator starts on it.
    expect(readEmulatorState(d).downloads[read!.id]).toBe(1);
    expect(readEmulatorState(d).deleted[victim!.id]?.fileName).toBe(victim!.name);
    const again = await startEmulator(d, { seed });
    const src2 = await createXiaomiSource(testContext(again.env));
    const { items: after } = await listAll(src2);
    await src2.close();
    expect(after.map((i) => i.id).sort()).toEqual(
      items
        .filter((i) => i.id !== victim!.id)
        .map((i) => i.id)
        .sort(),
    );
    expect(readEmulatorState(d).downloads[read!.id]).toBe(1);
    expect(readEmulatorState(d).counters.downloads).toBe(1);
    await again.close();
    await e.close();
  });

  it('ids are stable across restarts', async () => {
    const e2 = await startEmulator(tmpDir('data3'), { seed });
    const a = e2
      .manifest()
      .map((m) => m.id)
      .sort();
    await e2.close();
    expect(a).toEqual(
      emu
        .manifest()
        .map((m) => m.id)
        .sort(),
    );
  });
});

describe('xiaomi source: sessions', () => {
  const seed = makeSeed(tmpDir('seed-s'), undefined, (n) => n.endsWith('.jpg') && !n.startsWith('IMG_'));

  it('renews an expired serviceToken from the passToken through the login chain', async () => {
    const data = tmpDir('sess');
    const emu = await startEmulator(data, { seed, sessionTtl: 1 });
    try {
      const src = await createXiaomiSource(testContext(emu.env));
      const first = await src.listItems(null);
      await new Promise((r) => setTimeout(r, 1300));
      const { items } = await listAll(src);
      const bytes = await sha1Of(await src.open(items[0]!));
      expect(bytes.sha1).toBe(items[0]!.sha1);
      expect(first.items.length).toBeGreaterThan(0);
      expect(src.client.stats.renewals).toBeGreaterThanOrEqual(1);
      await src.close();
      const st = readEmulatorState(data);
      expect(st.counters.renewals).toBeGreaterThanOrEqual(1);
      expect(st.counters.unauthorized).toBeGreaterThanOrEqual(1);
    } finally {
      await emu.close();
    }
  });

  it('keeps the session alive on a timer that close() stops, taking the rotated serviceToken', async () => {
    const data = tmpDir('ka');
    const emu = await startEmulator(data, { seed });
    try {
      const client = new XiaomiClient({
        baseUrl: emu.baseUrl,
        credentials: credentialsFromCookies(parseCookieString(emu.env.XIAOMI_COOKIE!)),
        hosts: new HostPolicy(new URL(emu.baseUrl)),
        keepAliveMs: 60,
      });
      const before = client.credentials().serviceToken;
      client.startKeepAlive();
      await new Promise((r) => setTimeout(r, 400));
      client.close();
      const n = client.stats.keepAlives;
      expect(n).toBeGreaterThanOrEqual(2);
      expect(client.credentials().serviceToken).not.toBe(before);
      await new Promise((r) => setTimeout(r, 200));
      expect(client.stats.keepAlives).toBe(n);
      expect((await client.albumPages()).pages.length).toBeGreaterThan(0);
      expect(readEmulatorState(data).counters.keepAlive).toBeGreaterThanOrEqual(2);
    } finally {
      await emu.close();
    }
  });

  it('starts from userId + passToken alone', async () => {
    const emu = await startEmulator(tmpDir('pt'), { seed });
    try {
      const src = await createXiaomiSource(
        testContext({ XIAOMI_BASE_URL: emu.baseUrl, XIAOMI_USER_ID: '1234567890', XIAOMI_PASS_TOKEN: 'emulator-pass-token' }),
      );
      const { items } = await listAll(src);
      await src.close();
      expect(items.length).toBeGreaterThan(0);
    } finally {
      await emu.close();
    }
  });

  it('stops the run with a credentials error that says how to renew when renewal is impossible', async () => {
    const emu = await startEmulator(tmpDir('nopt'), { seed, sessionTtl: 1 });
    try {
      const src = await createXiaomiSource(
        testContext({ XIAOMI_BASE_URL: emu.baseUrl, XIAOMI_COOKIE: 'userId=1234567890; serviceToken=emulator-service-token' }),
      );
      await src.listItems(null);
      await new Promise((r) => setTimeout(r, 1200));
      const err = await src.listItems(null).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StopRunError);
      expect((err as StopRunError).kind).toBe('credentials');
      expect((err as Error).message).toMatch(/gallery-bridge auth xiaomi/);
      expect((err as Error).message).not.toMatch(/emulator-service-token/);
      await src.close();
      const bad = await createXiaomiSource(
        testContext({ XIAOMI_BASE_URL: emu.baseUrl, XIAOMI_USER_ID: '1234567890', XIAOMI_PASS_TOKEN: 'wrong-pass-token' }),
      ).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(StopRunError);
      expect((bad as Error).message).not.toMatch(/wrong-pass-token/);
    } finally {
      await emu.close();
    }
  });
});

describe('xiaomi source: download faults and the allow-list', () => {
  const seed = makeSeed(tmpDir('seed-f'), undefined, (n) => ['f6t.jpg', 'noexif.jpg', 'img_1771.jpg', 'cookiezen.jpg'].includes(n));

  it('refuses a plain-http download link to another host than the API base, sending nothing there', async () => {
    const data = tmpDir('host');
    const emu = await startEmulator(data, { seed, downloadHost: 'localhost' });
    try {
      const src = await createXiaomiSource(testContext(emu.env));
      const { items } = await listAll(src);
      const err = await src.open(items[0]!).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RejectedError);
      expect((err as Error).message).toMatch(/the download link goes to http:\/\/localhost:\d+, not https/);
      await src.close();
      const st = readEmulatorState(data);
      expect(st.counters.jsonp ?? 0).toBe(0);
      expect(st.counters.downloads ?? 0).toBe(0);
    } finally {
      await emu.close();
    }
  });

  it('refuses a plain-http file URL on a foreign host after the JSONP step', async () => {
    const data = tmpDir('host2');
    const emu = await startEmulator(data, { seed, fileHost: 'localhost' });
    try {
      const src = await createXiaomiSource(testContext(emu.env));
      const { items } = await listAll(src);
      await expect(src.open(items[0]!)).rejects.toBeInstanceOf(RejectedError);
      await src.close();
      const st = readEmulatorState(data);
      expect(st.counters.jsonp).toBe(1);
      expect(st.counters.downloads ?? 0).toBe(0);
    } finally {
      await emu.close();
    }
  });

  it('gets fresh links when they expire, and reports the listing sha1 the emulator falsified', async () => {
    const data = tmpDir('exp');
    const emu = await startEmulator(data, { seed, faultExpiredLink: 0.4, faultWrongSha1: 0.5 });
    try {
      const src = await createXiaomiSource(testContext(emu.env, { includePrivate: true }));
      const { items } = await listAll(src);
      let wrong = 0;
      for (const it of items) {
        const got = await sha1Of(await src.open(it));
        if (got.sha1 !== it.sha1) wrong++;
      }
      await src.close();
      expect(wrong).toBeGreaterThan(0);
      expect(wrong).toBeLessThan(items.length);
      expect(readEmulatorState(data).counters.expiredLinks).toBeGreaterThan(0);
    } finally {
      await emu.close();
    }
  });

  it('a download cut short under a correct Content-Length fails as retryable', async () => {
    const emu = await startEmulator(tmpDir('drop'), { seed, faultDrop: 1 });
    try {
      const src = await createXiaomiSource(testContext({ ...emu.env, XIAOMI_MAX_RPS: '0' }));
      // Every answer is cut, listing included: the client retries and gives up with a retryable error.
      const err = await src.listItems(null).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RetryableError);
      await src.close();
    } finally {
      await emu.close();
    }
    const emu2 = await startEmulator(tmpDir('drop2'), { seed });
    try {
      const src = await createXiaomiSource(testContext(emu2.env));
      const { items } = await listAll(src);
      const big = items.reduce((a, b) => ((a.size ?? 0) > (b.size ?? 0) ? a : b));
      // Reading half and giving up closes the download.
      const s = await src.open(big);
      for await (const _ of s) break;
      expect(s.destroyed).toBe(true);
      await src.close();
    } finally {
      await emu2.close();
    }
  });

  it('corrupted bytes come with the right length and a different SHA-1', async () => {
    const data = tmpDir('cor');
    const emu = await startEmulator(data, { seed, faultCorrupt: 1 });
    try {
      const src = await createXiaomiSource(testContext(emu.env));
      const { items } = await listAll(src);
      const got = await sha1Of(await src.open(items[0]!));
      expect(got.size).toBe(items[0]!.size);
      expect(got.sha1).not.toBe(items[0]!.sha1);
      await src.close();
    } finally {
      await emu.close();
    }
  });
});
