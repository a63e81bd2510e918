// Secrets never leave their files: migrations run with known cookie, token and refresh-token
// values, then every log line, report, state database (with its -wal/-shm) and error message is
// searched for them, with the dashboard `serve` shows. Credential and state files are 0600, and a credential file others can read
// stops the tool before it starts, saying how to fix it.

import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { makeSeed, readEmulatorState, startEmulator } from '../providers/xiaomi/test-support.ts';
import type { XiaomiEmulator } from '../providers/xiaomi/emulator/server.ts';
import { startOneDriveEmulator } from '../providers/onedrive/emulator/server.ts';
import { startGoogleEmulator, type Emu } from './google-photos-emulator.ts';
import { spawn } from 'node:child_process';
import { CLI, FIXTURES, ROOT, runCli, tmpDir, type CliResult, tlsArgs } from './helpers.ts';
import { startDashboard } from '../src/commands/serve.ts';
import type { AddressInfo } from 'node:net';

/** The dashboard's pages for a state file, as `serve` shows them. */
async function dashboardPages(state: string): Promise<Array<{ file: string; text: string }>> {
  const server = await startDashboard(state, 0);
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const page = await (await fetch(`${base}/`)).text();
    expect(page.length).toBeGreaterThan(100);
    return [{ file: 'dashboard /', text: page }];
  } finally {
    await new Promise((r) => server.close(r));
  }
}

const PASS_TOKEN = 'pt-KNOWN-passToken-5a1f9c';
const SERVICE_TOKEN = 'st-KNOWN-serviceToken-93c2e1';
const OD_TOKEN = 'od-KNOWN-access-token-77e1b0';
const G_TOKEN = 'g-KNOWN-access-token-41d7aa';
const G_REFRESH = '1//g-KNOWN-refresh-token-0e9f33';
const G_SECRET = 'g-KNOWN-client-secret-6b2d';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function xiaomi(t: string, flags: { sessionTtl?: number } = {}): Promise<XiaomiEmulator> {
  const seed = makeSeed(path.join(t, 'seed'), undefined, (n) => ['f6t.jpg', 'noexif.jpg', 'IMG_20180725_163423.jpg', 'VID_20230514_101112.mp4'].includes(n));
  const emu = await startEmulator(path.join(t, 'xiaomi'), { seed, passToken: PASS_TOKEN, serviceToken: SERVICE_TOKEN, ...flags });
  closers.push(() => emu.close());
  return emu;
}

async function onedrive(t: string): Promise<Record<string, string>> {
  const e = await startOneDriveEmulator(['--port', '0', '--data', path.join(t, 'onedrive'), '--accept-token', OD_TOKEN, ...tlsArgs()]);
  closers.push(() => e.close());
  return e.env;
}

async function google(extra: string[] = []): Promise<Emu> {
  const e = await startGoogleEmulator(G_TOKEN, ['--video-processing-ms', '0', ...extra]);
  closers.push(() => e.close());
  return e;
}

/** Every file below dir, as text that a secret could hide in (SQLite pages included). */
function filesBelow(dir: string, skip: (rel: string) => boolean = () => false): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  if (!fs.existsSync(dir)) return out;
  for (const rel of fs.readdirSync(dir, { recursive: true }).map(String)) {
    const f = path.join(dir, rel);
    if (skip(rel) || !fs.statSync(f).isFile()) continue;
    out.push({ file: f, text: fs.readFileSync(f).toString('latin1') });
  }
  return out;
}

function expectNoSecret(secrets: string[], places: Array<{ file: string; text: string }>): void {
  expect(places.length).toBeGreaterThan(0);
  for (const s of secrets) {
    for (const p of places) {
      expect(p.text.includes(s), `${s.slice(0, 10)}… found in ${p.file}`).toBe(false);
      // A secret in UTF-16 or base64 is still a secret.
      expect(p.text.includes(Buffer.from(s).toString('base64').slice(0, 16)), `${s.slice(0, 10)}… (base64) found in ${p.file}`).toBe(false);
    }
  }
}

const outputs = (...runs: CliResult[]) => runs.map((r, i) => ({ file: `output of run ${i + 1}`, text: r.stdout + r.stderr }));

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe('secrets never appear in logs, reports, state databases or error messages', () => {
  it('xiaomi -> onedrive with a renewed session, then reports in every format', async () => {
    const t = tmpDir('gb-secrets-');
    const emu = await xiaomi(t, { sessionTtl: 1 });
    const od = await onedrive(t);
    const home = path.join(t, 'home');
    const env = {
      XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!,
      XIAOMI_COOKIE: emu.env.XIAOMI_COOKIE!,
      XIAOMI_DELETE_PAUSE_MS: '0',
      GRAPH_BASE_URL: od.GRAPH_BASE_URL!,
      NODE_EXTRA_CA_CERTS: od.NODE_EXTRA_CA_CERTS ?? process.env.NODE_EXTRA_CA_CERTS!,
      ONEDRIVE_ACCESS_TOKEN: OD_TOKEN,
      GALLERY_BRIDGE_HOME: home,
    };
    expect(env.XIAOMI_COOKIE).toContain(PASS_TOKEN);
    const state = path.join(t, 'state.db');
    const base = ['migrate', '--from', 'xiaomi', '--to', 'onedrive:/Pictures/Secrets', '--state', state, '--delete-source', '--onedrive-chunk-size', '320KiB'];
    const first = await runCli([...base, '--verbose', '--report', path.join(t, 'run-report.html')], { env });
    // The session lives 1 s. A fast first run can finish inside it, so the second starts after it
    // ended: its listing must renew the session, whatever the speed of the machine.
    await new Promise((r) => setTimeout(r, 1500));
    const second = await runCli([...base, '--json', '--verbose'], { env });
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    const reports = ['report.json', 'report.csv', 'report.html'].map((f) => path.join(t, f));
    const made = await Promise.all(reports.map((out) => runCli(['report', '--state', state, '--out', out])));
    const status = await runCli(['status', '--state', state, '--json']);
    expect(made.every((m) => m.code === 0)).toBe(true);
    // The renewed serviceTokens the emulator handed out are secrets too.
    const renewed = Object.keys(
      (readEmulatorState(emu.stateFile.replace(/\/\.emulator\/.*$/, '')) as unknown as { tokens: Record<string, number> }).tokens,
    ).filter((k) => k.startsWith('emu-st-'));
    expect(renewed.length).toBeGreaterThan(0);
    const places = [
      ...(await dashboardPages(state)),
      ...outputs(first, second, status, ...made),
      ...filesBelow(t, (rel) => rel.startsWith('xiaomi') || rel.startsWith('onedrive') || rel.startsWith('seed') || rel.startsWith('home/credentials')),
    ];
    expect(places.some((p) => p.file.endsWith('state.db'))).toBe(true);
    expectNoSecret([PASS_TOKEN, SERVICE_TOKEN, OD_TOKEN, ...renewed], places);
    // Upload URLs carry a temporary credential: kept in the state to resume, never printed.
    for (const p of [...outputs(first, second, status, ...made), ...reports.map((f) => ({ file: f, text: fs.readFileSync(f, 'utf8') }))])
      expect(p.text, p.file).not.toMatch(/tempauth/i);
    for (const f of [state, `${state}-wal`, `${state}-shm`]) if (fs.existsSync(f)) expect(mode(f), f).toBe(0o600);
  });

  it('xiaomi -> google-photos with an access token', async () => {
    const t = tmpDir('gb-secrets-g-');
    const emu = await xiaomi(t);
    const g = await google();
    const state = path.join(t, 'state.db');
    const env = {
      XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!,
      XIAOMI_COOKIE: emu.env.XIAOMI_COOKIE!,
      XIAOMI_DELETE_PAUSE_MS: '0',
      GOOGLE_PHOTOS_BASE_URL: g.env.GOOGLE_PHOTOS_BASE_URL!,
      GOOGLE_ACCESS_TOKEN: G_TOKEN,
      GALLERY_BRIDGE_HOME: path.join(t, 'home'),
    };
    const run = await runCli(
      [
        'migrate',
        '--from',
        'xiaomi',
        '--to',
        'google-photos',
        '--state',
        state,
        '--delete-source',
        '--verbose',
        '--verify-wait',
        '10',
        '--report',
        path.join(t, 'report.json'),
      ],
      { env },
    );
    expect([0, 1], run.stderr + run.stdout).toContain(run.code);
    expect((await g.state()).mediaItems.length).toBeGreaterThan(0);
    expectNoSecret([PASS_TOKEN, SERVICE_TOKEN, G_TOKEN], [...outputs(run), ...filesBelow(t, (rel) => rel.startsWith('xiaomi') || rel.startsWith('seed'))]);
  });

  it('refused credentials: the error messages name no secret (bad cookie, bad token, revoked refresh token)', async () => {
    const t = tmpDir('gb-secrets-bad-');
    const emu = await xiaomi(t);
    const od = await onedrive(t);
    const g = await google(['--client-secret', G_SECRET]);
    const home = path.join(t, 'home');
    const src = path.join(t, 'src');
    fs.mkdirSync(src);
    fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'f6t.jpg'));
    const badCookie = 'userId=1234567890; serviceToken=st-WRONG-serviceToken-11aa22; passToken=pt-WRONG-passToken-33bb44';
    const x = await runCli(['migrate', '--from', 'xiaomi', '--to', `folder:${path.join(t, 'out')}`, '--state', path.join(t, 'x.db')], {
      env: { XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!, XIAOMI_COOKIE: badCookie, GALLERY_BRIDGE_HOME: home },
    });
    expect(x.code, x.stderr).toBe(3);
    const o = await runCli(['migrate', '--from', `folder:${src}`, '--to', 'onedrive:/P', '--state', path.join(t, 'o.db')], {
      env: {
        GRAPH_BASE_URL: od.GRAPH_BASE_URL!,
        NODE_EXTRA_CA_CERTS: od.NODE_EXTRA_CA_CERTS ?? process.env.NODE_EXTRA_CA_CERTS!,
        ONEDRIVE_ACCESS_TOKEN: 'od-WRONG-access-token-55cc66',
        GALLERY_BRIDGE_HOME: home,
      },
    });
    expect(o.code, o.stderr).toBe(3);
    // A stored Google sign-in whose refresh token Google no longer honours.
    const cred = path.join(home, 'credentials', 'google-photos', 'default.json');
    fs.mkdirSync(path.dirname(cred), { recursive: true, mode: 0o700 });
    fs.writeFileSync(cred, JSON.stringify({ client_id: 'c.apps.googleusercontent.com', refresh_token: G_REFRESH }), { mode: 0o600 });
    const gr = await runCli(['migrate', '--from', `folder:${src}`, '--to', 'google-photos', '--state', path.join(t, 'g.db')], {
      env: {
        GOOGLE_PHOTOS_BASE_URL: g.env.GOOGLE_PHOTOS_BASE_URL!,
        GOOGLE_OAUTH_TOKEN_URL: g.env.GOOGLE_OAUTH_TOKEN_URL!,
        GOOGLE_OAUTH_AUTH_URL: g.env.GOOGLE_OAUTH_AUTH_URL!,
        GOOGLE_CLIENT_ID: 'c.apps.googleusercontent.com',
        GOOGLE_CLIENT_SECRET: G_SECRET,
        GOOGLE_ACCESS_TOKEN: '',
        GALLERY_BRIDGE_HOME: home,
      },
    });
    expect(gr.code, gr.stderr + gr.stdout).toBe(3);
    expect(fs.existsSync(path.join(src, 'f6t.jpg'))).toBe(true);
    const places = [
      ...outputs(x, o, gr),
      ...filesBelow(t, (rel) => rel.startsWith('home/credentials') || rel.startsWith('xiaomi') || rel.startsWith('onedrive') || rel.startsWith('seed')),
    ];
    expectNoSecret(['st-WRONG-serviceToken-11aa22', 'pt-WRONG-passToken-33bb44', 'od-WRONG-access-token-55cc66', G_REFRESH, G_SECRET], places);
  });
});

/** `auth xiaomi` by QR code, the phone's part played through the emulator's control endpoint. */
async function qrSignIn(emu: XiaomiEmulator, home: string): Promise<CliResult> {
  const env = {
    ...process.env,
    GALLERY_BRIDGE_BACKOFF_SCALE: '0.01',
    XIAOMI_BASE_URL: emu.baseUrl,
    GALLERY_BRIDGE_HOME: home,
    XIAOMI_COOKIE: '',
    XIAOMI_USER_ID: '',
    XIAOMI_PASS_TOKEN: '',
    XIAOMI_COOKIE_FILE: '',
  };
  const child = spawn(process.execPath, [CLI, 'auth', 'xiaomi'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let confirmed = false;
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => {
    stderr += d;
    const link = /^\s+(http:\/\/127\.0\.0\.1:\d+\/longPolling\/login\?\S+)$/m.exec(stderr)?.[1];
    if (link && !confirmed) {
      confirmed = true;
      void fetch(`${emu.baseUrl}/_emulator/qr/confirm`, { method: 'POST', body: new URLSearchParams({ loginUrl: link }) });
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

describe('secrets of a QR code sign-in', () => {
  it('the passToken and serviceTokens it gets appear only in the credential file, not in its output, a migration from it, or its state', async () => {
    const t = tmpDir('gb-secrets-qr-');
    const emu = await xiaomi(t, { sessionTtl: 1 });
    const home = path.join(t, 'home');
    const auth = await qrSignIn(emu, home);
    expect(auth.code, auth.stderr).toBe(0);
    const stored = JSON.parse(fs.readFileSync(path.join(home, 'credentials', 'xiaomi', 'default.json'), 'utf8')) as Record<string, string>;
    expect(stored.passToken).toBe(PASS_TOKEN);
    const state = path.join(t, 'state.db');
    const run = await runCli(
      ['migrate', '--from', 'xiaomi', '--to', `folder:${path.join(t, 'out')}`, '--state', state, '--verbose', '--report', path.join(t, 'report.json')],
      {
        env: { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home, XIAOMI_COOKIE: '', XIAOMI_USER_ID: '', XIAOMI_PASS_TOKEN: '' },
      },
    );
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const tokens = Object.keys((readEmulatorState(path.join(t, 'xiaomi')) as unknown as { tokens: Record<string, number> }).tokens).filter((k) =>
      k.startsWith('emu-st-'),
    );
    expect(tokens).toContain(stored.serviceToken);
    const places = [...outputs(auth, run), ...filesBelow(t, (rel) => rel.startsWith('home/credentials') || rel.startsWith('xiaomi') || rel.startsWith('seed'))];
    expect(places.some((p) => p.file.endsWith('state.db'))).toBe(true);
    expectNoSecret([PASS_TOKEN, SERVICE_TOKEN, ...tokens], places);
  });
});

describe('credential and state files are private', () => {
  it('`auth xiaomi` stores the session 0600 in a 0700 folder; the state file is 0600', async () => {
    const t = tmpDir('gb-secrets-auth-');
    const emu = await xiaomi(t);
    const home = path.join(t, 'home');
    const cookieFile = path.join(t, 'cookie.txt');
    fs.writeFileSync(cookieFile, `userId=1234567890; passToken=${PASS_TOKEN}\n`, { mode: 0o600 });
    const auth = await runCli(['auth', 'xiaomi'], {
      env: { XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!, GALLERY_BRIDGE_HOME: home, XIAOMI_COOKIE_FILE: cookieFile },
    });
    expect(auth.code, auth.stderr).toBe(0);
    expect(auth.stdout + auth.stderr).not.toContain(PASS_TOKEN);
    const stored = path.join(home, 'credentials', 'xiaomi', 'default.json');
    expect(mode(stored)).toBe(0o600);
    expect(mode(path.dirname(stored))).toBe(0o700);
    const state = path.join(t, 'state.db');
    const run = await runCli(['migrate', '--from', 'xiaomi', '--to', `folder:${path.join(t, 'out')}`, '--state', state], {
      env: { XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!, GALLERY_BRIDGE_HOME: home },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(mode(state)).toBe(0o600);
    // A state file someone made readable is made private again when the tool opens it.
    fs.chmodSync(state, 0o644);
    await runCli(['migrate', '--from', 'xiaomi', '--to', `folder:${path.join(t, 'out')}`, '--state', state], {
      env: { XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!, GALLERY_BRIDGE_HOME: home },
    });
    expect(mode(state)).toBe(0o600);
  });

  it('refuses to start when a credential file is readable by others, and says how to fix it', async () => {
    const t = tmpDir('gb-secrets-mode-');
    const emu = await xiaomi(t);
    const home = path.join(t, 'home');
    const src = path.join(t, 'src');
    fs.mkdirSync(src);
    fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'f6t.jpg'));
    const open = (file: string, text: string) => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text, { mode: 0o644 });
      fs.chmodSync(file, 0o644);
      return file;
    };
    const cases: Array<{ name: string; file: string; args: string[]; env: Record<string, string> }> = [
      {
        name: 'stored xiaomi session',
        file: open(path.join(home, 'credentials', 'xiaomi', 'default.json'), JSON.stringify({ userId: '1234567890', passToken: PASS_TOKEN })),
        args: ['--from', 'xiaomi', '--to', `folder:${path.join(t, 'out')}`],
        env: { XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL! },
      },
      {
        name: 'xiaomi cookie file',
        file: open(path.join(t, 'cookie.txt'), `userId=1234567890; passToken=${PASS_TOKEN}`),
        args: ['--from', 'xiaomi', '--to', `folder:${path.join(t, 'out')}`],
        env: { XIAOMI_BASE_URL: emu.env.XIAOMI_BASE_URL!, XIAOMI_COOKIE_FILE: path.join(t, 'cookie.txt') },
      },
      {
        name: 'stored google sign-in',
        file: open(path.join(home, 'credentials', 'google-photos', 'default.json'), JSON.stringify({ client_id: 'c', refresh_token: G_REFRESH })),
        args: ['--from', `folder:${src}`, '--to', 'google-photos'],
        env: { GOOGLE_CLIENT_ID: 'c', GOOGLE_CLIENT_SECRET: 's', GOOGLE_PHOTOS_BASE_URL: 'http://127.0.0.1:9' },
      },
      {
        name: 'onedrive token cache',
        file: open(path.join(home, 'credentials', 'onedrive', 'default.msal.json'), '{}'),
        args: ['--from', `folder:${src}`, '--to', 'onedrive:/P'],
        env: { ONEDRIVE_CLIENT_ID: '0d1e2f3a-0000-4000-8000-000000000001', GRAPH_BASE_URL: 'https://127.0.0.1:9/v1.0' },
      },
    ];
    for (const c of cases) {
      const before = fs.readFileSync(c.file);
      const r = await runCli(['migrate', ...c.args, '--state', path.join(t, `${c.name.replace(/\W+/g, '-')}.db`), '--delete-source'], {
        env: { GALLERY_BRIDGE_HOME: home, ...c.env },
      });
      expect(r.code, `${c.name}: ${r.stderr}${r.stdout}`).toBe(2);
      expect(r.stderr, c.name).toContain(c.file);
      expect(r.stderr, c.name).toMatch(/readable by others/);
      expect(r.stderr, c.name).toContain(`chmod 600 ${c.file}`);
      expect(r.stderr + r.stdout).not.toContain(PASS_TOKEN);
      expect(r.stderr + r.stdout).not.toContain(G_REFRESH);
      // Nothing was touched: the file as it was, the source whole.
      expect(fs.readFileSync(c.file).equals(before)).toBe(true);
      expect(fs.existsSync(path.join(src, 'f6t.jpg'))).toBe(true);
      expect(Object.keys(readEmulatorState(path.join(t, 'xiaomi')).deleted)).toEqual([]);
      fs.chmodSync(c.file, 0o600);
    }
  });
});
