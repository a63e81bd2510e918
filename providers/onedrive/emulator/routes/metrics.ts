import type http from 'node:http';
import type { EmulatorContext } from '../context.ts';

/** /__emulator/metrics on either host, without auth: the counters, for tests and the chaos suite. */
export function handleMetrics(ctx: EmulatorContext, _req: http.IncomingMessage, res: http.ServerResponse): void {
  ctx.count('metrics', 200);
  const buf = Buffer.from(JSON.stringify(ctx.metrics));
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': buf.length });
  res.end(buf);
}
