// One request and its answer, with the envelope every i.mi.com JSON answer shares. Route
// handlers answer through it, so the faults (drop) and the number format apply everywhere.

import type http from 'node:http';
import { sendBody, type Faults } from '../../../src/emulator/kit.ts';
import { CODE_DELETED, CODE_NOT_RETRIABLE, CODE_OK } from '../protocol.ts';

/** JSON with some values written as bare numbers, as the service writes its big ids. */
function jsonWithRawNumbers(value: unknown): string {
  return JSON.stringify(value).replace(/"__raw:(\d+)"/g, '$1');
}

/** A value written as a bare JSON number, however many digits (ids above 2^53). */
export const raw = (digits: string): string => `__raw:${digits}`;

function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export type Headers = Record<string, string | string[]>;

export class Exchange {
  readonly url: URL;
  readonly cookies: Record<string, string>;
  /** The route's RegExp groups, when its path is a RegExp. */
  params: string[] = [];

  constructor(
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
    private readonly faults: Faults,
    baseUrl: string,
  ) {
    this.url = new URL(req.url ?? '/', baseUrl);
    this.cookies = parseCookies(req.headers.cookie);
  }

  get path(): string {
    return this.url.pathname;
  }

  get query(): URLSearchParams {
    return this.url.searchParams;
  }

  json(status: number, body: unknown, headers: Headers = {}): void {
    const text = Buffer.from(typeof body === 'string' ? body : jsonWithRawNumbers(body));
    for (const [k, v] of Object.entries(headers)) this.res.setHeader(k, v);
    sendBody(this.res, this.faults, status, { 'Content-Type': 'application/json;charset=UTF-8' }, text);
  }

  ok(data: unknown, headers?: Headers): void {
    this.json(200, { code: CODE_OK, result: 'ok', description: '成功', data, ts: Date.now() }, headers);
  }

  /** Error answers carry `retriable`, false for 50050 (deleted) and 50202 (reference notes, 2026-11-29). */
  fail(code: number, description: string, status = 200, retriable = code !== CODE_DELETED && code !== CODE_NOT_RETRIABLE): void {
    this.json(status, { code, result: 'error', retriable, description, data: {}, ts: Date.now() });
  }

  /** A plain answer outside the JSON envelope (pages, redirects, storage errors), never faulted. */
  plain(status: number, headers: http.OutgoingHttpHeaders = {}, body?: string): void {
    this.res.writeHead(status, headers);
    this.res.end(body);
  }
}
