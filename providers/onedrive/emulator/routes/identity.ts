// The Microsoft identity platform endpoints msal-node needs: OpenID metadata, instance
// discovery, the device-code flow, and the token endpoint (device code, refresh token, client
// credentials). Tokens are opaque strings the Graph routes look up in the store.

import crypto from 'node:crypto';
import type http from 'node:http';
import { readBody } from '../../../../src/emulator/kit.ts';
import type { DeviceCode, EmulatorContext } from '../context.ts';
import { b64url, nowIso, rid } from '../ids.ts';

const ENDPOINT = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/token|oauth2\/v2\.0\/devicecode|discovery\/instance)$/;
const CONSUMERS_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad';

interface TokenRequest {
  ctx: EmulatorContext;
  res: http.ServerResponse;
  tenant: string;
  form: URLSearchParams;
  clientId: string;
  scope: string;
}

function oauthError(ctx: EmulatorContext, res: http.ServerResponse, status: number, error: string, description: string): void {
  ctx.count(`login:${error}`, status);
  ctx.json(res, status, { error, error_description: description, error_codes: [], timestamp: nowIso(), trace_id: rid(8), correlation_id: rid(8) });
}

function idToken(ctx: EmulatorContext, subject: string, clientId: string, tid: string, uid: string, ttl: number): string {
  const nowS = Math.floor(Date.now() / 1000);
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({
    aud: clientId,
    iss: `https://localhost:${ctx.port}/${tid}/v2.0`,
    iat: nowS,
    nbf: nowS,
    exp: nowS + ttl,
    name: 'Emulated User',
    oid: uid,
    sub: uid,
    tid,
    preferred_username: `${subject}@example.invalid`,
    ver: '2.0',
  })}.`;
}

function issueTokens(
  ctx: EmulatorContext,
  kind: 'delegated' | 'app',
  subject: string,
  clientId: string,
  tenant: string,
  scope: string,
  withRefresh: boolean,
): Record<string, unknown> {
  const ttl = ctx.opts.tokenTtlS || ctx.opts.common.sessionTtl || 3600;
  const access = `emu-at-${rid(24)}`;
  ctx.store.tokens.set(access, { kind, subject, expiresAt: Date.now() + ttl * 1000 });
  const body: Record<string, unknown> = { token_type: 'Bearer', access_token: access, expires_in: ttl, ext_expires_in: ttl, scope };
  if (withRefresh) {
    const refresh = `emu-rt-${rid(24)}`;
    ctx.store.refreshTokens.set(refresh, { subject, clientId, tenant, scope });
    body.refresh_token = refresh;
    const tid = tenant === 'consumers' ? CONSUMERS_TENANT_ID : tenant;
    const oid = crypto.createHash('sha256').update(subject).digest('hex');
    const uid = `${oid.slice(0, 8)}-${oid.slice(8, 12)}-${oid.slice(12, 16)}-${oid.slice(16, 20)}-${oid.slice(20, 32)}`;
    body.client_info = b64url({ uid, utid: tid });
    body.id_token = idToken(ctx, subject, clientId, tid, uid, ttl);
  }
  ctx.store.saveTokens();
  return body;
}

function openidConfiguration(ctx: EmulatorContext, res: http.ServerResponse, base: string): void {
  ctx.count('openid-configuration', 200);
  ctx.json(res, 200, {
    issuer: `${base}/v2.0`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    token_endpoint: `${base}/oauth2/v2.0/token`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    tenant_region_scope: null,
  });
}

function instanceDiscovery(ctx: EmulatorContext, res: http.ServerResponse, base: string): void {
  ctx.count('instance-discovery', 200);
  const host = `localhost:${ctx.port}`;
  ctx.json(res, 200, {
    tenant_discovery_endpoint: `${base}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  });
}

function deviceCode({ ctx, res, tenant, clientId, scope }: TokenRequest): void {
  if (tenant !== 'consumers' && tenant !== 'organizations' && tenant !== 'common' && !/^[0-9a-f-]{36}$|\./i.test(tenant)) {
    return oauthError(ctx, res, 400, 'invalid_tenant', 'AADSTS90002: Tenant not found.');
  }
  const dc: DeviceCode = {
    deviceCode: `emu-dc-${rid(16)}`,
    userCode: rid(4).toUpperCase(),
    clientId,
    tenant,
    scope,
    issuedAt: Date.now(),
    expiresAt: Date.now() + 900_000,
  };
  ctx.deviceCodes.set(dc.deviceCode, dc);
  ctx.count('devicecode', 200);
  ctx.json(res, 200, {
    user_code: dc.userCode,
    device_code: dc.deviceCode,
    verification_uri: `https://localhost:${ctx.port}/devicelogin`,
    expires_in: 900,
    interval: 1,
    message: `To sign in, use a web browser to open the page https://localhost:${ctx.port}/devicelogin and enter the code ${dc.userCode} to authenticate. (The emulator approves it by itself.)`,
  });
}

function deviceCodeGrant({ ctx, res, tenant, form, clientId, scope }: TokenRequest): void {
  const dc = ctx.deviceCodes.get(form.get('device_code') ?? '');
  if (!dc || dc.clientId !== clientId) return oauthError(ctx, res, 400, 'invalid_grant', 'AADSTS70000: The provided device code is invalid.');
  if (Date.now() > dc.expiresAt) return oauthError(ctx, res, 400, 'expired_token', 'AADSTS70020: The device code has expired.');
  if (Date.now() < dc.issuedAt + ctx.opts.deviceApproveMs)
    return oauthError(ctx, res, 400, 'authorization_pending', 'AADSTS70016: Pending end-user authorization.');
  ctx.deviceCodes.delete(dc.deviceCode);
  ctx.count('token:device_code', 200);
  ctx.json(res, 200, issueTokens(ctx, 'delegated', 'me', clientId, tenant, dc.scope || scope, true));
}

function refreshTokenGrant({ ctx, res, form, clientId, scope }: TokenRequest): void {
  const rt = ctx.store.refreshTokens.get(form.get('refresh_token') ?? '');
  if (!rt || rt.clientId !== clientId) return oauthError(ctx, res, 400, 'invalid_grant', 'AADSTS70008: The refresh token has expired or is invalid.');
  ctx.store.refreshTokens.delete(form.get('refresh_token')!);
  ctx.count('token:refresh_token', 200);
  ctx.json(res, 200, issueTokens(ctx, 'delegated', rt.subject, clientId, rt.tenant, scope || rt.scope, true));
}

function clientCredentialsGrant({ ctx, res, tenant, form, clientId, scope }: TokenRequest): void {
  const error = oauthError.bind(null, ctx, res);
  if (tenant === 'consumers' || tenant === 'common' || tenant === 'organizations') {
    return error(400, 'unauthorized_client', 'AADSTS700016/90014: app-only tokens need a tenant id, and personal accounts cannot be reached app-only.');
  }
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  if (!secret && !assertion) return error(401, 'invalid_client', 'AADSTS7000216: client_assertion or client_secret is required.');
  if (secret && ctx.opts.clientSecret && secret !== ctx.opts.clientSecret)
    return error(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
  if (assertion && assertion.split('.').length !== 3) return error(401, 'invalid_client', 'AADSTS50027: Invalid JWT token.');
  if (!scope.split(' ').some((s) => s.endsWith('/.default'))) {
    return error(
      400,
      'invalid_scope',
      'AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default.',
    );
  }
  ctx.count('token:client_credentials', 200);
  ctx.json(res, 200, issueTokens(ctx, 'app', `app:${clientId}`, clientId, tenant, scope, false));
}

const GRANTS: Record<string, (r: TokenRequest) => void> = {
  'urn:ietf:params:oauth:grant-type:device_code': deviceCodeGrant,
  device_code: deviceCodeGrant,
  refresh_token: refreshTokenGrant,
  client_credentials: clientCredentialsGrant,
};

function token(r: TokenRequest): void {
  const grant = r.form.get('grant_type') ?? '';
  const handle = Object.hasOwn(GRANTS, grant) ? GRANTS[grant] : undefined;
  if (handle) return handle(r);
  oauthError(r.ctx, r.res, 400, 'unsupported_grant_type', `AADSTS70003: grant type ${grant} is not supported by the emulator.`);
}

/** https://localhost:PORT/{tenant}/...: the sign-in endpoints. */
export async function handleIdentity(ctx: EmulatorContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const m = ENDPOINT.exec(url.pathname);
  if (!m) {
    ctx.count('unknown', 404);
    return ctx.json(res, 404, { error: 'not_found', error_description: `No such endpoint ${url.pathname}` });
  }
  const tenant = m[1]!;
  const base = `https://localhost:${ctx.port}/${tenant}`;
  if (m[2] === 'v2.0/.well-known/openid-configuration') return openidConfiguration(ctx, res, base);
  if (m[2] === 'discovery/instance') return instanceDiscovery(ctx, res, base);
  if (req.method !== 'POST') return oauthError(ctx, res, 405, 'invalid_request', 'POST required');
  const form = new URLSearchParams((await readBody(req)).toString('utf8'));
  const clientId = form.get('client_id') ?? '';
  if (!clientId) return oauthError(ctx, res, 400, 'invalid_request', "AADSTS900144: The request body must contain the following parameter: 'client_id'.");
  const r: TokenRequest = { ctx, res, tenant, form, clientId, scope: form.get('scope') ?? '' };
  if (m[2] === 'oauth2/v2.0/devicecode') return deviceCode(r);
  token(r);
}
