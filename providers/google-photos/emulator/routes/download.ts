// baseUrl downloads (/lr/<id>/<expiry>.<signature>=<options>): signed, expiring, no auth.
// Photos: `=d` is the original without location, anything else a resized JPEG rendition.
// Videos: `=dv` once processed, and always a transcode, never the original bytes.

import fs from 'node:fs';
import type http from 'node:http';
import sharp from 'sharp';
import { sendBody } from '../../../../src/emulator/kit.ts';
import type { EmulatorContext } from '../context.ts';
import { bad, HttpError, notFound } from '../errors.ts';
import { stripLocation } from '../exif.ts';
import type { MediaRow } from '../store.ts';
import type { Call, Route } from './route.ts';

function sendVideo(ctx: EmulatorContext, res: http.ServerResponse, item: MediaRow, bytes: Buffer, flags: string[]): void {
  if (ctx.videoStatus(item) !== 'READY') throw notFound('The video is not ready.');
  if (!flags.includes('dv')) throw bad('Videos download with =dv.');
  // =dv is a transcode, never the original.
  const trailer = Buffer.alloc(16);
  trailer.writeUInt32BE(16, 0);
  trailer.write('free', 4, 'latin1');
  trailer.write('transcoded', 6, 'latin1');
  sendBody(res, ctx.faults, 200, { 'Content-Type': item.mime }, Buffer.concat([bytes, trailer]), { corruptible: true });
}

/** Without =d Google serves a resized rendition (w and h bound it, 512 by default). */
async function sendRendition(ctx: EmulatorContext, res: http.ServerResponse, item: MediaRow, bytes: Buffer, opts: string): Promise<void> {
  const w = Number(/w(\d+)/.exec(opts)?.[1] ?? 512);
  const h = Number(/h(\d+)/.exec(opts)?.[1] ?? 512);
  try {
    const out = await sharp(bytes).resize({ width: w, height: h, fit: 'inside', withoutEnlargement: true }).jpeg().toBuffer();
    sendBody(res, ctx.faults, 200, { 'Content-Type': 'image/jpeg' }, out, { corruptible: true });
  } catch {
    sendBody(res, ctx.faults, 200, { 'Content-Type': item.mime }, bytes, { corruptible: true });
  }
}

async function download({ ctx, res, url }: Call): Promise<void> {
  if (ctx.faults.roll('5xx')) throw new HttpError(503, 'The service is currently unavailable.', 'UNAVAILABLE');
  const m = /^\/lr\/([^/]+)\/(\d+)\.([A-Za-z0-9_-]+)(?:=(.*))?$/.exec(url.pathname);
  if (!m) throw notFound();
  const [, id, exp, sig, opts = ''] = m;
  if (sig !== ctx.urlSignature(id!, exp!) || Number(exp) < Date.now())
    throw new HttpError(403, 'The baseUrl has expired or is not valid.', 'PERMISSION_DENIED');
  const item = ctx.store.mediaItem(id!);
  if (!item) throw notFound();
  ctx.stats.media++;
  const bytes = fs.readFileSync(item.file);
  const flags = opts.split('-');
  if (item.kind === 'video') return sendVideo(ctx, res, item, bytes, flags);
  if (flags.includes('d')) {
    const { bytes: out } = stripLocation(bytes, item.format);
    return sendBody(res, ctx.faults, 200, { 'Content-Type': item.mime }, out, { corruptible: true });
  }
  await sendRendition(ctx, res, item, bytes, opts);
}

export const downloadRoutes: Route[] = [{ method: 'GET', path: /^\/lr\//, handle: download }];
