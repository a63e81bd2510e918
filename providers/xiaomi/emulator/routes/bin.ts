// Deletion and the recycle bin. Xiaomi's delete is soft: the item moves to the bin that
// /gallery/deleted_v2 lists, and still takes space.

import { readBody } from '../../../../src/emulator/kit.ts';
import { CODE_DELETED, CODE_OK, PATHS } from '../../protocol.ts';
import type { EmulatorContext } from '../context.ts';
import { raw, type Exchange } from '../exchange.ts';
import type { Route } from './route.ts';

// POST with a form (the reference notes) or GET with a query (CLOUDERHEM/MiCloud DeleteGallery).
async function deleteItem(ctx: EmulatorContext, x: Exchange): Promise<void> {
  const form = x.req.method === 'POST' ? new URLSearchParams((await readBody(x.req, 64 * 1024)).toString('utf8')) : x.query;
  if (form.get('serviceToken') !== x.cookies.serviceToken) return x.fail(10017, 'serviceToken mismatch', 200);
  const id = form.get('id') ?? '';
  const it = ctx.library.byId.get(id);
  ctx.count('deleteRequests');
  if (ctx.deleteFaultRate > 0 && ctx.deleteFaultRandom() < ctx.deleteFaultRate) {
    ctx.count('faultDelete');
    return x.json(503, { code: 500, result: 'error', description: 'server busy' });
  }
  if (!it || !ctx.library.alive(it)) {
    ctx.record.logDeletion({ at: new Date().toISOString(), id, code: CODE_DELETED });
    ctx.save();
    return x.fail(CODE_DELETED, 'file has been deleted');
  }
  const tag = (ctx.state.counters.tag ?? 0) + 1;
  ctx.record.set('counters', 'tag', tag);
  ctx.record.set('deleted', id, { at: new Date().toISOString(), fileName: it.fileName, albumId: it.albumId, sha1: it.sha1, deleteTime: Date.now(), tag });
  ctx.record.logDeletion({ at: new Date().toISOString(), id, code: CODE_OK });
  ctx.library.noteDeletion();
  ctx.save();
  x.ok({ id: raw(id), deleted: true });
}

function binEntry(ctx: EmulatorContext, d: { id: string; tag: number; deleteTime: number }): unknown {
  const it = ctx.library.byId.get(d.id);
  return {
    id: raw(d.id),
    tag: d.tag,
    status: 'deleted',
    deleteTime: d.deleteTime,
    groupId: it ? raw(it.albumId) : undefined,
    fileName: it?.fileName,
    title: it?.fileName.replace(/\.[^.]*$/, ''),
    type: it?.type,
    mimeType: it?.mimeType,
    sha1: it?.sha1,
    size: it?.size,
    dateTaken: it?.dateTaken,
    dateModified: it?.dateModified,
    createTime: it?.dateModified,
  };
}

// The recycle bin, newest deletion first, paged by maxTag (0: from the newest), as
// Coooolfan/XiaomiAlbumSyncer docs/plan/xiaomi-webapi-incremental-sync.md describes it:
// data{content[], lastPage, syncTag}; each entry as listed plus deleteTime, status "deleted".
function recycleBin(ctx: EmulatorContext, x: Exchange): void {
  const maxTag = Number(x.query.get('maxTag') ?? 0) || 0;
  const limit = Math.min(200, Math.max(1, Number(x.query.get('limit') ?? 50) || 50));
  const binned = Object.entries(ctx.state.deleted)
    .map(([id, d]) => ({ id, tag: d.tag ?? 0, deleteTime: d.deleteTime ?? Date.parse(d.at) }))
    .filter((d) => maxTag === 0 || d.tag < maxTag)
    .sort((a, b) => b.tag - a.tag);
  const page = binned.slice(0, limit);
  x.ok({
    content: page.map((d) => binEntry(ctx, d)),
    lastPage: binned.length <= limit,
    syncTag: page.length ? page[page.length - 1]!.tag : maxTag,
  });
}

export const binRoutes: Route[] = [
  { method: ['POST', 'GET'], path: PATHS.delete, session: true, gallery: true, handle: deleteItem },
  { method: 'GET', path: PATHS.recycleBin, session: true, gallery: true, handle: recycleBin },
];
