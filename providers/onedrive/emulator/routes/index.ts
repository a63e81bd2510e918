// The emulator's route table: which host and path prefix a request goes to. The first entry
// that matches answers. A new group is one module and one line here.

import type http from 'node:http';
import type { EmulatorContext } from '../context.ts';
import { GraphError } from '../errors.ts';
import { handleGraph } from './graph.ts';
import { handleIdentity } from './identity.ts';
import { handleMetrics } from './metrics.ts';
import { handleUpload } from './upload.ts';

export interface Route {
  matches(url: URL): boolean;
  handle(ctx: EmulatorContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL): void | Promise<void>;
}

function nothingHere(message: (url: URL) => string): Route['handle'] {
  return (ctx, _req, res, url) => ctx.sendError(res, new GraphError(404, 'itemNotFound', message(url)));
}

export const ROUTES: Route[] = [
  { matches: (url) => url.pathname === '/__emulator/metrics', handle: handleMetrics },
  // Like the real service, upload URLs live on a host of their own (127.0.0.1), the API on localhost.
  { matches: (url) => url.pathname.startsWith('/upload/') && url.hostname === '127.0.0.1', handle: handleUpload },
  { matches: (url) => url.pathname.startsWith('/upload/'), handle: nothingHere(() => 'Upload URLs are served on the upload host only.') },
  { matches: (url) => url.hostname !== 'localhost', handle: nothingHere((url) => `Nothing is served at ${url.hostname}${url.pathname}.`) },
  { matches: (url) => url.pathname.startsWith('/v1.0/'), handle: handleGraph },
  { matches: () => true, handle: handleIdentity },
];
