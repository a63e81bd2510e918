// `gallery-bridge auth xiaomi`: takes the cookie string, or userId and passToken, from a prompt
// (input hidden), --cookie-file, or the environment; checks it against the API; stores it 0600.

import readline from 'node:readline';
import { reason, registerSecret } from '../../src/lib/redact.ts';
import { StopRunError, type ProviderContext } from '../types.ts';
import { credentialsFromCookies, parseCookieString, XiaomiClient, type XiaomiCredentials } from './client.ts';
import { readPrivateFile } from '../../src/lib/credentials.ts';
import { baseUrlOf, cookieFileOf, credentialsFromText, hostPolicyOf, storeSession } from './session.ts';

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
    return { creds: credentialsFromCookies({ userId: ctx.env.XIAOMI_USER_ID, passToken: ctx.env.XIAOMI_PASS_TOKEN }), from: 'XIAOMI_USER_ID and XIAOMI_PASS_TOKEN' };
  }
  if (!process.stdin.isTTY) {
    throw new StopRunError('config', 'no Xiaomi credentials given: pass --cookie-file FILE, set XIAOMI_COOKIE (or XIAOMI_USER_ID and XIAOMI_PASS_TOKEN), or run this in a terminal to be asked');
  }
  process.stderr.write(
    'Sign in to https://i.mi.com in a browser, open the gallery once, then copy from the developer tools either\n' +
      "  the whole Cookie header of a request to i.mi.com, or\n  the values of the cookies userId and passToken.\n",
  );
  const cookie = await ask('Cookie string (input hidden; press Enter to give userId and passToken instead): ', true);
  if (cookie) {
    registerSecret(cookie);
    return { creds: credentialsFromCookies(parseCookieString(cookie)), from: 'the prompt' };
  }
  const userId = await ask('userId: ', false);
  const passToken = await ask('passToken (input hidden): ', true);
  registerSecret(passToken);
  return { creds: credentialsFromCookies({ userId, passToken }), from: 'the prompt' };
}

export async function authXiaomi(ctx: ProviderContext): Promise<void> {
  let gathered: { creds: XiaomiCredentials; from: string };
  try {
    gathered = await gather(ctx);
  } catch (err) {
    if (err instanceof StopRunError) throw err;
    throw new StopRunError('credentials', `the Xiaomi credentials are not usable: ${reason(err)}`);
  }
  const base = baseUrlOf(ctx.env);
  const client = new XiaomiClient({ baseUrl: base.href, credentials: gathered.creds, hosts: hostPolicyOf(ctx, base), log: ctx.log });
  try {
    if (client.canRenew) await client.renew();
    const quota = await client.quota();
    const used = typeof quota.used === 'number' ? `${(quota.used / 1024 ** 3).toFixed(2)} GB used` : 'quota unknown';
    const file = storeSession(ctx, client.credentials());
    const masked = gathered.creds.userId.replace(/^(\d{2})\d*(\d{2})$/, '$1…$2');
    ctx.log.info(`Xiaomi account ${masked} accepted (${used}); credentials from ${gathered.from} stored in ${file} (mode 0600)`);
    if (!client.canRenew) {
      ctx.log.warn('no passToken was given: the serviceToken alone expires soon and cannot be renewed; give the passToken too for long runs');
    }
  } catch (err) {
    if (err instanceof StopRunError) throw err;
    throw new StopRunError('credentials', `Xiaomi did not accept the credentials: ${reason(err)}`);
  } finally {
    client.close();
  }
}
