// Shared by the tests: temp folders, the CLI as a real child process, and hashing of trees so
// tests compare the bytes on disk, never the tool's own belief.

import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const CLI = path.join(ROOT, 'bin', 'gallery-bridge.js');

export function tmpDir(prefix = 'gb-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun extends CliResult {
  /** It was SIGKILLed because `killWhen` said so. */
  killed: boolean;
}

export interface CliOptions {
  /** Over the test process's environment; a name set to undefined is left out. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** SIGKILLed after this long (120 s unless said). */
  timeoutMs?: number;
  /** Asked every `pollMs` (20 ms unless said) while the CLI runs: SIGKILL it the first time this is true, as a crash then would. */
  killWhen?: () => boolean | Promise<boolean>;
  pollMs?: number;
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    const watch = opts.killWhen ? killOnce(child, opts.killWhen, opts.pollMs ?? 20) : null;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      watch?.stop();
      resolve({ code, signal, stdout, stderr, killed: watch?.killed() ?? false });
    });
  });
}

/** Polls `when` (one question at a time; a question that fails counts as "not yet") and SIGKILLs `child` the first time it is true. */
function killOnce(child: ChildProcess, when: () => boolean | Promise<boolean>, everyMs: number): { stop(): void; killed(): boolean } {
  let killed = false;
  let asking = false;
  const poll = setInterval(async () => {
    if (asking || killed) return;
    asking = true;
    try {
      if (await when()) killed = child.kill('SIGKILL');
    } catch {
      // not yet
    } finally {
      asking = false;
    }
  }, everyMs);
  return { stop: () => clearInterval(poll), killed: () => killed };
}

/**
 * Starts the CLI and SIGKILLs it the moment `reached()` is true (checked every 5 ms), as a crash
 * at that point would; resolves once the process is gone. Rejects if the run ends on its own first.
 */
export async function killCliWhen(args: string[], env: Record<string, string>, reached: () => boolean): Promise<void> {
  const run = await runCli(args, { env, killWhen: reached, pollMs: 5 });
  if (!run.killed) throw new Error(`the migration ended before it could be killed (exit ${run.code}): ${run.stderr}`);
}

/**
 * The environment for a CLI child whose wall clock starts at `at` and whose time zone is `tz`
 * (test/fake-clock.mjs), for paths that print or compute local times: near midnight and far from
 * UTC is where they go wrong.
 */
export function clockEnv(at: Date, tz: string): Record<string, string> {
  const preload = `--import=${pathToFileURL(path.join(ROOT, 'test', 'fake-clock.mjs')).href}`;
  return { TZ: tz, GALLERY_BRIDGE_TEST_NOW: at.toISOString(), NODE_OPTIONS: [process.env.NODE_OPTIONS, preload].filter(Boolean).join(' ') };
}

/** `t` as a person in `timeZone` reads it: the day (YYYY-MM-DD) and the time (HH:MM). */
export function localDayAndTime(t: number, timeZone: string): { day: string; hm: string } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(t);
  const p = (type: string) => parts.find((x) => x.type === type)!.value;
  return { day: `${p('year')}-${p('month')}-${p('day')}`, hm: `${p('hour')}:${p('minute')}` };
}

/**
 * Every way a run between `fromMs` and `toMs` can print the end of a `pauseMs` pause as a local
 * time in `timeZone`: HH:MM, with the date in front when the pause ends on another day than it began.
 */
export function pauseEndChoices(fromMs: number, toMs: number, pauseMs: number, timeZone: string): string[] {
  const out = new Set<string>();
  for (let t = fromMs - (fromMs % 60_000); t <= toMs + 60_000; t += 60_000) {
    const end = localDayAndTime(t + pauseMs, timeZone);
    out.add(end.day === localDayAndTime(t, timeZone).day ? end.hm : `${end.day} ${end.hm}`);
  }
  return [...out];
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** relative path -> sha256 of every regular file below dir (hidden files included). */
export function treeHashes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const d of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(r);
      else if (d.isFile()) out.set(r, sha256File(path.join(dir, r)));
    }
  };
  if (fs.existsSync(dir)) walk('');
  return out;
}

/** Copies fixtures into albums: { Camera: ['a.jpg', ...], ... } or '' for the root. */
export function makeSource(dir: string, albums: Record<string, string[]>): void {
  for (const [album, files] of Object.entries(albums)) {
    fs.mkdirSync(path.join(dir, album), { recursive: true });
    for (const f of files) fs.copyFileSync(path.join(FIXTURES, f), path.join(dir, album, f));
  }
}

export const SAMPLE_MEDIA = fs.readdirSync(FIXTURES).filter((f) => !f.startsWith('.'));

/** A repeatable random source for tests: the emulators' own, so a seed means the same everywhere. */
export { seededRandom as seeded } from '../src/emulator/kit.ts';

/** The OneDrive emulator's TLS flags for the test CA that test/setup/tls.ts made (none without it). */
export function tlsArgs(): string[] {
  const t = process.env.GALLERY_BRIDGE_TEST_TLS;
  if (!t) return [];
  const f = JSON.parse(t) as { ca: string; cert: string; key: string };
  return ['--tls-cert', f.cert, '--tls-key', f.key, '--tls-ca', f.ca];
}
