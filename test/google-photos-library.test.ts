// A Google Photos library that already holds some of the photos, put there by "another app" (the
// phone's own backup): the emulator is seeded with --preexisting, which this app may not read.
// For each of Google's three answers (code 6, a generic code 3, Success with the other app's
// item) a migration with --delete-source sends each such item once, keeps it at the source with
// the reason, and a rerun sends nothing for it: counted at the emulator, checked on disk.

import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';
import { startGoogleEmulator, type Emu } from './google-photos-emulator.ts';

const TOKEN = 'library-test-token-31337';
// Photos with their own capture date: the tool sends their bytes unchanged, as the phone backed them up.
const ALREADY = ['canon-dslr.jpg', 'img_1771.jpg']; // in the library from the phone's backup
const NEW = ['noexif.jpg']; // not in the library yet

let emu: Emu | null = null;
afterEach(async () => {
  await emu?.close();
  emu = null;
});

describe.each(['exists', 'failed', 'item'] as const)('google-photos: photos already in the library (Google answers %s)', (answer) => {
  it('sends each once, keeps it at the source with the reason, and a rerun sends nothing for it', async () => {
    const t = tmpDir('gp-lib-');
    const phone = path.join(t, 'phone-backup');
    const src = path.join(t, 'src', 'Camera');
    fs.mkdirSync(phone, { recursive: true });
    fs.mkdirSync(src, { recursive: true });
    for (const f of ALREADY) fs.copyFileSync(path.join(FIXTURES, f), path.join(phone, `PXL_${f}`));
    for (const f of [...ALREADY, ...NEW]) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, f));
    emu = await startGoogleEmulator(TOKEN, ['--preexisting', phone, '--preexisting-answer', answer], 'gp-lib-emu-');
    const base = emu.env.GOOGLE_PHOTOS_BASE_URL!;
    const state = path.join(t, 'state.db');
    const env = { GALLERY_BRIDGE_HOME: path.join(t, 'home'), GOOGLE_PHOTOS_BASE_URL: base, GOOGLE_ACCESS_TOKEN: TOKEN };
    const migrate = () =>
      runCli(['migrate', '--from', `folder:${path.join(t, 'src')}`, '--to', 'google-photos', '--state', state, '--delete-source', '--verify-wait', '30'], {
        env,
      });
    const reset = () => fetch(`${base}/__emulator/reset-counters`, { method: 'POST' });

    const first = await migrate();
    expect(first.code, first.stdout + first.stderr).toBe(0);
    // Its summary line does not count them as duplicates within the source.
    expect(first.stdout + first.stderr).toMatch(
      new RegExp(`done: .*, 0 duplicates, ${ALREADY.length} already in your library from another app \\(kept at the source\\), `),
    );
    let st = await emu.state();
    // One upload request per photo (all are small: one raw request each), none repeated.
    expect(st.requests.uploads).toBe(ALREADY.length + NEW.length);
    expect(st.requests.preexistingAnswered).toBe(ALREADY.length);
    // The photos Google already held stay at the source; the new one was proven and deleted.
    expect(fs.readdirSync(src).sort()).toEqual([...ALREADY].sort());
    // This app created exactly one item (the new photo); the phone's items are still the other app's.
    // (Its stored bytes may carry a capture date written in by the tool, so only the count is compared.)
    expect(st.mediaItems.filter((m) => m.owner === 'this-app')).toHaveLength(NEW.length);
    expect(st.mediaItems.filter((m) => m.owner === 'other-app')).toHaveLength(ALREADY.length);

    const status = await runCli(['status', '--state', state], { env });
    expect(status.stdout).toContain('already in your library from another app');
    for (const f of ALREADY) expect(status.stdout).toContain(f);
    if (answer !== 'failed') expect(status.stdout).toContain('--delete-evidence received');

    await reset();
    const again = await migrate();
    expect(again.code, again.stdout + again.stderr).toBe(0);
    st = await emu.state();
    expect(st.requests.uploads).toBe(0);
    expect(st.requests.batchCreate).toBe(0);
    expect(fs.readdirSync(src).sort()).toEqual([...ALREADY].sort());

    const plan = await runCli(['plan', '--from', `folder:${path.join(t, 'src')}`, '--to', 'google-photos', '--state', state], { env });
    expect(plan.stdout + plan.stderr).toContain(`${ALREADY.length} items are already in your library from another app`);

    // Accepting Google's word deletes the ones Google vouched for (code 6, or its own item), never a bare code 3.
    const accept = await runCli(
      ['migrate', '--from', `folder:${path.join(t, 'src')}`, '--to', 'google-photos', '--state', state, '--delete-source', '--delete-evidence', 'received'],
      { env },
    );
    expect(accept.code, accept.stdout + accept.stderr).toBe(0);
    expect(fs.readdirSync(src).sort()).toEqual(answer === 'failed' ? [...ALREADY].sort() : []);
    fs.rmSync(t, { recursive: true, force: true });
  }, 120_000);
});
