// Media items: batchCreate (upload tokens become items, each with its own status), batchGet,
// get, list and search. An app sees only what it created.

import fs from 'node:fs';
import path from 'node:path';
import { readBody } from '../../../../src/emulator/kit.ts';
import * as P from '../../protocol.ts';
import { type Caller, type EmulatorContext, page } from '../context.ts';
import { bad, HttpError } from '../errors.ts';
import { type Detected, detectFormat, mediaInfo } from '../media.ts';
import { CONSUMER, EXISTS_FAILURE, GENERIC_CREATE_FAILURE, OTHER_APP } from '../options.ts';
import { preexistingAnswer, readHead } from '../preexisting.ts';
import { type AlbumRow, b64url, type MediaRow, type UploadRow } from '../store.ts';
import type { ApiCall, Route } from './route.ts';

interface NewMediaItem {
  description?: string;
  simpleMediaItem?: { uploadToken?: string; fileName?: string };
}

type ItemResult = Record<string, unknown>;

function safeFileName(name: string): string {
  const clean = name.replace(/[/\\\0]/g, '_').replace(/^\.+/, '_');
  // Keep the on-disk name within 255 bytes (the id prefix takes ~45).
  let out = clean;
  while (Buffer.byteLength(out) > 200) out = out.slice(0, -1);
  return out || '_';
}

/** The album to add to, checked: this app's, with room for what the batch adds. */
function targetAlbum(ctx: EmulatorContext, c: Caller, albumId: string, items: NewMediaItem[]): AlbumRow {
  const album = ctx.store.album(albumId);
  if (!album || album.owner !== c.owner) throw bad('Invalid album ID or the album was not created by this app.');
  const n = ctx.store.albumCount(album.id);
  // The limit is on what the album holds: an item it already holds does not count twice.
  const already = items.filter((it) => {
    const u = ctx.store.upload(it.simpleMediaItem?.uploadToken ?? '');
    return !!u && ctx.store.albumHolds(album.id, u.sha1, u.size);
  }).length;
  if (n + items.length - already > ctx.opt.albumLimit) throw bad(`The album is full: an album holds at most ${ctx.opt.albumLimit} items.`);
  return album;
}

/** Storage: what the new (not yet stored) items add must fit. */
function checkStorage(ctx: EmulatorContext, c: Caller, items: NewMediaItem[]): void {
  let adding = 0;
  for (const it of items) {
    const u = ctx.store.upload(it.simpleMediaItem?.uploadToken ?? '');
    if (u && !ctx.store.mediaByHash(c.owner, u.sha1, u.size)) adding += u.size;
  }
  if (ctx.store.storageUsed() + adding > ctx.opt.storageLimit)
    throw bad("The remaining storage in the user's account is not enough to perform this operation.");
}

/** Why this item cannot be created before its bytes are looked at, or null. */
function refusal(c: Caller, it: NewMediaItem, u: UploadRow | undefined): string | null {
  if (!u || u.owner !== c.owner || Date.now() - u.created_at > P.UPLOAD_TOKEN_TTL_MS) return 'Request must contain a valid upload token.';
  if ((it.simpleMediaItem?.fileName ?? '').length > P.MAX_FILE_NAME) return `fileName must be at most ${P.MAX_FILE_NAME} characters.`;
  if ((it.description ?? '').length >= P.MAX_DESCRIPTION) return `description must be shorter than ${P.MAX_DESCRIPTION} characters.`;
  if (u.size === 0) return GENERIC_CREATE_FAILURE;
  return null;
}

async function storeItem(ctx: EmulatorContext, c: Caller, it: NewMediaItem, u: UploadRow, detected: Detected): Promise<MediaRow> {
  const id = `A${b64url(48)}`.slice(0, 64);
  const name = it.simpleMediaItem?.fileName || `${id}.${detected.format}`;
  const file = path.join(ctx.store.dataDir, `${id}-${safeFileName(name)}`);
  fs.copyFileSync(u.file, file);
  const info = await mediaInfo(file, detected);
  const description = it.description ?? null;
  ctx.store.addMediaItem({
    id,
    owner: c.owner,
    sha1: u.sha1,
    size: u.size,
    filename: name,
    file,
    detected,
    info,
    description,
    createdAt: Date.now(),
    playable: info.playable !== false,
  });
  return ctx.store.mediaItem(id)!;
}

/** One item of a batchCreate: its result entry. */
async function createOne(ctx: EmulatorContext, c: Caller, it: NewMediaItem, album: AlbumRow | undefined): Promise<ItemResult> {
  const token = it.simpleMediaItem?.uploadToken ?? '';
  const failed = (message: string, code = 3) => ({ uploadToken: token, status: { code, message } });
  const success = (m: MediaRow) => ({ uploadToken: token, status: { message: 'Success' }, mediaItem: ctx.mediaJson(m) });
  const u = ctx.store.upload(token);
  const refused = refusal(c, it, u);
  if (refused) return failed(refused);
  const detected = detectFormat(readHead(u!.file));
  if (!detected) return failed(GENERIC_CREATE_FAILURE);
  const own = ctx.store.mediaByHash(c.owner, u!.sha1, u!.size);
  const other = own ? undefined : ctx.store.mediaByHash(OTHER_APP, u!.sha1, u!.size);
  if (other) {
    ctx.stats.preexistingAnswered++;
    const kind = preexistingAnswer(ctx, other);
    if (kind === 'exists') return failed(EXISTS_FAILURE, 6);
    if (kind === 'failed') return failed(GENERIC_CREATE_FAILURE);
    if (album) ctx.store.addToAlbum(album.id, other.id);
    return success(other);
  }
  const m = own ?? (await storeItem(ctx, c, it, u!, detected));
  if (album) ctx.store.addToAlbum(album.id, m.id);
  return success(m);
}

async function batchCreate({ ctx, req, res, caller: c }: ApiCall): Promise<void> {
  const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { albumId?: string; newMediaItems?: NewMediaItem[] };
  const items = body.newMediaItems ?? [];
  if (items.length === 0) throw bad('Request must contain at least one new media item.');
  if (items.length > P.MAX_BATCH_CREATE) throw bad('Request must have less than 50 items.');
  if (ctx.committing.has(c.owner)) {
    throw new HttpError(
      429,
      `Quota exceeded for quota metric 'Concurrent write requests' and limit 'Concurrent write requests per user' of service 'photoslibrary.googleapis.com' ${CONSUMER}.`,
      'RESOURCE_EXHAUSTED',
    );
  }
  ctx.committing.add(c.owner);
  try {
    const album = body.albumId ? targetAlbum(ctx, c, body.albumId, items) : undefined;
    if (ctx.opt.storageLimit > 0) checkStorage(ctx, c, items);
    const results: ItemResult[] = [];
    for (const it of items) results.push(await createOne(ctx, c, it, album));
    ctx.json(res, 200, { newMediaItemResults: results });
  } finally {
    ctx.committing.delete(c.owner);
  }
}

function batchGet({ ctx, res, url, caller }: ApiCall): void {
  const ids = url.searchParams.getAll('mediaItemIds');
  if (ids.length === 0) throw bad('mediaItemIds is required.');
  if (ids.length > P.MAX_BATCH_GET) throw bad('Request must have at most 50 media item ids.');
  const results = ids.map((id) => {
    const m = ctx.ownItem(caller, id);
    // Since March 2025 an item this app did not create is an invalid id to it (code 3), not a missing one.
    return m ? { mediaItem: ctx.mediaJson(m) } : { status: { code: 3, message: 'Invalid media item ID.' } };
  });
  ctx.json(res, 200, { mediaItemResults: results });
}

function sendPage(ctx: EmulatorContext, call: ApiCall, rows: MediaRow[]): void {
  const { slice, next } = page(rows, call.url, 100, 25);
  ctx.json(call.res, 200, { ...(slice.length ? { mediaItems: slice.map((m) => ctx.mediaJson(m)) } : {}), ...(next ? { nextPageToken: next } : {}) });
}

function list(call: ApiCall): void {
  sendPage(call.ctx, call, call.ctx.store.mediaOf(call.caller.owner));
}

async function search(call: ApiCall): Promise<void> {
  const { ctx, req, url, caller } = call;
  const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { albumId?: string; pageSize?: number; pageToken?: string };
  if (body.pageSize) url.searchParams.set('pageSize', String(body.pageSize));
  if (body.pageToken) url.searchParams.set('pageToken', body.pageToken);
  sendPage(ctx, call, body.albumId ? ctx.store.albumMedia(body.albumId, caller.owner) : ctx.store.mediaOf(caller.owner));
}

function getItem({ ctx, res, params, caller }: ApiCall): void {
  const m = ctx.ownItem(caller, params[0]!);
  if (!m) throw bad('Invalid media item ID.');
  ctx.json(res, 200, ctx.mediaJson(m));
}

export const mediaItemRoutes: Array<Route<ApiCall>> = [
  { method: 'POST', path: P.PATH_BATCH_CREATE, stat: 'batchCreate', handle: batchCreate },
  { method: 'GET', path: P.PATH_BATCH_GET, stat: 'batchGet', handle: batchGet },
  { method: 'GET', path: P.PATH_MEDIA_ITEMS, stat: 'list', handle: list },
  { method: 'POST', path: `${P.PATH_MEDIA_ITEMS}:search`, stat: 'list', handle: search },
  { method: 'GET', path: /^\/v1\/mediaItems\/([^/:]+)$/, stat: 'other', handle: getItem },
];
