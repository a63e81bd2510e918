// The client's requests to i.mi.com and its download hosts, on node:http(s) with kept-alive
// connections. Not fetch(): every item takes three requests (the storage link, the JSONP, the
// file), and fetch's web streams and per-request bookkeeping cost about 0.6 ms of CPU more per
// request, which at 100,000 items is minutes. Redirects are never followed (the caller reads them).

import http from 'node:http';
import https from 'node:https';

const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

export interface Answer {
  status: number;
  /** The body, as it comes: read it, or discard() it so the connection can be reused. */
  body: http.IncomingMessage;
  /** One header's value (several joined with ", "), or null. */
  header(name: string): string | null;
  /** Every Set-Cookie line. */
  setCookies(): string[];
  text(): Promise<string>;
  /** Reads and drops the rest of the body. */
  discard(): Promise<void>;
}

export interface RequestOptions {
  method?: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** Aborts the request, and the body while it is read. */
  signal?: AbortSignal;
}

/** Sends one request; resolves when the answer's head has come. */
export function request(url: URL, o: RequestOptions): Promise<Answer> {
  const lib = url.protocol === 'https:' ? https : http;
  const agent = url.protocol === 'https:' ? agents['https:'] : agents['http:'];
  const headers = o.body === undefined ? o.headers : { ...o.headers, 'Content-Length': String(Buffer.byteLength(o.body)) };
  return new Promise<Answer>((resolve, reject) => {
    let req: http.ClientRequest;
    try {
      req = lib.request(url, { method: o.method ?? 'GET', headers, agent, signal: o.signal }, (res) => resolve(answer(res)));
    } catch (err) {
      reject(err);
      return;
    }
    req.once('error', reject);
    req.end(o.body);
  });
}

function answer(res: http.IncomingMessage): Answer {
  // An error with nobody reading yet must not bring the process down: the reader hears of it.
  res.on('error', () => undefined);
  const text = (): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      if (res.destroyed && !res.complete) return reject(new Error('the answer was cut short'));
      let out = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (out += d));
      res.once('end', () => resolve(out));
      res.once('error', reject);
      // A connection closed before the announced length came: Node says 'aborted', then 'close'.
      res.once('close', () => (res.complete ? undefined : reject(new Error('the answer was cut short'))));
    });
  return {
    status: res.statusCode ?? 0,
    body: res,
    header: (name) => {
      const v = res.headers[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
    },
    setCookies: () => res.headers['set-cookie'] ?? [],
    text,
    discard: () => text().then(() => undefined),
  };
}
