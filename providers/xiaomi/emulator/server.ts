// An emulator of i.mi.com's gallery API, built from the public description of the web client's
// protocol (../shared/reference/xiaomi-cloud-gallery.md) and from what public clients that work
// against the real service send and expect (each format fact names the client it follows),
// never from our client. It serves a
// seed folder (sub-folders are albums), keeps deletions and counters in DATA/.emulator/ so they
// survive restarts, checks cookies, expires sessions, renews serviceTokens through the login
// chain and injects the common faults plus its own (wrong SHA-1 in the listing, expired links).
//
//   gallery-bridge emulator xiaomi --port 0 --seed SEED --data DATA [flags]
//
// Layout: seed.ts (the library), store.ts (the record in DATA), context.ts (what handlers use),
// routes/ (one module per group of paths, listed in routes/index.ts), args.ts (the flags).

import fs from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import { listenLoopback } from '../../../src/emulator/kit.ts';
import type { EmulatorHandle } from '../../types.ts';
import { EmulatorContext } from './context.ts';
import { Exchange } from './exchange.ts';
import { EMULATOR_DEFAULTS, type XiaomiEmulatorOptions } from './options.ts';
import { ROUTES, type Route } from './routes/index.ts';
import { galleryTrusted, untrusted } from './routes/trust.ts';
import { loadSeed } from './seed.ts';

export { EMULATOR_DEFAULTS, type HostileListing, type XiaomiEmulatorOptions } from './options.ts';

export interface XiaomiEmulator extends EmulatorHandle {
  port: number;
  baseUrl: string;
  /** Where the emulator keeps its state (deletions, download counts). */
  stateFile: string;
  /** Every item the seed produced, for tests that look from the outside. */
  manifest(): Array<{ id: string; albumId: string; albumName: string; fileName: string; file: string | null; sha1: string; size: number }>;
}

function matchPath(route: Route, p: string): string[] | null {
  if (typeof route.path === 'string') return route.path === p ? [] : null;
  const m = route.path.exec(p);
  return m ? m.slice(1) : null;
}

function methodOk(route: Route, method: string | undefined): boolean {
  if (route.method === '*') return true;
  return Array.isArray(route.method) ? route.method.includes(method ?? '') : route.method === method;
}

/**
 * Finds the route for a request. A gallery path (one that needs a session) asks for the session
 * before it looks at the method, and answers another method 405; any other path is 404. A path
 * behind the gallery's second check then asks whether the sign-in passed it (routes/trust.ts).
 */
function dispatch(ctx: EmulatorContext, x: Exchange): void | Promise<void> {
  const onPath: Array<{ route: Route; params: string[] }> = [];
  for (const route of ROUTES) {
    const params = matchPath(route, x.path);
    if (params) onPath.push({ route, params });
  }
  if (!onPath.length) return x.plain(404, { 'Content-Type': 'text/plain' }, 'not found');
  const gallery = onPath.some((m) => m.route.session);
  if (gallery && !ctx.sessions.sessionOk(x.cookies)) return ctx.unauthorized(x);
  if (onPath.some((m) => m.route.gallery) && !galleryTrusted(ctx)) return untrusted(ctx, x);
  const found = onPath.find((m) => methodOk(m.route, x.req.method));
  if (found) {
    x.params = found.params;
    return found.route.handle(ctx, x);
  }
  if (gallery) return x.plain(405);
  x.plain(404, { 'Content-Type': 'text/plain' }, 'not found');
}

async function handle(ctx: EmulatorContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { faults } = ctx;
  await faults.latency();
  const x = new Exchange(req, res, faults, ctx.baseUrl);
  ctx.count('requests');
  if (faults.roll('429')) {
    ctx.count('fault429');
    return x.json(429, { code: 429, result: 'error', description: 'too many requests' }, { 'Retry-After': '1' });
  }
  if (faults.roll('5xx')) {
    ctx.count('fault5xx');
    return x.json(faults.random() < 0.5 ? 500 : 503, { code: 500, result: 'error', description: 'server busy' });
  }
  await dispatch(ctx, x);
}

function writeManifest(ctx: EmulatorContext): ReturnType<XiaomiEmulator['manifest']> {
  const rows = [...ctx.library.byId.values()].map((it) => ({
    id: it.id,
    albumId: it.albumId,
    albumName: ctx.library.albums.get(it.albumId)!.name,
    fileName: it.fileName,
    file: it.file,
    sha1: it.sha1,
    size: it.size,
  }));
  fs.writeFileSync(path.join(path.dirname(ctx.record.file), 'xiaomi-manifest.json'), JSON.stringify(rows, null, 1));
  return rows;
}

export async function startXiaomiEmulator(opts: XiaomiEmulatorOptions): Promise<XiaomiEmulator> {
  const ctx = new EmulatorContext(opts, await loadSeed(opts.seed, opts.synthetic ?? 0));
  const initialToken = opts.serviceToken ?? EMULATOR_DEFAULTS.serviceToken;
  // The configured token is valid from start (for one session lifetime).
  ctx.sessions.grant(initialToken);
  const manifestRows = writeManifest(ctx);
  ctx.save();

  const server = await listenLoopback((req, res) => {
    handle(ctx, req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`emulator error: ${err instanceof Error ? err.message : String(err)}`);
      } else res.destroy();
    });
  }, opts.common.port);
  ctx.port = server.port;
  ctx.baseUrl = `http://127.0.0.1:${ctx.port}`;

  return {
    port: ctx.port,
    baseUrl: ctx.baseUrl,
    stateFile: ctx.record.file,
    env: {
      XIAOMI_BASE_URL: ctx.baseUrl,
      XIAOMI_COOKIE: `userId=${ctx.userId}; serviceToken=${initialToken}; passToken=${ctx.passToken}`,
    },
    manifest: () => manifestRows,
    close: async () => {
      await server.close();
      ctx.record.close();
    },
  };
}
