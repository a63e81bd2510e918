// Cost per item as the library grows: synthetic items from the Xiaomi emulator (its own process,
// no latency) to a folder, at 1,000 and at 100,000 items. Items/s at 100,000 should stay within
// 0.8 of items/s at 1,000, and peak memory under 250 MB. The rate counts from the first item
// moved to the end of the run, so start-up and the emulator's start do not dilute the small run.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchSuite } from './types.ts';
import { QUICK, measure } from './util.ts';
import type { Measured } from './util.ts';

const CLI = path.resolve(import.meta.dirname, '..', 'bin', 'gallery-bridge.js');

async function xiaomiEmulator(data: string, items: number): Promise<{ env: Record<string, string>; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [CLI, 'emulator', 'xiaomi', '--port', '0', '--data', data, '--synthetic', String(items)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const env: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      for (const line of buf.split('\n')) {
        const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
        if (m) env[m[1]!] = m[2]!;
      }
      if (env.XIAOMI_BASE_URL && env.XIAOMI_COOKIE) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the Xiaomi emulator exited (${code})`)));
  });
  return {
    env,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('close', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function run(items: number): Promise<{ rate: number; m: Measured }> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-scale-'));
  const emu = await xiaomiEmulator(path.join(t, 'emu'), items);
  try {
    const m = await measure(
      process.execPath,
      [CLI, 'migrate', '--from', 'xiaomi', '--to', `folder:${path.join(t, 'dst')}`, '--state', path.join(t, 's.db'), '--json'],
      {
        env: { ...emu.env, XIAOMI_MAX_RPS: '0', GALLERY_BRIDGE_HOME: path.join(t, 'home') },
        firstLine: /"type":"item"/,
        tailOnly: true,
      },
    );
    if (m.code !== 0) throw new Error(`migrate of ${items} items exited ${m.code}: ${m.stderr.slice(-300)}`);
    const st = await measure(process.execPath, [CLI, 'status', '--state', path.join(t, 's.db'), '--json']);
    const moved = (JSON.parse(st.stdout) as { counts: Record<string, { items: number }> }).counts.verified?.items ?? 0;
    if (moved !== items) throw new Error(`${moved} of ${items} items verified`);
    return { rate: (items - 1) / ((m.wallMs - (m.firstMatchMs ?? 0)) / 1000), m };
  } finally {
    await emu.stop();
    fs.rmSync(t, { recursive: true, force: true });
  }
}

// BENCH_SCALE shrinks (or grows) the large run: 0.2 moves 20,000 items instead of 100,000.
const scale = Number(process.env.BENCH_SCALE ?? '1');

export const suite: BenchSuite = async () => {
  // Quick: 500 against 5,000, under a minute. The full pair: 100,000 items at 156 items/s on the
  // shared 2-core machine (2026-11-29), about 11 minutes, and 2 more to delete the files.
  const big = Math.max(2_000, Math.round((QUICK ? 5_000 : 100_000) * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
  const smallN = QUICK ? 500 : 1_000;
  const small = await run(smallN);
  const large = await run(big);
  const ratio = large.rate / small.rate;
  return [
    {
      name: `Xiaomi emulator → folder, ${big.toLocaleString('en')} synthetic items`,
      value: large.rate,
      unit: 'items/s',
      peer: { name: `the same at ${smallN.toLocaleString('en')} items`, value: small.rate, unit: 'items/s' },
      ratio,
      goal: '>= 0.8',
      met: ratio >= 0.8,
    },
    { name: `  peak RSS at ${big.toLocaleString('en')} items`, value: large.m.peakRss / 1e6, unit: 'MB', goal: '< 250 MB', met: large.m.peakRss < 250e6 },
  ];
};
