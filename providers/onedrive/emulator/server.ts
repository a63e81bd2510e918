// A Microsoft Graph / OneDrive emulator: the part of Graph that gallery-bridge uses, as strict as
// the documented service (../shared/reference/onedrive-graph.md), plus the Microsoft identity
// platform endpoints msal-node needs. Built from the documentation, never from our client:
// nothing under emulator/ imports from providers/onedrive/ outside emulator/.
//
// Hosts: like the real service, the API answers on one host and upload URLs live on another
// (the table is routes/index.ts).
//   https://localhost:PORT/v1.0/...            Graph API (bearer token required): routes/graph.ts
//   https://localhost:PORT/{tenant}/...        sign-in (OpenID metadata, token, device code): routes/identity.ts
//   https://127.0.0.1:PORT/upload/{id}?tempauth=...   pre-authenticated upload URLs: routes/upload.ts
//   https://{either}:PORT/__emulator/metrics   counters for tests (no auth)
//
// Storage (store.ts): every stored file is a plain file at DATA/<drive>/<path>; metadata (a
// journal), unfinished uploads, issued tokens and a request log live under DATA/.emulator/. The drive
// model (names, paths, quota, placing files) is drive.ts; the flags are args.ts.

import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { listenLoopback } from '../../../src/emulator/kit.ts';
import { parseOneDriveEmulatorArgs } from './args.ts';
import { EmulatorContext } from './context.ts';
import type { EmulatorMetrics } from './metrics.ts';
import type { OneDriveEmulatorOptions } from './options.ts';
import { ROUTES } from './routes/index.ts';
import { ensureTlsFiles } from './tls.ts';

export { ONEDRIVE_EMULATOR_HELP, parseOneDriveEmulatorArgs } from './args.ts';
export type { EmulatorMetrics } from './metrics.ts';
export type { Flavor, OneDriveEmulatorOptions } from './options.ts';

/** Sends each request to the host and path prefix that serves it. */
async function route(ctx: EmulatorContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  ctx.metrics.requests++;
  const host = (req.headers.host ?? '').toLowerCase();
  const url = new URL(req.url ?? '/', `https://${host || 'localhost'}`);
  const started = Date.now();
  res.on('finish', () => {
    const logged = url.pathname.startsWith('/upload/') ? '/upload/…' : url.pathname;
    ctx.log({
      method: req.method,
      host: url.hostname,
      path: logged,
      status: res.statusCode,
      range: req.headers['content-range'],
      bytes: Number(req.headers['content-length'] ?? 0),
      ms: Date.now() - started,
    });
  });
  await ctx.faults.latency();

  const found = ROUTES.find((r) => r.matches(url))!;
  await found.handle(ctx, req, res, url);
}

export class OneDriveEmulator {
  private readonly ctx: EmulatorContext;
  private closeServer: (() => Promise<void>) | null = null;

  constructor(readonly opts: OneDriveEmulatorOptions) {
    this.ctx = new EmulatorContext(opts);
  }

  get metrics(): EmulatorMetrics {
    return this.ctx.metrics;
  }

  get apiBase(): string {
    return this.ctx.apiBase;
  }

  get uploadBase(): string {
    return this.ctx.uploadBase;
  }

  async start(): Promise<Record<string, string>> {
    const { ctx, opts } = this;
    const metaDir = ctx.store.metaDir;
    const tls =
      opts.tlsCert && opts.tlsKey ? { cert: opts.tlsCert, key: opts.tlsKey, ca: opts.tlsCa ?? opts.tlsCert } : await ensureTlsFiles(path.join(metaDir, 'tls'));
    if (opts.requestLog) ctx.logFd = fs.openSync(path.join(metaDir, 'requests.log'), 'a');
    const started = await listenLoopback(
      (req, res) => {
        route(ctx, req, res).catch((err: unknown) => {
          if (!res.headersSent) ctx.json(res, 500, { error: { code: 'generalException', message: String((err as Error)?.message ?? err) } });
          else res.destroy();
        });
      },
      opts.common.port,
      { key: fs.readFileSync(tls.key, 'utf8'), cert: fs.readFileSync(tls.cert, 'utf8') },
    );
    ctx.port = started.port;
    this.closeServer = started.close;
    return {
      GRAPH_BASE_URL: ctx.apiBase,
      ONEDRIVE_AUTHORITY: `https://localhost:${ctx.port}/consumers`,
      NODE_EXTRA_CA_CERTS: path.resolve(tls.ca),
    };
  }

  async close(): Promise<void> {
    await this.closeServer?.();
    if (this.ctx.logFd !== null) fs.closeSync(this.ctx.logFd);
    this.ctx.logFd = null;
    this.ctx.store.close();
  }
}

/** Starts the emulator from CLI-style arguments. */
export async function startOneDriveEmulator(args: string[]): Promise<{ env: Record<string, string>; emulator: OneDriveEmulator; close(): Promise<void> }> {
  const emulator = new OneDriveEmulator(parseOneDriveEmulatorArgs(args));
  const env = await emulator.start();
  return { env, emulator, close: () => emulator.close() };
}
