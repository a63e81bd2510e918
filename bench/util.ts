// Helpers for benchmark suites: run a command and time it, watching its peak memory and CPU.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export interface Measured {
  code: number | null;
  wallMs: number;
  /** Peak resident set size of the child, bytes (VmHWM from /proc, sampled). */
  peakRss: number;
  /** User + system CPU time of the child, ms (from /proc at its last sample). */
  cpuMs: number;
  stdout: string;
  stderr: string;
  /** ms from start to the first stdout line matching `firstLine`, if asked. */
  firstMatchMs?: number;
}

const TICK = 100; // USER_HZ on Linux

/**
 * Runs a command and times it. CPU and peak memory come from /usr/bin/time (the kernel's exact
 * figures for the whole process, every thread) when it is installed, else from /proc samples.
 */
export function measure(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; firstLine?: RegExp; tailOnly?: boolean } = {}): Promise<Measured> {
  const timeFile =
    which('/usr/bin/time') || fs.existsSync('/usr/bin/time') ? `${os.tmpdir()}/gb-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}` : null;
  const argv = timeFile ? ['-f', '%U %S %M', '-o', timeFile, cmd, ...args] : args;
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(timeFile ? '/usr/bin/time' : cmd, argv, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let firstMatchMs: number | undefined;
    let peak = 0;
    let cpu = 0;
    const sample = () => {
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peak = Math.max(peak, Number(hwm[1]) * 1024);
        const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        cpu = ((Number(stat[11]) + Number(stat[12])) * 1000) / TICK;
      } catch {
        // gone
      }
    };
    const timer = timeFile ? null : setInterval(sample, 50);
    // tailOnly: a long run's output is not kept whole (100,000 items print 400,000 lines).
    const keep = (acc: string, d: string) => (opts.tailOnly && acc.length > 1 << 16 ? acc.slice(-(1 << 15)) : acc) + d;
    child.stdout.on('data', (d) => {
      stdout = keep(stdout, String(d));
      if (opts.firstLine && firstMatchMs === undefined && opts.firstLine.test(stdout)) firstMatchMs = performance.now() - start;
    });
    child.stderr.on('data', (d) => (stderr = keep(stderr, String(d))));
    child.on('error', reject);
    child.on('exit', () => timer && sample());
    child.on('close', (code) => {
      const wallMs = performance.now() - start;
      if (timer) clearInterval(timer);
      if (timeFile) {
        try {
          const m = /(\d+\.\d+) (\d+\.\d+) (\d+)\s*$/.exec(fs.readFileSync(timeFile, 'utf8'));
          if (m) {
            cpu = (Number(m[1]) + Number(m[2])) * 1000;
            peak = Number(m[3]) * 1024;
          }
        } catch {
          // no figures: leave zeros
        }
        fs.rmSync(timeFile, { force: true });
      }
      resolve({ code, wallMs, peakRss: peak, cpuMs: cpu, stdout, stderr, firstMatchMs });
    });
  });
}

/** The median of a few numbers (benchmarks repeat a measurement and keep the middle one). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** `npm run bench -- --quick` (or BENCH_QUICK=1): smaller trees and fewer repetitions. */
export const QUICK = process.env.BENCH_QUICK === '1';

export function which(cmd: string): boolean {
  if (cmd.startsWith('/')) return fs.existsSync(cmd);
  return (process.env.PATH ?? '').split(':').some((d) => {
    try {
      fs.accessSync(`${d}/${cmd}`, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const CLI_PATH = new URL('../bin/gallery-bridge.js', import.meta.url).pathname;
/** bin/gallery-bridge.js, for measure(process.execPath, [CLI, ...]). */
export const CLI = CLI_PATH;

export interface Emu {
  env: Record<string, string>;
  child: import('node:child_process').ChildProcess;
  stop(): Promise<void>;
}

/** Starts `gallery-bridge emulator NAME` and resolves once it has printed the keys a run needs. An empty token: no --accept-token (Xiaomi signs in by cookie). */
export async function startEmulator(name: string, data: string, token: string, flags: string[], readyKeys: string[]): Promise<Emu> {
  const child = spawn(process.execPath, [CLI_PATH, 'emulator', name, '--port', '0', '--data', data, ...(token ? ['--accept-token', token] : []), ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const env: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      for (const line of buf.split('\n')) {
        const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
        if (m) env[m[1]!] = m[2]!;
      }
      if (readyKeys.every((k) => env[k])) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the emulator exited (${code})`)));
  });
  return {
    env,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('close', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Runs the CLI with extra environment, timing it and collecting its output. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; ms: number; out: string }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [CLI_PATH, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, ms: performance.now() - start, out }));
  });
}
