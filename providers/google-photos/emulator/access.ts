// Who may call the Library API, with which scopes, and how often: the bearer token, the scopes
// that admit each call since 31 March 2025, the daily quota and the per-minute write limit.

import type http from 'node:http';
import * as P from '../protocol.ts';
import type { Caller, EmulatorContext } from './context.ts';
import { HttpError } from './errors.ts';
import { CONSUMER, SCOPE_EDIT } from './options.ts';
import { sha256 } from './store.ts';

export function authenticate(ctx: EmulatorContext, req: http.IncomingMessage): Caller {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  const unauth = new HttpError(
    401,
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
    'UNAUTHENTICATED',
    { 'WWW-Authenticate': 'Bearer realm="https://accounts.google.com/"' },
  );
  if (!m) throw unauth;
  const token = m[1]!;
  if (ctx.opt.acceptTokens.includes(token)) return { owner: 'accepted-token', scopes: new Set([...P.SCOPES, SCOPE_EDIT]) };
  const row = ctx.store.db.prepare("SELECT client_id, scopes, expires_at FROM tokens WHERE hash = ? AND kind = 'access'").get(sha256(token)) as
    | { client_id: string; scopes: string; expires_at: number }
    | undefined;
  if (!row || row.expires_at < Date.now()) throw unauth;
  return { owner: row.client_id, scopes: new Set(row.scopes.split(' ')) };
}

/**
 * The scopes that admit a call since 31 March 2025: uploading, creating items and albums need
 * appendonly; reading (get, batchGet, list, search, albums) needs readonly.appcreateddata;
 * edit.appcreateddata changes what the app created (and may add to its albums) but neither
 * uploads nor reads. Anything else answers 403 as Google does.
 */
function scopesFor(p: string, method: string): string[] {
  if (p === P.PATH_UPLOADS || p === P.PATH_BATCH_CREATE || (p === P.PATH_ALBUMS && method === 'POST')) return [P.SCOPE_APPENDONLY];
  if (/^\/v1\/albums\/[^/:]+:batchAddMediaItems$/.test(p)) return [P.SCOPE_APPENDONLY, SCOPE_EDIT];
  if (method === 'PATCH') return [SCOPE_EDIT];
  return [P.SCOPE_READ_APPCREATED];
}

export function requireScope(c: Caller, p: string, method: string): void {
  if (!scopesFor(p, method).some((s) => c.scopes.has(s))) {
    throw new HttpError(403, 'Request had insufficient authentication scopes.', 'PERMISSION_DENIED', {}, [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
        domain: 'googleapis.com',
        metadata: { service: 'photoslibrary.googleapis.com' },
      },
    ]);
  }
}

function rateLimited(metric: string, limit: string, quotaMetric: string, quotaLimit: string): HttpError {
  return new HttpError(
    429,
    `Quota exceeded for quota metric '${metric}' and limit '${limit}' of service 'photoslibrary.googleapis.com' ${CONSUMER}.`,
    'RESOURCE_EXHAUSTED',
    {},
    [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'RATE_LIMIT_EXCEEDED',
        domain: 'googleapis.com',
        metadata: { quota_metric: quotaMetric, quota_limit: quotaLimit, service: 'photoslibrary.googleapis.com' },
      },
    ],
  );
}

/** Counts a write against the user's per-minute limit, or refuses it. */
function admitWrite(ctx: EmulatorContext, c: Caller): void {
  const now = Date.now();
  const stamps = (ctx.writeStamps.get(c.owner) ?? []).filter((t) => t > now - 60_000);
  ctx.writeStamps.set(c.owner, stamps);
  if (stamps.length >= ctx.opt.writesPerMinute) {
    ctx.stats.writeLimited++;
    throw rateLimited('Write requests', 'Write requests per minute per user', 'photoslibrary.googleapis.com/write_requests', 'WritesPerMinutePerUser');
  }
  stamps.push(now);
}

/** Counts the request against the project's daily quota and the user's write limit, as Google does. */
export function admit(ctx: EmulatorContext, c: Caller, write: boolean): void {
  const q = ctx.quota();
  const used = q.used[c.owner] ?? 0;
  if (used >= ctx.opt.dailyQuota) {
    ctx.stats.quotaRefused++;
    throw rateLimited('All requests', 'All requests per day', 'photoslibrary.googleapis.com/all_requests', 'AllRequestsPerDayPerProject');
  }
  if (write && ctx.opt.writesPerMinute > 0) admitWrite(ctx, c);
  q.used[c.owner] = used + 1;
  ctx.store.kvSet('quota', q);
  ctx.stats.api++;
}
