// End to end through the CLI: the i.mi.com emulator and `gallery-bridge migrate` as separate
// processes over loopback. What happened is checked from the outside: the emulator's DATA
// (deletions, download counts), the bytes in the destination folder against the seed files,
// and the state's report.

import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeSeed, readEmulatorState, tmpDir } from '../providers/xiaomi/test-support.ts';
import { startXiaomiProcess } from './helpers/xiaomi-process.ts';

const CLI = path.resolve('bin/gallery-bridge.js');
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

interface Emu {
  env: Record<string, string>;
  data: string;
  stop(): Promise<void>;
}

async function startEmu(seed: string, data: string, flags: string[] = []): Promise<Emu> {
  const { env, child } = await startXiaomiProcess(['--seed', seed, '--data', data, ...flags]);
  children.add(child);
  return {
    env,
    data,
    stop: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        children.delete(child);
      }),
  };
}

async function cli(args: string[], env: Record<string, string>, timeoutMs = 90_000): Promise<{ code: number; out: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const timer = setTimeout(() => {
    out += `\n[test: ${args[0]} did not finish in ${timeoutMs} ms; killed]`;
    child.kill('SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1))));
  clearTimeout(timer);
  children.delete(child);
  return { code, out };
}

interface ManifestRow {
  id: string;
  albumName: string;
  fileName: string;
  file: string;
  sha1: string;
  size: number;
}
const manifest = (data: string): ManifestRow[] => JSON.parse(fs.readFileSync(path.join(data, '.emulator', 'xiaomi-manifest.json'), 'utf8')) as ManifestRow[];

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile() && !e.name.startsWith('.')) out.push(p);
  }
  return out;
}
const sha1 = (f: string) => crypto.createHash('sha1').update(fs.readFileSync(f)).digest('hex');

interface ReportRow {
  source_id: string;
  name: string;
  state: string;
  album_name: string;
}
const report = (file: string): ReportRow[] => (JSON.parse(fs.readFileSync(file, 'utf8')) as { items: ReportRow[] }).items;

function migrateArgs(t: string, extra: string[] = []): string[] {
  return [
    'migrate',
    '--from',
    'xiaomi',
    '--to',
    `folder:${path.join(t, 'out')}`,
    '--state',
    path.join(t, 'state.db'),
    '--report',
    path.join(t, 'report.json'),
    ...extra,
  ];
}

/** No secret of the emulator's account in any output, state or report. */
function expectNoSecrets(texts: string[], t: string, emuData: string): void {
  const tokens = Object.keys((readEmulatorState(emuData) as unknown as { tokens: Record<string, number> }).tokens);
  const secrets = ['emulator-pass-token', 'emulator-service-token', ...tokens];
  const blobs = [...texts, fs.readFileSync(path.join(t, 'report.json'), 'utf8'), fs.readFileSync(path.join(t, 'state.db')).toString('latin1')];
  for (const w of ['state.db-wal']) if (fs.existsSync(path.join(t, w))) blobs.push(fs.readFileSync(path.join(t, w)).toString('latin1'));
  for (const s of secrets) for (const b of blobs) expect(b.includes(s), `secret ${s.slice(0, 8)}… leaked`).toBe(false);
}

describe('xiaomi end to end through the CLI', () => {
  it('migrates the sample media with --delete-source: the emulator keeps exactly what was not verified', async () => {
    const t = tmpDir('e2e-full');
    const seed = makeSeed(path.join(t, 'seed'));
    const seedBefore = filesUnder(seed)
      .map((f) => `${f}:${sha1(f)}`)
      .sort();
    const emu = await startEmu(seed, path.join(t, 'data'));
    const env = { ...emu.env, GALLERY_BRIDGE_HOME: path.join(t, 'home') };
    const run = await cli(migrateArgs(t, ['--delete-source']), env);
    await emu.stop();

    const rows = report(path.join(t, 'report.json'));
    const state = readEmulatorState(emu.data);
    const all = manifest(emu.data);
    const byId = new Map(all.map((m) => [m.id, m]));
    const listed = all.filter((m) => m.albumName !== 'Private');
    expect(rows.length, run.out).toBe(listed.length);
    // Every item the tool verified is gone from the emulator, everything else is still there.
    for (const r of rows) {
      const verified = r.state === 'source-deleted' || r.state === 'verified' || r.state === 'skipped';
      expect(Boolean(state.deleted[r.source_id]), `${r.name} is ${r.state}`).toBe(r.state === 'source-deleted');
      if (!verified) expect(state.deleted[r.source_id]).toBeUndefined();
    }
    expect(rows.filter((r) => r.state === 'source-deleted').length).toBeGreaterThan(listed.length / 2);
    // The private album is untouched and not migrated.
    for (const m of all.filter((x) => x.albumName === 'Private')) expect(state.deleted[m.id]).toBeUndefined();
    // Every deleted item's bytes are in OUT, identical to the seed file, in its album's folder.
    const out = filesUnder(path.join(t, 'out'));
    const outBySha = new Map(out.map((f) => [sha1(f), f]));
    for (const id of Object.keys(state.deleted)) {
      const m = byId.get(id)!;
      const f = outBySha.get(m.sha1);
      expect(f, `${m.fileName} deleted but not in OUT`).toBeDefined();
      expect(fs.readFileSync(f!).equals(fs.readFileSync(m.file))).toBe(true);
      expect(path.basename(path.dirname(f!))).toBe(m.albumName);
    }
    for (const f of out)
      expect(
        all.some((m) => m.sha1 === sha1(f)),
        `${f} is not a seed file`,
      ).toBe(true);
    expect(out.some((f) => /Private/.test(f))).toBe(false);
    // Every download was one pass (no item downloaded twice in a clean run), deletions were logged.
    expect(Object.values(state.downloads).every((n) => n === 1)).toBe(true);
    expect(state.deleteLog.filter((d) => d.code === 0).length).toBe(Object.keys(state.deleted).length);
    // The seed folder is never modified.
    expect(
      filesUnder(seed)
        .map((f) => `${f}:${sha1(f)}`)
        .sort(),
    ).toEqual(seedBefore);
    expectNoSecrets([run.out], t, emu.data);
  });

  it('never uploads nor deletes a corrupted download or one whose listed SHA-1 is wrong', async () => {
    const t = tmpDir('e2e-corrupt');
    const seed = makeSeed(path.join(t, 'seed'), undefined, (n) => /\.(jpg|jpeg|png)$/.test(n) && !n.startsWith('IMG_'));
    const emu = await startEmu(seed, path.join(t, 'data'), ['--fault-corrupt', '1']);
    const env = { ...emu.env, GALLERY_BRIDGE_HOME: path.join(t, 'home') };
    const run = await cli(migrateArgs(t, ['--delete-source', '--retries', '2']), env);
    await emu.stop();
    expect(run.code, run.out).toBe(1);
    const state = readEmulatorState(emu.data);
    expect(Object.keys(state.deleted)).toEqual([]);
    expect(filesUnder(path.join(t, 'out'))).toEqual([]);
    expect(Object.values(state.downloads).every((n) => n >= 2)).toBe(true);

    // A listing that declares a wrong SHA-1 for some items: those stay, the others move.
    const t2 = tmpDir('e2e-wrongsha');
    const emu2 = await startEmu(seed, path.join(t2, 'data'), ['--fault-wrong-sha1', '0.5', '--random-seed', '3']);
    const run2 = await cli(migrateArgs(t2, ['--delete-source', '--retries', '2']), { ...emu2.env, GALLERY_BRIDGE_HOME: path.join(t2, 'home') });
    await emu2.stop();
    const state2 = readEmulatorState(emu2.data);
    const rows = report(path.join(t2, 'report.json'));
    const bad = rows.filter((r) => r.state !== 'source-deleted');
    expect(bad.length, run2.out).toBeGreaterThan(0);
    expect(bad.length).toBeLessThan(rows.length);
    const outShas = new Set(filesUnder(path.join(t2, 'out')).map(sha1));
    const byId = new Map(manifest(emu2.data).map((m) => [m.id, m]));
    for (const r of bad) {
      expect(state2.deleted[r.source_id]).toBeUndefined();
      expect(outShas.has(byId.get(r.source_id)!.sha1), `${r.name} was uploaded`).toBe(false);
    }
  });

  it('gets everything across on a flaky service (dropped answers, 5xx, 429, expired links)', async () => {
    const t = tmpDir('e2e-flaky');
    const seed = makeSeed(path.join(t, 'seed'), undefined, (n) => !['IMG_20180725_163423.jpg', 'canon-dslr.jpg', 'heic-iphone7.heic'].includes(n));
    const emu = await startEmu(seed, path.join(t, 'data'), [
      '--fault-drop',
      '0.15',
      '--fault-5xx',
      '0.1',
      '--fault-429',
      '0.05',
      '--fault-expired-link',
      '0.2',
      '--random-seed',
      '11',
    ]);
    const run = await cli(migrateArgs(t, ['--delete-source', '--retries', '10']), { ...emu.env, GALLERY_BRIDGE_HOME: path.join(t, 'home') });
    await emu.stop();
    const rows = report(path.join(t, 'report.json'));
    const state = readEmulatorState(emu.data);
    expect(run.code, run.out).toBe(0);
    expect(
      rows.filter((r) => r.state !== 'source-deleted').map((r) => `${r.name}: ${r.state}`),
      run.out,
    ).toEqual([]);
    expect(Object.keys(state.deleted).length).toBe(rows.length);
    expect((state.counters.fault5xx ?? 0) + (state.counters.expiredLinks ?? 0)).toBeGreaterThan(0);
  });

  it('renews a session that expires mid-run from the passToken, and stops with exit 3 when it cannot', async () => {
    const t = tmpDir('e2e-session');
    const seed = makeSeed(path.join(t, 'seed'), undefined, (n) => /\.(jpg|jpeg|png|mov|mp4)$/.test(n) && !n.startsWith('IMG_'));
    const emu = await startEmu(seed, path.join(t, 'data'), ['--session-ttl', '1', '--latency-ms', '120']);
    // Without the passToken the expired session cannot be renewed: the run stops, saying how to renew.
    const cookieNoPass = emu.env.XIAOMI_COOKIE!.replace(/;\s*passToken=[^;]*/, '');
    const stopped = await cli(migrateArgs(t, ['--concurrency', '2']), {
      XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!,
      XIAOMI_COOKIE: cookieNoPass,
      GALLERY_BRIDGE_HOME: path.join(t, 'home'),
    });
    expect(stopped.code, stopped.out).toBe(3);
    expect(stopped.out).toMatch(/gallery-bridge auth xiaomi/);
    // The rerun, now able to renew, resumes and finishes.
    const env = { ...emu.env, GALLERY_BRIDGE_HOME: path.join(t, 'home') };
    const run = await cli(migrateArgs(t, ['--delete-source', '--concurrency', '2']), env);
    await emu.stop();
    expect(run.code, run.out).toBe(0);
    const state = readEmulatorState(emu.data);
    expect(state.counters.renewals ?? 0).toBeGreaterThanOrEqual(1);
    expect(state.counters.unauthorized ?? 0).toBeGreaterThanOrEqual(1);
    const listed = manifest(emu.data).filter((m) => m.albumName !== 'Private');
    expect(Object.keys(state.deleted).length).toBe(listed.length);
    expectNoSecrets([stopped.out, run.out], t, emu.data);
  });

  it('an incremental rerun migrates only what is new, without downloading done items again', async () => {
    const t = tmpDir('e2e-incr');
    const seed = path.join(t, 'seed');
    const first = (n: string) => ['f6t.jpg', 'noexif.jpg', 'img_1771.jpg', 'Bush-dog.tif'].includes(n);
    makeSeed(seed, undefined, first);
    const data = path.join(t, 'data');
    const emu = await startEmu(seed, data);
    const env = { ...emu.env, GALLERY_BRIDGE_HOME: path.join(t, 'home') };
    const run1 = await cli(migrateArgs(t), env);
    expect(run1.code, run1.out).toBe(0);
    await emu.stop();
    const before = readEmulatorState(data).downloads;
    expect(Object.keys(before).length).toBe(3); // img_1771.jpg is in the private album
    // New photos arrive (the seed grows; the emulator restarts on the same DATA).
    makeSeed(seed, undefined, (n) => ['canon-dslr.jpg', 'VID_20230514_101112.mp4'].includes(n));
    const emu2 = await startEmu(seed, data);
    const run2 = await cli(migrateArgs(t), { ...emu2.env, GALLERY_BRIDGE_HOME: path.join(t, 'home') });
    await emu2.stop();
    expect(run2.code, run2.out).toBe(0);
    const after = readEmulatorState(data).downloads;
    for (const [id, n] of Object.entries(before)) expect(after[id], `item ${id} downloaded again`).toBe(n);
    const fresh = Object.keys(after).filter((id) => !(id in before));
    expect(fresh.length).toBe(2);
    for (const id of fresh) expect(after[id]).toBe(1);
    expect(filesUnder(path.join(t, 'out')).length).toBe(5);
  });

  it('deletions during the listing never make it skip items (pages shift under pageNum paging)', async () => {
    const t = tmpDir('e2e-shift');
    const seed = makeSeed(path.join(t, 'seed'), undefined, (n) => n === 'f6t.jpg');
    const emu = await startEmu(seed, path.join(t, 'data'), ['--synthetic', '150']);
    const env = { ...emu.env, GALLERY_BRIDGE_HOME: path.join(t, 'home'), XIAOMI_PAGE_SIZE: '10', XIAOMI_DELETE_PAUSE_MS: '0' };
    const run = await cli(migrateArgs(t, ['--delete-source', '--concurrency', '8']), env);
    await emu.stop();
    expect(run.code, run.out).toBe(0);
    expect(Object.keys(readEmulatorState(emu.data).deleted).length, run.out.slice(-3000)).toBe(151);
    expect(filesUnder(path.join(t, 'out')).length).toBe(151);
  });

  it('auth xiaomi checks and stores the session 0600; migrate then runs from it', async () => {
    const t = tmpDir('e2e-auth');
    const seed = makeSeed(path.join(t, 'seed'), undefined, (n) => n === 'f6t.jpg' || n === 'noexif.jpg');
    const emu = await startEmu(seed, path.join(t, 'data'));
    const home = path.join(t, 'home');
    const cookieFile = path.join(t, 'cookie.txt');
    fs.writeFileSync(cookieFile, `userId=1234567890; passToken=emulator-pass-token\n`, { mode: 0o600 });
    // (`auth` takes no --cookie-file on the command line yet: the CLI rejects extra arguments there.)
    const auth = await cli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!, GALLERY_BRIDGE_HOME: home, XIAOMI_COOKIE_FILE: cookieFile });
    expect(auth.code, auth.out).toBe(0);
    const stored = path.join(home, 'credentials', 'xiaomi', 'default.json');
    expect(fs.statSync(stored).mode & 0o777).toBe(0o600);
    expect(auth.out).not.toMatch(/emulator-pass-token|emu-st-/);
    const bad = await cli(['auth', 'xiaomi'], {
      XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!,
      GALLERY_BRIDGE_HOME: path.join(t, 'home2'),
      XIAOMI_USER_ID: '1234567890',
      XIAOMI_PASS_TOKEN: 'not-the-pass-token',
    });
    expect(bad.code).toBe(3);
    expect(bad.out).not.toMatch(/not-the-pass-token/);
    const run = await cli(migrateArgs(t), { XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!, GALLERY_BRIDGE_HOME: home });
    await emu.stop();
    expect(run.code, run.out).toBe(0);
    expect(filesUnder(path.join(t, 'out')).length).toBe(2);
  });
});
