// The paths that print or compute a local time, run with the CLI's clock at 23:30 UTC and at 23:30
// in zones far from UTC (Line Islands, UTC+14; Adak, UTC-10), whatever the hour the suite runs
// at: a pause that ends after midnight names tomorrow's date, and Google's quota reset is the next
// midnight in Pacific time wherever the run is.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { nextPacificMidnight } from '../providers/google-photos/client.ts';
import { clockEnv, FIXTURES, pauseEndChoices, runCli, tmpDir } from './helpers.ts';
import { startGoogleEmulator } from './google-photos-emulator.ts';
import { oneDriveKit } from './onedrive-kit.ts';

const TOKEN = 'clock-zones-token-0123456789';
const od = oneDriveKit(TOKEN);
const ZONES = ['UTC', 'Pacific/Kiritimati', 'America/Adak'];

/** Today at 23:30 UTC, and the instants when it is 23:30 in each far zone. */
function lateEvenings(): { at: Date; tz: string }[] {
  const utc = new Date();
  utc.setUTCHours(23, 30, 0, 0);
  return [
    ...ZONES.map((tz) => ({ at: utc, tz })),
    { at: new Date(utc.getTime() - 14 * 3600_000), tz: 'Pacific/Kiritimati' },
    { at: new Date(utc.getTime() + 10 * 3600_000), tz: 'America/Adak' },
  ];
}

function oneItemSource(t: string): string {
  const src = path.join(t, 'src', 'Camera');
  fs.mkdirSync(src, { recursive: true });
  fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'f6t.jpg'));
  return path.join(t, 'src');
}

describe('late in the evening, far from UTC', () => {
  it.each(lateEvenings())('OneDrive asking for an hour at $at ($tz): the rerun time is local, with the date when it is tomorrow', async ({ at, tz }) => {
    const t = tmpDir('gb-clock-od-');
    const e = await od.emulator(path.join(t, 'emu'), ['--fault-429', '1', '--retry-after', '3600']);
    const startedReal = Date.now();
    const run = await runCli(['migrate', '--from', `folder:${oneItemSource(t)}`, '--to', 'onedrive:/Pictures', '--state', path.join(t, 'state.db')], {
      env: { ...od.cliEnv(e, path.join(t, 'home')), GALLERY_BRIDGE_BACKOFF_SCALE: '1', ...clockEnv(at, tz) },
    });
    const out = run.stderr + run.stdout;
    expect(run.code, out).toBe(4);
    const said = /throttled: rerun after (.+?) \(/.exec(out)?.[1];
    const choices = pauseEndChoices(at.getTime(), at.getTime() + (Date.now() - startedReal), 3600_000, tz);
    expect(choices, out).toContain(said);
    // 23:30 local plus an hour is tomorrow there: the date must be printed.
    const local = new Intl.DateTimeFormat('en-US', { timeZone: tz, hour: '2-digit', hourCycle: 'h23' }).format(at);
    if (local === '23') expect(said).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d$/);
  });

  it.each(ZONES)("Google with the day's quota spent at 23:30 UTC (%s): rerun at the next Pacific midnight", async (tz) => {
    const t = tmpDir('gb-clock-gp-');
    const token = 'clock-zones-google-token';
    const emu = await startGoogleEmulator(token, ['--daily-quota', '0'], 'gb-clock-gp-emu-');
    try {
      const at = lateEvenings()[0]!.at;
      const startedReal = Date.now();
      const run = await runCli(['migrate', '--from', `folder:${oneItemSource(t)}`, '--to', 'google-photos', '--state', path.join(t, 'state.db')], {
        env: {
          GALLERY_BRIDGE_HOME: path.join(t, 'home'),
          GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!,
          GOOGLE_ACCESS_TOKEN: token,
          ...clockEnv(at, tz),
        },
      });
      const out = run.stdout + run.stderr;
      expect(run.code, out).toBe(4);
      const minute = (ms: number) => new Date(nextPacificMidnight(ms)).toISOString().replace(/:\d\d\.\d{3}Z$/, 'Z');
      const said = /run again after (\S+) \(midnight Pacific time/.exec(out)?.[1];
      expect([minute(at.getTime()), minute(at.getTime() + Date.now() - startedReal)], out).toContain(said);
    } finally {
      await emu.close();
    }
  });
});
