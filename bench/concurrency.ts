// The default --concurrency, per provider, set by measurement: items/s of one CLI migration at
// concurrency 1, 2, 4, 8, 16 and 32 (and at the default, if it is none of those) for each
// destination against its emulator with LATENCY_MS per request, for folder → folder, and for the
// Xiaomi source into a folder. Each pair gets one row: the rate at the concurrency the CLI picks
// when none is given, beside the best rate measured in the same run (goal: at least 0.9 of it).
//
// The rate is the steady one: items from the first item staged to the last verified (the run's
// own --json events), so neither the process's start nor a destination's one-time set-up (the
// album folders, a TLS handshake) dilutes the difference that concurrency makes. Every run gets a
// fresh emulator and state, so no run finds the items of another already there.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import type { BenchRow, BenchSuite } from './types.ts';
import { CLI, QUICK, measure, median, startEmulator } from './util.ts';
import type { Emu } from './util.ts';
import { chooseConcurrency } from '../src/commands/concurrency.ts';
import { loadProvider, splitSpec } from '../providers/index.ts';

const LEVELS = (process.env.GB_BENCH_CONCURRENCY_LEVELS ?? '1,2,4,8,16,32').split(',').map(Number);
const LATENCY_MS = Number(process.env.GB_BENCH_CONCURRENCY_LATENCY_MS ?? 50);
/** Items per run against an emulator, and folder → folder (no latency: each run must last long enough to time). */
const ITEMS = QUICK ? 120 : 400;
const FOLDER_ITEMS = QUICK ? 400 : 1500;
/** Runs per level; the median is kept. Levels are visited in turn, so a load spike hits one run of each, not all runs of one. */
const REPEATS = Number(process.env.GB_BENCH_CONCURRENCY_REPEATS ?? (QUICK ? 1 : 3));
/** Only the pairs whose label starts with this (e.g. "folder → folder"), to look at one closer. */
const ONLY = process.env.GB_BENCH_CONCURRENCY_ONLY ?? '';
const TOKEN = 'bench-concurrency-token-0123456789';

interface Pair {
  label: string;
  from: string;
  to: string;
  items: number;
  /** The emulator a run talks to, and the environment that points the CLI at it. */
  emulator?: (data: string) => Promise<Emu>;
  env?: (emu: Emu) => Record<string, string>;
}

const latency = ['--latency-ms', String(LATENCY_MS)];

const PAIRS: Pair[] = [
  { label: 'folder → folder (no latency)', from: 'folder:SRC', to: 'folder:DST', items: FOLDER_ITEMS },
  {
    label: `folder → onedrive emulator, ${LATENCY_MS} ms latency`,
    from: 'folder:SRC',
    to: 'onedrive:/Bench',
    items: ITEMS,
    emulator: (data) => startEmulator('onedrive', data, TOKEN, latency, ['NODE_EXTRA_CA_CERTS', 'GRAPH_BASE_URL']),
    env: (emu) => ({ GRAPH_BASE_URL: emu.env.GRAPH_BASE_URL!, NODE_EXTRA_CA_CERTS: emu.env.NODE_EXTRA_CA_CERTS!, ONEDRIVE_ACCESS_TOKEN: TOKEN }),
  },
  {
    label: `folder → google-photos emulator, ${LATENCY_MS} ms latency`,
    from: 'folder:SRC',
    to: 'google-photos',
    items: ITEMS,
    emulator: (data) =>
      startEmulator('google-photos', data, TOKEN, [...latency, '--video-processing-ms', '0'], ['GOOGLE_PHOTOS_BASE_URL', 'GOOGLE_OAUTH_TOKEN_URL']),
    env: (emu) => ({ GOOGLE_ACCESS_TOKEN: TOKEN, GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL! }),
  },
  {
    label: `xiaomi emulator → folder, ${LATENCY_MS} ms latency (the client's own pacing, as a person runs it)`,
    from: 'xiaomi',
    to: 'folder:DST',
    items: ITEMS,
    emulator: (data) => startEmulator('xiaomi', data, '', [...latency, '--synthetic', String(ITEMS)], ['XIAOMI_BASE_URL', 'XIAOMI_COOKIE']),
    env: (emu) => ({ ...emu.env }),
  },
];

/** Photo-sized JPEGs of noise (so no two share bytes or pixels), in two albums. */
async function makePhotos(dir: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
        const album = path.join(dir, `Album ${(i + k) % 2}`);
        fs.mkdirSync(album, { recursive: true });
        const jpg = await sharp(crypto.randomBytes(320 * 240 * 3), { raw: { width: 320, height: 240, channels: 3 } })
          .jpeg({ quality: 90 })
          .toBuffer();
        fs.writeFileSync(path.join(album, `IMG_${String(i + k).padStart(5, '0')}.jpg`), jpg);
      }),
    );
  }
}

/** A folder holding the first `n` photos of `all` (links, not copies). */
function subset(all: string, dir: string, n: number): void {
  for (const album of fs.readdirSync(all)) {
    fs.mkdirSync(path.join(dir, album), { recursive: true });
    // IMG_00042.jpg is photo 42.
    for (const f of fs.readdirSync(path.join(all, album))) if (Number(f.slice(4, 9)) < n) fs.linkSync(path.join(all, album, f), path.join(dir, album, f));
  }
}

interface RunResult {
  rate: number;
  warnings: number;
}

async function runOnce(pair: Pair, photos: string, concurrency: number): Promise<RunResult> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-conc-'));
  const emu = pair.emulator ? await pair.emulator(path.join(t, 'emu')) : null;
  try {
    const state = path.join(t, 'state.db');
    const spec = (s: string) => s.replace('SRC', photos).replace('DST', path.join(t, 'dst'));
    const r = await measure(
      process.execPath,
      [CLI, 'migrate', '--from', spec(pair.from), '--to', spec(pair.to), '--state', state, '--concurrency', String(concurrency), '--json'],
      {
        env: { GALLERY_BRIDGE_HOME: path.join(t, 'home'), ...(emu && pair.env ? pair.env(emu) : {}) },
      },
    );
    if (r.code !== 0) throw new Error(`${pair.label} at concurrency ${concurrency} exited ${r.code}: ${r.stderr.slice(-400)}`);
    const db = new Database(state, { readonly: true });
    let n: number;
    try {
      n = (db.prepare("SELECT count(*) AS n FROM items WHERE state = 'verified'").get() as { n: number }).n;
    } finally {
      db.close();
    }
    if (n !== pair.items) throw new Error(`${pair.label} at concurrency ${concurrency}: ${n} of ${pair.items} items verified`);
    const events = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; state?: string; at?: string });
    const first = events.find((e) => e.type === 'bytes')?.at;
    const last = events.filter((e) => e.type === 'item' && e.state === 'verified').pop()?.at;
    if (!first || !last) throw new Error(`${pair.label} at concurrency ${concurrency}: no item events in the output`);
    return { rate: (n - 1) / ((Date.parse(last) - Date.parse(first)) / 1000), warnings: (r.stderr.match(/MaxListenersExceededWarning/g) ?? []).length };
  } finally {
    await emu?.stop();
    fs.rmSync(t, { recursive: true, force: true });
  }
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

async function measurePair(pair: Pair, photos: string): Promise<{ row: BenchRow; warnings: number }> {
  const [src, dst] = await Promise.all([loadProvider(splitSpec(pair.from).name), loadProvider(splitSpec(pair.to).name)]);
  const chosen = chooseConcurrency(undefined, src, dst);
  const levels = [...new Set([...LEVELS, chosen.value])].sort((a, b) => a - b);
  const rates = new Map<number, number[]>(levels.map((c) => [c, []]));
  let warnings = 0;
  for (let rep = 0; rep < REPEATS; rep++) {
    for (const c of rep % 2 ? [...levels].reverse() : levels) {
      const r = await runOnce(pair, photos, c);
      rates.get(c)!.push(r.rate);
      warnings += r.warnings;
      process.stderr.write(`    ${pair.label}: concurrency ${c}: ${fmt(r.rate)} items/s\n`);
    }
  }
  const at = new Map(levels.map((c) => [c, median(rates.get(c)!)]));
  const [best, bestRate] = [...at.entries()].reduce((a, b) => (b[1] > a[1] ? b : a));
  const mine = at.get(chosen.value)!;
  const ratio = mine / bestRate;
  return {
    warnings,
    row: {
      name: `${pair.label}, ${pair.items} items: default concurrency ${chosen.value} (${chosen.from}); items/s at ${levels.map((c) => `${c}: ${fmt(at.get(c)!)}`).join(', ')}`,
      value: mine,
      unit: 'items/s',
      peer: { name: `best measured, concurrency ${best}`, value: bestRate, unit: 'items/s' },
      ratio,
      goal: '>= 0.9',
      met: ratio >= 0.9,
    },
  };
}

export const suite: BenchSuite = async () => {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-conc-photos-'));
  try {
    const all = path.join(t, 'all');
    await makePhotos(all, Math.max(ITEMS, FOLDER_ITEMS));
    const rows: BenchRow[] = [];
    let warnings = 0;
    for (const pair of PAIRS.filter((p) => p.label.startsWith(ONLY))) {
      const photos = path.join(t, `src-${pair.items}`);
      if (!fs.existsSync(photos)) subset(all, photos, pair.items);
      const r = await measurePair(pair, photos);
      rows.push(r.row);
      warnings += r.warnings;
    }
    rows.push({ name: 'runs above that printed MaxListenersExceededWarning', value: warnings, unit: 'runs', goal: '0', met: warnings === 0 });
    return rows;
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
};
