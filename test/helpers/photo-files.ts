// Photos whose bytes are their own, and counting them again where they arrived: the batch and
// queue tests (and the chaos round) check "every item exactly once" from the files on disk.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export const sha1 = (b: Buffer) => crypto.createHash('sha1').update(b).digest('hex');

/** Every file below `dir` (recursively) whose name does not start with a dot; none when there is no `dir`. */
export function visibleFilesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** sha1 -> how many files under `dir` have those bytes. */
export function sha1Counts(dir: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of visibleFilesUnder(dir)) {
    const h = sha1(fs.readFileSync(f));
    m.set(h, (m.get(h) ?? 0) + 1);
  }
  return m;
}

/**
 * `n` small JPEGs (48 x 32) in DIR/Camera, IMG_<account>_<i>.jpg, each a colour of its own for
 * its account and index, so that a duplicate shows and no two accounts share a photo.
 */
export async function writeDistinctPhotos(dir: string, account: number, n: number): Promise<void> {
  fs.mkdirSync(path.join(dir, 'Camera'), { recursive: true });
  for (let i = 0; i < n; i++) {
    const img = await sharp({
      create: { width: 48, height: 32, channels: 3, background: { r: (account * 37) % 256, g: (i * 53 + account) % 256, b: (account * i * 11) % 256 } },
    })
      .jpeg({ quality: 90 })
      .toBuffer();
    fs.writeFileSync(path.join(dir, 'Camera', `IMG_${account}_${i}.jpg`), img);
  }
}
