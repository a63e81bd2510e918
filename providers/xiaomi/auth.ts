// `gallery-bridge auth xiaomi`: signs in by QR code (auth-qr.ts) unless credentials are handed
// over; with --cookie it takes the cookie string, or userId and passToken, from a prompt (input
// hidden), with --cookie-file or the environment from there; checks them against the API; stores them 0600.

import readline from 'node:readline';
import { reason, registerSecret } from '../../src/lib/redact.ts';
import { readOption } from '../options.ts';
import { StopRunError, type ProviderContext } from '../types.ts';
import { credentialsFromCookies, parseCookieString, XiaomiClient, type XiaomiCredentials } from './client.ts';
import { readPrivateFile } from '../../src/lib/credentials.ts';
import { signInByQr } from './auth-qr.ts';
import { XIAOMI_OPTIONS } from './options.ts';
import { baseUrlOf, cookieFileOf, credentialsFromText, hostPolicyOf, storeSession } from './session.ts';

/**
 * Where the secrets are, as Coooolfan/XiaomiAlbumSyncer tells its users (README, "获取 PassToken
 * 与 UserId"): passToken is a cookie of the Xiaomi account site, not of i.mi.com.
 */
export const SIGN_IN_HELP = [
  'Xiaomi Cloud sign-in. You need your userId and passToken:',
  '  1. Sign in at https://i.mi.com in a desktop browser and open the gallery once',
  '     (https://i.mi.com/gallery/h5#/); if it asks to verify this device, tick "trust this device".',
  '  2. Click your avatar, then "My Xiaomi Account": that opens https://account.xiaomi.com.',
  '  3. Developer tools (F12) -> Application (Chrome/Edge) or Storage (Firefox) -> Cookies ->',
  '     https://account.xiaomi.com: copy the values of passToken and userId.',
  '  4. Do not sign out in that browser afterwards: signing out ends the passToken.',
  'The passToken lets this tool get fresh serviceTokens by itself. A serviceToken alone (the',
  'i.mi.com cookie) expires within minutes to an hour, and a long run then stops with exit 3.',
  'Accounts with Advanced Data Protection (end-to-end encryption) cannot be read through',
  "Xiaomi's web API at all; turn it off at Xiaomi first, or use the phone to export.",
  '',
].join('\n');

/** Asks one question on the terminal; `hidden` keeps the answer off the screen. */
async function ask(question: string, hidden: boolean): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const rlAny = rl as unknown as { _writeToOutput?: (s: string) => void; output: NodeJS.WritableStream };
  let prompted = false;
  if (hidden) {
    rlAny._writeToOutput = (s: string) => {
      if (!prompted) {
        process.stderr.write(s);
        prompted = true;
      } else if (s.includes('\n') || s.includes('\r')) process.stderr.write('\n');
    };
  }
  try {
    return await new Promise<string>((resolve) => rl.question(question, (a) => resolve(a.trim())));
  } finally {
    rl.close();
  }
}

async function gather(ctx: ProviderContext): Promise<{ creds: XiaomiCredentials; from: string }> {
  const file = cookieFileOf(ctx);
  if (file) return { creds: credentialsFromText(readPrivateFile(file)), from: `the file ${file}` };
  if (ctx.env.XIAOMI_COOKIE) return { creds: credentialsFromText(ctx.env.XIAOMI_COOKIE), from: 'XIAOMI_COOKIE' };
  if (ctx.env.XIAOMI_USER_ID && ctx.env.XIAOMI_PASS_TOKEN) {
    return {
      creds: credentialsFromCookies({ userId: ctx.env.XIAOMI_USER_ID, passToken: ctx.env.XIAOMI_PASS_TOKEN }),
      from: 'XIAOMI_USER_ID and XIAOMI_PASS_TOKEN',
    };
  }
  if (!process.stdin.isTTY) {
    throw new StopRunError(
      'config',
      'no Xiaomi credentials given: pass --cookie-file FILE, set XIAOMI_USER_ID and XIAOMI_PASS_TOKEN (passToken is a cookie of https://account.xiaomi.com) or XIAOMI_COOKIE, or run this in a terminal to be asked',
    );
  }
  process.stderr.write(SIGN_IN_HELP);
  const cookie = await ask('A whole cookie string (input hidden; press Enter to give userId and passToken instead): ', true);
  if (cookie) {
    registerSecret(cookie);
    return { creds: credentialsFromCookies(parseCookieString(cookie)), from: 'the prompt' };
  }
  const userId = await ask('userId: ', false);
  const passToken = await ask('passToken (input hidden): ', true);
  registerSecret(passToken);
  return { creds: credentialsFromCookies({ userId, passToken }), from: 'the prompt' };
}

/** True when credentials were handed over (flag, file or environment): the cookie path takes them. */
function credentialsGiven(ctx: ProviderContext): boolean {
  return (
    readOption(ctx, XIAOMI_OPTIONS.cookie) === true ||
    Boolean(cookieFileOf(ctx)) ||
    Boolean(ctx.env.XIAOMI_COOKIE) ||
    Boolean(ctx.env.XIAOMI_USER_ID && ctx.env.XIAOMI_PASS_TOKEN)
  );
}

/** `gallery-bridge auth xiaomi`: by QR code, unless credentials are handed over or --cookie asks for the prompt. */
export async function authXiaomi(ctx: ProviderContext): Promise<void> {
  if (!credentialsGiven(ctx)) {
    const qr = await signInByQr(ctx);
    return acceptAndStore(ctx, qr.creds, qr.from);
  }
  let gathered: { creds: XiaomiCredentials; from: string };
  try {
    gathered = await gather(ctx);
  } catch (err) {
    if (err instanceof StopRunError) throw err;
    throw new StopRunError('credentials', `the Xiaomi credentials are not usable: ${reason(err)}`);
  }
  await acceptAndStore(ctx, gathered.creds, gathered.from);
}

/**
 * Gets a fresh serviceToken through the passToken chain, proves the session with the storage-quota
 * call and one album-list page (the gallery's second check), and only then stores the credentials
 * (0600): a sign-in that fails leaves nothing behind.
 */
export async function acceptAndStore(ctx: ProviderContext, creds: XiaomiCredentials, from: string): Promise<void> {
  const base = baseUrlOf(ctx.env);
  const client = new XiaomiClient({ baseUrl: base.href, credentials: creds, hosts: hostPolicyOf(ctx, base), log: ctx.log });
  try {
    if (client.canRenew) await client.renew();
    const quota = await client.quota();
    // The account accepted the session; the gallery may still refuse it (its second check).
    await client.galleryCheck();
    const used = typeof quota.used === 'number' ? `${(quota.used / 1024 ** 3).toFixed(2)} GB used` : 'quota unknown';
    const file = storeSession(ctx, client.credentials());
    const masked = creds.userId.replace(/^(\d{2})\d*(\d{2})$/, '$1…$2');
    ctx.log.info(`Xiaomi account ${masked} accepted (${used}); credentials from ${from} stored in ${file} (mode 0600)`);
    if (!client.canRenew) {
      ctx.log.warn(
        'no passToken was given: the serviceToken alone expires within minutes to an hour and cannot be renewed, so a long run will stop with exit 3; ' +
          'sign in by QR code instead (`gallery-bridge auth xiaomi`), or give the passToken too (a cookie of https://account.xiaomi.com, not of i.mi.com: see providers/xiaomi/README.md)',
      );
    }
    ctx.log.info(
      'note: accounts with Xiaomi Advanced Data Protection (end-to-end encryption) cannot be read through the web API; the listing would come back empty or refused',
    );
  } catch (err) {
    if (err instanceof StopRunError) throw err;
    throw new StopRunError('credentials', `Xiaomi did not accept the credentials: ${reason(err)}`);
  } finally {
    client.close();
  }
}
