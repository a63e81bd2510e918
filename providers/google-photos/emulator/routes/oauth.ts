// Google's OAuth endpoints for an installed app: the consent page (which answers at once with a
// redirect to the loopback address, as if the user agreed) and the token endpoint
// (authorization code with PKCE, refresh token).

import crypto from 'node:crypto';
import { readBody, sendBody } from '../../../../src/emulator/kit.ts';
import * as P from '../../protocol.ts';
import { bad } from '../errors.ts';
import { SCOPE_EDIT } from '../options.ts';
import { b64url, sha256 } from '../store.ts';
import type { Call, Route } from './route.ts';

interface CodeRow {
  client_id: string;
  redirect_uri: string;
  challenge: string | null;
  method: string | null;
  scopes: string;
  offline: number;
  expires_at: number;
}

function loopbackRedirect(redirect: string): URL {
  let target: URL;
  try {
    target = new URL(redirect);
  } catch {
    throw bad('redirect_uri is missing or invalid.');
  }
  if (target.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname))
    throw bad('redirect_uri must be a loopback address for an installed app.');
  return target;
}

function authorize({ ctx, res, url }: Call): void {
  const q = url.searchParams;
  const redirect = q.get('redirect_uri') ?? '';
  const target = loopbackRedirect(redirect);
  if (q.get('response_type') !== 'code') throw bad('response_type must be code.');
  const clientId = q.get('client_id');
  if (!clientId) throw bad('client_id is required.');
  const scopes = (q.get('scope') ?? '').split(/\s+/).filter(Boolean);
  const known = new Set([...P.SCOPES, SCOPE_EDIT]);
  if (scopes.length === 0 || scopes.some((s) => !known.has(s))) {
    target.searchParams.set('error', 'invalid_scope');
  } else {
    const code = `4/${b64url(32)}`;
    ctx.store.db
      .prepare('INSERT INTO codes(code, client_id, redirect_uri, challenge, method, scopes, offline, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(
        code,
        clientId,
        redirect,
        q.get('code_challenge'),
        q.get('code_challenge_method'),
        scopes.join(' '),
        q.get('access_type') === 'offline' ? 1 : 0,
        Date.now() + 600_000,
      );
    target.searchParams.set('code', code);
    target.searchParams.set('scope', scopes.join(' '));
  }
  if (q.get('state')) target.searchParams.set('state', q.get('state')!);
  res.writeHead(302, { Location: target.toString(), 'Content-Length': 0 });
  res.end();
}

interface TokenCall extends Call {
  form: Record<string, string>;
  oauthError(status: number, error: string, description: string): void;
  grant(clientId: string, scopes: string, refresh: string | null): void;
}

function authorizationCode({ ctx, form, oauthError, grant }: TokenCall): void {
  const db = ctx.store.db;
  const row = db.prepare('SELECT * FROM codes WHERE code = ?').get(form.code ?? '') as CodeRow | undefined;
  if (row) db.prepare('DELETE FROM codes WHERE code = ?').run(form.code);
  if (!row || row.expires_at < Date.now() || row.client_id !== form.client_id || row.redirect_uri !== form.redirect_uri)
    return oauthError(400, 'invalid_grant', 'Bad Request');
  if (row.challenge) {
    const v = form.code_verifier ?? '';
    const got = row.method === 'S256' ? crypto.createHash('sha256').update(v).digest('base64url') : v;
    if (got !== row.challenge) return oauthError(400, 'invalid_grant', 'Invalid code verifier.');
  }
  let refresh: string | null = null;
  if (row.offline) {
    refresh = `1//${b64url(48)}`;
    const exp = ctx.opt.refreshTokenTtlMs > 0 ? Date.now() + ctx.opt.refreshTokenTtlMs : Number.MAX_SAFE_INTEGER;
    db.prepare('INSERT INTO tokens(hash, kind, client_id, scopes, expires_at) VALUES (?, ?, ?, ?, ?)').run(
      sha256(refresh),
      'refresh',
      row.client_id,
      row.scopes,
      exp,
    );
  }
  grant(row.client_id, row.scopes, refresh);
}

function refreshToken({ ctx, form, oauthError, grant }: TokenCall): void {
  const row = ctx.store.db
    .prepare("SELECT client_id, scopes, expires_at FROM tokens WHERE hash = ? AND kind = 'refresh'")
    .get(sha256(form.refresh_token ?? '')) as { client_id: string; scopes: string; expires_at: number } | undefined;
  if (!row || row.expires_at < Date.now() || (form.client_id && form.client_id !== row.client_id))
    return oauthError(400, 'invalid_grant', 'Token has been expired or revoked.');
  grant(row.client_id, row.scopes, null);
}

const GRANTS: Record<string, (call: TokenCall) => void> = {
  authorization_code: authorizationCode,
  refresh_token: refreshToken,
};

async function token(call: Call): Promise<void> {
  const { ctx, req, res } = call;
  const raw = (await readBody(req)).toString('utf8');
  const form: Record<string, string> = String(req.headers['content-type'] ?? '').includes('json')
    ? (JSON.parse(raw || '{}') as Record<string, string>)
    : Object.fromEntries(new URLSearchParams(raw));
  const send = (status: number, body: unknown) =>
    sendBody(res, ctx.faults, status, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify(body)), { droppable: false });
  const oauthError = (status: number, error: string, description: string) => send(status, { error, error_description: description });
  if (ctx.opt.clientSecret && form.client_secret !== ctx.opt.clientSecret) return oauthError(401, 'invalid_client', 'Unauthorized');
  const grant = (clientId: string, scopes: string, refresh: string | null) => {
    const access = `ya29.${b64url(48)}`;
    ctx.store.db
      .prepare('INSERT INTO tokens(hash, kind, client_id, scopes, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(sha256(access), 'access', clientId, scopes, Date.now() + ctx.accessTtlMs);
    send(200, {
      access_token: access,
      expires_in: Math.floor(ctx.accessTtlMs / 1000),
      scope: scopes,
      token_type: 'Bearer',
      ...(refresh ? { refresh_token: refresh } : {}),
    });
  };
  const type = form.grant_type ?? '';
  const handle = Object.hasOwn(GRANTS, type) ? GRANTS[type] : undefined;
  if (handle) return handle({ ...call, form, oauthError, grant });
  oauthError(400, 'unsupported_grant_type', 'Invalid grant_type.');
}

export const oauthRoutes: Route[] = [
  { method: 'GET', path: '/o/oauth2/v2/auth', handle: authorize },
  { method: 'POST', path: '/token', handle: token },
];
