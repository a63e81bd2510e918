// The core engine's benchmarks: folder to folder against rclone on the same tree in the same
// run (the copy, the same with --delete-source, CPU per item), how fast --help and status start,
// peak memory moving a 2 GiB file, and how fast `status` and a resume start on 1,000,000 items.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { BenchRow, BenchSuite } from './types.ts';
import { QUICK, measure, median, which } from './util.ts';
import type { Measured } from './util.ts';
import { openState } from '../state/db.ts';

const CLI = path.resolve(import.meta.dirname, '..', 'bin', 'gallery-bridge.js');
const FLOOR = path.resolve(import.meta.dirname, 'node-floor.mjs');
const scale = Number(process.env.BENCH_SCALE ?? '1');

function makeTree(dir: string, files: number, albums: number): number {
  let bytes = 0;
  const block = crypto.randomBytes(4 * 1024 * 1024);
  for (let i = 0; i < files; i++) {
    const album = path.join(dir, `album-${i % albums}`);
    fs.mkdirSync(album, { recursive: true });
    // 50 KB to 350 KB: photo-sized files, distinct bytes per file.
    const size = 50_000 + ((i * 7919) % 300_001);
    const off = (i * 104_729) % (block.length - size);
    const buf = Buffer.from(block.subarray(off, off + size));
    buf.writeUInt32LE(i, 0);
    fs.writeFileSync(path.join(album, `IMG_${String(i).padStart(5, '0')}.jpg`), buf);
    bytes += size;
  }
  return bytes;
}

const migrateArgs = (src: string, dst: string, db: string, extra: string[] = []) => [
  CLI,
  'migrate',
  '--from',
  `folder:${src}`,
  '--to',
  `folder:${dst}`,
  '--state',
  db,
  '--json',
  ...extra,
];

/**
 * gallery-bridge against rclone on one tree, side by side: the copy (verified, crash-safe), the
 * same with --delete-source, and the CPU each spends per item. Each is run a few times in turn
 * (rclone, copy, move, rclone, ...) and the median kept, so a noisy neighbour hits all alike.
 */
async function folderToFolder(rows: BenchRow[]): Promise<string | null> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-'));
  const n = QUICK ? 500 : Math.max(50, Math.round(2000 * scale));
  const reps = QUICK ? 1 : 3;
  const src = path.join(t, 'src');
  const bytes = makeTree(src, n, 10);
  const label = `${n} files of 50-350 KB in 10 albums (${(bytes / 1e6).toFixed(0)} MB)`;
  const hasRclone = which('rclone');
  const rc: Measured[] = [];
  const floor: Measured[] = [];
  const floorSyncfs: Measured[] = [];
  const copy: Measured[] = [];
  const move: Measured[] = [];
  let keptState: string | null = null;
  try {
    for (let r = 0; r < reps; r++) {
      if (hasRclone) {
        rc.push(await measure('rclone', ['copy', '--checksum', src, path.join(t, `rclone-${r}`)], { env: { RCLONE_CONFIG: '/dev/null' } }));
        fs.rmSync(path.join(t, `rclone-${r}`), { recursive: true, force: true });
      }
      floor.push(await measure(process.execPath, [FLOOR, src, path.join(t, `floor-${r}`)]));
      if (floor[floor.length - 1]!.code !== 0) throw new Error(`the Node floor script failed: ${floor[floor.length - 1]!.stderr.slice(-300)}`);
      fs.rmSync(path.join(t, `floor-${r}`), { recursive: true, force: true });
      if (which('sync') && process.platform === 'linux') {
        floorSyncfs.push(await measure(process.execPath, [FLOOR, src, path.join(t, `floor-s-${r}`), '--syncfs']));
        fs.rmSync(path.join(t, `floor-s-${r}`), { recursive: true, force: true });
      }
      const c = await measure(process.execPath, migrateArgs(src, path.join(t, `gb-${r}`), path.join(t, `gb-${r}.db`)));
      if (c.code !== 0) throw new Error(`gallery-bridge exited ${c.code}: ${c.stderr.slice(-300)}`);
      copy.push(c);
      fs.rmSync(path.join(t, `gb-${r}`), { recursive: true, force: true });
      if (r === 0) keptState = path.join(t, `gb-${r}.db`);
      // The move run gets its own copy of the tree (made before the clock starts).
      const moveSrc = path.join(t, `move-src-${r}`);
      fs.cpSync(src, moveSrc, { recursive: true });
      const m = await measure(process.execPath, migrateArgs(moveSrc, path.join(t, `mv-${r}`), path.join(t, `mv-${r}.db`), ['--delete-source']));
      if (m.code !== 0) throw new Error(`gallery-bridge --delete-source exited ${m.code}: ${m.stderr.slice(-300)}`);
      if (fs.readdirSync(moveSrc, { recursive: true }).some((f) => fs.statSync(path.join(moveSrc, String(f))).isFile()))
        throw new Error('--delete-source left files at the source');
      move.push(m);
      fs.rmSync(path.join(t, `mv-${r}`), { recursive: true, force: true });
    }
    const copyS = median(copy.map((m) => m.wallMs)) / 1000;
    const moveS = median(move.map((m) => m.wallMs)) / 1000;
    const copyCpu = median(copy.map((m) => m.cpuMs)) / n;
    if (hasRclone) {
      const rcS = median(rc.map((m) => m.wallMs)) / 1000;
      const rcCpu = median(rc.map((m) => m.cpuMs)) / n;
      rows.push({
        name: `folder→folder, ${label}, verified + crash-safe (median of ${reps})`,
        value: copyS,
        unit: 's',
        peer: { name: 'rclone copy --checksum', value: rcS, unit: 's' },
        ratio: copyS / rcS,
        goal: '<= 1.5',
        met: copyS <= 1.5 * rcS,
      });
      rows.push({
        name: 'CPU per item (user + sys), the same run',
        value: copyCpu,
        unit: 'ms',
        peer: { name: 'rclone copy --checksum', value: rcCpu, unit: 'ms' },
        ratio: copyCpu / rcCpu,
        goal: '<= 1.5',
        met: copyCpu <= 1.5 * rcCpu,
      });
      const floorS = median(floor.map((m) => m.wallMs)) / 1000;
      const floorCpu = median(floor.map((m) => m.cpuMs)) / n;
      rows.push({
        name: '  context: the same steps in a bare Node script (bench/node-floor.mjs: read+SHA-256, write, fsync, link, read back), wall',
        value: floorS,
        unit: 's',
        peer: { name: 'rclone copy --checksum', value: rcS, unit: 's' },
        ratio: floorS / rcS,
      });
      rows.push({
        name: "  context: that script's CPU per item",
        value: floorCpu,
        unit: 'ms',
        peer: { name: 'rclone copy --checksum', value: rcCpu, unit: 'ms' },
        ratio: floorCpu / rcCpu,
      });
      if (floorSyncfs.length && floorSyncfs.every((m) => m.code === 0)) {
        const sfS = median(floorSyncfs.map((m) => m.wallMs)) / 1000;
        const sfCpu = median(floorSyncfs.map((m) => m.cpuMs)) / n;
        rows.push({
          name: '  context: that script with one syncfs of the destination at the end instead of an fsync per file (--syncfs), wall',
          value: sfS,
          unit: 's',
          peer: { name: 'rclone copy --checksum', value: rcS, unit: 's' },
          ratio: sfS / rcS,
        });
        rows.push({
          name: '  context: its CPU per item',
          value: sfCpu,
          unit: 'ms',
          peer: { name: 'rclone copy --checksum', value: rcCpu, unit: 'ms' },
          ratio: sfCpu / rcCpu,
        });
      }
      rows.push({
        name: '  context: gallery-bridge against the bare Node script, wall',
        value: copyS,
        unit: 's',
        peer: { name: 'bare Node script', value: floorS, unit: 's' },
        ratio: copyS / floorS,
      });
    } else rows.push({ name: 'rclone not installed (apt-get install rclone): no peer for the folder rows', value: NaN, unit: '' });
    rows.push({
      name: 'the same with --delete-source',
      value: moveS,
      unit: 's',
      peer: { name: 'gallery-bridge copy run', value: copyS, unit: 's' },
      ratio: moveS / copyS,
      goal: '<= 1.2',
      met: moveS <= 1.2 * copyS,
    });
    rows.push({ name: '  peak RSS of the copy run', value: median(copy.map((m) => m.peakRss)) / 1e6, unit: 'MB' });
    if (keptState) {
      const keep = path.join(os.tmpdir(), `gb-bench-state-${process.pid}.db`);
      fs.copyFileSync(keptState, keep);
      for (const ext of ['-wal', '-shm']) if (fs.existsSync(keptState + ext)) fs.copyFileSync(keptState + ext, keep + ext);
      return keep;
    }
    return null;
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

/** `--help` and `status` as a person starts them: compiled, SDKs not loaded. */
async function startup(rows: BenchRow[], state: string | null): Promise<void> {
  const times = async (args: string[]) => {
    const ms: number[] = [];
    for (let i = 0; i < (QUICK ? 3 : 7); i++) {
      const r = await measure(args[0]!, args.slice(1));
      if (r.code !== 0) throw new Error(`${args.slice(1).join(' ')} exited ${r.code}: ${r.stderr.slice(-200)}`);
      ms.push(r.wallMs);
    }
    return median(ms) / 1000;
  };
  const bare = await times([process.execPath, '-e', '0']);
  const help = await times([process.execPath, CLI, '--help']);
  rows.push({
    name: 'gallery-bridge --help (median)',
    value: help,
    unit: 's',
    peer: { name: 'node -e 0 (bare start)', value: bare, unit: 's' },
    goal: '<= 0.3 s',
    met: help <= 0.3,
  });
  if (state) {
    const status = await times([process.execPath, CLI, 'status', '--state', state]);
    rows.push({
      name: 'gallery-bridge status on a fresh state (median)',
      value: status,
      unit: 's',
      peer: { name: 'node -e 0 (bare start)', value: bare, unit: 's' },
      goal: '<= 0.3 s',
      met: status <= 0.3,
    });
    for (const ext of ['', '-wal', '-shm']) fs.rmSync(state + ext, { force: true });
  }
}

async function bigFile(rows: BenchRow[]): Promise<void> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-'));
  try {
    const size = QUICK ? 256 * 1024 ** 2 : Math.round(2 * 1024 ** 3 * Math.min(1, scale));
    const src = path.join(t, 'src', 'Videos');
    fs.mkdirSync(src, { recursive: true });
    const fd = fs.openSync(path.join(src, 'big.mp4'), 'w');
    const block = crypto.randomBytes(8 * 1024 * 1024);
    for (let w = 0; w < size; w += block.length) fs.writeSync(fd, block, 0, Math.min(block.length, size - w));
    fs.closeSync(fd);
    const r = await measure(process.execPath, [
      CLI,
      'migrate',
      '--from',
      `folder:${path.dirname(src)}`,
      '--to',
      `folder:${path.join(t, 'dst')}`,
      '--state',
      path.join(t, 's.db'),
      '--json',
    ]);
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.slice(-300)}`);
    rows.push({
      name: `peak RSS moving one ${(size / 1024 ** 3).toFixed(1)} GiB file`,
      value: r.peakRss / 1e6,
      unit: 'MB',
      goal: '< 200 MB',
      met: r.peakRss < 200e6,
    });
    rows.push({ name: '  throughput of that move (read+hash+write+fsync+read back)', value: size / 1e6 / (r.wallMs / 1000), unit: 'MB/s' });
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

/** Items new at the source in the resumed run: enough that any per-item memory shows in its peak RSS. */
const NEW_ITEMS = QUICK ? 1000 : 10_000;

export async function millionItems(rows: BenchRow[]): Promise<void> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-'));
  try {
    const n = QUICK ? 100_000 : Math.round(1_000_000 * Math.min(1, scale));
    const src = path.join(t, 'src');
    fs.mkdirSync(path.join(src, 'new'), { recursive: true });
    for (let i = 0; i < NEW_ITEMS; i++) fs.writeFileSync(path.join(src, 'new', `n${i}.jpg`), crypto.randomBytes(1000));
    const dbFile = path.join(t, 'big.db');
    seedFinished(dbFile, src, path.join(t, 'dst'), n, 'verified');
    const st = await measure(process.execPath, [CLI, 'status', '--state', dbFile]);
    if (st.code !== 0) throw new Error(`status exit ${st.code}: ${st.stderr}`);
    const node = await measure(process.execPath, [CLI, '--version']);
    rows.push({
      name: `status on ${n.toLocaleString('en')} items (whole command)`,
      value: st.wallMs / 1000,
      unit: 's',
      peer: { name: 'CLI start-up alone (--version)', value: node.wallMs / 1000, unit: 's' },
      goal: '< 2 s',
      met: st.wallMs < 2000,
    });
    const res = await measure(
      process.execPath,
      [CLI, 'migrate', '--from', `folder:${src}`, '--to', `folder:${path.join(t, 'dst')}`, '--state', dbFile, '--json'],
      { firstLine: /"type":"item"/ },
    );
    if (res.code !== 1) throw new Error(`resume exit ${res.code}: ${res.stderr.slice(-300)}`); // 1: the seeded rejected items
    rows.push({
      name: `resume on ${n.toLocaleString('en')} items: time to the first item moved`,
      value: (res.firstMatchMs ?? NaN) / 1000,
      unit: 's',
      goal: '< 5 s',
      met: (res.firstMatchMs ?? Infinity) < 5000,
    });
    rows.push({ name: `  that whole resumed run (${NEW_ITEMS.toLocaleString('en')} new items)`, value: res.wallMs / 1000, unit: 's' });
    rows.push(flatMemory(`  peak RSS of that run (${n.toLocaleString('en')} items in the state, ${NEW_ITEMS.toLocaleString('en')} new)`, res.peakRss));
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

/** A peak RSS row against issue 23's goal for a run over a million-item state. */
function flatMemory(name: string, peakRss: number): BenchRow {
  return { name, value: peakRss / 1e6, unit: 'MB', goal: '< 250 MB', met: peakRss < 250e6 };
}

/**
 * A state of n items an earlier run finished, from `src` to `dst`: each in `state`, one in a
 * thousand rejected (so a run over it exits 1).
 */
function seedFinished(dbFile: string, src: string, dst: string, n: number, state: 'verified' | 'source-deleted'): void {
  openState(dbFile).close();
  const db = new Database(dbFile);
  db.prepare("INSERT INTO meta VALUES ('source_identity', ?), ('destination_identity', ?), ('list_state', 'complete')").run(`folder:${src}`, `folder:${dst}`);
  const ins =
    db.prepare(`INSERT INTO items (source_id, name, album_id, album_name, size, kind, item_json, state, sha1, sha256, quickxor, bytes_read, evidence_level, updated_at)
    VALUES (?, ?, 'a', 'a', ?, 'image', '{}', ?, 'x', 'y', 'z', ?, ?, '2026-01-01')`);
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const failed = i % 1000 === 0;
      ins.run(`old/${i}.jpg`, `${i}.jpg`, 2_000_000, failed ? 'rejected' : state, 2_000_000, failed ? null : 'bytes');
    }
  })();
  db.close();
}

/**
 * The same with --delete-source, over a state whose earlier items were all moved and deleted (a
 * library migrated with --delete-source before): the new items are moved and deleted, and nothing
 * per item waiting for its deletion may stay in memory.
 */
export async function millionDeletions(rows: BenchRow[]): Promise<void> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-'));
  try {
    const n = QUICK ? 100_000 : Math.round(1_000_000 * Math.min(1, scale));
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    fs.mkdirSync(path.join(src, 'new'), { recursive: true });
    for (let i = 0; i < NEW_ITEMS; i++) fs.writeFileSync(path.join(src, 'new', `n${i}.jpg`), crypto.randomBytes(1000));
    const dbFile = path.join(t, 'big.db');
    seedFinished(dbFile, src, dst, n, 'source-deleted');
    const res = await measure(
      process.execPath,
      [CLI, 'migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', dbFile, '--json', '--delete-source'],
      {
        tailOnly: true,
      },
    );
    if (res.code !== 1) throw new Error(`--delete-source run exit ${res.code}: ${res.stderr.slice(-300)}`); // 1: the seeded rejected items
    const left = fs.readdirSync(path.join(src, 'new')).length;
    if (left !== 0) throw new Error(`--delete-source run left ${left} of the new files at the source`);
    rows.push(
      flatMemory(
        `  peak RSS with --delete-source (${n.toLocaleString('en')} in the state, ${NEW_ITEMS.toLocaleString('en')} new, moved and deleted)`,
        res.peakRss,
      ),
    );
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

export const suite: BenchSuite = async () => {
  const rows: BenchRow[] = [];
  const state = await folderToFolder(rows);
  await startup(rows, state);
  await bigFile(rows);
  await millionItems(rows);
  await millionDeletions(rows);
  return rows;
};
