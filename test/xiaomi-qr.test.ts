// Signing in by QR code, through the real CLI against the emulator: `gallery-bridge auth xiaomi`
// runs as a child process (in a pseudo-terminal where the terminal matters), prints the QR code
// and its link; the test reads the link from the terminal and "scans and confirms" it through the
// emulator's control endpoint (the phone's stand-in, not part of the real service). What happened
// is checked from the outside: the credential file, the emulator's counters, a migration from
// the stored credentials, and the bytes in the destination.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSeed, readEmulatorState, startEmulator, tmpDir } from '../providers/xiaomi/test-support.ts';
import type { XiaomiEmulator } from '../providers/xiaomi/emulator/server.ts';
import type { QrEmulatorOptions } from '../providers/xiaomi/emulator/routes/qr.ts';
import { CLI, ROOT, sha256File } from './helpers.ts';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

/** Credentials the child must not inherit from whoever runs the tests: the QR path is taken only without them. */
const NO_GIVEN_CREDENTIALS = { XIAOMI_COOKIE: '', XIAOMI_USER_ID: '', XIAOMI_PASS_TOKEN: '', XIAOMI_COOKIE_FILE: '' };

interface Running {
  child: ChildProcess;
  /** Everything the terminal showed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the first match of `re` in the output (after `from` characters). */
  waitFor(re: RegExp, from?: number): Promise<RegExpExecArray>;
  exit: Promise<number | null>;
}

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Starts the CLI; with `pty` inside a pseudo-terminal (util-linux `script`), so the tool sees a
 * terminal as a person's would, and Ctrl-C is a byte typed at it.
 */
function startCli(args: string[], env: Record<string, string>, pty = false): Running {
  const fullEnv = { ...process.env, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01', ...NO_GIVEN_CREDENTIALS, ...env };
  const child = pty
    ? // `exec`: script runs the command through $SHELL -c, and dash (Debian's /bin/sh, which CI
      // gets with SHELL unset; set here so every runner is alike) stays as the parent, dies of the
      // Ctrl-C itself and hides the tool's exit status behind 130. A person's shell makes the tool
      // the terminal's foreground job, as exec does.
      spawn('script', ['-qfec', `exec ${[process.execPath, CLI, ...args].map(sh).join(' ')}`, '/dev/null'], {
        cwd: ROOT,
        env: { ...fullEnv, SHELL: '/bin/sh' },
        stdio: ['pipe', 'pipe', 'pipe'],
      })
    : spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString('utf8');
    for (const l of [...listeners]) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  closers.push(() => {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    output: () => out,
    exit,
    waitFor: (re, from = 0) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(out.slice(from));
          if (m) {
            listeners.delete(check);
            resolve(m);
          }
        };
        listeners.add(check);
        check();
        void exit.then(() => {
          check();
          if (listeners.has(check)) reject(new Error(`the CLI ended before ${re} showed; it printed:\n${out}`));
        });
      }),
  };
}

/** The link the tool prints beside the QR code (what the phone opens). */
const LINK = /^\s+(http:\/\/127\.0\.0\.1:\d+\/longPolling\/login\?\S+?)\s*$/m;

/** The phone's stand-in: scans and confirms the code the link names (emulator only). */
async function confirmOnPhone(emu: { baseUrl: string }, link: string): Promise<Response> {
  return fetch(`${emu.baseUrl}/_emulator/qr/confirm`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ loginUrl: link }),
  });
}

async function emulator(t: string, qr: QrEmulatorOptions = {}): Promise<XiaomiEmulator & { stop(): Promise<void> }> {
  const seed = makeSeed(path.join(t, 'seed'), undefined, (n) => n === 'f6t.jpg' || n === 'noexif.jpg');
  const emu = await startEmulator(path.join(t, 'data'), { seed, qr });
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => (stopped ??= emu.close());
  closers.push(stop);
  return Object.assign(emu, { stop });
}

const credentialFile = (home: string): string => path.join(home, 'credentials', 'xiaomi', 'default.json');

/** Nothing at all (not even a temp file) under the credentials folder. */
function expectNothingStored(home: string): void {
  const dir = path.join(home, 'credentials');
  const files = fs.existsSync(dir)
    ? fs
        .readdirSync(dir, { recursive: true })
        .map(String)
        .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    : [];
  expect(files).toEqual([]);
}

/** One clear line, no stack trace. */
function expectOneLineError(out: string, re: RegExp): void {
  // (A terminal echoes Ctrl-C as "^C" before the line.)
  const errors = out
    .split(/\r?\n/)
    .map((l) => l.replace(/^\^C/, ''))
    .filter((l) => l.startsWith('error:'));
  expect(errors.length, out).toBe(1);
  expect(errors[0], out).toMatch(re);
  expect(out).not.toMatch(/\n\s+at .+:\d+:\d+/);
}

describe('auth xiaomi by QR code', () => {
  it('in a terminal: shows the code and its link, waits for the phone, stores userId and passToken 0600, and a migration runs from them', async () => {
    const t = tmpDir('qr-flow');
    const emu = await emulator(t);
    const home = path.join(t, 'home');
    const env = { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home };
    const auth = startCli(['auth', 'xiaomi'], env, true);
    const [, link] = await auth.waitFor(LINK);
    // The code itself is drawn in the terminal, in block characters, above the link.
    expect(auth.output()).toMatch(/[▀▄█]{10,}/);
    expect(auth.output()).toMatch(/scan this QR code/);
    // Held open while nobody has scanned: no credentials yet.
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.existsSync(credentialFile(home))).toBe(false);
    expect((await confirmOnPhone(emu, link!)).status).toBe(200);
    expect(await auth.exit, auth.output()).toBe(0);
    expect(auth.output()).toMatch(/accepted .*stored in .*default\.json \(mode 0600\)/);

    const file = credentialFile(home);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;
    expect(stored.userId).toBe('1234567890');
    expect(stored.passToken).toBe('emulator-pass-token');
    expect(stored.serviceToken).toMatch(/^emu-st-/);
    expect(stored.deviceId).toMatch(/^wb_[0-9a-f-]{36}$/);
    const counters = readEmulatorState(path.join(t, 'data')).counters;
    expect(counters.qrIssued).toBe(1);
    expect(counters.qrSignedIn).toBe(1);
    // The location hop carried a clientSign the emulator accepted, and none was refused.
    expect(counters.qrBadClientSign ?? 0).toBe(0);
    for (const s of [stored.passToken!, stored.serviceToken!]) expect(auth.output()).not.toContain(s);

    const out = path.join(t, 'out');
    const run = startCli(
      ['migrate', '--from', 'xiaomi', '--to', `folder:${out}`, '--state', path.join(t, 'state.db'), '--report', path.join(t, 'report.json')],
      env,
    );
    expect(await run.exit, run.output()).toBe(0);
    const got = fs
      .readdirSync(out, { recursive: true })
      .map(String)
      .filter((f) => fs.statSync(path.join(out, f)).isFile() && !path.basename(f).startsWith('.'));
    expect(got.length).toBe(2);
    const want = new Set(emu.manifest().map((m) => sha256File(m.file!)));
    for (const f of got) expect(want.has(sha256File(path.join(out, f)))).toBe(true);
  });

  it('a code that expires is replaced by a new one, said so; the new one signs in', async () => {
    const t = tmpDir('qr-expiry');
    const emu = await emulator(t, { timeoutSeconds: 3 });
    const home = path.join(t, 'home');
    const auth = startCli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home });
    const [, first] = await auth.waitFor(LINK);
    const said = await auth.waitFor(/New QR code \(2 of 3\)/);
    const [, second] = await auth.waitFor(LINK, said.index);
    expect(second).not.toBe(first);
    expect(auth.output()).toMatch(/The QR code expired before the phone confirmed it; showing a new one \(2 of 3\)/);
    // The expired code can no longer be confirmed; the new one can.
    expect((await confirmOnPhone(emu, first!)).status).toBe(410);
    expect((await confirmOnPhone(emu, second!)).status).toBe(200);
    expect(await auth.exit, auth.output()).toBe(0);
    expect(JSON.parse(fs.readFileSync(credentialFile(home), 'utf8')).passToken).toBe('emulator-pass-token');
    expect(readEmulatorState(path.join(t, 'data')).counters.qrIssued).toBe(2);
  });

  it('after three codes nobody confirmed it stops with one clear line, exit 3, nothing stored', async () => {
    const t = tmpDir('qr-limit');
    const emu = await emulator(t, { timeoutSeconds: 1 });
    const home = path.join(t, 'home');
    const auth = startCli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home });
    expect(await auth.exit, auth.output()).toBe(3);
    expectOneLineError(auth.output(), /no phone confirmed the sign-in: 3 QR codes expired .*gallery-bridge auth xiaomi.*nothing was stored/);
    expect(auth.output().match(LINK_ALL)?.length).toBe(3);
    expect(readEmulatorState(path.join(t, 'data')).counters.qrIssued).toBe(3);
    expectNothingStored(home);
  });

  it('Ctrl-C while waiting cancels with one line, exit 3, nothing stored', async () => {
    const t = tmpDir('qr-cancel');
    const emu = await emulator(t);
    const home = path.join(t, 'home');
    const auth = startCli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home }, true);
    await auth.waitFor(/Waiting for the phone/);
    auth.child.stdin!.write('\x03');
    expect(await auth.exit, auth.output()).toBe(3);
    expectOneLineError(auth.output(), /sign-in cancelled before the phone confirmed it; nothing was stored/);
    expectNothingStored(home);
  });

  it('a long-poll host outside the allow-list is refused before anything is sent there', async () => {
    const t = tmpDir('qr-host');
    const emu = await emulator(t, { lpHost: 'lp.example.net' });
    const home = path.join(t, 'home');
    const auth = startCli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home });
    expect(await auth.exit, auth.output()).toBe(3);
    expectOneLineError(auth.output(), /lp\.example\.net.*(not https|allow-list).*long-poll address.*nothing was stored/);
    expect(readEmulatorState(path.join(t, 'data')).counters.qrPolls ?? 0).toBe(0);
    expectNothingStored(home);
  });

  it('the sign-in service going away during the long poll ends with one clear line, nothing stored', async () => {
    const t = tmpDir('qr-network');
    const emu = await emulator(t);
    const home = path.join(t, 'home');
    const auth = startCli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home });
    await auth.waitFor(/Waiting for the phone/);
    await emu.stop();
    expect(await auth.exit, auth.output()).toBe(3);
    expectOneLineError(auth.output(), /lost the connection to Xiaomi's sign-in service while waiting for the phone.*nothing was stored/);
    expectNothingStored(home);
  });

  it('an answer without the expected fields is one clear line, nothing stored', async () => {
    // A stand-in for a sign-in service that changed its answers: serviceLogin without _sign.
    const t = tmpDir('qr-fields');
    const server = http.createServer((req, res) => {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (req.url!.startsWith('/api/user/login')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return res.end(
          JSON.stringify({ code: 0, result: 'ok', data: { loginUrl: `${base}/pass/serviceLogin?sid=i.mi.com&callback=${encodeURIComponent(`${base}/sts`)}` } }),
        );
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('&&&START&&&{"code":70016,"qs":"%3Fsid%3Di.mi.com","callback":"x"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    const home = path.join(t, 'home');
    const auth = startCli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, GALLERY_BRIDGE_HOME: home });
    expect(await auth.exit, auth.output()).toBe(3);
    expectOneLineError(auth.output(), /serviceLogin answer \(code 70016\) has no _sign; nothing was stored/);
    expectNothingStored(home);
  });
});

const LINK_ALL = new RegExp(LINK.source, 'gm');

describe("the gallery's second check (a sign-in not yet confirmed on a trusted device)", () => {
  // The emulator runs through the real CLI with --gallery-needs-trust: its gallery answers every
  // session as signed out (HTTP 401, the expired-session answer) until POST
  // /_emulator/gallery/trust stands in for a person ticking "trust this device" in a browser.
  const TRUST =
    /Xiaomi accepted the sign-in but its gallery refused it: .*https:\/\/i\.mi\.com\/gallery\/.* signed in to the same Xiaomi account.*"trust this device".*gallery-bridge auth xiaomi.*Advanced Data Protection.*cannot be read by any known tool\.$/;

  async function untrustedEmulator(t: string): Promise<{ baseUrl: string; cookie: string; data: string }> {
    const seed = makeSeed(path.join(t, 'seed'), undefined, (n) => n === 'f6t.jpg' || n === 'noexif.jpg');
    const data = path.join(t, 'data');
    const emu = startCli(['emulator', 'xiaomi', '--seed', seed, '--data', data, '--port', '0', '--gallery-needs-trust'], {});
    const [, cookie] = await emu.waitFor(/^XIAOMI_COOKIE=(.+)$/m);
    const [, baseUrl] = await emu.waitFor(/^XIAOMI_BASE_URL=(\S+)$/m);
    return { baseUrl: baseUrl!, cookie: cookie!.trim(), data };
  }

  const trustDevice = (baseUrl: string): Promise<Response> => fetch(`${baseUrl}/_emulator/gallery/trust`, { method: 'POST' });

  /** Files the destination folder holds (the tool's own dot-files aside). */
  const filesIn = (dir: string): string[] =>
    fs.existsSync(dir)
      ? fs
          .readdirSync(dir, { recursive: true })
          .map(String)
          .filter((f) => fs.statSync(path.join(dir, f)).isFile() && !path.basename(f).startsWith('.'))
      : [];

  it('the emulator: quota and sign-in work, the gallery answers exactly as for an expired session, until the device is trusted', async () => {
    const t = tmpDir('trust-emulator');
    const { baseUrl, cookie } = await untrustedEmulator(t);
    const get = (p: string, c: string): Promise<Response> => fetch(`${baseUrl}${p}`, { headers: { Cookie: c } });
    const quota = await get('/status/lite/alldetail', cookie);
    expect(quota.status).toBe(200);
    expect(((await quota.json()) as { code: number }).code).toBe(0);
    const refused = await get('/gallery/user/album/list?pageNum=0&pageSize=10', cookie);
    const expired = await get('/gallery/user/album/list?pageNum=0&pageSize=10', 'userId=1234567890; serviceToken=no-such-token');
    expect(refused.status).toBe(401);
    expect(expired.status).toBe(401);
    expect(await refused.text()).toBe(await expired.text());
    expect((await trustDevice(baseUrl)).status).toBe(200);
    const opened = await get('/gallery/user/album/list?pageNum=0&pageSize=10', cookie);
    expect(opened.status).toBe(200);
    expect(((await opened.json()) as { code: number }).code).toBe(0);
  });

  it('auth by QR code: the phone confirms, the gallery refuses; one line says what to do, exit 3, nothing stored', async () => {
    const t = tmpDir('trust-qr');
    const emu = await untrustedEmulator(t);
    const home = path.join(t, 'home');
    const auth = startCli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home });
    const [, link] = await auth.waitFor(LINK);
    expect((await confirmOnPhone(emu, link!)).status).toBe(200);
    expect(await auth.exit, auth.output()).toBe(3);
    expectOneLineError(auth.output(), TRUST);
    expectNothingStored(home);
    const counters = readEmulatorState(emu.data).counters;
    expect(counters.qrSignedIn).toBe(1);
    expect(counters.untrustedRefused).toBeGreaterThanOrEqual(1);
    expect(auth.output()).not.toContain('emulator-pass-token');
    expect(auth.output()).not.toMatch(/emu-st-/);

    // Once the device is trusted, the same sign-in goes through and is stored.
    expect((await trustDevice(emu.baseUrl)).status).toBe(200);
    const again = startCli(['auth', 'xiaomi'], { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home });
    const [, link2] = await again.waitFor(LINK);
    expect((await confirmOnPhone(emu, link2!)).status).toBe(200);
    expect(await again.exit, again.output()).toBe(0);
    expect(JSON.parse(fs.readFileSync(credentialFile(home), 'utf8')).passToken).toBe('emulator-pass-token');
  });

  it('auth with cookies: the same line, exit 3, nothing stored', async () => {
    const t = tmpDir('trust-cookie');
    const emu = await untrustedEmulator(t);
    const home = path.join(t, 'home');
    const file = path.join(t, 'cookie.txt');
    fs.writeFileSync(file, 'userId=1234567890\npassToken=emulator-pass-token\n', { mode: 0o600 });
    const auth = startCli(['auth', 'xiaomi', '--cookie-file', file], { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: home });
    expect(await auth.exit, auth.output()).toBe(3);
    expectOneLineError(auth.output(), TRUST);
    expectNothingStored(home);
    expect(auth.output()).not.toContain('emulator-pass-token');
  });

  it('migrate --delete-source: says what to do in one line, exit 3, nothing moved or deleted; after trusting, the rerun moves everything', async () => {
    const t = tmpDir('trust-migrate');
    const emu = await untrustedEmulator(t);
    const out = path.join(t, 'out');
    const env = { XIAOMI_BASE_URL: emu.baseUrl, GALLERY_BRIDGE_HOME: path.join(t, 'home'), XIAOMI_COOKIE: emu.cookie };
    const args = ['migrate', '--from', 'xiaomi', '--to', `folder:${out}`, '--state', path.join(t, 'state.db')];
    const run = startCli([...args, '--delete-source'], env);
    expect(await run.exit, run.output()).toBe(3);
    const lines = run.output().split(/\r?\n/).filter(Boolean);
    // The line is the last thing the run says (the engine repeats a stop's reason after its summary).
    expect(lines.at(-1), run.output()).toMatch(new RegExp(`^warn: ${TRUST.source}`));
    for (const l of lines.filter((x) => /trust this device/.test(x))) expect(l).toMatch(TRUST);
    expect(run.output()).not.toMatch(/\n\s+at .+:\d+:\d+/);
    expect(run.output()).not.toContain('emulator-pass-token');
    expect(run.output()).not.toMatch(/emu-st-|emulator-service-token/);
    expect(filesIn(out)).toEqual([]);
    const state = readEmulatorState(emu.data);
    expect(state.deleted).toEqual({});
    expect(state.deleteLog).toEqual([]);
    expect(state.downloads).toEqual({});
    expect(state.counters.storage ?? 0).toBe(0);

    expect((await trustDevice(emu.baseUrl)).status).toBe(200);
    const rerun = startCli(args, env);
    expect(await rerun.exit, rerun.output()).toBe(0);
    const got = filesIn(out);
    expect(got.length).toBe(2);
    const seed = path.join(t, 'seed');
    const want = new Set(filesIn(seed).map((f) => sha256File(path.join(seed, f))));
    for (const f of got) expect(want.has(sha256File(path.join(out, f)))).toBe(true);
  });
});
