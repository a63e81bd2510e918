// The gallery's listings: albums, an album's items page by page, and /gallery/storage, which
// hands out the first download link of an item.

import crypto from 'node:crypto';
import { CODE_DELETED, JSONP_CALLBACK, PATHS } from '../../protocol.ts';
import type { EmulatorContext } from '../context.ts';
import { raw, type Exchange } from '../exchange.ts';
import type { EmAlbum, EmItem } from '../seed.ts';
import type { Route } from './route.ts';

function albumJson(ctx: EmulatorContext, a: EmAlbum, i: number): unknown {
  const live = a.items.filter((it) => ctx.library.alive(it));
  return {
    // albumId arrives as a number in some answers and a string in others.
    albumId: i % 2 === 0 ? raw(a.albumId) : a.albumId,
    name: a.name,
    mediaCount: live.length,
    lastUpdateTime: live.reduce((m, it) => Math.max(m, it.dateModified), 0),
    userId: raw(ctx.userId),
    thumbnails: [],
  };
}

function albums(ctx: EmulatorContext, x: Exchange): void {
  const { albumOrder, hostile } = ctx.library;
  const pageNum = Math.max(0, Number(x.query.get('pageNum') ?? 0) || 0);
  const pageSize = Math.min(100, Math.max(1, Number(x.query.get('pageSize') ?? 10) || 10));
  const slice = albumOrder.slice(pageNum * pageSize, pageNum * pageSize + pageSize);
  const isLastPage = (pageNum + 1) * pageSize >= albumOrder.length;
  if ((hostile.missingAlbumPages ?? []).includes(pageNum)) {
    ctx.count('missingAlbums');
    return x.ok({ isLastPage });
  }
  x.ok({
    albums: slice.map((a, i) => albumJson(ctx, a, i)),
    isLastPage,
    indexHash: crypto
      .createHash('sha256')
      .update(albumOrder.map((a) => a.albumId).join(','))
      .digest('hex'),
  });
}

function itemJson(ctx: EmulatorContext, it: EmItem): unknown {
  const lib = ctx.library;
  const meta = ctx.opts.userMeta?.[it.fileName];
  return {
    id: raw(it.id),
    fileName: it.fileName,
    title: it.fileName.replace(/\.[^.]*$/, ''),
    type: it.type,
    mimeType: it.mimeType,
    size: it.size,
    sha1: lib.wrongSha1(it) ? crypto.createHash('sha1').update(`wrong:${it.id}`).digest('hex') : it.sha1,
    dateTaken: lib.microseconds.has(it.fileName) ? it.dateTaken * 1000 : it.dateTaken,
    createTime: it.dateModified,
    dateModified: it.dateModified,
    sortTime: it.dateTaken,
    status: 'normal',
    tag: it.dateModified,
    groupId: raw(it.albumId),
    description: meta?.description ?? '',
    isFavorite: meta?.isFavorite === true,
    // geoInfo{address, gps, isAccurate} (reference notes; MifansCloud's survey of MiCloud).
    // The exact form of gps is not public: decimal coordinates, as the issue reports them
    // breaking a parser, and '' when the file has none.
    geoInfo: { address: {}, gps: it.gps ?? '', isAccurate: it.gps !== null },
    exifInfo: it.exifInfo,
    thumbnailInfo: { data: '', isUrl: false },
  };
}

function galleries(ctx: EmulatorContext, x: Exchange): void {
  const lib = ctx.library;
  const q = x.query;
  const album = lib.findAlbum(q.get('albumId'));
  const pageNum = Math.max(0, Number(q.get('pageNum') ?? 0) || 0);
  const pageSize = Number(q.get('pageSize') ?? 30) || 30;
  // Large pages time out at the real service.
  if (pageSize > 200) return x.json(504, '<html><body>504 Gateway Time-out</body></html>');
  if (!album) return x.ok({ galleries: [], isLastPage: true });
  const start = q.get('startDate');
  const end = q.get('endDate');
  const { live, indexHash } = start || end ? lib.listing(album, (it) => (!start || it.day >= start) && (!end || it.day <= end)) : lib.wholeListing(album);
  const endless = (lib.hostile.endlessPages ?? []).includes(album.name);
  const isLastPage = endless ? false : (pageNum + 1) * pageSize >= live.length;
  if (lib.missingPage(album, pageNum)) {
    ctx.count('missingGalleries');
    return x.ok({ isLastPage, indexHash: '' });
  }
  const first = endless ? 0 : pageNum * pageSize;
  x.ok({
    galleries: live.slice(first, first + pageSize).map((it) => itemJson(ctx, it)),
    // A JSON boolean, as Coooolfan/XiaomiAlbumSyncer reads it (asBoolean on /data/isLastPage).
    isLastPage,
    indexHash,
  });
}

function storage(ctx: EmulatorContext, x: Exchange): void {
  ctx.count('storage');
  const it = ctx.library.byId.get(String(x.query.get('id') ?? ''));
  if (!it || !ctx.library.alive(it)) return x.fail(CODE_DELETED, 'file has been deleted');
  const refusal = ctx.library.hostile.storageErrors?.[it.fileName];
  if (refusal) return x.fail(refusal.code, 'the file cannot be served', 200, refusal.retriable);
  const linkId = crypto.randomBytes(16).toString('base64url');
  // Without callBack the JSONP function is dl_img_cb (XiaomiAlbumSyncer, diredocks); the web
  // client and CLOUDERHEM/MiCloud pass callBack=dl_img_cb_<ts>_0 and parse whatever name comes.
  const cb = x.query.get('callBack') || JSONP_CALLBACK;
  const expiresAt = Date.now() + ctx.linkTtlMs;
  ctx.links.add(linkId, { itemId: it.id, expiresAt, meta: '', callback: /^[\w$.]{1,64}$/.test(cb) ? cb : JSONP_CALLBACK });
  const host = ctx.opts.downloadHost ?? '127.0.0.1';
  x.ok({ url: `http://${host}:${ctx.port}/_dl/storage.mi.com/jsonp/${linkId}?Expires=${expiresAt}`, id: raw(it.id) });
}

export const galleryRoutes: Route[] = [
  { method: 'GET', path: PATHS.albums, session: true, gallery: true, handle: albums },
  { method: 'GET', path: PATHS.galleries, session: true, gallery: true, handle: galleries },
  { method: 'GET', path: PATHS.storage, session: true, gallery: true, handle: storage },
];
