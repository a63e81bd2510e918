// OneDrive personal and OneDrive for Business (the emulator's --flavor), through the real CLI as
// a child process where a process matters (kills, SIGTERM, exit codes). Everything is checked
// from the outside: the bytes the emulator stored on disk, its counters, and the process's exit.

import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import type { ItemFacts, SourceItem } from '../providers/types.ts';
import { RetryableError } from '../providers/types.ts';
import { hashBuffer } from '../src/hash/multihash.ts';
import { CLI, FIXTURES, killCliWhen, makeSource, pauseEndChoices, runCli, sha256File, tmpDir, treeHashes } from './helpers.ts';
import { oneDriveDestination, smallOneDriveConfig } from './helpers/onedrive-destination.ts';
import { memorySessionSlot } from './helpers/provider-fakes.ts';
import { oneDriveKit, type Emu } from './onedrive-kit.ts';

type Flavor = 'personal' | 'business';
const TOKEN = 'flavor-token-0123456789abcdef';
const od = oneDriveKit(TOKEN);
const cliEnv = od.cliEnv;
/** The site path the business emulator's signed-in user has (its default --upn). */
const BUSINESS_SITE = 'personal/emulated_user_contoso_onmicrosoft_com/Documents';

function emulator(flavor: Flavor, data: string, flags: string[] = []): Promise<Emu> {
  return od.emulator(data, ['--flavor', flavor, ...flags]);
}

/** Graph as any client would call it (the emulator's API, not our client). */
// biome-ignore lint/suspicious/noExplicitAny: the tests read whatever JSON Graph answers, field by field
async function graph(e: Emu, method: string, p: string, body?: Buffer | object): Promise<{ status: number; json: Record<string, any> }> {
  const isBuf = Buffer.isBuffer(body);
  const res = await fetch(`${e.env.GRAPH_BASE_URL}${p}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': isBuf ? 'application/octet-stream' : 'application/json' },
    body: body === undefined ? undefined : isBuf ? new Uint8Array(body) : JSON.stringify(body),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: as above
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, any>) : {} };
}

const put = (e: Emu, p: string, bytes: Buffer) => graph(e, 'PUT', `/me/drive/root:${p.split('/').map(encodeURIComponent).join('/')}:/content`, bytes);
const fixture = (f: string) => fs.readFileSync(path.join(FIXTURES, f));
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** Every stored file under DATA/me, by sha256. */
function storedByHash(data: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [rel, h] of treeHashes(path.join(data, 'me'))) out.set(h, [...(out.get(h) ?? []), rel]);
  return out;
}

function summaryOf(stdout: string): { exit_code: number; counts: Record<string, { items: number }> } {
  const line = stdout.split('\n').find((l) => l.includes('"type":"summary"'));
  expect(line, stdout).toBeDefined();
  return JSON.parse(line!);
}

describe.each<Flavor>(['personal', 'business'])('OneDrive %s', (flavor) => {
  it('the emulator: names are case-insensitive, folders and children are served for path- and id-addressed parents; the flavor decides when a taken name or an open session answers 409', async () => {
    const e = await emulator(flavor, tmpDir('gb-odf-emu-'));
    const folder = await graph(e, 'POST', '/me/drive/root:/Pictures:/children', { name: 'Camera', folder: {}, '@microsoft.graph.conflictBehavior': 'fail' });
    // The path-addressed parent does not exist yet: Graph answers 404 for its children.
    expect(folder.status).toBe(404);
    expect((await graph(e, 'POST', '/me/drive/root/children', { name: 'Pictures', folder: {}, '@microsoft.graph.conflictBehavior': 'fail' })).status).toBe(201);
    const cam = await graph(e, 'POST', '/me/drive/root:/Pictures:/children', { name: 'Camera', folder: {}, '@microsoft.graph.conflictBehavior': 'fail' });
    expect(cam.status).toBe(201);
    expect((await graph(e, 'POST', `/me/drive/items/${cam.json.id}/children`, { name: 'Sub', folder: {} })).status).toBe(201);
    expect(
      (await graph(e, 'POST', '/me/drive/root:/PICTURES/camera:/children', { name: 'sub', folder: {}, '@microsoft.graph.conflictBehavior': 'fail' })).status,
    ).toBe(409);
    const listed = await graph(e, 'GET', '/me/drive/root:/pictures/CAMERA:/children');
    expect(listed.json.value.map((c: { name: string }) => c.name)).toEqual(['Sub']);
    expect((await put(e, '/Pictures/Camera/IMG_1.JPG', Buffer.from('one'))).status).toBe(201);
    const byOtherCase = await graph(e, 'GET', `/me/drive/items/${cam.json.id}:/img_1.jpg`);
    expect(byOtherCase.json.name).toBe('IMG_1.JPG');

    const create = (p: string, cb = 'fail') =>
      graph(e, 'POST', `/me/drive/root:${p}:/createUploadSession`, { item: { '@microsoft.graph.conflictBehavior': cb } });
    const taken = await create('/Pictures/Camera/img_1.jpg');
    const first = await create('/Pictures/Camera/new.jpg');
    expect(first.status).toBe(200);
    const second = await create('/Pictures/Camera/NEW.jpg', 'replace');
    const drive = await graph(e, 'GET', '/me/drive');
    expect(drive.json.driveType).toBe(flavor);
    if (flavor === 'business') {
      expect(taken.status).toBe(409);
      expect(taken.json.error.code).toBe('nameAlreadyExists');
      expect(second.status).toBe(409);
      expect(second.json.error.message).toMatch(/currently being uploaded/);
      // Cancelling the open session frees the path.
      expect((await fetch(first.json.uploadUrl, { method: 'DELETE' })).status).toBe(204);
      expect((await create('/Pictures/Camera/NEW.jpg')).status).toBe(200);
      expect(new URL(drive.json.webUrl).pathname).toBe(`/${BUSINESS_SITE}`);
    } else {
      // Personal takes the session and says 409 only at the last fragment.
      expect(taken.status).toBe(200);
      expect(second.status).toBe(200);
      const last = await fetch(taken.json.uploadUrl, { method: 'PUT', body: new Uint8Array(Buffer.from('two')), headers: { 'Content-Range': 'bytes 0-2/3' } });
      expect(last.status).toBe(409);
    }
    expect(fs.readFileSync(path.join(e.emulator.opts.common.data, 'me', 'Pictures', 'Camera', 'IMG_1.JPG'), 'utf8')).toBe('one');
    // Items are updated by path or by id; a rename that only changes the case is no conflict.
    const patched = await graph(e, 'PATCH', '/me/drive/root:/pictures/camera/img_1.jpg', { fileSystemInfo: { createdDateTime: '2019-05-01T10:00:00Z' } });
    expect(patched.status).toBe(200);
    expect(patched.json.fileSystemInfo.createdDateTime).toBe('2019-05-01T10:00:00Z');
    const renamed = await graph(e, 'PATCH', `/me/drive/items/${patched.json.id}`, { name: 'img_1.jpg' });
    expect(renamed.status).toBe(200);
    expect((await graph(e, 'GET', '/me/drive/root:/Pictures/Camera/IMG_1.jpg')).json.name).toBe('img_1.jpg');
    expect(fs.readFileSync(path.join(e.emulator.opts.common.data, 'me', 'Pictures', 'Camera', 'img_1.jpg'), 'utf8')).toBe('one');
  });

  it('migrates into a folder holding other bytes under some of the same names (one differing only by case, also between two source items): every item arrives, the existing files are untouched, and a rerun does nothing', async () => {
    const t = tmpDir('gb-odf-conflict-');
    const src = path.join(t, 'src', 'Camera');
    fs.mkdirSync(src, { recursive: true });
    const names = ['f6t.jpg', 'noexif.jpg', 'img_1771.jpg', 'cookiezen.jpg', 'Bush-dog.tif'];
    for (const f of names) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, f));
    // A second source item whose name differs from noexif.jpg only by case.
    fs.copyFileSync(path.join(FIXTURES, 'Irvine_CA.avif'), path.join(src, 'NoExif.jpg'));
    const data = path.join(t, 'emu');
    const e = await emulator(flavor, data, flavor === 'personal' ? ['--hashes', 'sha1,sha256'] : []);
    // Already at OneDrive: other bytes of the same size, other bytes under another case, the
    // very same bytes, and other bytes under the name and under its "(2)".
    const existing: Record<string, Buffer> = {
      'f6t.jpg': crypto.randomBytes(fixture('f6t.jpg').length),
      'NOEXIF.JPG': crypto.randomBytes(5000),
      'img_1771.jpg': fixture('img_1771.jpg'),
      'cookiezen.jpg': crypto.randomBytes(700_000),
      'cookiezen (2).jpg': crypto.randomBytes(1000),
    };
    for (const [n, b] of Object.entries(existing)) expect((await put(e, `/Pictures/Camera/${n}`, b)).status).toBe(201);

    const state = path.join(t, 'state.db');
    const args = [
      'migrate',
      '--from',
      `folder:${path.join(t, 'src')}`,
      '--to',
      'onedrive:/Pictures',
      '--state',
      state,
      '--json',
      '--concurrency',
      '3',
      '--onedrive-chunk-size',
      '320KiB',
    ];
    const first = await runCli(args, { env: cliEnv(e, path.join(t, 'home')) });
    expect(first.code, first.stderr + first.stdout).toBe(0);
    const s1 = summaryOf(first.stdout);
    expect(s1.counts.verified!.items).toBe(5);
    expect(s1.counts.skipped!.items).toBe(1);

    const dir = path.join(data, 'me', 'Pictures', 'Camera');
    for (const [n, b] of Object.entries(existing)) expect(sha256File(path.join(dir, n)), `${n} was changed`).toBe(sha(b));
    const expected: Record<string, string> = {
      'f6t (2).jpg': 'f6t.jpg',
      'img_1771.jpg': 'img_1771.jpg',
      'cookiezen (3).jpg': 'cookiezen.jpg',
      'Bush-dog.tif': 'Bush-dog.tif',
    };
    for (const [stored, from] of Object.entries(expected)) expect(sha256File(path.join(dir, stored)), stored).toBe(sha256File(path.join(src, from)));
    // noexif.jpg and NoExif.jpg went one after the other, in either order, to "(2)" and "(3)".
    const byHash = new Map([...treeHashes(dir)].map(([n, h]) => [h, n]));
    const twins = ['noexif.jpg', 'NoExif.jpg'].map((f) => byHash.get(sha256File(path.join(src, f)))?.toLowerCase());
    expect(twins.sort()).toEqual(['noexif (2).jpg', 'noexif (3).jpg']);
    expect(fs.readdirSync(dir).length).toBe(new Set([...Object.keys(existing), ...Object.keys(expected)]).size + 2);
    // The names were refused where each flavor checks them (session creation or last fragment),
    // and no item opened more than one session per name it tried: no looping. Business: one
    // session each (taken names are refused before a session exists). Personal: a session per
    // name tried, and the second of the twins may try "(2)" before the first has stored it.
    expect(e.emulator.metrics.byStatus['409'] ?? 0).toBeGreaterThanOrEqual(3);
    expect(e.emulator.metrics.sessionsCreated).toBeLessThanOrEqual(flavor === 'business' ? 5 : 11);

    const db = new Database(state, { readonly: true });
    const rows = db.prepare('SELECT name, state, evidence_level, evidence_detail FROM items').all() as Array<{
      name: string;
      state: string;
      evidence_level: string | null;
      evidence_detail: string | null;
    }>;
    db.close();
    const dup = rows.find((r) => r.name === 'img_1771.jpg')!;
    expect(dup.state).toBe('skipped');
    expect(dup.evidence_level).toBe('bytes');
    expect(dup.evidence_detail).toMatch(/QuickXorHash/);
    // Personal reports sha256Hash here (--hashes): it is compared too. SHA-1 is computed only
    // when the source declares one (a folder does not), so sha1Hash is not compared in this run.
    if (flavor === 'personal') for (const r of rows) expect(r.evidence_detail, r.name).toMatch(/same SHA-256 for/);
    else for (const r of rows) expect(r.evidence_detail, r.name).not.toMatch(/SHA/);

    const sessions = e.emulator.metrics.sessionsCreated;
    const again = await runCli(args, { env: cliEnv(e, path.join(t, 'home')) });
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(e.emulator.metrics.sessionsCreated).toBe(sessions);
    expect(fs.readdirSync(dir).length).toBe(new Set([...Object.keys(existing), ...Object.keys(expected)]).size + 2);
  });

  it('a kill mid-upload resumes the saved session on the next run', async () => {
    const t = tmpDir('gb-odf-kill-');
    const src = path.join(t, 'src', 'Videos');
    fs.mkdirSync(src, { recursive: true });
    const file = path.join(src, 'VID_long.mp4');
    const size = 16 * 1024 * 1024 + 12_345;
    fs.writeFileSync(file, crypto.randomBytes(size));
    const data = path.join(t, 'emu');
    const e = await emulator(flavor, data, ['--latency-ms', '15']);
    const env = cliEnv(e, path.join(t, 'home'));
    const args = [
      'migrate',
      '--from',
      `folder:${path.join(t, 'src')}`,
      '--to',
      'onedrive:/Pictures/Xiaomi',
      '--state',
      path.join(t, 'state.db'),
      '--onedrive-chunk-size',
      '320KiB',
    ];
    const key = 'me:/Pictures/Xiaomi/Videos/VID_long.mp4';

    await killCliWhen(args, env, () => (e.emulator.metrics.perPath[key]?.accepted ?? 0) >= 3 * 327_680);
    const stored = path.join(data, 'me', 'Pictures', 'Xiaomi', 'Videos', 'VID_long.mp4');
    expect(fs.existsSync(stored)).toBe(false);

    const second = await runCli(args, { env });
    expect(second.code, second.stderr + second.stdout).toBe(0);
    const pm = e.emulator.metrics.perPath[key]!;
    expect(pm.sessions).toBe(1); // the same session, which on Business is also the only one allowed
    expect(pm.accepted).toBe(size);
    expect(pm.received).toBeLessThanOrEqual(size + 327_680);
    expect(sha256File(stored)).toBe(sha256File(file));
  });

  it('a long album and file name are fitted within the whole-path limit (the site path counts on Business)', async () => {
    const t = tmpDir('gb-odf-long-');
    const album = `Summer holidays ${'in the mountains and by the sea '.repeat(5)}`.trim().slice(0, 150);
    const name = `${'IMG_20230704_a_very_long_description_of_the_view_'.repeat(4)}`.slice(0, 196) + '.jpg';
    const src = path.join(t, 'src', album);
    fs.mkdirSync(src, { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'cookiezen.jpg'), path.join(src, name));
    const data = path.join(t, 'emu');
    const e = await emulator(flavor, data);
    const run = await runCli(['migrate', '--from', `folder:${path.join(t, 'src')}`, '--to', 'onedrive:/Pictures/Xiaomi', '--state', path.join(t, 'state.db')], {
      env: cliEnv(e, path.join(t, 'home')),
    });
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const where = storedByHash(data).get(sha256File(path.join(src, name)));
    expect(where).toHaveLength(1);
    const inDrive = `/${where![0]!}`;
    expect(inDrive.startsWith(`/Pictures/Xiaomi/${album}/`)).toBe(true);
    const site = flavor === 'business' ? BUSINESS_SITE : '';
    expect((site + inDrive).length).toBeLessThan(400);
    // 368 characters in the drive: Personal keeps the name; Business shortens it, keeping the extension.
    if (flavor === 'personal') expect(inDrive).toBe(`/Pictures/Xiaomi/${album}/${name}`);
    else {
      expect(inDrive).not.toBe(`/Pictures/Xiaomi/${album}/${name}`);
      expect(inDrive.endsWith('.jpg')).toBe(true);
      expect(run.stderr + run.stdout).toMatch(/too long/);
    }
  });

  it('a 120 s Retry-After ends at once on SIGTERM (a real process)', async () => {
    const t = tmpDir('gb-odf-term-');
    makeSource(path.join(t, 'src'), { Camera: ['f6t.jpg'] });
    const e = await emulator(flavor, path.join(t, 'emu'), ['--fault-429', '1', '--retry-after', '120']);
    const args = ['migrate', '--from', `folder:${path.join(t, 'src')}`, '--to', 'onedrive:/Pictures', '--state', path.join(t, 'state.db')];
    // Real back-off: the 120 s pause is not scaled down.
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...cliEnv(e, path.join(t, 'home')), GALLERY_BRIDGE_BACKOFF_SCALE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<{ code: number | null; at: number }>((r) => child.on('close', (code) => r({ code, at: Date.now() })));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if ((e.emulator.metrics.faults['429'] ?? 0) >= 1) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
      void exited.then(() => {
        clearInterval(timer);
        reject(new Error(`the run ended before it was throttled: ${out}`));
      });
    });
    // Let it settle into the pause. The emulator saw only the requests the run sends at once as it
    // starts (the drive's facts, the lookup of /Pictures and of the first item's /Pictures/Camera),
    // each throttled, and nothing after.
    await new Promise((r) => setTimeout(r, 300));
    const throttled = e.emulator.metrics.faults['429'] ?? 0;
    expect(throttled).toBeLessThanOrEqual(3);
    expect(e.emulator.metrics.requests).toBe(throttled);
    const sentAt = Date.now();
    child.kill('SIGTERM');
    const { code, at } = await exited;
    const tookMs = at - sentAt;
    console.log(`[${flavor}] SIGTERM during a 120 s Retry-After: exited ${code} after ${tookMs} ms`);
    expect(code, out).toBe(143);
    // Within a second on an idle machine; the bound leaves room for a loaded one and is still 30x under the pause.
    expect(tookMs).toBeLessThan(4000);
    expect(e.emulator.metrics.faults['429']).toBe(throttled);
  });

  it('a Retry-After longer than the run can usefully wait stops it with exit 4 and the time to rerun', async () => {
    const t = tmpDir('gb-odf-long-wait-');
    makeSource(path.join(t, 'src'), { Camera: ['f6t.jpg'] });
    const e = await emulator(flavor, path.join(t, 'emu'), ['--fault-429', '1', '--retry-after', '3600']);
    const started = Date.now();
    const run = await runCli(['migrate', '--from', `folder:${path.join(t, 'src')}`, '--to', 'onedrive:/Pictures', '--state', path.join(t, 'state.db')], {
      env: { ...cliEnv(e, path.join(t, 'home')), GALLERY_BRIDGE_BACKOFF_SCALE: '1' },
    });
    expect(run.code, run.stderr + run.stdout).toBe(4);
    // The local time the hour's pause ends; near midnight that is tomorrow, and then the date is printed too.
    const said = /throttled: rerun after (.+?) \(/.exec(run.stderr + run.stdout)?.[1];
    expect(pauseEndChoices(started, Date.now(), 3600_000, Intl.DateTimeFormat().resolvedOptions().timeZone)).toContain(said);
    expect(Date.now() - started).toBeLessThan(60_000);
    // --until before the pause would end stops it too, even with a generous --onedrive-max-wait.
    const until = new Date(Date.now() + 30 * 60_000);
    const e2 = await emulator(flavor, path.join(t, 'emu2'), ['--fault-429', '1', '--retry-after', '3000']);
    const run2 = await runCli(
      [
        'migrate',
        '--from',
        `folder:${path.join(t, 'src')}`,
        '--to',
        'onedrive:/Pictures',
        '--state',
        path.join(t, 'state2.db'),
        '--until',
        until.toISOString(),
        '--onedrive-max-wait',
        '7200',
      ],
      {
        env: { ...cliEnv(e2, path.join(t, 'home')), GALLERY_BRIDGE_BACKOFF_SCALE: '1' },
      },
    );
    expect(run2.code, run2.stderr + run2.stdout).toBe(4);
    expect(run2.stderr + run2.stdout).toMatch(/throttled: rerun after .*past --until/);
  });

  it('plan shows the drive free space', async () => {
    const t = tmpDir('gb-odf-plan-');
    makeSource(path.join(t, 'src'), { Camera: ['cookiezen.jpg'] });
    const e = await emulator(flavor, path.join(t, 'emu'), ['--quota-bytes', '50000000']);
    expect((await put(e, '/Other/used.bin', crypto.randomBytes(2_000_000))).status).toBe(201);
    const args = ['plan', '--from', `folder:${path.join(t, 'src')}`, '--to', 'onedrive:/Pictures', '--state', path.join(t, 'state.db')];
    const json = await runCli([...args, '--json'], { env: cliEnv(e, path.join(t, 'home')) });
    expect(json.code, json.stderr + json.stdout).toBe(0);
    const plan = JSON.parse(json.stdout.split('\n').find((l) => l.includes('"type":"plan"'))!);
    expect(plan.capacity.remainingBytes).toBe(48_000_000);
    expect(plan.capacity.fits).toBe(true);
    const text = await runCli(args, { env: cliEnv(e, path.join(t, 'home')) });
    expect(text.code, text.stderr + text.stdout).toBe(0);
    expect(text.stdout + text.stderr).toMatch(/48\.0 MB free/);
  });
});

describe('OneDrive for Business: a saved session that does not answer', () => {
  it('is cancelled (DELETE) before a new one is opened for the same path, which Business would refuse otherwise', async () => {
    const e = await emulator('business', tmpDir('gb-odf-drop-'));
    const slot = memorySessionSlot();
    const d = oneDriveDestination(smallOneDriveConfig(e.env.GRAPH_BASE_URL!, { root: '/Pictures' }), TOKEN);
    try {
      const bytes = crypto.randomBytes(327_680 * 4 + 99);
      const it: SourceItem = { id: 'a', name: 'a.jpg', albumId: 'C', albumName: 'Camera', size: bytes.length, kind: 'image' };
      const facts: ItemFacts = { captureTime: null, captureTimeSource: 'none', mimeType: 'image/jpeg', kind: 'image' };
      const container = await d.prepareContainer(it, facts);
      // First attempt: the source fails after two fragments' worth; the session stays saved.
      const failing = Readable.from(
        (async function* () {
          yield bytes.subarray(0, 327_680 * 2 + 10);
          throw new Error('source connection lost');
        })(),
      );
      await expect(
        d.upload({ item: it, facts, container, name: it.name, size: bytes.length, body: failing, session: slot, signal: new AbortController().signal }),
      ).rejects.toThrow(/source connection lost/);
      expect(slot.value).not.toBeNull();
      // Second attempt: asking the saved session where it stands fails (an unreachable upload host).
      const real = d.http.uploadRequest.bind(d.http);
      let refused = 0;
      d.http.uploadRequest = (async (method: 'GET' | 'PUT' | 'DELETE', url: string, ...rest: unknown[]) => {
        if (method === 'GET' && refused === 0) {
          refused++;
          throw new RetryableError('OneDrive upload request failed after 8 attempts: connect ECONNREFUSED');
        }
        return (real as (...a: unknown[]) => unknown)(method, url, ...rest);
      }) as typeof d.http.uploadRequest;
      const staged = await d.upload({
        item: it,
        facts,
        container,
        name: it.name,
        size: bytes.length,
        body: Readable.from([bytes]),
        session: slot,
        signal: new AbortController().signal,
      });
      expect(refused).toBe(1);
      expect(e.emulator.metrics.byRoute['upload:DELETE']).toBe(1);
      expect(e.emulator.metrics.byStatus['409'] ?? 0).toBe(0);
      const [res] = await d.commit([
        { staged, input: { item: it, facts, container, name: it.name, size: bytes.length, session: slot }, hashes: hashBuffer(bytes) },
      ]);
      expect(res!.outcome).toBe('created');
      expect(sha256File(path.join(e.emulator.opts.common.data, 'me', 'Pictures', 'Camera', 'a.jpg'))).toBe(sha(bytes));
      expect(e.emulator.metrics.sessionsCreated).toBe(2);
    } finally {
      await d.close();
    }
  });
});
