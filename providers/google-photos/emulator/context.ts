// Everything a route handler may use: the options, the store, the request counters, the
// faults, the quota and the JSON forms of media items and albums. Built once by server.ts.

import crypto from 'node:crypto';
import type http from 'node:http';
import { Faults, sendBody } from '../../../src/emulator/kit.ts';
import * as P from '../protocol.ts';
import type { HttpError } from './errors.ts';
import type { Options } from './options.ts';
import { type MediaRow, Store } from './store.ts';

export type QuotaState = { date: string; day: number; used: Record<string, number> };

/** Who called: the OAuth client (every token of one client shares its items) and its scopes. */
export interface Caller {
  owner: string;
  scopes: Set<string>;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The Pacific-time calendar date, as Google resets its daily quota. */
const PACIFIC = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Los_Angeles', year: 'numeric', month: '2-digit', day: '2-digit' });
function pacificDate(ms = Date.now()): string {
  return PACIFIC.format(ms);
}

function newStats() {
  return {
    preexistingAnswered: 0,
    batchCreateStarted: 0,
    api: 0,
    uploads: 0,
    batchCreate: 0,
    batchGet: 0,
    albums: 0,
    list: 0,
    other: 0,
    media: 0,
    quotaRefused: 0,
    writeLimited: 0,
    faults: 0,
    /** Request body bytes taken in by the upload routes (raw uploads and session chunks), for tests. */
    uploadBytes: 0,
  };
}

export type Stats = ReturnType<typeof newStats>;

export class EmulatorContext {
  readonly faults: Faults;
  readonly store: Store;
  readonly stats: Stats = newStats();
  readonly urlSecret: string;
  readonly sessionTtlMs: number;
  readonly accessTtlMs: number;
  /** Per owner: when its writes of the last minute came. */
  readonly writeStamps = new Map<string, number[]>();
  /** Owners with a batchCreate in progress (Google refuses a second at once). */
  readonly committing = new Set<string>();
  /** http://127.0.0.1:PORT, once the server listens. */
  base = '';

  constructor(readonly opt: Options) {
    this.store = new Store(opt.common.data);
    this.urlSecret = this.store.urlSecret();
    this.store.dropExpiredUploads();
    this.faults = new Faults(opt.common);
    this.sessionTtlMs = opt.common.sessionTtl > 0 ? opt.common.sessionTtl * 1000 : 7 * 86400 * 1000;
    this.accessTtlMs = opt.common.sessionTtl > 0 ? opt.common.sessionTtl * 1000 : 3600 * 1000;
  }

  /** Today's quota use; a new Pacific day starts from nothing. */
  quota(): QuotaState {
    const q = this.store.kvGet<QuotaState>('quota', { date: pacificDate(), day: 1, used: {} });
    if (q.date !== pacificDate()) return { date: pacificDate(), day: q.day + 1, used: {} };
    return q;
  }

  json(res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
    sendBody(res, this.faults, status, { 'Content-Type': 'application/json; charset=UTF-8', ...headers }, Buffer.from(JSON.stringify(value)));
  }

  jsonError(res: http.ServerResponse, e: HttpError): void {
    const body = Buffer.from(JSON.stringify({ error: { code: e.status, message: e.message, status: e.grpc, ...(e.details ? { details: e.details } : {}) } }));
    sendBody(res, this.faults, e.status, { 'Content-Type': 'application/json; charset=UTF-8', ...e.headers }, body, { droppable: false });
  }

  /** The signature of a baseUrl: the item id and expiry under the emulator's secret. */
  urlSignature(id: string, exp: number | string): string {
    return crypto.createHmac('sha256', this.urlSecret).update(`${id}.${exp}`).digest('base64url').slice(0, 32);
  }

  baseUrlFor(id: string): string {
    const exp = Date.now() + P.BASE_URL_TTL_MS;
    return `${this.base}/lr/${id}/${exp}.${this.urlSignature(id, exp)}`;
  }

  videoStatus(m: MediaRow): 'PROCESSING' | 'READY' | 'FAILED' {
    return Date.now() - m.created_at < this.opt.videoProcessingMs ? 'PROCESSING' : m.playable ? 'READY' : 'FAILED';
  }

  mediaJson(m: MediaRow): Record<string, unknown> {
    const meta: Record<string, unknown> = { creationTime: m.creation_time ?? iso(m.created_at) };
    const status = m.kind === 'video' ? this.videoStatus(m) : 'READY';
    if (m.width != null && status === 'READY') meta.width = String(m.width);
    if (m.height != null && status === 'READY') meta.height = String(m.height);
    if (m.kind === 'image')
      meta.photo = { ...(m.camera_make ? { cameraMake: m.camera_make } : {}), ...(m.camera_model ? { cameraModel: m.camera_model } : {}) };
    else meta.video = { ...(status === 'READY' ? { fps: 30 } : {}), status };
    return {
      id: m.id,
      ...(m.description ? { description: m.description } : {}),
      productUrl: `https://photos.google.com/lr/photo/${m.id}`,
      baseUrl: this.baseUrlFor(m.id),
      mimeType: m.mime,
      mediaMetadata: meta,
      filename: m.filename,
    };
  }

  albumJson(a: { id: string; title: string }): Record<string, unknown> {
    const n = this.store.albumCount(a.id);
    return { id: a.id, title: a.title, productUrl: `https://photos.google.com/lr/album/${a.id}`, isWriteable: true, mediaItemsCount: String(n) };
  }

  /** The caller's own item; another app's is invisible (and so is a missing one). */
  ownItem(c: Caller, id: string): MediaRow | undefined {
    const m = this.store.mediaItem(id);
    return m && m.owner === c.owner ? m : undefined;
  }
}

/** A page of rows by pageSize and pageToken (the offset, base64url), with the next token if more remain. */
export function page<T>(rows: T[], url: URL, max: number, dflt: number): { slice: T[]; next: string | undefined } {
  const size = Math.min(max, Math.max(1, Number(url.searchParams.get('pageSize') ?? dflt) || dflt));
  const token = url.searchParams.get('pageToken');
  const start = Number(token ? Buffer.from(token, 'base64url').toString() : '0') || 0;
  const slice = rows.slice(start, start + size);
  const next = start + size < rows.length ? Buffer.from(String(start + size)).toString('base64url') : undefined;
  return { slice, next };
}
