// An album past Google's limit continues in "Name (2)", "Name (3)": each created once, no item
// twice, even when the run is killed in the middle. The limit is lowered to 20 (emulator
// --album-limit, and the tool's GOOGLE_PHOTOS_ALBUM_LIMIT) so 41 photos stand for 20,001.

import { describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { runCli, seeded, tmpDir } from './helpers.ts';
import { startGoogleEmulator, type Emu } from './google-photos-emulator.ts';

const TOKEN = 'album-limit-token-1618';
const LIMIT = 20;
const PHOTOS = 2 * LIMIT + 1;

async function makePhotos(dir: string): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const rnd = seeded(41);
  const names: string[] = [];
  for (let i = 0; i < PHOTOS; i++) {
    const raw = Buffer.alloc(16 * 16 * 3);
    for (let k = 0; k < raw.length; k++) raw[k] = Math.floor(rnd() * 256);
    const name = `IMG_${String(i).padStart(3, '0')}.jpg`;
    fs.writeFileSync(
      path.join(dir, name),
      await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } })
        .jpeg({ quality: 95 })
        .toBuffer(),
    );
    names.push(name);
  }
  return names;
}

async function migrate(emu: Emu, t: string, killWhen?: () => Promise<boolean>): Promise<{ code: number | null; out: string; killed: boolean }> {
  const args = [
    'migrate',
    '--from',
    `folder:${path.join(t, 'src')}`,
    '--to',
    'google-photos',
    '--state',
    path.join(t, 'state.db'),
    '--verify-wait',
    '30',
    '--keep-bytes',
  ];
  const env = {
    GALLERY_BRIDGE_HOME: path.join(t, 'home'),
    GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!,
    GOOGLE_ACCESS_TOKEN: TOKEN,
    GOOGLE_PHOTOS_ALBUM_LIMIT: String(LIMIT),
  };
  const run = await runCli(args, { env, killWhen, timeoutMs: 180_000 });
  return { code: run.code, out: run.stdout + run.stderr, killed: run.killed };
}

describe('google-photos: albums past the item limit', () => {
  it(`${PHOTOS} photos in one album with a limit of ${LIMIT}: "Trip", "Trip (2)", "Trip (3)", each once, no photo twice after a kill`, async () => {
    const t = tmpDir('gp-albums-');
    const names = await makePhotos(path.join(t, 'src', 'Trip'));
    const emu = await startGoogleEmulator(TOKEN, ['--album-limit', String(LIMIT)], 'gp-albums-emu-');
    try {
      // Killed once the second album exists and holds something: mid-way through the continuation.
      const first = await migrate(emu, t, async () => {
        const st = await emu.state();
        return st.albums.some((a) => a.title === 'Trip (2)' && a.count > 0);
      });
      expect(first.killed, first.out).toBe(true);
      const second = await migrate(emu, t);
      expect(second.code, second.out).toBe(0);

      const st = await emu.state();
      expect(
        st.albums.map((a) => a.title),
        JSON.stringify(st.albums.map((a) => [a.title, a.count])),
      ).toEqual(['Trip', 'Trip (2)', 'Trip (3)']);
      for (const a of st.albums) expect(a.count).toBeLessThanOrEqual(LIMIT);
      expect(st.albums.reduce((n, a) => n + a.count, 0)).toBe(PHOTOS);
      // Every photo once: one media item per content, in exactly one album.
      const want = new Set(
        names.map((n) =>
          crypto
            .createHash('sha1')
            .update(fs.readFileSync(path.join(t, 'src', 'Trip', n)))
            .digest('hex'),
        ),
      );
      expect(st.mediaItems).toHaveLength(PHOTOS);
      expect(new Set(st.mediaItems.map((m) => m.sha1))).toEqual(want);
      for (const m of st.mediaItems) expect(m.albumIds).toHaveLength(1);
      // The report names the album each photo went to, as the emulator holds it.
      const titleOf = new Map(st.albums.map((a) => [a.id, a.title]));
      const db = new Database(path.join(t, 'state.db'), { readonly: true });
      const rows = db.prepare('SELECT dest_id, dest_path FROM items').all() as Array<{ dest_id: string; dest_path: string }>;
      db.close();
      for (const r of rows) expect(r.dest_path).toBe(titleOf.get(st.mediaItems.find((m) => m.id === r.dest_id)!.albumIds[0]!));
    } finally {
      await emu.close();
    }
    fs.rmSync(t, { recursive: true, force: true });
  }, 180_000);
});
