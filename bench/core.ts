// The core engine's benchmarks (issue 2): folder-to-folder against cp -r and rclone on the same
// tree in the same run, CPU per item, peak memory moving a 2 GiB file, and how fast `status`
// and a resume start on a state of 1,000,000 items.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { BenchRow, BenchSuite } from './types.ts';
import { measure, which } from './util.ts';
import { openState } from '../state/db.ts';

const CLI = path.resolve(import.meta.dirname, '..', 'bin', 'gallery-bridge.js');
const scale = Number(process.env.BENCH_SCALE ?? '1');

function makeTree(dir: string, files: number, albums: number): number {
  let bytes = 0;
  const block = crypto.randomBytes(4 * 1024 * 1024);
  for (let i = 0; i < files; i++) {
    const album = path.join(dir, `album-${i % albums}`);
    fs.mkdirSync(album, { recursive: true });
    // 150 KB to 1.3 MB: phone-photo sizes, distinct bytes per file.
    const size = 150_000 + ((i * 7919) % 1_150_000);
    const off = (i * 104_729) % (block.length - size);
    const buf = Buffer.from(block.subarray(off, off + size));
    buf.writeUInt32LE(i, 0);
    fs.writeFileSync(path.join(album, `IMG_${String(i).padStart(5, '0')}.jpg`), buf);
    bytes += size;
  }
  return bytes;
}

async function folderToFolder(rows: BenchRow[]): Promise<void> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-'));
  try {
    const n = Math.max(50, Math.round(2000 * scale));
    const src = path.join(t, 'src');
    const bytes = makeTree(src, n, 10);
    const ours = await measure(process.execPath, [CLI, 'migrate', '--from', `folder:${src}`, '--to', `folder:${path.join(t, 'gb')}`, '--state', path.join(t, 'gb.db'), '--json', '--concurrency', '4']);
    if (ours.code !== 0) throw new Error(`gallery-bridge exited ${ours.code}: ${ours.stderr.slice(-300)}`);
    const cp = await measure('cp', ['-r', src, path.join(t, 'cp')]);
    rows.push({ name: `folder→folder, ${n} files in 10 albums (${(bytes / 1e6).toFixed(0)} MB), verified + crash-safe`, value: ours.wallMs / 1000, unit: 's', peer: { name: 'cp -r', value: cp.wallMs / 1000, unit: 's' }, ratio: ours.wallMs / cp.wallMs });
    if (which('rclone')) {
      const rc = await measure('rclone', ['copy', '--checksum', '--transfers', '4', src, path.join(t, 'rclone')], { env: { RCLONE_CONFIG: '/dev/null' } });
      rows.push({ name: 'folder→folder time vs rclone copy --checksum', value: ours.wallMs / 1000, unit: 's', peer: { name: 'rclone copy --checksum', value: rc.wallMs / 1000, unit: 's' }, ratio: ours.wallMs / rc.wallMs, goal: '<= 1.0 (no slower than rclone)', met: ours.wallMs <= rc.wallMs });
    } else rows.push({ name: 'rclone not installed: apt-get install rclone for the peer', value: NaN, unit: '' });
    rows.push({ name: 'CPU per item (read, 3 hashes, write, fsync, read back, state)', value: ours.cpuMs / n, unit: 'ms' });
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

async function bigFile(rows: BenchRow[]): Promise<void> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-'));
  try {
    const size = Math.round(2 * 1024 ** 3 * Math.min(1, scale));
    const src = path.join(t, 'src', 'Videos');
    fs.mkdirSync(src, { recursive: true });
    const fd = fs.openSync(path.join(src, 'big.mp4'), 'w');
    const block = crypto.randomBytes(8 * 1024 * 1024);
    for (let w = 0; w < size; w += block.length) fs.writeSync(fd, block, 0, Math.min(block.length, size - w));
    fs.closeSync(fd);
    const r = await measure(process.execPath, [CLI, 'migrate', '--from', `folder:${path.dirname(src)}`, '--to', `folder:${path.join(t, 'dst')}`, '--state', path.join(t, 's.db'), '--json']);
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.slice(-300)}`);
    rows.push({ name: `peak RSS moving one ${(size / 1024 ** 3).toFixed(1)} GiB file`, value: r.peakRss / 1e6, unit: 'MB', goal: '< 200 MB', met: r.peakRss < 200e6 });
    rows.push({ name: '  throughput of that move (read+hash+write+fsync+read back)', value: size / 1e6 / (r.wallMs / 1000), unit: 'MB/s' });
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

async function millionItems(rows: BenchRow[]): Promise<void> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-'));
  try {
    const n = Math.round(1_000_000 * Math.min(1, scale));
    const src = path.join(t, 'src');
    fs.mkdirSync(path.join(src, 'new'), { recursive: true });
    for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(src, 'new', `n${i}.jpg`), crypto.randomBytes(1000));
    const dbFile = path.join(t, 'big.db');
    openState(dbFile).close();
    const db = new Database(dbFile);
    db.prepare("INSERT INTO meta VALUES ('source_identity', ?), ('destination_identity', ?), ('list_state', 'complete')").run(`folder:${src}`, `folder:${path.join(t, 'dst')}`);
    const ins = db.prepare(`INSERT INTO items (source_id, name, album_id, album_name, size, kind, item_json, state, sha1, sha256, quickxor, bytes_read, evidence_level, updated_at)
      VALUES (?, ?, 'a', 'a', ?, 'image', '{}', ?, 'x', 'y', 'z', ?, ?, '2026-01-01')`);
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const failed = i % 1000 === 0;
        ins.run(`old/${i}.jpg`, `${i}.jpg`, 2_000_000, failed ? 'rejected' : 'verified', 2_000_000, failed ? null : 'bytes');
      }
    })();
    db.close();
    const st = await measure(process.execPath, [CLI, 'status', '--state', dbFile]);
    if (st.code !== 0) throw new Error(`status exit ${st.code}: ${st.stderr}`);
    const node = await measure(process.execPath, ['-e', "import('tsx/esm/api').then(m=>m.register())"]);
    rows.push({ name: `status on ${n.toLocaleString('en')} items (whole command)`, value: st.wallMs / 1000, unit: 's', peer: { name: 'CLI start-up alone (node + tsx)', value: node.wallMs / 1000, unit: 's' }, goal: '< 2 s', met: st.wallMs < 2000 });
    const res = await measure(process.execPath, [CLI, 'migrate', '--from', `folder:${src}`, '--to', `folder:${path.join(t, 'dst')}`, '--state', dbFile, '--json'], { firstLine: /"type":"item"/ });
    if (res.code !== 1) throw new Error(`resume exit ${res.code}: ${res.stderr.slice(-300)}`); // 1: the seeded rejected items
    rows.push({ name: `resume on ${n.toLocaleString('en')} items: time to the first item moved`, value: (res.firstMatchMs ?? NaN) / 1000, unit: 's', goal: '< 5 s', met: (res.firstMatchMs ?? Infinity) < 5000 });
    rows.push({ name: '  that whole resumed run (10 new items)', value: res.wallMs / 1000, unit: 's' });
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

export const suite: BenchSuite = async () => {
  const rows: BenchRow[] = [];
  await folderToFolder(rows);
  await bigFile(rows);
  await millionItems(rows);
  return rows;
};
