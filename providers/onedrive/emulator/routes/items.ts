// Graph's driveItem actions: read and write content, list and create children, read, update and
// delete an item. (Upload sessions are in upload.ts.)

import fs from 'node:fs';
import { readBody, sendStream } from '../../../../src/emulator/kit.ts';
import { GraphError } from '../errors.ts';
import { nowIso, rid } from '../ids.ts';
import { SIMPLE_PUT_MAX } from '../options.ts';
import type { ItemMeta } from '../store.ts';
import type { ItemAction, ItemCall } from './call.ts';

const notFound = () => new GraphError(404, 'itemNotFound', 'The resource could not be found.');

/** fileSystemInfo dates, where given, must parse as ISO 8601. */
export function checkDates(fsi: { createdDateTime?: string; lastModifiedDateTime?: string }): void {
  for (const v of [fsi.createdDateTime, fsi.lastModifiedDateTime]) {
    if (v !== undefined && !Number.isFinite(Date.parse(v))) throw new GraphError(400, 'invalidRequest', 'fileSystemInfo dates must be ISO 8601.');
  }
}

async function putContent({ ctx, req, res, url, drive, rel, targetPath }: ItemCall): Promise<void> {
  if (!rel) throw new GraphError(400, 'invalidRequest', 'A simple upload needs a file path.');
  const len = Number(req.headers['content-length'] ?? NaN);
  if (!Number.isFinite(len)) throw new GraphError(411, 'lengthRequired', 'Content-Length is required.');
  if (len > SIMPLE_PUT_MAX) throw new GraphError(413, 'requestTooLarge', 'Simple uploads are limited to 250 MB; use an upload session.');
  const bytes = await readBody(req, SIMPLE_PUT_MAX);
  if (bytes.length !== len) throw new GraphError(400, 'invalidRequest', 'Body length differs from Content-Length.');
  const cb = (url.searchParams.get('@microsoft.graph.conflictBehavior') ?? 'replace') as 'fail' | 'replace' | 'rename';
  const placed = ctx.drive.placeFile(drive, targetPath, cb, { bytes }, bytes.length, { created: null, modified: null });
  ctx.count('putContent', placed.created ? 201 : 200);
  ctx.json(res, placed.created ? 201 : 200, ctx.itemJson(placed.item));
}

function getContent({ ctx, res, drive, target }: ItemCall): void {
  if (!target || target.folder) throw notFound();
  const disk = ctx.store.diskPath(drive, target.path);
  ctx.count('getContent', 200);
  sendStream(res, ctx.faults, 200, { 'Content-Type': 'application/octet-stream' }, fs.createReadStream(disk), target.size, { corruptible: true });
}

function listChildren({ ctx, res, target }: ItemCall): void {
  ctx.count('listChildren', 200);
  ctx.json(res, 200, { value: ctx.drive.children(target!).map((c) => ctx.itemJson(c)) });
}

async function createFolder({ ctx, req, res, drive, target }: ItemCall): Promise<void> {
  const parent = target!;
  const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as Record<string, unknown>;
  const name = String(body.name ?? '');
  if (!body.folder) throw new GraphError(400, 'invalidRequest', 'Only folders can be created this way.');
  const cb = (body['@microsoft.graph.conflictBehavior'] as string | undefined) ?? 'fail';
  ctx.drive.validateName(name);
  const existing = ctx.drive.lookup(drive, `${parent.path}/${name}`);
  if (existing && cb === 'fail') throw new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists.');
  if (existing && cb === 'replace' && existing.folder) {
    ctx.count('createFolder', 200);
    return ctx.json(res, 200, ctx.itemJson(existing));
  }
  const created = ctx.drive.createFolder(drive, parent, existing ? ctx.drive.freeName(drive, parent, name) : name);
  ctx.count('createFolder', 201);
  ctx.json(res, 201, ctx.itemJson(created));
}

function getItem({ ctx, res, target }: ItemCall): void {
  ctx.count('getItem', 200);
  ctx.json(res, 200, ctx.itemJson(target!));
}

interface ItemUpdate {
  name?: unknown;
  fileSystemInfo?: { createdDateTime?: string; lastModifiedDateTime?: string };
  description?: unknown;
  parentReference?: unknown;
}

/** Update an item: its dates and description, or a file's name within its folder. */
async function updateItem({ ctx, req, res, drive, target }: ItemCall): Promise<void> {
  const item: ItemMeta = target!;
  const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as ItemUpdate;
  if (body.parentReference !== undefined) throw new GraphError(501, 'notSupported', 'The emulator does not move items.');
  const fsi = body.fileSystemInfo ?? {};
  checkDates(fsi);
  if (typeof body.name === 'string' && body.name !== item.name) ctx.drive.renameFile(drive, item, body.name);
  if (fsi.createdDateTime) item.fsCreated = fsi.createdDateTime;
  if (fsi.lastModifiedDateTime) item.fsModified = fsi.lastModifiedDateTime;
  if (typeof body.description === 'string' && ctx.opts.flavor === 'personal') item.description = body.description;
  item.lastModifiedDateTime = nowIso();
  item.eTag = rid(8);
  ctx.store.saveItem(item);
  ctx.count('updateItem', 200);
  ctx.json(res, 200, ctx.itemJson(item));
}

function deleteItem({ ctx, res, target }: ItemCall): void {
  ctx.drive.deleteItem(target!);
  ctx.count('deleteItem', 204);
  res.writeHead(204);
  res.end();
}

export const contentActions: Record<string, ItemAction> = {
  PUT: { route: 'putContent', handle: putContent },
  GET: { route: 'getContent', handle: getContent },
};

export const childrenActions: Record<string, ItemAction> = {
  GET: { route: 'listChildren', handle: listChildren },
  POST: { route: 'createFolder', handle: createFolder },
};

export const itemActions: Record<string, ItemAction> = {
  GET: { route: 'getItem', handle: getItem },
  PATCH: { route: 'updateItem', handle: updateItem },
  DELETE: { route: 'deleteItem', handle: deleteItem },
};

export { notFound };
