// An emulator of the Google Photos Library API (and of Google's OAuth endpoints), built from
// the service's documentation (../shared/reference/google-photos-library-api.md), never from
// our client. It speaks the raw and resumable upload protocols, batchCreate with per-item
// statuses, albums, batchGet, list, baseUrl downloads (`=d` without location), videos that
// stay PROCESSING for a while, a daily quota and a per-minute write limit, and the installed-app
// OAuth flow. Media bytes live in DIR/<media item id>-<file name>; its own state in DIR/.emulator/.
//
// Layout: store.ts (the SQLite state), context.ts (what handlers use), access.ts (token, scopes,
// quota), routes/ (one module per group, tables in routes/index.ts), args.ts (the flags).

import type http from 'node:http';
import { listenLoopback } from '../../../src/emulator/kit.ts';
import * as P from '../protocol.ts';
import { admit, authenticate, requireScope } from './access.ts';
import { parseOptions } from './args.ts';
import { EmulatorContext } from './context.ts';
import { HttpError, notFound } from './errors.ts';
import { seedPreexisting } from './preexisting.ts';
import { API_ROUTES, CONTROL_ROUTES, type Call, findRoute, OPEN_ROUTES, type Route } from './routes/index.ts';

export { EMULATOR_FLAG_HELP } from './args.ts';

/** Writes count against the per-minute limit: uploads (but a query), batchCreate, album writes. */
function isWrite(req: http.IncomingMessage, p: string): boolean {
  const command = String(req.headers[P.H_COMMAND] ?? '').toLowerCase();
  if (p === P.PATH_UPLOADS) return !command.includes('query');
  return req.method === 'POST' && (p === P.PATH_BATCH_CREATE || p === P.PATH_ALBUMS || /:batchAddMediaItems$/.test(p));
}

/** Faults injected after a call is admitted (so they count against the quota, as Google's do). */
function injectedFault(ctx: EmulatorContext): HttpError | null {
  const { faults } = ctx;
  if (faults.roll('429')) {
    ctx.stats.faults++;
    return new HttpError(429, 'Resource has been exhausted (e.g. check quota).', 'RESOURCE_EXHAUSTED', { 'Retry-After': String(ctx.opt.retryAfter) });
  }
  if (faults.roll('5xx')) {
    ctx.stats.faults++;
    const status = faults.random() < 0.5 ? 500 : 503;
    return new HttpError(
      status,
      status === 500 ? 'Internal error encountered.' : 'The service is currently unavailable.',
      status === 500 ? 'INTERNAL' : 'UNAVAILABLE',
    );
  }
  return null;
}

async function run<C extends Call>(ctx: EmulatorContext, routes: Array<Route<C>>, call: Omit<C, 'params'>): Promise<boolean> {
  const found = findRoute(routes, call.req.method, call.url.pathname);
  if (!found) return false;
  if (found.route.stat) ctx.stats[found.route.stat]++;
  await found.route.handle({ ...call, params: found.params } as C);
  return true;
}

async function api(ctx: EmulatorContext, call: Omit<Call, 'params'>): Promise<void> {
  const { req, url } = call;
  const p = url.pathname;
  const caller = authenticate(ctx, req);
  requireScope(caller, p, req.method ?? 'GET');
  admit(ctx, caller, isWrite(req, p));
  const fault = injectedFault(ctx);
  if (fault) throw fault;
  if (!(await run(ctx, API_ROUTES, { ...call, caller }))) throw notFound();
}

async function route(ctx: EmulatorContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', ctx.base || 'http://127.0.0.1');
  const p = url.pathname;
  if (p === P.PATH_BATCH_CREATE) ctx.stats.batchCreateStarted++;
  await ctx.faults.latency();
  const call = { ctx, req, res, url };
  if (p.startsWith('/__emulator/')) {
    req.resume();
    if (!(await run(ctx, CONTROL_ROUTES, call))) throw notFound();
    return;
  }
  if (await run(ctx, OPEN_ROUTES, call)) return;
  if (!p.startsWith('/v1/')) throw notFound();
  await api(ctx, call);
}

function answerError(ctx: EmulatorContext, req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const e = err instanceof HttpError ? err : new HttpError(500, `Internal error: ${(err as Error).message}`, 'INTERNAL');
  if (!req.complete) {
    // The answer comes before the body was read: close the connection rather than read it all.
    res.setHeader('Connection', 'close');
    res.once('finish', () => req.socket?.destroy());
  }
  ctx.jsonError(res, e);
}

export async function startGooglePhotosEmulator(args: string[]): Promise<{ env: Record<string, string>; close(): Promise<void>; port: number }> {
  const ctx = new EmulatorContext(parseOptions(args));
  const handler: http.RequestListener = (req, res) => {
    route(ctx, req, res).catch((err: unknown) => answerError(ctx, req, res, err));
  };
  if (ctx.opt.preexisting) await seedPreexisting(ctx, ctx.opt.preexisting);
  const server = await listenLoopback(handler, ctx.opt.common.port);
  const base = `http://127.0.0.1:${server.port}`;
  ctx.base = base;
  return {
    port: server.port,
    env: {
      GOOGLE_PHOTOS_BASE_URL: base,
      GOOGLE_OAUTH_AUTH_URL: `${base}/o/oauth2/v2/auth`,
      GOOGLE_OAUTH_TOKEN_URL: `${base}/token`,
    },
    close: async () => {
      await server.close();
      ctx.store.close();
    },
  };
}
