// A run against a project whose daily quota is already spent stops at its first request with
// exit 4 and says when a rerun can go on (the next midnight, Pacific time, when Google resets
// the quota); the emulator shows that nothing else was tried. After the reset the rerun finishes.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';
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
