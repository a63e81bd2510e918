// `serve`: a read-only live page of a batch (or of one run's state file) on 127.0.0.1. It reads
// the state stores on every request and writes nothing. Only the batch page, its refreshable
// body, a JSON status and the accounts' report pages are served; no secret is on any of them
// (the views never select sessions or tokens) and a strict CSP keeps the page self-contained.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { batchView } from '../batch/view.ts';
import { openBatch, samplesFor, listAccounts } from '../batch/store.ts';
import { batchBody, batchPage } from '../report/batch.ts';
import { writeHtml } from '../report/html.ts';
import { summarize } from '../report/summary.ts';
import { openState } from '../../state/db.ts';
import { printable } from '../lib/log.ts';
import { redact, registerSecret } from '../lib/redact.ts';
import type { Queue } from '../queue/db.ts';

const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'";

async function singleRunPage(file: string): Promise<string> {
  const db = openState(file, { readonly: true });
  try {
    let out = '';
    await writeHtml(db, summarize(db), (s) => (out += s), { title: 'Migration (live)', open: null });
    return out.replace('</body>', `<script>setTimeout(()=>location.reload(),5000)</script></body>`);
  } finally {
    db.close();
  }
}

/** Queue mode: the batch page, its body, the JSON status and each account's report from its snapshot. */
async function queuePage(q: Queue, url: string, pathname: string): Promise<{ type: string; body: string } | null> {
  const { queueBatchView, queueSamples, accountSnapshot } = await import('../queue/view.ts');
  if (pathname === '/' || pathname === '/fragment') {
    const [view, samples] = await Promise.all([queueBatchView(q, url), queueSamples(q)]);
    const opts = { live: true, linkReports: true };
    return { type: 'text/html; charset=utf-8', body: pathname === '/' ? batchPage(view, samples, opts) : batchBody(view, samples, opts) };
  }
  if (pathname === '/api/status') return { type: 'application/json', body: JSON.stringify(await queueBatchView(q, url)) };
  const m = /^\/accounts\/([^/]+)\/report\.html$/.exec(pathname);
  const snap = m ? await accountSnapshot(q, decodeURIComponent(m[1]!)) : null;
  if (!snap) return null;
  try {
    let out = '';
    await writeHtml(snap.db, summarize(snap.db), (s) => (out += s), { title: `Migration report: ${snap.account}`, open: null });
    return { type: 'text/html; charset=utf-8', body: out };
  } finally {
    snap.db.close();
  }
}

/** Serves a batch directory or state file (`state`), or with `queue`, a queue-mode batch's database. */
export function startDashboard(state: string, port: number, queue?: { q: Queue; url: string }): Promise<http.Server> {
  const isBatch = !queue && fs.existsSync(path.join(state, 'batch.db'));
  const server = http.createServer(async (req, res) => {
    const send = (code: number, type: string, body: string | Buffer) => {
      res.writeHead(code, {
        'Content-Type': type,
        'Cache-Control': 'no-store',
        'Content-Security-Policy': CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    // Only names that mean this machine: a page from elsewhere cannot reach it through DNS rebinding.
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) return send(403, 'text/plain', 'forbidden');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'read-only');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    try {
      if (queue) {
        const page = await queuePage(queue.q, queue.url, url.pathname);
        return page ? send(200, page.type, page.body) : send(404, 'text/plain', 'not found');
      }
      if (!isBatch) {
        if (url.pathname === '/') return send(200, 'text/html; charset=utf-8', await singleRunPage(state));
        return send(404, 'text/plain', 'not found');
      }
      if (url.pathname === '/' || url.pathname === '/fragment') {
        const view = batchView(state);
        const db = openBatch(state, { readonly: true });
        const samples = samplesFor(db);
        db.close();
        const opts = { live: true, linkReports: true };
        return send(200, 'text/html; charset=utf-8', url.pathname === '/' ? batchPage(view, samples, opts) : batchBody(view, samples, opts));
      }
      if (url.pathname === '/api/status') return send(200, 'application/json', JSON.stringify(batchView(state)));
      const m = /^\/accounts\/([^/]+)\/report\.html$/.exec(url.pathname);
      if (m) {
        const db = openBatch(state, { readonly: true });
        const known = listAccounts(db).some((a) => a.slug === decodeURIComponent(m[1]!));
        db.close();
        const file = path.join(state, 'accounts', decodeURIComponent(m[1]!), 'report.html');
        if (known && fs.existsSync(file)) return send(200, 'text/html; charset=utf-8', fs.readFileSync(file));
      }
      return send(404, 'text/plain', 'not found');
    } catch (err) {
      return send(500, 'text/plain', `cannot read the state: ${redact((err as Error).message.split('\n')[0] ?? '')}`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

export async function serveCommand(o: { state: string; port: number; queue?: string }): Promise<number> {
  if (o.queue !== undefined) return serveQueue(o.queue, o.port);
  if (!fs.existsSync(o.state)) {
    process.stderr.write(`error: nothing at ${o.state} (give --state DIR of a batch, or a state file)\n`);
    return 2;
  }
  return serveUntilStopped(await startDashboard(o.state, o.port), o.state);
}

async function serveQueue(url: string, port: number): Promise<number> {
  const { openQueue, safeUrl } = await import('../queue/db.ts');
  registerSecret(passwordOf(url));
  let q: Queue;
  try {
    q = await openQueue(url, { migrate: false, max: 4 });
  } catch (err) {
    process.stderr.write(printable(`error: ${(err as Error).message}`) + '\n');
    return 2;
  }
  try {
    return await serveUntilStopped(await startDashboard('', port, { q, url }), safeUrl(url));
  } finally {
    await q.end();
  }
}

async function serveUntilStopped(server: http.Server, what: string): Promise<number> {
  const addr = server.address() as AddressInfo;
  process.stdout.write(`DASHBOARD_URL=http://127.0.0.1:${addr.port}/\n`);
  process.stderr.write(printable(`serving ${what} read-only at http://127.0.0.1:${addr.port}/ (Ctrl-C to stop)`) + '\n');
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

export function passwordOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}
