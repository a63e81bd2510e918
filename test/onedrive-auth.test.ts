// msal-node's real code paths against the emulator's sign-in endpoints: the device-code flow
// (which the emulator approves by itself), silent refresh from the 0600 token cache, and the
// app-only client-credentials flow with a secret and with a certificate, writing to a user's drive.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import selfsigned from 'selfsigned';
import { authSettings, cacheFile, signIn, tokenSource } from '../providers/onedrive/auth.ts';
import { GraphHttp, GraphHttpError } from '../providers/onedrive/graph.ts';
import { createOneDriveDestination } from '../providers/onedrive/index.ts';
import { startOneDriveEmulator } from '../providers/onedrive/emulator/server.ts';
import type { ProviderContext } from '../providers/types.ts';
import { StopRunError } from '../providers/types.ts';
import { hashBuffer } from '../src/hash/multihash.ts';
import { redact } from '../src/lib/redact.ts';
import { tmpDir, tlsArgs } from './helpers.ts';
import { memoryStore, quietLog } from './helpers/provider-fakes.ts';

describe('OneDrive sign-in through msal-node against the emulator', () => {
  let emu: Awaited<ReturnType<typeof startOneDriveEmulator>>;
  let data: string;
  let origin: string;
  const https: GraphHttp[] = [];

  beforeAll(async () => {
    data = tmpDir('gb-od-auth-');
    emu = await startOneDriveEmulator(['--port', '0', '--data', data, '--token-ttl', '3600', '--client-secret', 's3cret-value', ...tlsArgs()]);
    origin = new URL(emu.env.ONEDRIVE_AUTHORITY!).origin;
  });
  afterAll(async () => {
    for (const h of https) h.close();
    await emu.close();
  });

  const graph = (tokens: ReturnType<typeof tokenSource>) => {
    const h = new GraphHttp({ baseUrl: emu.env.GRAPH_BASE_URL!, tokens, pacers: [] });
    https.push(h);
    return h;
  };

  it('device code: signs in, caches tokens at 0600, refreshes silently, never prints a token', async () => {
    const home = tmpDir('gb-od-home-');
    const env = { ONEDRIVE_CLIENT_ID: '11111111-2222-3333-4444-555555555555', ONEDRIVE_AUTHORITY: emu.env.ONEDRIVE_AUTHORITY };
    const s = authSettings(env, home, 'alice');
    const lines: string[] = [];
    const who = await signIn(s, (l) => lines.push(l));
    expect(who.kind).toBe('delegated');
    expect(lines.join('\n')).toMatch(/enter the code [0-9A-F]{8}/);
    const file = cacheFile(s);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(file.startsWith(path.join(home, 'credentials', 'onedrive'))).toBe(true);

    // A new process: only the cache file links the runs.
    const tokens = tokenSource(authSettings(env, home, 'alice'));
    const t1 = await tokens.get();
    const drive = await graph(tokens).api<{ quota: { remaining: number } }>('get', '/me/drive');
    expect(drive.quota.remaining).toBeGreaterThan(0);
    const t2 = await tokens.get(true); // forced refresh through the refresh-token grant
    expect(t2).not.toBe(t1);
    expect(redact(`token ${t1} and ${t2}`)).not.toContain(t1);
    expect(redact(`token ${t2}`)).not.toContain(t2);
    expect(lines.join('\n')).not.toContain(t1);

    // Another account name has no sign-in: a clean credentials stop, also through the SDK's chain.
    await expect(tokenSource(authSettings(env, home, 'bob')).get()).rejects.toSatisfy((e: unknown) => e instanceof StopRunError && e.kind === 'credentials');
    await expect(graph(tokenSource(authSettings(env, home, 'bob'))).api('get', '/me/drive')).rejects.toSatisfy(
      (e: unknown) => e instanceof StopRunError && e.kind === 'credentials',
    );
  });

  it('app-only with a client secret reaches /users/{id}/drive, not /me', async () => {
    const env = {
      ONEDRIVE_CLIENT_ID: 'app-client',
      ONEDRIVE_TENANT_ID: 'contoso.onmicrosoft.com',
      ONEDRIVE_CLIENT_SECRET: 's3cret-value',
      ONEDRIVE_AUTHORITY: `${origin}/organizations`,
    };
    const tokens = tokenSource(authSettings(env, tmpDir('gb-od-home-'), 'admin'));
    expect(tokens.kind).toBe('app');
    const h = graph(tokens);
    const d = await h.api<{ id: string }>('get', '/users/alice@contoso.com/drive');
    expect(d.id).toBeTruthy();
    await expect(h.api('get', '/me/drive')).rejects.toSatisfy((e: unknown) => e instanceof GraphHttpError && e.status === 400);
    const wrong = tokenSource(authSettings({ ...env, ONEDRIVE_CLIENT_SECRET: 'wrong-secret' }, tmpDir('gb-od-home-'), 'admin'));
    await expect(wrong.get()).rejects.toSatisfy((e: unknown) => e instanceof StopRunError && e.kind === 'credentials');
  });

  it('app-only with a certificate, end to end through the destination into a user drive', async () => {
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'gallery-bridge app' }], { keySize: 2048, algorithm: 'sha256' });
    const home = tmpDir('gb-od-home-');
    const pemFile = path.join(home, 'app.pem');
    fs.writeFileSync(pemFile, `${pems.private}\n${pems.cert}`, { mode: 0o600 });
    const env = {
      ONEDRIVE_CLIENT_ID: 'app-client',
      ONEDRIVE_TENANT_ID: '0e6e6c7a-1111-2222-3333-444455556666',
      ONEDRIVE_CLIENT_CERTIFICATE: pemFile,
      ONEDRIVE_AUTHORITY: `${origin}/organizations`,
      GRAPH_BASE_URL: emu.env.GRAPH_BASE_URL,
    };
    const ctx: ProviderContext = {
      arg: 'bob@contoso.com:/Pictures/Xiaomi',
      home,
      account: 'admin',
      env,
      options: { layout: 'album' },
      store: memoryStore(),
      log: quietLog,
    };
    const dest = await createOneDriveDestination(ctx);
    try {
      const bytes = crypto.randomBytes(800_000);
      const item = { id: 'x1', name: 'IMG_1.jpg', albumId: 'a', albumName: 'Camera', size: bytes.length, kind: 'image' as const };
      const facts = { captureTime: null, captureTimeSource: 'none' as const, mimeType: 'image/jpeg', kind: 'image' as const };
      const container = await dest.prepareContainer(item, facts);
      const sess = {
        key: 'test-item',
        v: null as unknown,
        load: <T>() => sess.v as T,
        save: (x: unknown) => void (sess.v = x),
        clear: () => void (sess.v = null),
      };
      const staged = await dest.upload({
        item,
        facts,
        container,
        name: item.name,
        size: bytes.length,
        body: Readable.from([bytes]),
        session: sess,
        signal: new AbortController().signal,
      });
      const [res] = await dest.commit([
        { staged, input: { item, facts, container, name: item.name, size: bytes.length, session: sess }, hashes: hashBuffer(bytes) },
      ]);
      expect(res!.outcome).toBe('created');
      expect(fs.readFileSync(path.join(data, 'bob@contoso.com', 'Pictures', 'Xiaomi', 'Camera', 'IMG_1.jpg')).equals(bytes)).toBe(true);
    } finally {
      await dest.close?.();
    }
    // App-only without a user in the spec is a configuration error.
    await expect(createOneDriveDestination({ ...ctx, arg: '/Pictures' })).rejects.toSatisfy((e: unknown) => e instanceof StopRunError && e.kind === 'config');
  });

  it('personal accounts cannot be reached app-only (the consumers authority refuses client credentials)', async () => {
    const env = {
      ONEDRIVE_CLIENT_ID: 'app-client',
      ONEDRIVE_TENANT_ID: 'consumers',
      ONEDRIVE_CLIENT_SECRET: 's3cret-value',
      ONEDRIVE_AUTHORITY: emu.env.ONEDRIVE_AUTHORITY,
    };
    expect(() => tokenSource(authSettings(env, tmpDir('gb-od-home-'), 'x'))).toThrow(StopRunError);
    // And the emulator's token endpoint refuses it too, as Microsoft's does.
    const res = await fetch(`${origin}/consumers/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: 'app-client',
        client_secret: 's3cret-value',
        grant_type: 'client_credentials',
        scope: 'https://graph.microsoft.com/.default',
      }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('unauthorized_client');
  });
});
