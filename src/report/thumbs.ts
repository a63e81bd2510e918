// Small, sharp thumbnails for the items that need attention, embedded in the page as data URIs
// so the report is one file. Only a bounded number are made (the page stays small); a format
// sharp cannot decode here gets a placeholder, never a broken image.

import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

export const THUMB_PX = 96;
/** Most bytes read to make one thumbnail: a photo is smaller; a video or a huge TIFF gets a placeholder. */
const MAX_INPUT = 40 * 1024 * 1024;

export interface ThumbRow {
  id: number;
  source_id: string;
  name: string;
  item_json: string;
}

/** Opens an item's bytes for its thumbnail, or null when they cannot be read from here. */
export type ItemOpener = (row: ThumbRow) => Promise<Readable | null>;

/** A folder source's files can be read straight from disk; other sources need the opener a run provides. */
export function folderOpener(sourceIdentity: string | null): ItemOpener | null {
  if (!sourceIdentity?.startsWith('folder:')) return null;
  const root = sourceIdentity.slice('folder:'.length);
  return async (row) => {
    const file = path.resolve(root, row.source_id);
    if (!file.startsWith(path.resolve(root) + path.sep) || !fs.existsSync(file)) return null;
    return fs.createReadStream(file);
  };
}

async function readBounded(stream: Readable): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of stream) {
      n += (c as Buffer).length;
      if (n > MAX_INPUT) return null;
      chunks.push(c as Buffer);
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

/** A JPEG data URI for the item, or null (then the page shows a placeholder). */
export async function thumbnail(row: ThumbRow, open: ItemOpener | null): Promise<string | null> {
  if (!open) return null;
  try {
    const stream = await open(row);
    if (!stream) return null;
    const input = await readBounded(stream);
    if (!input) return null;
    // Loaded at the first thumbnail, not with the report: every worker and account run imports the
    // report writers, and a clean account's report has no thumbnail to make (sharp costs a process
    // about 60 ms of CPU to load, and slows a folder copy throughout). import() loads it once.
    const sharp = (await import('sharp')).default;
    const out = await sharp(input, { failOn: 'none', limitInputPixels: 100e6 })
      .rotate()
      .resize(THUMB_PX, THUMB_PX, { fit: 'cover' })
      .sharpen()
      .jpeg({ quality: 72, mozjpeg: true })
      .toBuffer();
    return `data:image/jpeg;base64,${out.toString('base64')}`;
  } catch {
    return null;
  }
}

/** Thumbnails for many rows, a few at a time. */
export async function thumbnails(rows: ThumbRow[], open: ItemOpener | null, parallel = 4): Promise<Map<number, string | null>> {
  const out = new Map<number, string | null>();
  let next = 0;
  const worker = async () => {
    while (next < rows.length) {
      const r = rows[next++]!;
      out.set(r.id, await thumbnail(r, open));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, rows.length) }, worker));
  return out;
}
