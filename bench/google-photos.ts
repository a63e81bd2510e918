// Google Photos benchmarks against the Library API emulator (a child process on loopback), one
// CLI migration of 2,000 small distinct photos (one album) with 50 ms latency per request:
// 1. API requests per migrated photo, counted by the emulator (uploads included, as Google
//    counts them), next to the floor of one raw upload plus 1/50 batchCreate plus 1/50 batchGet.
//    Goal: at most 1.05.
// 2. items/s next to the bound the per-minute write limit sets: the emulator answers 429 past
//    WRITES_PER_MINUTE writes, and the tool, told the limit, paces itself below it; the bound is
//    limit / 60 / (writes per photo). That is the long-run bound: a sliding one-minute window lets
//    the first minute's writes go at once, so a run of about a minute and a half ends above it.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { BenchRow, BenchSuite } from './types.ts';
import { runCli, startEmulator as startEmu } from './util.ts';
import type { Emu } from './util.ts';

const TOKEN = 'bench-google-token-0123456789';
const PHOTOS = Number(process.env.GB_BENCH_GOOGLE_PHOTOS ?? 2000);
const WRITES_PER_MINUTE = Number(process.env.GB_BENCH_GOOGLE_WPM ?? 1200);
const LATENCY_MS = 50;
// Items in flight; staged items wait for their batch outside the queue, so batches fill at any concurrency, fastest at high ones.
const CONCURRENCY = Number(process.env.GB_BENCH_GOOGLE_CONCURRENCY ?? 64);

/** Photos for the batch-filling rows, at the tool's default --concurrency. */
const TAIL_PHOTOS = Number(process.env.GB_BENCH_GOOGLE_TAIL_PHOTOS ?? 300);

const startEmulator = (data: string, flags: string[]): Promise<Emu> =>
  startEmu('google-photos', data, TOKEN, flags, ['GOOGLE_PHOTOS_BASE_URL', 'GOOGLE_OAUTH_TOKEN_URL']);

/** Small photos with distinct pixels (noise), so no two are the same bytes. */
async function makePhotos(dir: string, n: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, async (_, k) => {
        const raw = crypto.randomBytes(24 * 24 * 3);
        const jpg = await sharp(raw, { raw: { width: 24, height: 24, channels: 3 } })
          .jpeg({ quality: 90 })
          .toBuffer();
        fs.writeFileSync(path.join(dir, `IMG_${String(i + k).padStart(5, '0')}.jpg`), jpg);
      }),
    );
  }
}

/**
 * Requests per photo that go with the photos (uploads, batchCreate, batchGet) at the default
 * --concurrency, against a fast emulator and one with latency: batches must fill whatever the
 * server's speed (the floor is one upload plus one batchCreate and one batchGet per 50).
 */
async function batchRows(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const latency of [0, LATENCY_MS]) {
    const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-gp-tail-'));
    const emu = await startEmulator(path.join(t, 'emu'), ['--latency-ms', String(latency), '--video-processing-ms', '0']);
    try {
      await makePhotos(path.join(t, 'src', 'Bench'), TAIL_PHOTOS);
      const env = { GALLERY_BRIDGE_HOME: path.join(t, 'home'), GOOGLE_ACCESS_TOKEN: TOKEN, GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL! };
      const run = await runCli(['migrate', '--from', `folder:${path.join(t, 'src')}`, '--to', 'google-photos', '--state', path.join(t, 'state.db')], env);
      if (run.code !== 0) throw new Error(`migration exited ${run.code}: ${run.out.slice(-500)}`);
      const r = ((await (await fetch(`${emu.env.GOOGLE_PHOTOS_BASE_URL}/__emulator/state`)).json()) as { requests: Record<string, number> }).requests;
      const perPhoto = (r.uploads! + r.batchCreate! + r.batchGet!) / TAIL_PHOTOS;
      const floor = 1 + (2 * Math.ceil(TAIL_PHOTOS / 50)) / TAIL_PHOTOS;
      rows.push({
        name: `requests per photo at the default --concurrency, ${latency ? `${latency} ms latency` : 'no latency'} (${TAIL_PHOTOS} photos: ${r.uploads} uploads, ${r.batchCreate} batchCreate, ${r.batchGet} batchGet)`,
        value: perPhoto,
        unit: 'req/photo',
        peer: { name: 'full batches: 1 upload + 1/50 batchCreate + 1/50 batchGet', value: floor, unit: 'req/photo' },
        ratio: perPhoto / floor,
        goal: 'value <= 1 + 2/50',
        met: perPhoto <= floor + 1e-9,
      });
    } finally {
      await emu.stop();
      fs.rmSync(t, { recursive: true, force: true });
    }
  }
  return rows;
}

const suiteImpl: BenchSuite = async () => [...(await batchRows()), ...(await mainRows())];

async function mainRows(): Promise<BenchRow[]> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-gp-'));
  const emu = await startEmulator(path.join(t, 'emu'), [
    '--latency-ms',
    String(LATENCY_MS),
    '--writes-per-minute',
    String(WRITES_PER_MINUTE),
    '--video-processing-ms',
    '0',
  ]);
  try {
    await makePhotos(path.join(t, 'src', 'Bench'), PHOTOS);
    const env = {
      GALLERY_BRIDGE_HOME: path.join(t, 'home'),
      GOOGLE_ACCESS_TOKEN: TOKEN,
      GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!,
    };
    const run = await runCli(
      [
        'migrate',
        '--from',
        `folder:${path.join(t, 'src')}`,
        '--to',
        'google-photos',
        '--state',
        path.join(t, 'state.db'),
        '--concurrency',
        String(CONCURRENCY),
        '--google-writes-per-minute',
        String(WRITES_PER_MINUTE),
      ],
      env,
    );
    if (run.code !== 0) throw new Error(`migration exited ${run.code}: ${run.out.slice(-500)}`);
    const st = (await (await fetch(`${emu.env.GOOGLE_PHOTOS_BASE_URL}/__emulator/state`)).json()) as {
      requests: Record<string, number>;
      mediaItems: unknown[];
    };
    if (st.mediaItems.length !== PHOTOS) throw new Error(`the emulator holds ${st.mediaItems.length} media items, expected ${PHOTOS}`);
    const r = st.requests;
    const perPhoto = r.api! / PHOTOS;
    const floor = 1 + 2 / 50;
    const writes = r.uploads! + r.batchCreate! + 1; // + the album
    const writesPerPhoto = writes / PHOTOS;
    const bound = WRITES_PER_MINUTE / 60 / writesPerPhoto;
    const itemsPerSec = PHOTOS / (run.ms / 1000);
    return [
      {
        name: `API requests per migrated photo (${PHOTOS} photos: ${r.uploads} uploads, ${r.batchCreate} batchCreate, ${r.batchGet} batchGet, ${r.albums} album; ${r.writeLimited} answered 429)`,
        value: perPhoto,
        unit: 'req/photo',
        peer: { name: 'floor: 1 raw upload + 1/50 batchCreate + 1/50 batchGet', value: floor, unit: 'req/photo' },
        ratio: perPhoto / floor,
        goal: 'value <= 1.05',
        met: perPhoto <= 1.05,
      },
      {
        name: `items/s, ${PHOTOS} small photos, ${LATENCY_MS} ms latency, --concurrency ${CONCURRENCY}, limit ${WRITES_PER_MINUTE} writes/min`,
        value: itemsPerSec,
        unit: 'items/s',
        peer: {
          name: `long-run bound of ${WRITES_PER_MINUTE} writes/min at ${writesPerPhoto.toFixed(3)} writes/photo (a short run gains the first minute's burst)`,
          value: bound,
          unit: 'items/s',
        },
        ratio: itemsPerSec / bound,
        goal: 'ratio >= 0.8 (close to the limit, no 429 storm)',
        met: itemsPerSec / bound >= 0.8,
      },
      {
        name: 'baseUrl downloads per photo for verification (counted apart by Google, 75,000/day)',
        value: r.media! / PHOTOS,
        unit: 'downloads/photo',
      },
    ];
  } finally {
    await emu.stop();
    fs.rmSync(t, { recursive: true, force: true });
  }
}

export const suite: BenchSuite = suiteImpl;
