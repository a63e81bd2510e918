// Where the Xiaomi credentials come from, in order: XIAOMI_COOKIE (the whole cookie string),
// XIAOMI_USER_ID + XIAOMI_PASS_TOKEN, --cookie-file FILE (or XIAOMI_COOKIE_FILE), then the session stored by
// `gallery-bridge auth xiaomi` (a 0600 file under GALLERY_BRIDGE_HOME). Never a command-line value.

import { readCredentials, readPrivateFile, writeCredentials } from '../../src/lib/credentials.ts';
import { registerSecret } from '../../src/lib/redact.ts';
import { readOption } from '../options.ts';
import { StopRunError, type ProviderContext } from '../types.ts';
import { credentialsFromCookies, parseCookieString, registerCredentialSecrets, RENEW_HINT, type XiaomiCredentials } from './client.ts';
import { HostPolicy, parseHostList } from './hosts.ts';
import { XIAOMI_OPTIONS } from './options.ts';
import { DEFAULT_BASE_URL } from './protocol.ts';

export type CredentialOrigin = 'env-cookie' | 'env-pass-token' | 'cookie-file' | 'stored';

export interface StoredSession extends XiaomiCredentials {
  savedAt: string;
}

/**
 * Reads a cookie file: either a browser cookie string ("userId=..; serviceToken=..; ..."),
 * lines of name=value, or the JSON that `auth xiaomi` stores.
 */
export function credentialsFromText(text: string): XiaomiCredentials {
  const t = text.trim();
  registerSecret(t);
  if (t.startsWith('{')) {
    const j = JSON.parse(t) as Partial<XiaomiCredentials>;
    if (!j.userId) throw new Error('the JSON has no userId');
    const map: Record<string, string> = { ...(j.cookies ?? {}), userId: String(j.userId) };
    if (j.serviceToken) map.serviceToken = j.serviceToken;
    if (j.passToken) map.passToken = j.passToken;
    if (j.deviceId) map.deviceId = j.deviceId;
    return credentialsFromCookies(map);
  }
  return credentialsFromCookies(parseCookieString(t));
}

export function resolveCredentials(ctx: ProviderContext): { creds: XiaomiCredentials; origin: CredentialOrigin } {
  const env = ctx.env;
  try {
    if (env.XIAOMI_COOKIE) return { creds: credentialsFromText(env.XIAOMI_COOKIE), origin: 'env-cookie' };
  } catch (err) {
    throw new StopRunError('credentials', `XIAOMI_COOKIE is not usable: ${(err as Error).message}`);
  }
  if (env.XIAOMI_USER_ID || env.XIAOMI_PASS_TOKEN) {
    if (!env.XIAOMI_USER_ID || !env.XIAOMI_PASS_TOKEN || !/^\d+$/.test(env.XIAOMI_USER_ID)) {
      throw new StopRunError('credentials', 'set both XIAOMI_USER_ID (digits) and XIAOMI_PASS_TOKEN, or XIAOMI_COOKIE');
    }
    const creds: XiaomiCredentials = { userId: env.XIAOMI_USER_ID, passToken: env.XIAOMI_PASS_TOKEN };
    registerCredentialSecrets(creds);
    return { creds, origin: 'env-pass-token' };
  }
  const file = cookieFileOf(ctx);
  if (file) {
    try {
      return { creds: credentialsFromText(readPrivateFile(file)), origin: 'cookie-file' };
    } catch (err) {
      if (err instanceof StopRunError) throw err;
      throw new StopRunError('credentials', `--cookie-file ${file} is not usable: ${(err as Error).message}`);
    }
  }
  const stored = readCredentials<StoredSession>(ctx.home, 'xiaomi', ctx.account);
  if (stored?.userId) {
    registerCredentialSecrets(stored);
    const { savedAt: _savedAt, ...creds } = stored;
    return { creds, origin: 'stored' };
  }
  throw new StopRunError(
    'credentials',
    `no Xiaomi credentials for account "${ctx.account}": ${RENEW_HINT.replace('to sign in again', 'to sign in')} (or set XIAOMI_COOKIE)`,
  );
}

/** --cookie-file FILE, else XIAOMI_COOKIE_FILE. */
export function cookieFileOf(ctx: Pick<ProviderContext, 'options' | 'env'>): string | null {
  return readOption(ctx, XIAOMI_OPTIONS.cookieFile) ?? null;
}

export function storeSession(ctx: Pick<ProviderContext, 'home' | 'account'>, creds: XiaomiCredentials): string {
  const session: StoredSession = { ...creds, savedAt: new Date().toISOString() };
  return writeCredentials(ctx.home, 'xiaomi', ctx.account, session);
}

export function baseUrlOf(env: NodeJS.ProcessEnv): URL {
  const raw = env.XIAOMI_BASE_URL || DEFAULT_BASE_URL;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new StopRunError('config', `XIAOMI_BASE_URL is not a URL: ${raw}`);
  }
  const loopback = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '::1' || u.hostname === '[::1]';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
    throw new StopRunError('config', `XIAOMI_BASE_URL must be https (plain http only for a local emulator): ${u.origin}`);
  }
  return u;
}

export function hostPolicyOf(ctx: Pick<ProviderContext, 'env' | 'options'>, base: URL): HostPolicy {
  const extra = [...parseHostList(ctx.env.XIAOMI_DOWNLOAD_HOSTS)];
  const opt = readOption(ctx, XIAOMI_OPTIONS.downloadHosts);
  if (opt !== undefined) extra.push(...parseHostList(opt));
  return new HostPolicy(base, extra);
}
