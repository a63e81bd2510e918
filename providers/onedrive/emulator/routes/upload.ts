// Upload sessions: createUploadSession on the Graph host hands out a pre-authenticated URL on
// the upload host; fragments are PUT there in order (320 KiB multiples, under 60 MiB), GET
// tells what is missing, DELETE cancels. The last fragment creates the file.

import fs from 'node:fs';
import type http from 'node:http';
import { readBody } from '../../../../src/emulator/kit.ts';
import type { EmulatorContext } from '../context.ts';
import { GraphError } from '../errors.ts';
import { nowIso, rid } from '../ids.ts';
import { pathMetrics } from '../metrics.ts';
import { DEFAULT_SESSION_TTL_S, FRAGMENT_MAX, FRAGMENT_MULTIPLE } from '../options.ts';
import type { UploadSession } from '../store.ts';
import type { ItemAction, ItemCall } from './call.ts';
import { checkDates } from './items.ts';

const nameTaken = () => new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists.');
const overlap = () => new GraphError(416, 'fragmentOverlap', 'The uploaded fragment overlaps with data that has already been received.');

function sessionTtlMs(ctx: EmulatorContext): number {
  return (ctx.opts.common.sessionTtl || DEFAULT_SESSION_TTL_S) * 1000;
}

/** Business checks the name when the session is created; a folder in the way is a conflict in either flavor. */
function businessChecks(ctx: EmulatorContext, drive: string, targetPath: string, cb: string): void {
  const existing = ctx.drive.lookup(drive, targetPath);
  if (existing && (cb === 'fail' || existing.folder)) throw nameTaken();
  const open = [...ctx.store.sessions.values()].find(
    (o) => o.drive === drive && o.path.toLowerCase() === targetPath.toLowerCase() && Date.now() <= o.expiresAt,
  );
  if (open) throw new GraphError(409, 'nameAlreadyExists', 'A file with the same name is currently being uploaded. Change the filename and try to save again.');
}

/** fileSize is a Personal property: there a file that cannot fit is refused before any byte moves. */
function quotaChecks(ctx: EmulatorContext, drive: string, declared: number | null): void {
  const used = ctx.drive.used(drive);
  if (declared !== null && used + declared > ctx.drive.quotaTotal())
    throw new GraphError(507, 'quotaLimitReached', 'Insufficient Storage: the file does not fit.');
  if (used >= ctx.drive.quotaTotal()) throw new GraphError(507, 'quotaLimitReached', 'Insufficient Storage: the drive is full.');
}

async function createUploadSession({ ctx, req, res, drive, rel, targetPath }: ItemCall): Promise<void> {
  const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { item?: Record<string, unknown>; deferCommit?: boolean };
  const item = body.item ?? {};
  if (!rel) throw new GraphError(400, 'invalidRequest', 'createUploadSession needs a file path.');
  ctx.drive.validatePath(drive, targetPath);
  const name = targetPath.slice(targetPath.lastIndexOf('/') + 1);
  if (typeof item.name === 'string' && item.name !== name) throw new GraphError(400, 'invalidRequest', 'item.name does not match the name in the path.');
  const cb = (item['@microsoft.graph.conflictBehavior'] as string | undefined) ?? 'replace';
  if (!['fail', 'replace', 'rename'].includes(cb)) throw new GraphError(400, 'invalidRequest', `Invalid conflictBehavior ${cb}.`);
  const fsi = (item.fileSystemInfo ?? {}) as { createdDateTime?: string; lastModifiedDateTime?: string };
  checkDates(fsi);
  if (ctx.opts.flavor === 'business') businessChecks(ctx, drive, targetPath, cb);
  const declared = ctx.opts.flavor === 'personal' && typeof item.fileSize === 'number' ? item.fileSize : null;
  quotaChecks(ctx, drive, declared);
  const s: UploadSession = {
    id: rid(16),
    drive,
    path: targetPath,
    conflictBehavior: cb as UploadSession['conflictBehavior'],
    declaredSize: declared,
    total: declared,
    next: 0,
    createdAt: Date.now(),
    expiresAt: Date.now() + sessionTtlMs(ctx),
    tempauth: rid(24),
    fsCreated: fsi.createdDateTime ?? null,
    fsModified: fsi.lastModifiedDateTime ?? null,
    // A Personal property (the reference); Business keeps no description from here.
    description: ctx.opts.flavor === 'personal' && typeof item.description === 'string' ? item.description : null,
  };
  ctx.store.sessions.set(s.id, s);
  ctx.store.saveSession(s);
  ctx.metrics.sessionsCreated++;
  pathMetrics(ctx.metrics, drive, targetPath).sessions++;
  ctx.count('createUploadSession', 200);
  ctx.json(res, 200, {
    '@odata.context': `${ctx.apiBase}/$metadata#microsoft.graph.uploadSession`,
    uploadUrl: `${ctx.uploadBase}/upload/${s.id}?tempauth=${s.tempauth}`,
    expirationDateTime: nowIso(s.expiresAt),
    nextExpectedRanges: ['0-'],
  });
}

export const uploadSessionActions: Record<string, ItemAction> = {
  POST: { route: 'createUploadSession', handle: createUploadSession },
};

// ---- the upload URL ----

interface UploadCall {
  ctx: EmulatorContext;
  req: http.IncomingMessage;
  res: http.ServerResponse;
  s: UploadSession;
  route: string;
  fail(e: GraphError): Promise<void>;
}

interface Fragment {
  start: number;
  end: number;
  total: number;
  length: number;
  isLast: boolean;
}

function sessionStatus(s: UploadSession): unknown {
  return {
    expirationDateTime: nowIso(s.expiresAt),
    nextExpectedRanges: s.total !== null && s.next >= s.total ? [] : [`${s.next}-${s.total !== null ? s.total - 1 : ''}`],
  };
}

/** Drains what the client still sends, so it sees the answer rather than a reset. */
async function drain(req: http.IncomingMessage): Promise<void> {
  if (req.method !== 'PUT' || req.readableEnded) return;
  await new Promise<void>((resolve) => {
    req.on('data', () => undefined);
    req.on('end', resolve);
    req.on('error', () => resolve());
    req.on('close', () => resolve());
  });
}

/** The session a request may use, or the error that says why not. */
function sessionFor(ctx: EmulatorContext, req: http.IncomingMessage, url: URL): UploadSession | GraphError {
  if (req.headers.authorization) {
    ctx.metrics.authHeaderOnUploadUrl++;
    return new GraphError(401, 'unauthenticated', 'An Authorization header must not be sent to a pre-authenticated upload URL.');
  }
  const s = ctx.store.sessions.get(url.pathname.slice('/upload/'.length));
  if (!s || Date.now() > s.expiresAt) {
    if (s) ctx.store.dropSession(s);
    return new GraphError(404, 'itemNotFound', 'The upload session was not found or has expired.');
  }
  if (url.searchParams.get('tempauth') !== s.tempauth) return new GraphError(401, 'unauthenticated', 'Invalid tempauth.');
  if (Date.now() > s.createdAt + ctx.opts.tempauthTtlS * 1000)
    return new GraphError(401, 'unauthenticated', 'The tempauth token in the upload URL has expired.');
  return s;
}

function uploadStatus({ ctx, res, s, route, fail }: UploadCall): Promise<void> | void {
  const injected = ctx.injectedFailure();
  if (injected) return fail(injected);
  ctx.count(route, 200);
  ctx.json(res, 200, sessionStatus(s));
}

function cancelUpload({ ctx, res, s, route, fail }: UploadCall): Promise<void> | void {
  const injected = ctx.injectedFailure();
  if (injected) return fail(injected);
  ctx.store.dropSession(s);
  ctx.count(route, 204);
  res.writeHead(204);
  res.end();
}

/** The fragment a PUT announces, or the error its headers earn. */
function fragmentOf(req: http.IncomingMessage, s: UploadSession): Fragment | GraphError {
  const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
  if (!cr) return new GraphError(400, 'invalidRange', 'Content-Range must be "bytes start-end/total".');
  const start = Number(cr[1]);
  const end = Number(cr[2]);
  const total = Number(cr[3]);
  const length = end - start + 1;
  const contentLength = Number(req.headers['content-length'] ?? NaN);
  if (!(end >= start) || end >= total) return new GraphError(400, 'invalidRange', 'The Content-Range is not valid.');
  if (contentLength !== length) return new GraphError(400, 'invalidRange', 'Content-Length must equal the size of the Content-Range.');
  if (s.total !== null && total !== s.total) return new GraphError(400, 'invalidRange', `The total size must stay ${s.total} on every fragment.`);
  if (length >= FRAGMENT_MAX) return new GraphError(413, 'requestTooLarge', 'Fragments must be under 60 MiB.');
  const isLast = end === total - 1;
  if (!isLast && length % FRAGMENT_MULTIPLE !== 0) return new GraphError(400, 'invalidRange', 'Fragments other than the last must be a multiple of 320 KiB.');
  if (start < s.next) return overlap();
  if (start > s.next) return new GraphError(400, 'invalidRange', `Fragments must be sent in order; expected ${s.next}.`);
  return { start, end, total, length, isLast };
}

/** Receives the fragment, counting bytes as they arrive (a client killed mid-fragment still counts). Null when cut short or too long. */
async function receive(ctx: EmulatorContext, req: http.IncomingMessage, s: UploadSession, length: number): Promise<Buffer | null> {
  const pm = pathMetrics(ctx.metrics, s.drive, s.path);
  const parts: Buffer[] = [];
  let got = 0;
  const complete = await new Promise<boolean>((resolve) => {
    req.on('data', (c: Buffer) => {
      got += c.length;
      ctx.metrics.uploadBytesReceived += c.length;
      pm.received += c.length;
      if (got <= length) parts.push(c);
    });
    req.on('end', () => resolve(got === length));
    req.on('error', () => resolve(false));
    req.on('aborted', () => resolve(false));
  });
  return complete ? Buffer.concat(parts) : null;
}

function writePart(partFile: string, data: Buffer, start: number): void {
  const fd = fs.openSync(partFile, start === 0 ? 'w' : 'r+');
  try {
    fs.writeSync(fd, data, 0, data.length, start);
  } finally {
    fs.closeSync(fd);
  }
}

function accepted(ctx: EmulatorContext, s: UploadSession, bytes: number): void {
  const pm = pathMetrics(ctx.metrics, s.drive, s.path);
  ctx.metrics.uploadBytesAccepted += bytes;
  pm.accepted += bytes;
  pm.fragments++;
}

/** The last fragment creates the file; on 409 the bytes go with the session, on 507 the session waits for the last fragment again. */
function finish(call: UploadCall, f: Fragment, data: Buffer, failAfterStore: GraphError | null): Promise<void> | void {
  const { ctx, res, s, route, fail } = call;
  const partFile = ctx.store.partFile(s.id);
  try {
    // A file sent in one fragment goes to its place straight from memory.
    if (f.start > 0) writePart(partFile, data, f.start);
    const source = f.start > 0 ? { file: partFile } : { bytes: data };
    const placed = ctx.drive.placeFile(s.drive, s.path, s.conflictBehavior, source, f.total, {
      created: s.fsCreated,
      modified: s.fsModified,
      description: s.description ?? null,
    });
    accepted(ctx, s, data.length);
    ctx.store.dropSession(s);
    if (failAfterStore) return fail(failAfterStore);
    ctx.count(route, placed.created ? 201 : 200);
    ctx.json(res, placed.created ? 201 : 200, ctx.itemJson(placed.item));
  } catch (e) {
    if (!(e instanceof GraphError)) throw e;
    if (e.status === 409) ctx.store.dropSession(s);
    else if (fs.existsSync(partFile)) fs.truncateSync(partFile, f.start);
    return fail(e);
  }
}

async function putFragment(call: UploadCall): Promise<void> {
  const { ctx, req, res, s, route, fail } = call;
  const f = fragmentOf(req, s);
  if (f instanceof GraphError) return fail(f);
  const data = await receive(ctx, req, s, f.length);
  if (!data) {
    if (!res.destroyed && !res.headersSent) return fail(new GraphError(400, 'invalidRange', 'The fragment body was shorter or longer than Content-Length.'));
    return;
  }
  // Faults: throttled before storing; a 5xx half the time after storing (the client then sees
  // 416 on its retry, as with the real service); a drop always after storing.
  if (ctx.faults.roll('429')) {
    ctx.fault('429');
    return fail(ctx.throttled());
  }
  let failAfterStore: GraphError | null = null;
  if (ctx.faults.roll('5xx')) {
    const e = new GraphError(503, 'serviceNotAvailable', 'The service is unavailable.', { 'Retry-After': String(ctx.opts.retryAfterS) });
    ctx.fault('503');
    if (ctx.faults.random() < 0.5) return fail(e);
    failAfterStore = e;
  }
  // Another fragment may have been accepted (or the session cancelled) while this one arrived.
  if (ctx.store.sessions.get(s.id) !== s) return fail(new GraphError(404, 'itemNotFound', 'The upload session was not found.'));
  if (f.start !== s.next) return fail(overlap());
  if (s.total === null) s.total = f.total;
  if (f.isLast) return finish(call, f, data, failAfterStore);
  writePart(ctx.store.partFile(s.id), data, f.start);
  s.next = f.end + 1;
  s.expiresAt = Date.now() + sessionTtlMs(ctx);
  ctx.store.saveSession(s);
  accepted(ctx, s, data.length);
  if (failAfterStore) return fail(failAfterStore);
  ctx.count(route, 202);
  ctx.json(res, 202, sessionStatus(s));
}

const UPLOAD_METHODS: Record<string, (call: UploadCall) => void | Promise<void>> = {
  GET: uploadStatus,
  DELETE: cancelUpload,
  PUT: putFragment,
};

/** https://127.0.0.1:PORT/upload/{id}?tempauth=...: a pre-authenticated upload URL (no bearer token). */
export async function handleUpload(ctx: EmulatorContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET';
  const route = `upload:${method}`;
  const fail = async (e: GraphError): Promise<void> => {
    await drain(req);
    ctx.count(route, e.status);
    ctx.sendError(res, e);
  };
  const s = sessionFor(ctx, req, url);
  if (s instanceof GraphError) return fail(s);
  const handle = Object.hasOwn(UPLOAD_METHODS, method) ? UPLOAD_METHODS[method] : undefined;
  if (!handle) return fail(new GraphError(405, 'invalidRequest', 'Method not allowed.'));
  await handle({ ctx, req, res, s, route, fail });
}
