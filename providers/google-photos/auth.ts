// `gallery-bridge auth google-photos`: the installed-app flow with a loopback redirect (the
// copy-paste flow is gone since 2023). A one-shot HTTP server on 127.0.0.1 receives the code;
// PKCE and a random state protect it. The refresh token goes only to the 0600 credential file.

import crypto from 'node:crypto';
import http from 'node:http';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { StopRunError, type ProviderContext } from '../types.ts';
import { writeCredentials } from '../../src/lib/credentials.ts';
import { reason, redact, registerSecret } from '../../src/lib/redact.ts';
import { googleConfig, newOAuthClient, PROVIDER, type StoredCredentials } from './client.ts';
import { SCOPES } from './protocol.ts';

function tryOpenBrowser(url: string): void {
  if (!process.stdout.isTTY) return;
  const cmd =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : null;
  if (!cmd) return;
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // the printed address is enough
  }
}

export async function runAuth(ctx: ProviderContext): Promise<void> {
  const cfg = googleConfig(ctx.env);
  if (!cfg.clientId || !cfg.clientSecret) {
    throw new StopRunError(
      'config',
      'set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET to an OAuth client of type "Desktop app" from your Google Cloud project (Photos Library API enabled)',
    );
  }
  const timeoutMs = Number(ctx.env.GALLERY_BRIDGE_AUTH_TIMEOUT_MS ?? 5 * 60_000);
  const state = crypto.randomBytes(16).toString('hex');
  let resolveCode!: (code: string) => void;
  let rejectCode!: (err: Error) => void;
  const gotCode = new Promise<string>((res, rej) => {
    resolveCode = res;
    rejectCode = rej;
  });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const code = url.searchParams.get('code');
    const error = url.searchParams.get('error');
    if (!code && !error) {
      res.writeHead(404).end();
      return;
    }
    const page = (text: string) =>
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>gallery-bridge</title><p>${text}</p>`);
    if (url.searchParams.get('state') !== state) {
      page('This answer does not belong to the sign-in that gallery-bridge started. Close this window and try again.');
      rejectCode(new Error('the OAuth answer carried an unknown state'));
    } else if (error) {
      page('Google did not grant access. You can close this window.');
      rejectCode(new Error(`Google answered ${error}`));
    } else {
      page('gallery-bridge has access to Google Photos now. You can close this window.');
      resolveCode(code!);
    }
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const timer = setTimeout(() => rejectCode(new Error(`no answer from the browser within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
  try {
    const oauth = await newOAuthClient(cfg, redirectUri);
    const { codeVerifier, codeChallenge } = await oauth.generateCodeVerifierAsync();
    const authUrl = oauth.generateAuthUrl({
      access_type: 'offline',
      prompt: 'consent',
      scope: SCOPES,
      state,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256' as never,
    });
    process.stdout.write(
      `Open this address in a browser, sign in to the Google account to migrate into, and allow access:\n\n  ${redact(authUrl)}\n\nWaiting for Google's answer on ${redirectUri} ...\n`,
    );
    tryOpenBrowser(authUrl);
    const code = await gotCode;
    let tokens;
    try {
      tokens = (await oauth.getToken({ code, codeVerifier, redirect_uri: redirectUri })).tokens;
    } catch (err) {
      throw new StopRunError('credentials', `Google did not exchange the sign-in code: ${reason(err)}`);
    }
    registerSecret(tokens.access_token ?? null);
    registerSecret(tokens.refresh_token ?? null);
    if (!tokens.refresh_token)
      throw new StopRunError(
        'credentials',
        'Google gave no refresh token: remove gallery-bridge from https://myaccount.google.com/permissions and run the sign-in again',
      );
    const granted = (tokens.scope ?? '').split(/\s+/);
    const missing = SCOPES.filter((s) => !granted.includes(s));
    if (tokens.scope && missing.length)
      ctx.log.warn(`Google did not grant ${missing.join(', ')}: uploads or verification will fail. Run the sign-in again and tick every box.`);
    const stored: StoredCredentials = {
      client_id: cfg.clientId,
      refresh_token: tokens.refresh_token,
      scope: tokens.scope ?? SCOPES.join(' '),
      obtained_at: new Date().toISOString(),
    };
    const file = writeCredentials(ctx.home, PROVIDER, ctx.account, stored);
    process.stdout.write(
      `Signed in. The refresh token is stored in ${file} (readable only by you).\n` +
        'Note: if your OAuth client is in "Testing" publishing status, Google expires its refresh tokens after 7 days;\n' +
        'a longer migration then stops with "credentials" and needs `gallery-bridge auth google-photos` again (or publish the app).\n',
    );
  } finally {
    clearTimeout(timer);
    server.closeAllConnections?.();
    server.close();
  }
}
