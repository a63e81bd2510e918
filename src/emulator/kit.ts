// Shared plumbing for the provider emulators: the common fault flags, a seeded random source,
// and a loopback HTTP(S) server. It holds no protocol knowledge: each emulator speaks its own
// service, and none of them reuses a client's code (an emulator built from the client would
// agree with every mistake the client makes).

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { Readable } from 'node:stream';

export interface CommonFlags {
  port: number;
  data: string;
  fault429: number;
  fault5xx: number;
  faultDrop: number;
  faultCorrupt: number;
  latencyMs: number;
  /** Seconds a session (upload session, sign-in) lives; 0 means the service's own default. */
  sessionTtl: number;
  randomSeed: number;
}

export const COMMON_FLAG_HELP = `Common emulator flags:
  --port N             port on 127.0.0.1 (0 picks a free one)
  --data DIR           where the emulator keeps what it stores
  --fault-429 RATE     answer this share of requests 429 with Retry-After (0..1)
  --fault-5xx RATE     answer this share of requests 500/503 (0..1)
  --fault-drop RATE    cut the connection mid-body for this share of requests (0..1)
  --fault-corrupt RATE change bytes of this share of downloads, keeping the length (0..1)
  --latency-ms N       delay every request by N ms
  --session-ttl SEC    lifetime of sessions (upload sessions, sign-in tokens)
  --random-seed N      seed for every random choice, so a run can be repeated`;

type ExtraSpec = Record<string, { type: 'string' | 'boolean'; default?: string | boolean; multiple?: boolean }>;

/** Parses the common flags plus an emulator's own. Unknown flags are an error, as with any CLI. */
export function parseEmulatorArgs<E extends ExtraSpec>(
  args: string[],
  extra: E,
): {
  common: CommonFlags;
  extra: { [K in keyof E]: E[K]['multiple'] extends true ? string[] : E[K]['type'] extends 'boolean' ? boolean : string | undefined };
} {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string', default: '0' },
      data: { type: 'string' },
      'fault-429': { type: 'string', default: '0' },
      'fault-5xx': { type: 'string', default: '0' },
      'fault-drop': { type: 'string', default: '0' },
      'fault-corrupt': { type: 'string', default: '0' },
      'latency-ms': { type: 'string', default: '0' },
      'session-ttl': { type: 'string', default: '0' },
      'random-seed': { type: 'string', default: '1' },
      ...(extra as Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>),
    },
  });
  const v = values as Record<string, unknown>;
  const num = (name: string, min: number, max: number): number => {
    const n = Number(v[name]);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got ${String(v[name])}`);
    return n;
  };
  if (!v.data) throw new Error('--data DIR is required');
  const common: CommonFlags = {
    port: num('port', 0, 65535),
    data: String(v.data),
    fault429: num('fault-429', 0, 1),
    fault5xx: num('fault-5xx', 0, 1),
    faultDrop: num('fault-drop', 0, 1),
    faultCorrupt: num('fault-corrupt', 0, 1),
    latencyMs: num('latency-ms', 0, 600_000),
    sessionTtl: num('session-ttl', 0, 10 * 365 * 86400),
    randomSeed: num('random-seed', 0, 2 ** 32 - 1),
  };
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(extra)) out[key] = v[key];
  return { common, extra: out as never };
}

/** mulberry32: small, fast and repeatable, which is all fault injection needs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FaultKind = '429' | '5xx' | 'drop' | 'corrupt';

/** Faults injected so far by every emulator in this process, by kind: the chaos suite reports them. */
export const injectedFaults: Record<string, number> = {};

export function countInjectedFault(kind: string): void {
  injectedFaults[kind] = (injectedFaults[kind] ?? 0) + 1;
}

export class Faults {
  readonly random: () => number;
  constructor(readonly flags: CommonFlags) {
    this.random = seededRandom(flags.randomSeed);
  }
  /** True when this request should get the fault. Rolls once per call. */
  roll(kind: FaultKind): boolean {
    const rate = { '429': this.flags.fault429, '5xx': this.flags.fault5xx, drop: this.flags.faultDrop, corrupt: this.flags.faultCorrupt }[kind];
    const hit = rate > 0 && this.random() < rate;
    if (hit) countInjectedFault(kind);
    return hit;
  }
  async latency(): Promise<void> {
    if (this.flags.latencyMs > 0) await new Promise((r) => setTimeout(r, this.flags.latencyMs));
  }
  /** Flips one byte per 64 KiB (at least one) at seeded positions: same length, different bytes. */
  corrupt(buf: Buffer): Buffer {
    if (buf.length === 0) return buf;
    const out = Buffer.from(buf);
    const flips = Math.max(1, Math.floor(out.length / 65536));
    for (let i = 0; i < flips; i++) {
      const at = Math.floor(this.random() * out.length);
      out[at] = out[at]! ^ 0xff;
    }
    return out;
  }
}

/**
 * Sends a body, honouring the drop and corrupt faults: a dropped answer announces its full
 * Content-Length, sends part of the bytes and cuts the connection; a corrupt one keeps the
 * length and changes bytes. Only bodies a client downloads should pass `corruptible`.
 */
export function sendBody(
  res: http.ServerResponse,
  faults: Faults,
  status: number,
  headers: Record<string, string | number>,
  body: Buffer,
  opts: { corruptible?: boolean; droppable?: boolean } = {},
): void {
  let bytes = body;
  if (opts.corruptible && faults.roll('corrupt')) bytes = faults.corrupt(body);
  res.writeHead(status, { ...headers, 'Content-Length': bytes.length });
  if (opts.droppable !== false && bytes.length > 1 && faults.roll('drop')) {
    res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => res.socket?.destroy());
    return;
  }
  res.end(bytes);
}

/** Streams a file-sized body without holding it whole, with the same fault rules as sendBody. */
export function sendStream(
  res: http.ServerResponse,
  faults: Faults,
  status: number,
  headers: Record<string, string | number>,
  body: Readable,
  length: number,
  opts: { corruptible?: boolean; droppable?: boolean } = {},
): void {
  const corrupt = opts.corruptible && faults.roll('corrupt');
  const dropAt = opts.droppable !== false && length > 1 && faults.roll('drop') ? Math.floor(length / 2) : -1;
  res.writeHead(status, { ...headers, 'Content-Length': length });
  let sent = 0;
  let corrupted = false;
  body.on('data', (chunk: Buffer) => {
    let c = chunk;
    if (corrupt && !corrupted && c.length > 0) {
      c = faults.corrupt(c);
      corrupted = true;
    }
    if (dropAt >= 0 && sent + c.length >= dropAt) {
      body.destroy();
      res.write(c.subarray(0, dropAt - sent), () => res.socket?.destroy());
      return;
    }
    sent += c.length;
    if (!res.write(c)) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  });
  body.on('end', () => res.end());
  body.on('error', () => res.socket?.destroy());
}

/** Reads a request body whole; for small JSON or form bodies only (uploads stream instead). */
export async function readBody(req: http.IncomingMessage, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw new Error('request body too large');
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

export interface StartedServer {
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 only: emulators never answer any other address. */
export async function listenLoopback(handler: http.RequestListener, port: number, tls?: { key: string; cert: string }): Promise<StartedServer> {
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** Prints the KEY=VALUE lines that point the tool at an emulator. */
export function printEnv(env: Record<string, string>): void {
  for (const [k, v] of Object.entries(env)) process.stdout.write(`${k}=${v}\n`);
}
