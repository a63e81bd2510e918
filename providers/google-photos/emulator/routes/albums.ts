// Albums: create, list, get, and batchAddMediaItems. An app sees and changes only the albums
// it created, and adds only items it created.

import { readBody } from '../../../../src/emulator/kit.ts';
import * as P from '../../protocol.ts';
import { page } from '../context.ts';
import { bad, HttpError, notFound } from '../errors.ts';
import { b64url } from '../store.ts';
import type { ApiCall, Route } from './route.ts';

async function createAlbum({ ctx, req, res, caller }: ApiCall): Promise<void> {
  const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { album?: { title?: string } };
  const title = body.album?.title ?? '';
  if (!title || title.length > 500) throw bad('album.title is required and must be at most 500 characters.');
  const id = `A${b64url(40)}`.slice(0, 56);
  ctx.store.db.prepare('INSERT INTO albums(id, owner, title, created_at) VALUES (?, ?, ?, ?)').run(id, caller.owner, title, Date.now());
  ctx.json(res, 200, ctx.albumJson({ id, title }));
}

function listAlbums({ ctx, res, url, caller }: ApiCall): void {
  const rows = ctx.store.db.prepare('SELECT id, title FROM albums WHERE owner = ? ORDER BY seq').all(caller.owner) as Array<{ id: string; title: string }>;
  const { slice, next } = page(rows, url, 50, 20);
  ctx.json(res, 200, { ...(slice.length ? { albums: slice.map((a) => ctx.albumJson(a)) } : {}), ...(next ? { nextPageToken: next } : {}) });
}

async function batchAddMediaItems({ ctx, req, res, caller }: ApiCall, albumId: string): Promise<void> {
  const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { mediaItemIds?: string[] };
  const ids = body.mediaItemIds ?? [];
  if (ids.length === 0 || ids.length > 50) throw bad('mediaItemIds must hold 1 to 50 ids.');
  if (ids.some((id) => !ctx.ownItem(caller, id))) throw bad('Every media item must have been created by this app.');
  if (ctx.store.albumCount(albumId) + ids.length > ctx.opt.albumLimit) throw bad(`The album is full: an album holds at most ${ctx.opt.albumLimit} items.`);
  for (const id of ids) ctx.store.addToAlbum(albumId, id);
  ctx.json(res, 200, {});
}

/** /v1/albums/{id} (GET) and /v1/albums/{id}:batchAddMediaItems (POST); the album is looked up before the method. */
async function album(call: ApiCall): Promise<void> {
  const { ctx, req, res, params, caller } = call;
  const [id, batchAdd] = params;
  const a = ctx.store.album(id!);
  if (!a || a.owner !== caller.owner) throw new HttpError(404, 'Album not found or not created by this app.', 'NOT_FOUND');
  if (!batchAdd && req.method === 'GET') return ctx.json(res, 200, ctx.albumJson(a));
  if (batchAdd && req.method === 'POST') return batchAddMediaItems(call, a.id);
  throw notFound();
}

export const albumRoutes: Array<Route<ApiCall>> = [
  { method: 'POST', path: P.PATH_ALBUMS, stat: 'albums', handle: createAlbum },
  { method: 'GET', path: P.PATH_ALBUMS, stat: 'albums', handle: listAlbums },
  { path: /^\/v1\/albums\/([^/:]+)(:batchAddMediaItems)?$/, stat: 'albums', handle: album },
];
