// End to end through the CLI (`gallery-bridge migrate --from folder:DIR --to google-photos`)
// against the Google Photos emulator over loopback. Everything is checked from the outside:
// the bytes the emulator stored, its media items and albums, and the files left at the source.

import { beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { CLI, FIXTURES, ROOT, runCli, tmpDir, type CliRun } from './helpers.ts';
import { startGoogleEmulator, type Emu, type EmuState } from './google-photos-emulator.ts';

const TOKEN = 'e2e-access-token-7890';

const startEmu = (extra: string[] = []): Promise<Emu> => startGoogleEmulator(TOKEN, extra, 'gp-e2e-emu-');

function migrate(
  emu: Emu,
  home: string,
  src: string,
  stateFile: string,
  extra: string[] = [],
  killWhen?: () => Promise<boolean>,
  env: Record<string, string | undefined> = { GOOGLE_ACCESS_TOKEN: TOKEN },
): Promise<CliRun> {
  return runCli(['migrate', '--from', `folder:${src}`, '--to', 'google-photos', '--state', stateFile, '--verify-wait', '30', ...extra], {
    env: { GALLERY_BRIDGE_HOME: home, GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!, ...env },
    timeoutMs: 100_000,
    killWhen,
  });
}

const sha1 = (b: Buffer) => crypto.createHash('sha1').update(b).digest('hex');

/** The emulator's stored bytes: every media item's file equals its recorded content; no content twice. */
function checkStored(emu: Emu, st: EmuState): Map<string, string> {
  const bySha = new Map<string, string>();
  for (const m of st.mediaItems) {
    const file = path.join(emu.data, path.basename(m.file));
    expect(path.basename(file)).toBe(path.basename(m.file));
    expect(path.basename(file).startsWith(`${m.id}-`)).toBe(true);
    const bytes = fs.readFileSync(file);
    expect(sha1(bytes)).toBe(m.sha1);
    expect(bySha.has(m.sha1)).toBe(false); // never the same content twice
    bySha.set(m.sha1, m.filename);
  }
  return bySha;
}

function stateRows(stateFile: string) {
  const db = new Database(stateFile, { readonly: true });
  try {
    return db.prepare('SELECT name, album_name, state, evidence_level, dest_id, duplicate_of, reason, last_error FROM items ORDER BY id').all() as Array<{
      name: string;
      album_name: string | null;
      state: string;
      evidence_level: string | null;
      dest_id: string | null;
      duplicate_of: number | null;
      reason: string | null;
      last_error: string | null;
    }>;
  } finally {
    db.close();
  }
}

/** n small distinct JPEGs, made once. */
async function makePhotos(dir: string, n: number, prefix = 'p', offset = 0): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await Promise.all(
    Array.from({ length: n }, async (_, k) => {
      const i = k + offset;
      const img = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: i % 256, g: (i * 7) % 256, b: (i * 13 + 1) % 256 } } })
        .jpeg()
        .toBuffer();
      fs.writeFileSync(path.join(dir, `${prefix}${String(k).padStart(4, '0')}.jpg`), img);
    }),
  );
}

describe('google-photos end to end through the CLI', () => {
  let home: string;
  beforeAll(() => {
    home = tmpDir('gp-e2e-home-');
  });

  it('migrates the sample media: evidence per item, rejections and videos kept at the source, same bytes once', async () => {
    const emu = await startEmu(['--video-processing-ms', '1500']);
    const work = tmpDir('gp-e2e-');
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'Holidays'), { recursive: true });
    for (const f of ['IMG_20180725_163423.jpg', 'heic-iphone7.heic', 'VID_20230514_101112.mp4', 'png_with_exif_and_gps.png'])
      fs.copyFileSync(path.join(FIXTURES, f), path.join(src, 'Holidays', f));
    for (const f of ['noexif.jpg', 'not-a-photo.jpg']) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, f));
    fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'one.jpg'));
    fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'two.jpg'));
    fs.writeFileSync(path.join(src, 'empty.jpg'), '');
    const stateFile = path.join(work, 'state.db');

    const r = await migrate(emu, home, src, stateFile, ['--delete-source']);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    const rows = new Map(stateRows(stateFile).map((x) => [x.name, x]));
    expect(rows.get('IMG_20180725_163423.jpg')).toMatchObject({ state: 'source-deleted', evidence_level: 'pixels' });
    expect(rows.get('png_with_exif_and_gps.png')).toMatchObject({ state: 'source-deleted', evidence_level: 'pixels' });
    expect(rows.get('noexif.jpg')).toMatchObject({ state: 'source-deleted', evidence_level: 'bytes' });
    expect(rows.get('heic-iphone7.heic')).toMatchObject({ state: 'verified', evidence_level: 'received' });
    expect(rows.get('VID_20230514_101112.mp4')).toMatchObject({ state: 'verified', evidence_level: 'received' });
    expect(rows.get('not-a-photo.jpg')!.state).toBe('rejected');
    expect(rows.get('not-a-photo.jpg')!.reason).toMatch(/error while trying to create this media item/);
    expect(rows.get('empty.jpg')!.state).toBe('rejected');
    // The two names of the same bytes: one media item, the second recorded as its duplicate.
    const one = rows.get('one.jpg')!;
    const two = rows.get('two.jpg')!;
    expect(one.dest_id).toBe(two.dest_id);
    expect(one.dest_id).toBeTruthy();
    expect([one.duplicate_of, two.duplicate_of].filter((x) => x !== null)).toHaveLength(1);

    // From the outside: what stayed at the source, and what the emulator stored.
    const left = fs.readdirSync(src, { recursive: true }).map(String).sort();
    expect(left).toEqual(expect.arrayContaining(['Holidays/heic-iphone7.heic', 'Holidays/VID_20230514_101112.mp4', 'not-a-photo.jpg', 'empty.jpg']));
    expect(left).not.toContain('Holidays/IMG_20180725_163423.jpg');
    expect(left).not.toContain('noexif.jpg');
    const st = await emu.state();
    const stored = checkStored(emu, st);
    expect(st.mediaItems).toHaveLength(6); // 4 in Holidays, noexif, and the f6t bytes once
    expect([...stored.values()].filter((n) => n === 'one.jpg' || n === 'two.jpg')).toHaveLength(1);
    expect(
      fs
        .readFileSync(path.join(emu.data, path.basename(st.mediaItems.find((m) => m.filename === 'IMG_20180725_163423.jpg')!.file)))
        .equals(fs.readFileSync(path.join(FIXTURES, 'IMG_20180725_163423.jpg'))),
    ).toBe(true);
    expect(st.albums.map((a) => [a.title, a.count])).toEqual([['Holidays', 4]]);
    await emu.close();
  });

  it('stops twice on a tiny daily quota (exit 4) and finishes on resumed runs: no duplicate, no album twice', async () => {
    const emu = await startEmu(['--daily-quota', '9', '--video-processing-ms', '0']);
    const work = tmpDir('gp-e2e-');
    const src = path.join(work, 'src');
    await makePhotos(path.join(src, 'Album A'), 8, 'a');
    await makePhotos(path.join(src, 'Album B'), 6, 'b', 100);
    for (const f of ['IMG_20180725_163423.jpg', 'VID_20230514_101112.mp4']) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, 'Album A', f));
    const stateFile = path.join(work, 'state.db');
    const codes: number[] = [];
    for (let run = 0; run < 12; run++) {
      // Fewer items in flight than the day's 9 requests: at the default (16) every request of a
      // day goes to uploads whose batchCreate is then refused, and a quota this small never ends.
      const r = await migrate(emu, home, src, stateFile, ['--concurrency', '4']);
      codes.push(r.code ?? -1);
      if (r.code === 0) break;
      expect(r.code).toBe(4);
      expect(r.stdout + r.stderr).toMatch(/quota/i);
      await emu.nextDay();
    }
    expect(codes.filter((c) => c === 4).length).toBeGreaterThanOrEqual(2);
    expect(codes[codes.length - 1]).toBe(0);
    const st = await emu.state();
    checkStored(emu, st);
    expect(st.mediaItems).toHaveLength(16);
    expect(st.albums.map((a) => a.title).sort()).toEqual(['Album A', 'Album B']);
    expect(st.albums.find((a) => a.title === 'Album A')!.count).toBe(10);
    expect(stateRows(stateFile).every((x) => x.state === 'verified')).toBe(true);
    await emu.close();
  });

  it('a kill in the middle of a batchCreate, then a rerun: every item once', async () => {
    const emu = await startEmu(['--latency-ms', '150', '--video-processing-ms', '0']);
    const work = tmpDir('gp-e2e-');
    const src = path.join(work, 'src');
    await makePhotos(path.join(src, 'Kill'), 30, 'k');
    const stateFile = path.join(work, 'state.db');
    const first = await migrate(emu, home, src, stateFile, ['--concurrency', '8'], async () => (await emu.state()).requests.batchCreateStarted! >= 1);
    expect(first.killed).toBe(true);
    const again = await migrate(emu, home, src, stateFile, ['--concurrency', '8']);
    expect(again.code).toBe(0);
    const st = await emu.state();
    checkStored(emu, st);
    expect(st.mediaItems).toHaveLength(30);
    expect(st.albums).toHaveLength(1);
    expect(stateRows(stateFile).every((x) => x.state === 'verified' && x.evidence_level === 'bytes')).toBe(true);
    await emu.close();
  });

  it('every fault on at once: the migration still completes, each item once, bytes intact', async () => {
    const emu = await startEmu([
      '--fault-429',
      '0.08',
      '--fault-5xx',
      '0.08',
      '--fault-drop',
      '0.08',
      '--fault-corrupt',
      '0.1',
      '--latency-ms',
      '5',
      '--video-processing-ms',
      '300',
      '--granularity',
      '65536',
      '--random-seed',
      '7',
    ]);
    const work = tmpDir('gp-e2e-');
    const src = path.join(work, 'src');
    await makePhotos(path.join(src, 'Faults'), 16, 'f');
    for (const f of ['IMG_20180725_163423.jpg', 'VID_20211224_183000.mov', 'canon-dslr.jpg'])
      fs.copyFileSync(path.join(FIXTURES, f), path.join(src, 'Faults', f));
    const stateFile = path.join(work, 'state.db');
    let code = -1;
    for (let run = 0; run < 5 && code !== 0; run++) code = (await migrate(emu, home, src, stateFile, ['--concurrency', '4'])).code ?? -1;
    expect(code).toBe(0);
    const st = await emu.state();
    checkStored(emu, st);
    expect(st.mediaItems).toHaveLength(19);
    expect(st.albums).toHaveLength(1);
    expect(st.requests.faults).toBeGreaterThan(0);
    for (const f of ['IMG_20180725_163423.jpg', 'VID_20211224_183000.mov', 'canon-dslr.jpg']) {
      const m = st.mediaItems.find((x) => x.filename === f)!;
      expect(fs.readFileSync(path.join(emu.data, path.basename(m.file))).equals(fs.readFileSync(path.join(FIXTURES, f)))).toBe(true);
    }
    await emu.close();
  });

  it('`gallery-bridge auth google-photos` runs the loopback flow; migrate refreshes the token; an expired refresh token stops with exit 3', async () => {
    const emu = await startEmu(['--client-secret', 'e2e-secret-value', '--session-ttl', '2']);
    const authHome = tmpDir('gp-e2e-auth-');
    const oauthEnv = {
      GOOGLE_CLIENT_ID: 'e2e-client.apps.googleusercontent.com',
      GOOGLE_CLIENT_SECRET: 'e2e-secret-value',
      GOOGLE_OAUTH_AUTH_URL: emu.env.GOOGLE_OAUTH_AUTH_URL!,
      GOOGLE_OAUTH_TOKEN_URL: emu.env.GOOGLE_OAUTH_TOKEN_URL!,
    };
    const signIn = () =>
      new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, 'auth', 'google-photos'], {
          cwd: ROOT,
          env: { ...process.env, GALLERY_BRIDGE_HOME: authHome, ...oauthEnv },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let visited = false;
        const onData = (d: Buffer) => {
          out += d;
          const m = /(http:\/\/127\.0\.0\.1:\d+\/o\/oauth2\/v2\/auth\S+)/.exec(out);
          if (m && !visited) {
            visited = true;
            void fetch(m[1]!).catch(() => undefined); // the browser: approved at once, sent back to the loopback
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
    const auth = await signIn();
    expect(auth.code).toBe(0);
    const file = path.join(authHome, 'credentials', 'google-photos', 'default.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const refresh = (JSON.parse(fs.readFileSync(file, 'utf8')) as { refresh_token: string }).refresh_token;
    expect(auth.out).not.toContain(refresh);

    const work = tmpDir('gp-e2e-');
    const src = path.join(work, 'src');
    await makePhotos(src, 4, 'o', 300);
    const stateFile = path.join(work, 'state.db');
    // Access tokens live 2 s here: the run refreshes them from the stored refresh token.
    const ok = await migrate(emu, authHome, src, stateFile, [], undefined, { GOOGLE_ACCESS_TOKEN: undefined, ...oauthEnv });
    expect(ok.code).toBe(0);
    expect((await emu.state()).mediaItems).toHaveLength(4);
    const state = fs.readFileSync(stateFile);
    expect(state.includes(Buffer.from(refresh))).toBe(false);
    await emu.close();

    // A refresh token Google no longer honours (the 7-day "Testing" expiry) stops the run: exit 3.
    const strict = await startEmu(['--client-secret', 'e2e-secret-value', '--refresh-token-ttl', '1', '--session-ttl', '1']);
    Object.assign(oauthEnv, { GOOGLE_OAUTH_AUTH_URL: strict.env.GOOGLE_OAUTH_AUTH_URL!, GOOGLE_OAUTH_TOKEN_URL: strict.env.GOOGLE_OAUTH_TOKEN_URL! });
    expect((await signIn()).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    await makePhotos(src, 2, 'late', 400);
    const expired = await migrate(strict, authHome, src, path.join(work, 'state2.db'), [], undefined, { GOOGLE_ACCESS_TOKEN: undefined, ...oauthEnv });
    expect(expired.code).toBe(3);
    expect(expired.stdout + expired.stderr).toMatch(/auth google-photos/);
    expect(expired.stdout + expired.stderr).toMatch(/7 days/);
    await strict.close();
  });
});
