// https://localhost:PORT/v1.0/...: the Graph API. A request is authenticated, may meet an
// injected fault, names a drive (/me/drive, /users/{id}/drive, /drives/{id}), an item in it
// (/root or /items/{id}, optionally :/path:) and an action, which the table below dispatches.

import type http from 'node:http';
import { readBody } from '../../../../src/emulator/kit.ts';
import type { EmulatorContext } from '../context.ts';
import { GraphError } from '../errors.ts';
import { driveJson } from '../json.ts';
import { SIMPLE_PUT_MAX } from '../options.ts';
import type { ItemMeta, TokenInfo } from '../store.ts';
import type { ItemAction, ItemCall } from './call.ts';
import { childrenActions, contentActions, itemActions, notFound } from './items.ts';
import { uploadSessionActions } from './upload.ts';

interface ActionGroup {
  actions: Record<string, ItemAction>;
  /** Checked before the method: what the group needs at the addressed path. */
  needs?: 'folder' | 'item';
  /** The metrics route of a request the group refuses before a handler is chosen. */
  route?: string;
  /** The metrics route of a request whose item is missing (else `route`). */
  missingRoute?: string;
}

/** The action table: the path suffix after the item address, then the method. */
const ACTIONS: Record<string, ActionGroup> = {
  '/createUploadSession': { actions: uploadSessionActions, route: 'createUploadSession' },
  '/content': { actions: contentActions },
  '/children': { actions: childrenActions, needs: 'folder' },
  '': { actions: itemActions, needs: 'item', missingRoute: 'getItem' },
};

const DRIVE_ADDRESS = /^\/(me\/drive|users\/([^/]+)\/drive|drives\/([^/]+))(\/.*)?$/;
const ITEM_ADDRESS = /^\/(root|items\/([^/:]+))(?::([^:]*):?)?(\/[A-Za-z.]+)?$/;

function authenticate(ctx: EmulatorContext, req: http.IncomingMessage): TokenInfo {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (!m) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token is empty.', { 'WWW-Authenticate': 'Bearer realm=""' });
  const token = m[1]!;
  if (ctx.opts.acceptTokens.includes(token)) return { kind: 'delegated', subject: 'me', expiresAt: Infinity };
  const t = ctx.store.tokens.get(token);
  const invalid = { 'WWW-Authenticate': 'Bearer error="invalid_token"' };
  if (!t) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.', invalid);
  if (Date.now() > t.expiresAt) throw new GraphError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.', invalid);
  return t;
}

/** The drive a /me/drive, /users/{id}/drive or /drives/{id} address names, for this token. */
function resolveDrive(ctx: EmulatorContext, token: TokenInfo, dm: RegExpExecArray): string {
  if (dm[1] === 'me/drive') {
    if (token.kind === 'app') throw new GraphError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
    return 'me';
  }
  if (dm[2]) {
    const user = decodeURIComponent(dm[2]);
    if (!/^[A-Za-z0-9@._-]+$/.test(user)) throw new GraphError(404, 'ResourceNotFound', 'User not found.');
    if (token.kind === 'delegated' && user !== token.subject)
      throw new GraphError(403, 'accessDenied', "Access denied to another user's drive with a delegated token.");
    return user;
  }
  const wanted = decodeURIComponent(dm[3]!);
  const drives = new Set([...ctx.store.items.values()].map((m) => m.drive));
  const found = [...drives].find((d) => ctx.drive.driveId(d) === wanted);
  if (!found) throw new GraphError(404, 'itemNotFound', 'The drive was not found.');
  return found;
}

/** Each segment of :/path: is percent-encoded on its own; a raw '/' separates segments. */
function relativePath(encoded: string | undefined): string {
  if (encoded === undefined) return '';
  return encoded
    .split('/')
    .filter(Boolean)
    .map((s) => `/${decodeURIComponent(s)}`)
    .join('');
}

/** The item call an address after the drive names, and its action suffix. */
function resolveItem(ctx: EmulatorContext, drive: string, rest: string): Omit<ItemCall, 'ctx' | 'req' | 'res' | 'url'> & { action: string } {
  const im = ITEM_ADDRESS.exec(rest);
  if (!im) throw new GraphError(400, 'invalidRequest', `Unsupported item address ${rest}.`);
  const base: ItemMeta | undefined = im[1] === 'root' ? ctx.drive.root(drive) : ctx.store.items.get(decodeURIComponent(im[2]!));
  if (!base || base.drive !== drive) throw notFound();
  const rel = relativePath(im[3]);
  const targetPath = `${base.path}${rel}`;
  return { drive, rel, targetPath, target: rel ? ctx.drive.lookup(drive, targetPath) : base, action: im[4] ?? '' };
}

export async function handleGraph(ctx: EmulatorContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET';
  let route = 'api';
  try {
    const token = authenticate(ctx, req);
    const injected = ctx.injectedFailure();
    if (injected) {
      if (method !== 'GET') await readBody(req, SIMPLE_PUT_MAX + 1).catch(() => undefined);
      throw injected;
    }
    const dm = DRIVE_ADDRESS.exec(url.pathname.slice('/v1.0'.length));
    if (!dm) throw new GraphError(400, 'invalidRequest', `Unsupported segment in ${url.pathname}.`);
    const drive = resolveDrive(ctx, token, dm);
    const rest = dm[4] ?? '';
    if (rest === '') {
      route = 'drive';
      if (method !== 'GET') throw new GraphError(405, 'invalidRequest', 'Method not allowed.');
      ctx.count(route, 200);
      return ctx.json(res, 200, driveJson(ctx.drive, ctx.opts, ctx.port, drive));
    }
    const { action, ...address } = resolveItem(ctx, drive, rest);
    const group = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
    if (!group) throw new GraphError(400, 'invalidRequest', `Unsupported action ${action}.`);
    route = group.route ?? route;
    if (group.needs === 'folder' && !address.target?.folder) throw notFound();
    if (group.needs === 'item' && !address.target) {
      route = group.missingRoute ?? route;
      throw notFound();
    }
    const handler = Object.hasOwn(group.actions, method) ? group.actions[method] : undefined;
    if (!handler) throw new GraphError(405, 'invalidRequest', 'Method not allowed.');
    route = handler.route;
    await handler.handle({ ctx, req, res, url, ...address });
  } catch (e) {
    if (!(e instanceof GraphError)) throw e;
    ctx.count(route, e.status);
    return ctx.sendError(res, e);
  }
}
