// Files another app (the phone's own backup) put in the library before this app ran: stored as
// that app's media items, which this app can never read, and how Google answers an upload of
// the same bytes.

import fs from 'node:fs';
import path from 'node:path';
import type { EmulatorContext } from './context.ts';
import { detectFormat, mediaInfo } from './media.ts';
import { OTHER_APP } from './options.ts';
import { fileSha1Hex } from './routes/uploads.ts';
import { b64url, type MediaRow } from './store.ts';

/** The first 64 KiB of a file: enough to tell its format. */
export function readHead(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(65536);
    return b.subarray(0, fs.readSync(fd, b, 0, b.length, 0));
  } finally {
    fs.closeSync(fd);
  }
}

function walk(d: string): string[] {
  return fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.isFile() ? [path.join(d, e.name)] : []));
}

export async function seedPreexisting(ctx: EmulatorContext, dir: string): Promise<void> {
  const { store } = ctx;
  for (const file of walk(path.resolve(dir))) {
    const sha1 = await fileSha1Hex(file);
    const size = fs.statSync(file).size;
    if (store.mediaByHash(OTHER_APP, sha1, size)) continue;
    const detected = detectFormat(readHead(file));
    if (!detected || size === 0) continue;
    const info = await mediaInfo(file, detected);
    const id = `A${b64url(48)}`.slice(0, 64);
    const filename = path.basename(file);
    store.addMediaItem({
      id,
      owner: OTHER_APP,
      sha1,
      size,
      filename,
      file,
      detected,
      info,
      description: null,
      createdAt: Date.now() - 86400_000,
      playable: true,
    });
  }
}

/**
 * How Google answers a batchCreate for bytes another app already put in the library: code 6
 * "EXISTS" (data-transfer-project#1009), a generic code 3 (jiotty-photos-uploader#129), or
 * Success with the existing item, added to the album (jiotty-photos-uploader#49), which this
 * app then cannot read. "mixed" picks one per item, always the same for the same bytes.
 */
export function preexistingAnswer(ctx: EmulatorContext, m: MediaRow): 'exists' | 'failed' | 'item' {
  if (ctx.opt.preexistingAnswer !== 'mixed') return ctx.opt.preexistingAnswer;
  return (['exists', 'failed', 'item'] as const)[parseInt(m.sha1.slice(0, 8), 16) % 3]!;
}
