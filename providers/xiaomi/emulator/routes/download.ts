// The download links (a separate, host-looking path; they expire): a JSONP hop that names the
// file URL and its `meta`, then a form POST of that `meta` that answers the bytes.
// The URLs are signed: neither hop asks for a cookie. Coooolfan/XiaomiAlbumSyncer
// (XiaoMiApi.downloadAsset) sends both with a User-Agent alone, and they work. A cookie that
// arrives anyway is counted, so tests can see from here that none leaked.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { readBody, sendBody, sendStream } from '../../../../src/emulator/kit.ts';
import { CODE_DELETED } from '../../protocol.ts';
import type { EmulatorContext } from '../context.ts';
import type { Exchange } from '../exchange.ts';
import type { Link } from '../links.ts';
import { syntheticBytes, type EmItem } from '../seed.ts';
import type { Route } from './route.ts';

function expired(x: Exchange): void {
  x.plain(403, { 'Content-Type': 'application/xml' }, '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
}

function jsonpHop(ctx: EmulatorContext, x: Exchange, link: Link, it: EmItem): void {
  ctx.count('jsonp');
  const fileLink = crypto.randomBytes(16).toString('base64url');
  // No real meta is quoted in any public client, issue or test we found; what the clients
  // show is how they send it, and that all of them work against i.mi.com:
  // diredocks/MiCloudAlbumDownloader (and a later requests-based downloader) post the str
  // "meta=%s" % meta as it is, while Coooolfan/XiaomiAlbumSyncer (OkHttp FormBody),
  // sunhanaix/SyncXiaomiCloud (requests data={'meta': meta}) and a C# client
  // (FormUrlEncodedContent) form-encode it. Both work only if the real meta holds no
  // character form encoding changes ('+', '%', '&'), so the meta here is base64url, which
  // every one of them sends unchanged, and the body is read as a form.
  const meta = crypto.randomBytes(24).toString('base64url');
  ctx.links.add(fileLink, { itemId: it.id, expiresAt: Date.now() + ctx.linkTtlMs, meta, callback: link.callback });
  const fileHost = ctx.opts.fileHost ?? ctx.opts.downloadHost ?? '127.0.0.1';
  const fileUrl = `http://${fileHost}:${ctx.port}/_dl/micloudfs.fds.api.xiaomi.com/file/${fileLink}?Expires=${Date.now() + ctx.linkTtlMs}`;
  // Exactly NAME({...}), nothing after the ")": diredocks/MiCloudAlbumDownloader and
  // QSMX816/xiaomi2icloud check startswith('dl_img_cb(') and endswith(')');
  // CLOUDERHEM/MiCloud cuts the body at its last character.
  x.plain(200, { 'Content-Type': 'application/javascript;charset=UTF-8' }, `${link.callback}(${JSON.stringify({ url: fileUrl, meta })})`);
}

async function fileHop(ctx: EmulatorContext, x: Exchange, linkId: string, link: Link, it: EmItem): Promise<void> {
  const form = new URLSearchParams((await readBody(x.req, 64 * 1024)).toString('utf8'));
  if (form.get('meta') !== link.meta) return x.plain(403, { 'Content-Type': 'text/plain' }, 'bad meta');
  ctx.links.delete(linkId);
  ctx.count('downloads');
  ctx.record.set('downloads', it.id, (ctx.state.downloads[it.id] ?? 0) + 1);
  ctx.save();
  const headers = { 'Content-Type': it.mimeType, 'Content-Disposition': `attachment; filename="${encodeURIComponent(it.fileName)}"` };
  if (it.file) return sendStream(x.res, ctx.faults, 200, headers, fs.createReadStream(it.file), it.size, { corruptible: true });
  sendBody(x.res, ctx.faults, 200, headers, syntheticBytes(it.synthetic!), { corruptible: true });
}

async function downloadHop(ctx: EmulatorContext, x: Exchange): Promise<void> {
  const [step, linkId] = x.params as [string, string];
  if (x.req.headers.cookie) ctx.count('cookiesOnDownloadHops');
  const link = ctx.links.get(linkId);
  if (!link || link.expiresAt < Date.now() || ctx.faults.random() < ctx.expiredLinkRate) {
    ctx.count('expiredLinks');
    return expired(x);
  }
  const it = ctx.library.byId.get(link.itemId)!;
  if (!ctx.library.alive(it)) return x.fail(CODE_DELETED, 'file has been deleted', 404);
  if (step === 'jsonp' && x.req.method === 'GET') return jsonpHop(ctx, x, link, it);
  if (step === 'file' && x.req.method === 'POST') return fileHop(ctx, x, linkId, link, it);
  x.plain(405);
}

export const downloadRoutes: Route[] = [{ method: '*', path: /^\/_dl\/[^/]+\/(jsonp|file)\/([A-Za-z0-9_-]+)$/, handle: downloadHop }];
