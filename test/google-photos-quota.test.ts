// A run against a project whose daily quota is already spent stops at its first request with
// exit 4 and says when a rerun can go on (the next midnight, Pacific time, when Google resets
// the quota); the emulator shows that nothing else was tried. After the reset the rerun finishes.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, FIXTURES, ROOT, runCli, tmpDir } from './helpers.ts';
import { startGoogleEmulator } from './google-photos-emulator.ts';
import { nextPacificMidnight } from '../providers/google-photos/client.ts';

const TOKEN = 'quota-test-token-2718';

describe('google-photos: quota-aware stop', () => {
  it('a run with the daily quota spent stops at once with exit 4 and the time to rerun', async () => {
    const t = tmpDir('gp-quota-');
    const src = path.join(t, 'src');
    fs.mkdirSync(src);
    for (const f of ['f6t.jpg', 'noexif.jpg', 'cookiezen.jpg']) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, f));
    const emu = await startGoogleEmulator(TOKEN, ['--daily-quota', '0'], 'gp-quota-emu-');
    try {
      const env = { GALLERY_BRIDGE_HOME: path.join(t, 'home'), GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!, GOOGLE_ACCESS_TOKEN: TOKEN };
      const args = ['migrate', '--from', `folder:${src}`, '--to', 'google-photos', '--state', path.join(t, 'state.db'), '--delete-source'];
      const before = Date.now();
      const r = await runCli(args, { env });
      expect(r.code, r.stdout + r.stderr).toBe(4);
      const out = r.stdout + r.stderr;
      // The rerun time: the next Pacific midnight, as Google resets its quota.
      // (A run that straddles midnight names the one after: both are accepted.)
      const fmt = (ms: number) => new Date(nextPacificMidnight(ms)).toISOString().replace(/:\d\d\.\d{3}Z$/, 'Z');
      const said = /run again after (\S+) \(midnight Pacific time/.exec(out)?.[1];
      expect([fmt(before), fmt(Date.now())]).toContain(said);
      // The stop reason is said once, not once as it happens and again at the end.
      expect(out.match(/run again after/g), out).toHaveLength(1);
      const st = await emu.state();
      // Refused requests are not counted against the quota, so the first refusal is the last request.
      expect(st.requests.quotaRefused).toBeGreaterThanOrEqual(1);
      expect(st.requests.quotaRefused).toBeLessThanOrEqual(3); // at most one per worker already on its way
      expect(st.mediaItems).toHaveLength(0);
      expect(fs.readdirSync(src)).toHaveLength(3);
    } finally {
      await emu.close();
    }
  }, 60_000);
});

describe('google-photos: long Retry-After', () => {
  it('a Retry-After past the cap is not waited out: with nothing else left the run stops with exit 4 and the time', async () => {
    const t = tmpDir('gp-retry-');
    const src = path.join(t, 'src');
    fs.mkdirSync(src);
    fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'f6t.jpg'));
    const emu = await startGoogleEmulator(TOKEN, ['--fault-429', '1', '--retry-after', '7200'], 'gp-retry-emu-');
    try {
      const env = {
        GALLERY_BRIDGE_HOME: path.join(t, 'home'),
        GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!,
        GOOGLE_ACCESS_TOKEN: TOKEN,
        GALLERY_BRIDGE_BACKOFF_SCALE: '1',
      };
      const before = Date.now();
      const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', 'google-photos', '--state', path.join(t, 'state.db')], { env, timeoutMs: 60_000 });
      const out = r.stdout + r.stderr;
      expect(r.code, out).toBe(4);
      const at = Date.parse(/nothing is left to do before (\S+),/.exec(out)?.[1] ?? '');
      // Two hours from the refusal, not sooner: the item waits, the run does not.
      expect(at - before).toBeGreaterThanOrEqual(7200_000 - 1000);
      expect(at - Date.now()).toBeLessThanOrEqual(7200_000 + 1000);
      expect(out.match(/nothing is left to do before/g), out).toHaveLength(1);
      expect((await emu.state()).mediaItems).toHaveLength(0);
    } finally {
      await emu.close();
    }
  }, 90_000);

  it('a throttling pause ends at once on SIGTERM', async () => {
    const t = tmpDir('gp-pause-');
    const src = path.join(t, 'src');
    fs.mkdirSync(src);
    fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'f6t.jpg'));
    const emu = await startGoogleEmulator(TOKEN, ['--fault-429', '1', '--retry-after', '240'], 'gp-pause-emu-');
    try {
      const env = {
        ...process.env,
        GALLERY_BRIDGE_HOME: path.join(t, 'home'),
        GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!,
        GOOGLE_ACCESS_TOKEN: TOKEN,
        GALLERY_BRIDGE_BACKOFF_SCALE: '1',
      };
      const child = spawn(process.execPath, [CLI, 'migrate', '--from', `folder:${src}`, '--to', 'google-photos', '--state', path.join(t, 'state.db')], {
        cwd: ROOT,
        env,
        stdio: 'ignore',
      });
      // Once Google has refused a request, the tool is in its 240 s pause.
      while (((await emu.state()).requests.faults ?? 0) < 1) await new Promise((r) => setTimeout(r, 50));
      const sent = Date.now();
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      expect(code).toBe(143);
      // Far less than the pause: the wait itself ended (generous for a loaded machine).
      expect(Date.now() - sent).toBeLessThan(60_000);
    } finally {
      await emu.close();
    }
  }, 120_000);
});
