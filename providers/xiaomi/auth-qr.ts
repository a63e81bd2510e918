// The terminal side of signing in by QR code: draws the code with the link beside it, says when
// a code expired and a new one follows, and turns Ctrl-C into one line. The protocol is in
// qr-login.ts; storing what it gives is auth.ts's acceptAndStore, as for the cookie path.
//
// The QR code is drawn by uqr (unjs): maintained (0.1.3, 2026), no dependencies, its own types,
// and a compact Unicode rendering (two modules a character) that fits a terminal. qrcode-terminal
// has had no release since 2018; qrcode (1.5.4, 2024) would bring yargs and pngjs along.

import crypto from 'node:crypto';
import { renderUnicodeCompact } from 'uqr';
import { StopRunError, type ProviderContext } from '../types.ts';
import type { XiaomiCredentials } from './client.ts';
import { QrCancelledError, QrLogin, type QrShown } from './qr-login.ts';
import { baseUrlOf, hostPolicyOf } from './session.ts';

/**
 * The QR code as terminal text. uqr draws the light modules with the block characters, which
 * suits the usual light-on-dark terminal (Do1e/mijia-api prints inverted for the same reason); in
 * a terminal the colours are set (white on black) so that a light-background theme cannot turn
 * the code negative.
 */
export function drawQr(text: string, tty: boolean): string {
  const lines = renderUnicodeCompact(text, { border: 2 }).split('\n');
  return lines.map((l) => (tty ? `  \x1b[97;40m${l}\x1b[0m` : `  ${l}`)).join('\n');
}

function shownText(s: QrShown, tty: boolean): string {
  const minutes = Math.max(1, Math.round(s.timeoutS / 60));
  return [
    '',
    s.attempt === 1
      ? 'Sign in to Xiaomi Cloud: scan this QR code with the Xiaomi app on your phone (Mi Home, or the scanner of a Xiaomi phone),'
      : `New QR code (${s.attempt} of ${s.attempts}):`,
    s.attempt === 1 ? 'signed in to the account whose gallery you are moving, and confirm the sign-in on the phone.' : '',
    '',
    drawQr(s.loginUrl, tty),
    '',
    'If the code does not scan (some terminal fonts break it), open this link on that phone instead:',
    `  ${s.loginUrl}`,
    `Waiting for the phone to confirm (this code is valid for about ${minutes} min; Ctrl-C cancels)...`,
    '',
  ]
    .filter((l, i, all) => l !== '' || all[i - 1] !== '')
    .join('\n');
}

/**
 * Signs in by QR code and hands back the credentials to store. Ctrl-C while waiting ends it with
 * one line and nothing stored; after the phone confirmed, Ctrl-C is Node's own again.
 */
export async function signInByQr(ctx: ProviderContext): Promise<{ creds: XiaomiCredentials; from: string }> {
  const base = baseUrlOf(ctx.env);
  const out = process.stderr;
  const tty = Boolean(out.isTTY);
  const deviceId = `wb_${crypto.randomUUID()}`;
  const cancel = new AbortController();
  const onSignal = (): void => cancel.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const login = new QrLogin({
      base,
      hosts: hostPolicyOf(ctx, base),
      deviceId,
      signal: cancel.signal,
      onQr: (s) => out.write(`${shownText(s, tty)}\n`),
      onExpired: (attempt, attempts) => out.write(`The QR code expired before the phone confirmed it; showing a new one (${attempt + 1} of ${attempts}).\n`),
      log: ctx.log,
    });
    const done = await login.run();
    out.write('The phone confirmed the sign-in; checking it with Xiaomi Cloud...\n');
    return { creds: { userId: done.userId, passToken: done.passToken, serviceToken: done.serviceToken, deviceId }, from: 'the QR code sign-in' };
  } catch (err) {
    if (err instanceof QrCancelledError) throw new StopRunError('credentials', err.message);
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
