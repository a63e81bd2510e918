// Helpers for benchmark suites: run a command and time it, watching its peak memory and CPU.

import { spawn } from 'node:child_process';
import fs from 'node:fs';

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

export function measure(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; firstLine?: RegExp } = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
    const timer = setInterval(sample, 50);
    child.stdout.on('data', (d) => {
      stdout += d;
      if (opts.firstLine && firstMatchMs === undefined && opts.firstLine.test(stdout)) firstMatchMs = performance.now() - start;
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', () => sample());
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code, wallMs: performance.now() - start, peakRss: peak, cpuMs: cpu, stdout, stderr, firstMatchMs });
    });
  });
}

export function which(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => {
    try {
      fs.accessSync(`${d}/${cmd}`, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
