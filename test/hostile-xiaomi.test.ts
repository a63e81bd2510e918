// Hostile answers from a Xiaomi-like service, end to end through the CLI with --delete-source:
// a listing with missing fields, wrong types, negative and huge sizes, duplicate and non-string
// ids, names with ../, /, NUL, control characters, 1,000 characters and names the destination
// reserves; download steps answering HTML where JSON was expected, a JSONP answer that is not
// what it claims, more or fewer bytes than declared, and an answer that never ends.
// For each: a clear reason, the run goes on with the rest, nothing unproven is deleted, and
// nothing is written outside the destination root. The server below is deliberately NOT an
// emulator of i.mi.com: it is the service misbehaving.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startOneDriveEmulator } from '../providers/onedrive/emulator/server.ts';
import { FIXTURES, runCli, tmpDir, tlsArgs } from './helpers.ts';

const sha1 = (b: Buffer) => crypto.createHash('sha1').update(b).digest('hex');
const jpeg = fs.readFileSync(path.join(FIXTURES, 'f6t.jpg'));
/** Distinct valid bytes per item: the sample photo with a different trailer after its end. */
const bytesOf = (n: number) => Buffer.concat([jpeg, Buffer.from(`item-${n}-${'x'.repeat(n % 7)}`)]);

type Download = 'ok' | 'html' | 'jsonp-lie' | 'jsonp-html' | 'larger' | 'smaller' | 'never-ends';
interface Entry {
  json: Record<string, unknown>;
  /** What the service serves for the entry's id. */
  id?: string;
  bytes?: Buffer;
  download?: Download;
  /** The entry must arrive and may be deleted. */
  good?: boolean;
}

let serial = 0;
function entry(over: Record<string, unknown>, opts: { download?: Download; good?: boolean; omit?: string[]; bytes?: Buffer } = {}): Entry {
  const n = ++serial;
  const bytes = opts.bytes ?? bytesOf(n);
  const id = String(10_000_000_000_000_000n + BigInt(n));
  const json: Record<string, unknown> = {
    id,
    fileName: `IMG_${n}.jpg`,
    type: 'image',
    mimeType: 'image/jpeg',
    size: bytes.length,
    sha1: sha1(bytes),
    dateTaken: 1_600_000_000_000 + n,
    groupId: 1,
    status: 'normal',
    ...over,
  };
  for (const k of opts.omit ?? []) delete json[k];
  return { json, id: typeof json.id === 'string' ? json.id : id, bytes, download: opts.download ?? 'ok', good: opts.good ?? false };
}

const LONG = `${'L'.repeat(996)}.jpg`;
const entries: Entry[] = [
  entry({}, { good: true }),
  entry({ fileName: 'good-two.jpg' }, { good: true }),
  // fields missing or of the wrong type
  entry({}, { omit: ['fileName'] }),
  entry({}, { omit: ['id'] }),
  entry({}, { omit: ['size'] }),
  entry({}, { omit: ['sha1'] }),
  entry({ id: true }),
  entry({ id: { nested: 1 } }),
  entry({ id: null }),
  entry({ fileName: 42 }),
  entry({ fileName: ['a.jpg'] }),
  entry({ size: -5 }),
  entry({ size: 1e15 }),
  entry({ size: 'abc' }),
  entry({ sha1: 12345 }),
  entry({ dateTaken: 'yesterday' }),
  // names: each is a valid photo, so it may arrive under a safe name, but only inside the root
  entry({ fileName: '../../escape.jpg' }),
  entry({ fileName: '../../../../../../tmp/gb-hostile-escape.jpg' }),
  entry({ fileName: 'sub/dir/name.jpg' }),
  entry({ fileName: '/etc/passwd' }),
  entry({ fileName: 'nul\u0000byte.jpg' }),
  entry({ fileName: 'ctl\u0007\u001b[31m\r\nname.jpg' }),
  entry({ fileName: LONG }),
  entry({ fileName: '.' }),
  entry({ fileName: '..' }),
  entry({ fileName: '' }),
  entry({ fileName: 'CON.jpg' }),
  entry({ fileName: 'desktop.ini' }),
  entry({ fileName: 'a:b*c?"<>|.jpg' }),
  entry({ fileName: 'trailing dot.' }),
  entry({ fileName: '.lock' }),
  entry({ fileName: '_vti_cnf.jpg' }),
  // downloads that lie
  entry({}, { download: 'html' }),
  entry({}, { download: 'jsonp-lie' }),
  entry({}, { download: 'jsonp-html' }),
  entry({}, { download: 'larger' }),
  entry({}, { download: 'smaller' }),
  entry({}, { download: 'never-ends' }),
];
// A duplicate id: a second entry claims an item's id with other bytes (the service serves the first).
const claimed = entry({ fileName: 'claimed.jpg' });
entries.push(claimed);
const dupBytes = bytesOf(999);
entries.push({
  json: { ...claimed.json, fileName: 'impostor.jpg', size: dupBytes.length, sha1: sha1(dupBytes) },
  id: claimed.id,
  bytes: dupBytes,
  download: 'ok',
});
// A numeric id (JSON number, below 2^53): the service writes small ids as numbers too.
const numeric = entry({ id: 4242, fileName: 'numeric-id.jpg' });
numeric.id = '4242';
entries.push(numeric);

const byId = new Map<string, Entry>();
for (const e of entries) if (e.id && !byId.has(e.id)) byId.set(e.id, e);

let server: http.Server;
let base = '';
const deleteRequests: string[] = [];
const stalled = new Set<http.ServerResponse>();

function answer(res: http.ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
const ok = (res: http.ServerResponse, data: unknown) => answer(res, 200, 'application/json', JSON.stringify({ code: 0, result: 'ok', data }));

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', base);
    const p = u.pathname;
    if (p === '/gallery/user/album/list')
      return ok(res, { albums: u.searchParams.get('pageNum') === '0' ? [{ albumId: 1, name: 'Camera', mediaCount: entries.length }] : [], isLastPage: true });
    if (p === '/gallery/user/galleries')
      return ok(res, { galleries: u.searchParams.get('pageNum') === '0' ? entries.map((e) => e.json) : [], isLastPage: true });
    if (p === '/status/lite/setting' || p === '/status/lite/alldetail') return ok(res, {});
    if (p === '/gallery/storage') {
      const e = byId.get(u.searchParams.get('id') ?? '');
      if (!e) return answer(res, 200, 'application/json', JSON.stringify({ code: 50050, result: 'error', description: 'file has been deleted' }));
      if (e.download === 'html') return answer(res, 200, 'text/html', '<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>');
      return ok(res, { url: `${base}/_dl/jsonp/${e.id}` });
    }
    const jsonp = /^\/_dl\/jsonp\/(.+)$/.exec(p);
    if (jsonp) {
      const e = byId.get(jsonp[1]!)!;
      if (e.download === 'jsonp-lie') return answer(res, 200, 'application/javascript', 'dl_img_cb({"url": 12345, "meta": {"not": "a string"}});');
      if (e.download === 'jsonp-html') return answer(res, 200, 'application/javascript', '<html><body>Please sign in</body></html>');
      return answer(res, 200, 'application/javascript', `dl_img_cb(${JSON.stringify({ url: `${base}/_dl/file/${e.id}`, meta: 'meta-value-123456' })});`);
    }
    const file = /^\/_dl\/file\/(.+)$/.exec(p);
    if (file && req.method === 'POST') {
      const e = byId.get(file[1]!)!;
      req.resume();
      const b = e.bytes!;
      if (e.download === 'larger') return answer(res, 200, 'image/jpeg', Buffer.concat([b, Buffer.alloc(1000, 1)]));
      if (e.download === 'smaller') return answer(res, 200, 'image/jpeg', b.subarray(0, b.length - 100));
      if (e.download === 'never-ends') {
        // Announces the right length, sends half, then nothing, ever.
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': b.length });
        res.write(b.subarray(0, b.length >> 1));
        stalled.add(res);
        return;
      }
      return answer(res, 200, 'image/jpeg', b);
    }
    if (p === '/gallery/info/delete' && req.method === 'POST') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const id = new URLSearchParams(body).get('id') ?? '';
        deleteRequests.push(id);
        ok(res, { id, deleted: true });
      });
      return;
    }
    answer(res, 404, 'text/plain', 'not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const r of stalled) r.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** Every file below dir (relative), dot files included. */
function allFiles(dir: string): string[] {
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir, { recursive: true })
        .map(String)
        .filter((r) => fs.statSync(path.join(dir, r)).isFile())
    : [];
}

function stateRows(file: string) {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT source_id, name, state, reason, last_error, sha1 FROM items').all() as Array<{
      source_id: string;
      name: string;
      state: string;
      reason: string | null;
      last_error: string | null;
      sha1: string | null;
    }>;
  } finally {
    db.close();
  }
}

describe('a hostile Xiaomi listing and lying downloads, with --delete-source', () => {
  const env = () => ({
    XIAOMI_BASE_URL: base,
    XIAOMI_COOKIE: 'userId=1234567890; serviceToken=hostile-service-token-xyz',
    XIAOMI_DELETE_PAUSE_MS: '0',
    XIAOMI_TIMEOUT_MS: '3000',
  });

  it.each(['folder', 'onedrive'])(
    'to %s: the good items move, every bad one says why, nothing unproven is deleted, nothing lands outside the root',
    async (dest) => {
      deleteRequests.length = 0;
      const t = tmpDir('gb-hostile-x-');
      const root = path.join(t, 'inside', 'dst');
      const extraEnv: Record<string, string> = { GALLERY_BRIDGE_HOME: path.join(t, 'home') };
      let to = `folder:${root}`;
      let stored = () => allFiles(root).map((r) => ({ rel: r, bytes: fs.readFileSync(path.join(root, r)) }));
      let close: () => Promise<void> = async () => {};
      if (dest === 'onedrive') {
        const data = path.join(t, 'inside', 'od');
        const e = await startOneDriveEmulator(['--port', '0', '--data', data, '--accept-token', 'hostile-od-token-123', ...tlsArgs()]);
        Object.assign(extraEnv, {
          GRAPH_BASE_URL: e.env.GRAPH_BASE_URL!,
          NODE_EXTRA_CA_CERTS: e.env.NODE_EXTRA_CA_CERTS ?? process.env.NODE_EXTRA_CA_CERTS!,
          ONEDRIVE_ACCESS_TOKEN: 'hostile-od-token-123',
        });
        to = 'onedrive:/Pictures/Hostile';
        stored = () =>
          allFiles(data)
            .filter((r) => !r.startsWith('.emulator'))
            .map((r) => ({ rel: r, bytes: fs.readFileSync(path.join(data, r)) }));
        close = () => e.close();
      }
      const state = path.join(t, 'state.db');
      const run = await runCli(['migrate', '--from', 'xiaomi', '--to', to, '--state', state, '--delete-source', '--retries', '2', '--concurrency', '4'], {
        env: { ...env(), ...extraEnv },
        timeoutMs: 150_000,
      });
      await close();
      const out = run.stdout + run.stderr;
      // It ended by itself (no hang on the answer that never ends), saying some items did not move.
      expect(run.signal, out.slice(-3000)).toBe(null);
      expect(run.code, out.slice(-3000)).toBe(1);

      // Nothing outside the root: the temp folder holds only the root, the state and the home.
      const outside = allFiles(t).filter((r) => !r.startsWith(`inside${path.sep}`) && !r.startsWith('state.db') && !r.startsWith(`home${path.sep}`));
      expect(outside).toEqual([]);
      expect(fs.existsSync('/tmp/gb-hostile-escape.jpg')).toBe(false);
      expect(allFiles(path.join(t, 'inside')).every((r) => r.startsWith(`dst${path.sep}`) || r.startsWith(`od${path.sep}`))).toBe(true);

      // Every byte stored at the destination is one the service served as a whole item, once.
      const served = new Map<string, Entry>();
      for (const e of entries) if (e.bytes) served.set(sha1(e.bytes), e);
      const storedHashes = stored().map((s) => sha1(s.bytes));
      for (const h of storedHashes) expect(served.has(h), 'torn or foreign bytes at the destination').toBe(true);
      expect(new Set(storedHashes).size).toBe(storedHashes.length);
      for (const e of entries.filter((x) => x.good)) expect(storedHashes).toContain(sha1(e.bytes!));
      for (const e of entries.filter((x) => x.download && x.download !== 'ok')) expect(storedHashes, `${e.download} arrived`).not.toContain(sha1(e.bytes!));

      // Deleted at the source: only items whose served bytes are at the destination, each once.
      expect(new Set(deleteRequests).size).toBe(deleteRequests.length);
      for (const id of deleteRequests) {
        const e = byId.get(id);
        expect(e, `deleted an id the listing never had: ${id}`).toBeDefined();
        expect(storedHashes, `deleted ${id} without its bytes at the destination`).toContain(sha1(e!.bytes!));
      }
      for (const e of entries.filter((x) => x.download && x.download !== 'ok')) expect(deleteRequests).not.toContain(e.id);
      for (const e of entries.filter((x) => x.good)) expect(deleteRequests).toContain(e.id);

      // Every item the tool kept is in the state with a one-line reason; the report writes.
      const rows = stateRows(state);
      for (const r of rows.filter((x) => x.state === 'failed' || x.state === 'rejected')) {
        const why = r.reason ?? r.last_error ?? '';
        expect(why.length, `${r.name}: no reason`).toBeGreaterThan(5);
        expect(why).not.toMatch(/\n/);
        expect(why).not.toContain('hostile-service-token-xyz');
      }
      const report = await runCli(['report', '--state', state, '--out', path.join(t, 'report.json')]);
      expect(report.code, report.stderr).toBe(0);
      expect(out).not.toContain('hostile-service-token-xyz');
      expect(out).not.toContain('meta-value-123456');
      // The printed lines carry no raw control characters from hostile names.
      expect(
        out
          .split('\n')
          .filter((l) => /\u001b\[31m|\u0007|\u0000/.test(l))
          .map((l) => JSON.stringify(l)),
      ).toEqual([]);
    },
  );
});
