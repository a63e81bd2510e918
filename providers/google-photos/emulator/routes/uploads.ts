// POST /v1/uploads: the raw protocol (the body is the file; the answer is an upload token) and
// the resumable one (start, then upload/query/cancel/finalize on the session URL, in chunks of
// the granularity). The token names the bytes for batchCreate.

import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { sendBody } from '../../../../src/emulator/kit.ts';
import * as P from '../../protocol.ts';
import { bad, HttpError } from '../errors.ts';
import { b64url, type SessionRow } from '../store.ts';
import type { ApiCall, Route } from './route.ts';

/** Streams the request body into `file`; the bytes written, or -(n + 1) when the client went away after n. */
function receive(req: http.IncomingMessage, file: string, flags: 'w' | 'a'): Promise<number> {
  return new Promise((resolve) => {
    const out = fs.createWriteStream(file, { flags });
    let n = 0;
    let aborted = false;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (!out.write(c)) {
        req.pause();
        out.once('drain', () => req.resume());
      }
    });
    req.on('aborted', () => (aborted = true));
    req.on('error', () => (aborted = true));
    req.on('close', () => {
      if (!req.complete) aborted = true;
      out.end(() => resolve(aborted ? -(n + 1) : n));
    });
  });
}

/** SHA-1 of a file, hex. */
export function fileSha1Hex(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash('sha1');
    fs.createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

async function rawUpload({ ctx, req, res, caller }: ApiCall): Promise<void> {
  const tmp = path.join(ctx.store.own, 'uploads', `raw-${b64url(12)}.part`);
  const n = await receive(req, tmp, 'w');
  ctx.stats.uploadBytes += n < 0 ? -n - 1 : n;
  if (n < 0) {
    fs.rmSync(tmp, { force: true });
    return; // the client went away: nothing was uploaded
  }
  const declared = req.headers['content-length'] ? Number(req.headers['content-length']) : n;
  if (declared !== n) {
    fs.rmSync(tmp, { force: true });
    throw bad('The request body was shorter than its Content-Length.');
  }
  const token = ctx.store.newUploadToken(caller.owner, tmp, n, await fileSha1Hex(tmp));
  sendBody(res, ctx.faults, 200, { 'Content-Type': 'text/plain; charset=UTF-8' }, Buffer.from(token));
}

function startSession({ ctx, req, res, caller }: ApiCall): void {
  const size = Number(req.headers[P.H_RAW_SIZE]);
  if (!Number.isInteger(size) || size < 0) throw bad('X-Goog-Upload-Raw-Size is required with a resumable upload.');
  const id = b64url(24);
  ctx.store.db
    .prepare('INSERT INTO sessions(id, owner, size, received, mime, file_name, created_at, status) VALUES (?, ?, ?, 0, ?, ?, ?, ?)')
    .run(id, caller.owner, size, String(req.headers[P.H_CONTENT_TYPE] ?? '') || null, String(req.headers[P.H_FILE_NAME] ?? '') || null, Date.now(), 'active');
  fs.writeFileSync(ctx.store.sessionFile(id), '');
  req.resume();
  sendBody(
    res,
    ctx.faults,
    200,
    {
      'X-Goog-Upload-URL': `${ctx.base}${P.PATH_UPLOADS}?upload_id=${id}&upload_protocol=resumable`,
      'X-Goog-Upload-Chunk-Granularity': String(ctx.opt.granularity),
      'X-Goog-Upload-Status': 'active',
      'Content-Type': 'text/plain; charset=UTF-8',
    },
    Buffer.alloc(0),
  );
}

const uploadState = (st: string, received: number) => ({ 'X-Goog-Upload-Status': st, 'X-Goog-Upload-Size-Received': String(received) });

/** Appends one chunk at the session's offset; the bytes the session then holds. Null when the client went away. */
async function appendChunk({ ctx, req }: ApiCall, s: SessionRow, finalize: boolean): Promise<number | null> {
  const file = ctx.store.sessionFile(s.id);
  const offset = Number(req.headers[P.H_OFFSET]);
  if (offset !== s.received) {
    req.resume();
    throw new HttpError(
      400,
      `X-Goog-Upload-Offset ${String(req.headers[P.H_OFFSET])} does not match the ${s.received} bytes received.`,
      'INVALID_ARGUMENT',
      uploadState('active', s.received),
    );
  }
  const n = await receive(req, file, 'a');
  const got = n < 0 ? -n - 1 : n;
  ctx.stats.uploadBytes += got;
  const declared = req.headers['content-length'] ? Number(req.headers['content-length']) : got;
  let received = s.received + got;
  if (received > s.size) {
    received = s.received;
    fs.truncateSync(file, received);
    ctx.store.setSessionReceived(s.id, received);
    throw new HttpError(400, 'More bytes than X-Goog-Upload-Raw-Size.', 'INVALID_ARGUMENT', uploadState('active', received));
  }
  if (n < 0 || declared !== got) {
    // A cut chunk keeps what arrived, down to the granularity.
    received = s.received + Math.floor(got / ctx.opt.granularity) * ctx.opt.granularity;
    fs.truncateSync(file, received);
    ctx.store.setSessionReceived(s.id, received);
    if (n < 0) return null;
    throw new HttpError(400, 'The chunk was shorter than its Content-Length.', 'INVALID_ARGUMENT', uploadState('active', received));
  }
  if (!finalize && got % ctx.opt.granularity !== 0) {
    fs.truncateSync(file, s.received);
    throw new HttpError(
      400,
      `Every chunk but the last must be a multiple of ${ctx.opt.granularity} bytes.`,
      'INVALID_ARGUMENT',
      uploadState('active', s.received),
    );
  }
  ctx.store.setSessionReceived(s.id, received);
  return received;
}

/** The session's file becomes an upload token. X-Goog-Hash is not checked: no Google document defines it for this API and nothing public shows a refusal. */
async function finalizeSession({ ctx, res, caller }: ApiCall, s: SessionRow, received: number): Promise<void> {
  if (received !== s.size) throw new HttpError(400, `Finalized with ${received} of ${s.size} bytes.`, 'INVALID_ARGUMENT', uploadState('active', received));
  const file = ctx.store.sessionFile(s.id);
  const token = ctx.store.newUploadToken(caller.owner, file, received, await fileSha1Hex(file));
  ctx.store.db.prepare("UPDATE sessions SET status = 'final', token = ? WHERE id = ?").run(token, s.id);
  sendBody(res, ctx.faults, 200, { ...uploadState('final', received), 'Content-Type': 'text/plain; charset=UTF-8' }, Buffer.from(token));
}

async function sessionRequest(call: ApiCall, id: string): Promise<void> {
  const { ctx, req, res, caller } = call;
  const s = ctx.store.session(id);
  if (!s || s.owner !== caller.owner) throw new HttpError(404, 'No upload session with this id.', 'NOT_FOUND');
  if (s.status === 'active' && Date.now() - s.created_at > ctx.sessionTtlMs) {
    ctx.store.cancelSession(id);
    s.status = 'cancelled';
  }
  const command = String(req.headers[P.H_COMMAND] ?? '')
    .toLowerCase()
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (command.includes('query')) {
    req.resume();
    return sendBody(res, ctx.faults, 200, uploadState(s.status, s.received), Buffer.alloc(0));
  }
  if (command.includes('cancel')) {
    req.resume();
    ctx.store.cancelSession(id);
    return sendBody(res, ctx.faults, 200, uploadState('cancelled', s.received), Buffer.alloc(0));
  }
  const upload = command.includes('upload');
  const finalize = command.includes('finalize');
  if (!upload && !finalize) throw bad('X-Goog-Upload-Command must be upload, finalize, query or cancel.');
  if (s.status !== 'active') {
    req.resume();
    throw new HttpError(400, `The upload session is ${s.status}.`, 'FAILED_PRECONDITION', uploadState(s.status, s.received));
  }
  let received = s.received;
  if (upload) {
    const after = await appendChunk(call, s, finalize);
    if (after === null) return;
    received = after;
  } else req.resume();
  if (!finalize) return sendBody(res, ctx.faults, 200, uploadState('active', received), Buffer.alloc(0));
  await finalizeSession(call, s, received);
}

async function uploads(call: ApiCall): Promise<void> {
  const { req, url } = call;
  const id = url.searchParams.get('upload_id');
  if (id) return sessionRequest(call, id);
  const protocol = String(req.headers[P.H_PROTOCOL] ?? '').toLowerCase();
  const command = String(req.headers[P.H_COMMAND] ?? '').toLowerCase();
  if (protocol === 'resumable' && command.includes('start')) return startSession(call);
  if (protocol === 'raw') return rawUpload(call);
  throw bad('X-Goog-Upload-Protocol must be raw, or resumable with X-Goog-Upload-Command: start.');
}

export const uploadRoutes: Array<Route<ApiCall>> = [{ method: 'POST', path: P.PATH_UPLOADS, stat: 'uploads', handle: uploads }];
