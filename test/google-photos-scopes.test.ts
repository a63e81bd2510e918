// Scopes as the real Library API enforces them since 31 March 2025: the emulator is signed in to
// through its own OAuth endpoints with one scope at a time, and every call the tool makes is
// tried with that token. Uploading and creating need appendonly; reading back needs
// readonly.appcreateddata; edit.appcreateddata does neither. Then the tool itself, signed in
// with one scope short, stops with "credentials" and says which scopes to grant.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';
import { startGoogleEmulator, type Emu } from './google-photos-emulator.ts';

const APPEND = 'https://www.googleapis.com/auth/photoslibrary.appendonly';
const READ = 'https://www.googleapis.com/auth/photoslibrary.readonly.appcreateddata';
const EDIT = 'https://www.googleapis.com/auth/photoslibrary.edit.appcreateddata';

let emu: Emu;
let base: string;
const photo = fs.readFileSync(path.join(FIXTURES, fs.readdirSync(FIXTURES).find((f) => /\.jpe?g$/i.test(f))!));

/** The installed-app flow against the emulator: authorize (it approves at once), then exchange the code. */
async function signIn(scopes: string[]): Promise<string> {
  const redirect = 'http://127.0.0.1:9/';
  const q = new URLSearchParams({
    client_id: 'scope-test-client',
    redirect_uri: redirect,
    response_type: 'code',
    scope: scopes.join(' '),
    access_type: 'offline',
  });
  const r = await fetch(`${emu.env.GOOGLE_OAUTH_AUTH_URL}?${q}`, { redirect: 'manual' });
  expect(r.status).toBe(302);
  const code = new URL(r.headers.get('location')!).searchParams.get('code');
  expect(code).toBeTruthy();
  const t = await fetch(emu.env.GOOGLE_OAUTH_TOKEN_URL!, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: code!, client_id: 'scope-test-client', redirect_uri: redirect }),
  });
  const body = (await t.json()) as { access_token: string; scope: string };
  expect(body.scope).toBe(scopes.join(' '));
  return body.access_token;
}

/** Every Library API call the tool makes, with the HTTP status each answers for this token. */
async function tryEveryCall(token: string, ownToken: string): Promise<Record<string, number>> {
  const auth = { Authorization: `Bearer ${token}` };
  const jsonCall = (method: string, p: string, body?: unknown) =>
    fetch(`${base}${p}`, {
      method,
      headers: { ...auth, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  const out: Record<string, number> = {};
  out.rawUpload = (
    await fetch(`${base}/v1/uploads`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/octet-stream', 'X-Goog-Upload-Content-Type': 'image/jpeg', 'X-Goog-Upload-Protocol': 'raw' },
      body: photo,
    })
  ).status;
  const start = await fetch(`${base}/v1/uploads`, {
    method: 'POST',
    headers: {
      ...auth,
      'Content-Length': '0',
      'X-Goog-Upload-Command': 'start',
      'X-Goog-Upload-Protocol': 'resumable',
      'X-Goog-Upload-Raw-Size': String(photo.length),
      'X-Goog-Upload-Content-Type': 'image/jpeg',
    },
  });
  out.resumableStart = start.status;
  // An upload token made with a full token, so batchCreate is judged on the scope alone.
  const uploadToken = await (
    await fetch(`${base}/v1/uploads`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${ownToken}`,
        'Content-Type': 'application/octet-stream',
        'X-Goog-Upload-Content-Type': 'image/jpeg',
        'X-Goog-Upload-Protocol': 'raw',
      },
      body: photo,
    })
  ).text();
  out.batchCreate = (await jsonCall('POST', '/v1/mediaItems:batchCreate', { newMediaItems: [{ simpleMediaItem: { uploadToken, fileName: 'a.jpg' } }] })).status;
  out.albumsCreate = (await jsonCall('POST', '/v1/albums', { album: { title: 'Scopes' } })).status;
  out.albumsList = (await jsonCall('GET', '/v1/albums?pageSize=50&excludeNonAppCreatedData=true')).status;
  out.mediaItemsList = (await jsonCall('GET', '/v1/mediaItems?pageSize=25')).status;
  out.batchGet = (await jsonCall('GET', '/v1/mediaItems:batchGet?mediaItemIds=x')).status;
  return out;
}

beforeAll(async () => {
  emu = await startGoogleEmulator('scope-test-full-token', [], 'gp-scope-emu-');
  base = emu.env.GOOGLE_PHOTOS_BASE_URL!;
});
afterAll(async () => emu?.close());

describe('Google Photos scopes (since 31 March 2025)', () => {
  it('refuses each call that the scope alone does not grant, with 403 insufficient scopes', async () => {
    const own = await signIn([APPEND, READ]);
    const results: Record<string, Record<string, number>> = {};
    for (const [name, scope] of [
      ['appendonly', APPEND],
      ['readonly.appcreateddata', READ],
      ['edit.appcreateddata', EDIT],
    ] as const) {
      results[name] = await tryEveryCall(await signIn([scope]), own);
    }
    expect(results.appendonly).toEqual({
      rawUpload: 200,
      resumableStart: 200,
      batchCreate: 200,
      albumsCreate: 200,
      albumsList: 403,
      mediaItemsList: 403,
      batchGet: 403,
    });
    expect(results['readonly.appcreateddata']).toEqual({
      rawUpload: 403,
      resumableStart: 403,
      batchCreate: 403,
      albumsCreate: 403,
      albumsList: 200,
      mediaItemsList: 200,
      batchGet: 200,
    });
    expect(results['edit.appcreateddata']).toEqual({
      rawUpload: 403,
      resumableStart: 403,
      batchCreate: 403,
      albumsCreate: 403,
      albumsList: 403,
      mediaItemsList: 403,
      batchGet: 403,
    });
    // The refusal reads as Google's.
    const r = await fetch(`${base}/v1/mediaItems:batchGet?mediaItemIds=x`, { headers: { Authorization: `Bearer ${await signIn([EDIT])}` } });
    const body = (await r.json()) as { error: { code: number; status: string; message: string } };
    expect(body.error).toMatchObject({ code: 403, status: 'PERMISSION_DENIED', message: 'Request had insufficient authentication scopes.' });
    // Scopes that no longer exist are refused at sign-in.
    const q = new URLSearchParams({
      client_id: 'c',
      redirect_uri: 'http://127.0.0.1:9/',
      response_type: 'code',
      scope: 'https://www.googleapis.com/auth/photoslibrary',
    });
    const gone = await fetch(`${emu.env.GOOGLE_OAUTH_AUTH_URL}?${q}`, { redirect: 'manual' });
    expect(new URL(gone.headers.get('location')!).searchParams.get('error')).toBe('invalid_scope');
  });

  it('the tool signed in with one scope short stops with exit 3 and names the scopes; with both it migrates', async () => {
    const src = tmpDir('gp-scope-src-');
    fs.copyFileSync(path.join(FIXTURES, fs.readdirSync(FIXTURES).find((f) => /\.jpe?g$/i.test(f))!), path.join(src, 'one.jpg'));
    const run = (token: string, state: string) =>
      runCli(['migrate', '--from', `folder:${src}`, '--to', 'google-photos', '--state', path.join(src, '..', state), '--verify-wait', '20'], {
        env: { GALLERY_BRIDGE_HOME: tmpDir('gp-scope-home-'), GOOGLE_PHOTOS_BASE_URL: base, GOOGLE_ACCESS_TOKEN: token },
      });
    const appendOnly = await run(await signIn([APPEND]), `${path.basename(src)}-a.db`);
    expect(appendOnly.code).toBe(3);
    expect(appendOnly.stdout + appendOnly.stderr).toMatch(/readonly\.appcreateddata/);
    const readOnly = await run(await signIn([READ]), `${path.basename(src)}-r.db`);
    expect(readOnly.code).toBe(3);
    expect(readOnly.stdout + readOnly.stderr).toMatch(/appendonly/);
    const both = await run(await signIn([APPEND, READ]), `${path.basename(src)}-b.db`);
    expect(both.code).toBe(0);
    const sha1 = crypto
      .createHash('sha1')
      .update(fs.readFileSync(path.join(src, 'one.jpg')))
      .digest('hex');
    expect((await emu.state()).mediaItems.some((m) => m.sha1 === sha1)).toBe(true);
  }, 120_000);
});
