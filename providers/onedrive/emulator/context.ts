// Everything a route handler may use: the options, the store and drive model, the counters, the
// faults and the answer helpers. Built once per emulator by server.ts.

import fs from 'node:fs';
import type http from 'node:http';
import { Faults, sendBody } from '../../../src/emulator/kit.ts';
import { Drive } from './drive.ts';
import { GraphError } from './errors.ts';
import { nowIso, rid } from './ids.ts';
import { itemJson } from './json.ts';
import { newMetrics, type EmulatorMetrics } from './metrics.ts';
import type { OneDriveEmulatorOptions } from './options.ts';
import { Store, type ItemMeta } from './store.ts';

export interface DeviceCode {
  deviceCode: string;
  userCode: string;
  clientId: string;
  tenant: string;
  scope: string;
  issuedAt: number;
  expiresAt: number;
}

export class EmulatorContext {
  readonly faults: Faults;
  readonly metrics: EmulatorMetrics = newMetrics();
  readonly store: Store;
  readonly drive: Drive;
  /** Device-code sign-ins in progress (in memory: a restart ends them, as a sign-in would time out). */
  readonly deviceCodes = new Map<string, DeviceCode>();
  /** Set once the server listens. */
  port = 0;
  logFd: number | null = null;

  constructor(readonly opts: OneDriveEmulatorOptions) {
    this.faults = new Faults(opts.common);
    this.store = new Store(opts.common.data);
    this.drive = new Drive(opts, this.store, this.metrics);
  }

  get apiBase(): string {
    return `https://localhost:${this.port}/v1.0`;
  }

  get uploadBase(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  itemJson(m: ItemMeta): Record<string, unknown> {
    return itemJson(this.drive, this.opts, m);
  }

  json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const buf = Buffer.from(JSON.stringify(body));
    sendBody(res, this.faults, status, { 'Content-Type': 'application/json', ...headers }, buf);
  }

  count(route: string, status?: number): void {
    this.metrics.byRoute[route] = (this.metrics.byRoute[route] ?? 0) + 1;
    if (status) this.metrics.byStatus[String(status)] = (this.metrics.byStatus[String(status)] ?? 0) + 1;
  }

  log(entry: Record<string, unknown>): void {
    if (this.logFd !== null) fs.writeSync(this.logFd, `${JSON.stringify({ t: nowIso(), ...entry })}\n`);
  }

  fault(kind: string): void {
    this.metrics.faults[kind] = (this.metrics.faults[kind] ?? 0) + 1;
  }

  throttled(): GraphError {
    return new GraphError(429, 'activityLimitReached', 'The request has been throttled.', { 'Retry-After': String(this.opts.retryAfterS) });
  }

  /** 429 or 5xx before the request is served (throttling and outages). */
  injectedFailure(): GraphError | null {
    if (this.faults.roll('429')) {
      this.fault('429');
      return this.throttled();
    }
    if (this.faults.roll('5xx')) {
      const s = this.faults.random() < 0.5 ? 503 : 500;
      this.fault(String(s));
      return new GraphError(
        s,
        s === 503 ? 'serviceNotAvailable' : 'generalException',
        'The service is unavailable.',
        s === 503 ? { 'Retry-After': String(this.opts.retryAfterS) } : {},
      );
    }
    return null;
  }

  sendError(res: http.ServerResponse, e: GraphError): void {
    const error: Record<string, unknown> = {
      code: e.code,
      message: e.message,
      innerError: { date: nowIso(), 'request-id': rid(8), 'client-request-id': rid(8) },
    };
    if (e.detail) error.innererror = { code: e.detail };
    this.json(res, e.status, { error }, e.headers);
  }
}
