// Sign-in for the OneDrive destination, through @azure/msal-node.
//
// Three ways to get a token, in this order:
//  1. ONEDRIVE_ACCESS_TOKEN: used as is (tests, people who bring their own). No refresh.
//  2. App-only (admins): ONEDRIVE_TENANT_ID + ONEDRIVE_CLIENT_ID + ONEDRIVE_CLIENT_SECRET or
//     ONEDRIVE_CLIENT_CERTIFICATE (a PEM file holding the private key and the certificate):
//     client credentials, scope https://graph.microsoft.com/.default, for /users/{id}/drive.
//  3. A person signed in with `gallery-bridge auth onedrive` (device-code flow, authority
//     consumers or organizations): tokens come from msal's cache, refreshed silently.
//
// msal's token cache is persisted per account at GALLERY_BRIDGE_HOME/credentials/onedrive/
// <account>.msal.json, mode 0600, and every secret in it is registered with redact().

import crypto from 'node:crypto';
import fs from 'node:fs';
import type { ConfidentialClientApplication, Configuration, ICachePlugin, PublicClientApplication, TokenCacheContext } from '@azure/msal-node';
import { assertPrivateFile, credentialPath, readPrivateFile, writePrivateFile } from '../../src/lib/credentials.ts';
import { reason, registerSecret } from '../../src/lib/redact.ts';
import { RetryableError, StopRunError } from '../types.ts';
import type { TokenSource } from './graph.ts';

export const MICROSOFT_LOGIN = 'https://login.microsoftonline.com';
export const GRAPH_DEFAULT_SCOPE = 'https://graph.microsoft.com/.default';
export const DEFAULT_SCOPES = ['Files.ReadWrite'];

export interface AuthSettings {
  clientId: string | undefined;
  tenantId: string | undefined;
  clientSecret: string | undefined;
  certificateFile: string | undefined;
  certificateThumbprint: string | undefined;
  /** Full authority URL for people (…/consumers, …/organizations, …/<tenant>). */
  authority: string;
  accessToken: string | undefined;
  scopes: string[];
  home: string;
  account: string;
}

export function authSettings(env: NodeJS.ProcessEnv, home: string, account: string): AuthSettings {
  const s: AuthSettings = {
    clientId: env.ONEDRIVE_CLIENT_ID || undefined,
    tenantId: env.ONEDRIVE_TENANT_ID || undefined,
    clientSecret: env.ONEDRIVE_CLIENT_SECRET || undefined,
    certificateFile: env.ONEDRIVE_CLIENT_CERTIFICATE || undefined,
    certificateThumbprint: env.ONEDRIVE_CLIENT_CERTIFICATE_THUMBPRINT || undefined,
    authority: (env.ONEDRIVE_AUTHORITY || `${MICROSOFT_LOGIN}/consumers`).replace(/\/+$/, ''),
    accessToken: env.ONEDRIVE_ACCESS_TOKEN || undefined,
    scopes: env.ONEDRIVE_SCOPES ? env.ONEDRIVE_SCOPES.split(/[\s,]+/).filter(Boolean) : DEFAULT_SCOPES,
    home,
    account,
  };
  registerSecret(s.accessToken);
  registerSecret(s.clientSecret);
  return s;
}

export function isAppOnly(s: AuthSettings): boolean {
  return !s.accessToken && Boolean(s.tenantId && s.clientId && (s.clientSecret || s.certificateFile));
}

type Msal = typeof import('@azure/msal-node');
let msalModule: Promise<Msal> | null = null;
let msalLoaded: Msal | null = null;

/**
 * msal is imported when a token is first asked of it: importing it took ~90 ms of every run's
 * start, and a run given ONEDRIVE_ACCESS_TOKEN never uses it.
 */
function msal(): Promise<Msal> {
  msalModule ??= import('@azure/msal-node').then((m) => (msalLoaded = m));
  return msalModule;
}

/** msal looks up unknown authority hosts on Microsoft's instance-discovery service; trust ours instead. */
function authorityOptions(authority: string): Pick<Configuration['auth'], 'authority' | 'knownAuthorities'> {
  const host = new URL(authority).host;
  const microsoft = /(^|\.)login\.microsoftonline\.(com|us)$|(^|\.)login\.microsoft\.com$|(^|\.)login\.chinacloudapi\.cn$/i.test(new URL(authority).hostname);
  return microsoft ? { authority } : { authority, knownAuthorities: [host] };
}

/** The token cache plugin: one 0600 file per account; every token in it is a registered secret. */
export function fileCachePlugin(file: string): ICachePlugin {
  // Checked here, before msal's asynchronous cache calls could wrap the refusal.
  if (fs.existsSync(file)) assertPrivateFile(file);
  const registerAll = (text: string) => {
    try {
      const data = JSON.parse(text) as Record<string, Record<string, { secret?: string }>>;
      for (const section of Object.values(data)) {
        if (section && typeof section === 'object') for (const entry of Object.values(section)) registerSecret(entry?.secret);
      }
    } catch {
      /* an unreadable cache is simply not used */
    }
  };
  return {
    async beforeCacheAccess(ctx: TokenCacheContext) {
      if (fs.existsSync(file)) {
        const text = fs.readFileSync(file, 'utf8');
        registerAll(text);
        ctx.tokenCache.deserialize(text);
      }
    },
    async afterCacheAccess(ctx: TokenCacheContext) {
      if (ctx.cacheHasChanged) {
        const text = ctx.tokenCache.serialize();
        registerAll(text);
        writePrivateFile(file, text);
      }
    },
  };
}

export function cacheFile(s: AuthSettings): string {
  return credentialPath(s.home, 'onedrive', s.account, 'msal.json');
}

/** The settings are checked now; the app is made (and msal imported) when first asked for. */
function publicApp(s: AuthSettings): () => Promise<PublicClientApplication> {
  if (!s.clientId) throw new StopRunError('config', 'ONEDRIVE_CLIENT_ID is not set: register an app (see providers/onedrive/README.md) and set its client id');
  const config = { auth: { clientId: s.clientId, ...authorityOptions(s.authority) }, cache: { cachePlugin: fileCachePlugin(cacheFile(s)) } };
  let app: Promise<PublicClientApplication> | null = null;
  return () => (app ??= msal().then((m) => new m.PublicClientApplication(config)));
}

function appAuthority(s: AuthSettings): string {
  // ONEDRIVE_AUTHORITY may name consumers/organizations for people; app-only needs the tenant.
  const origin = new URL(s.authority).origin;
  return `${origin}/${s.tenantId}`;
}

/** As publicApp: the credentials are read and checked now, the app made when first asked for. */
function confidentialApp(s: AuthSettings): () => Promise<ConfidentialClientApplication> {
  let clientCertificate: { thumbprintSha256?: string; thumbprint?: string; privateKey: string } | undefined;
  if (!s.clientSecret && s.certificateFile) {
    const pem = readPrivateFile(s.certificateFile);
    const keyMatch = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/.exec(pem);
    if (!keyMatch) throw new StopRunError('config', 'ONEDRIVE_CLIENT_CERTIFICATE must be a PEM file holding the private key and the certificate');
    registerSecret(keyMatch[0]);
    let thumbprintSha256 = s.certificateThumbprint?.replace(/:/g, '');
    if (!thumbprintSha256) {
      const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
      if (!certMatch) throw new StopRunError('config', 'ONEDRIVE_CLIENT_CERTIFICATE has no certificate; add it or set ONEDRIVE_CLIENT_CERTIFICATE_THUMBPRINT');
      thumbprintSha256 = new crypto.X509Certificate(certMatch[0]).fingerprint256.replace(/:/g, '');
    }
    clientCertificate = { thumbprintSha256, privateKey: keyMatch[0] };
  }
  const config = {
    auth: {
      clientId: s.clientId!,
      ...authorityOptions(appAuthority(s)),
      ...(s.clientSecret ? { clientSecret: s.clientSecret } : { clientCertificate }),
    },
    cache: { cachePlugin: fileCachePlugin(credentialPath(s.home, 'onedrive', s.account, 'app-msal.json')) },
  };
  let app: Promise<ConfidentialClientApplication> | null = null;
  return () => (app ??= msal().then((m) => new m.ConfidentialClientApplication(config)));
}

function authFailure(e: unknown, what: string): Error {
  if (e instanceof StopRunError) return e;
  // msal is loaded by then: only its calls raise its errors.
  if (msalLoaded && e instanceof msalLoaded.InteractionRequiredAuthError) {
    return new StopRunError('credentials', `OneDrive sign-in has expired (${reason(e.errorCode)}): run \`gallery-bridge auth onedrive\` again`);
  }
  const code = (e as { errorCode?: string }).errorCode ?? '';
  if (/missing_tenant_id|invalid_authority|url_parse|empty_url|invalid_client_credential|invalid_cert/i.test(code)) {
    return new StopRunError('config', `OneDrive ${what}: the configuration is not usable (${code}): ${reason(e)}`);
  }
  if (/invalid_grant|invalid_client|unauthorized_client|invalid_scope|invalid_tenant|no_tokens_found|no_account/i.test(code)) {
    return new StopRunError('credentials', `OneDrive ${what} failed (${code}): ${reason(e)}`);
  }
  return new RetryableError(`OneDrive ${what} failed: ${reason(e)}`);
}

/** Builds the token source the destination uses. */
export function tokenSource(s: AuthSettings): TokenSource {
  if (s.accessToken) {
    const token = s.accessToken;
    return {
      kind: 'static',
      async get(force?: boolean) {
        if (force) throw new StopRunError('credentials', 'OneDrive refused ONEDRIVE_ACCESS_TOKEN (401); give a fresh token');
        return token;
      },
    };
  }
  if (isAppOnly(s)) {
    if (/^(consumers|common|organizations)$/i.test(s.tenantId ?? '')) {
      throw new StopRunError('config', 'app-only sign-in needs the tenant id (ONEDRIVE_TENANT_ID), and personal accounts cannot be reached app-only');
    }
    const app = confidentialApp(s);
    let memo: { token: string; until: number } | null = null;
    return {
      kind: 'app',
      async get(force?: boolean) {
        if (!force && memo && Date.now() < memo.until) return memo.token;
        try {
          const r = await (await app()).acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT_SCOPE], skipCache: Boolean(force) });
          if (!r?.accessToken) throw new StopRunError('credentials', 'the client-credentials flow returned no token');
          registerSecret(r.accessToken);
          memo = { token: r.accessToken, until: (r.expiresOn?.getTime() ?? Date.now() + 600_000) - 300_000 };
          return r.accessToken;
        } catch (e) {
          throw authFailure(e, 'app-only sign-in');
        }
      },
    };
  }
  const app = publicApp(s);
  // Every Graph request asks for the token: keep it in memory until 5 minutes before it expires
  // rather than have msal read and parse the cache file each time.
  let memo: { token: string; until: number } | null = null;
  let inflight: Promise<string> | null = null;
  const fetchToken = async (force: boolean): Promise<string> => {
    try {
      const client = await app();
      const accounts = await client.getTokenCache().getAllAccounts();
      if (accounts.length === 0)
        throw new StopRunError('credentials', `not signed in to OneDrive for account "${s.account}": run \`gallery-bridge auth onedrive\``);
      const r = await client.acquireTokenSilent({ account: accounts[0]!, scopes: s.scopes, forceRefresh: force });
      if (!r?.accessToken) throw new StopRunError('credentials', 'msal returned no token');
      registerSecret(r.accessToken);
      memo = { token: r.accessToken, until: (r.expiresOn?.getTime() ?? Date.now() + 600_000) - 300_000 };
      return r.accessToken;
    } catch (e) {
      throw authFailure(e, 'token refresh');
    }
  };
  return {
    kind: 'delegated',
    async get(force?: boolean) {
      if (!force && memo && Date.now() < memo.until) return memo.token;
      if (!force && inflight) return inflight;
      if (force) return fetchToken(true);
      const p = fetchToken(false).finally(() => (inflight = null));
      p.catch(() => undefined); // the caller gets the rejection; this copy must not go unhandled
      inflight = p;
      return p;
    },
  };
}

/** `gallery-bridge auth onedrive`: device-code sign-in for people, a test token request for app-only. */
export async function signIn(s: AuthSettings, say: (line: string) => void): Promise<{ username: string | null; kind: string }> {
  if (s.accessToken) {
    say('ONEDRIVE_ACCESS_TOKEN is set: it is used as is, nothing to sign in.');
    return { username: null, kind: 'static' };
  }
  if (isAppOnly(s)) {
    await tokenSource(s).get(true);
    say(`App-only credentials work for tenant ${s.tenantId}: use onedrive:USER:PATH to write to a user's drive.`);
    return { username: null, kind: 'app' };
  }
  const app = publicApp(s);
  try {
    const r = await (await app()).acquireTokenByDeviceCode({
      scopes: s.scopes,
      deviceCodeCallback: (d) => say(d.message),
    });
    if (!r) throw new StopRunError('credentials', 'the device-code sign-in returned nothing');
    registerSecret(r.accessToken);
    const username = r.account?.username ?? null;
    say(`Signed in${username ? ` as ${username}` : ''}; the token cache is at ${cacheFile(s)} (mode 0600).`);
    return { username, kind: 'delegated' };
  } catch (e) {
    throw authFailure(e, 'device-code sign-in');
  }
}
