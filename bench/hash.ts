// Hash throughput on a 1 GiB file streamed from disk, beside `rclone hashsum quickxor` measured in
// the same run (the goal is a ratio because these machines are shared and noisy).

import { createHash, randomBytes } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { QuickXorHash } from '../src/hash/quickxor.ts';
import { MultiHasher, hashFile, readFileChunks } from '../src/hash/multihash.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const SIZE = 1024 * 1024 * 1024;
const CHUNK = 1024 * 1024;
// Best of N: on a shared machine the fastest run is the one least disturbed by neighbours.
const RUNS = 2;

const run = promisify(execFile);

async function makeFile(file: string): Promise<void> {
  // One random MiB, varied per chunk, so the content is not periodic and nothing can shortcut it;
  // written chunk by chunk so memory stays at one chunk.
  const base = randomBytes(CHUNK);
  const fh = await fs.open(file, 'w');
  try {
    for (let i = 0; i < SIZE / CHUNK; i++) {
      base.writeUInt32LE(i, (i * 4093) % (CHUNK - 4));
      await fh.write(base, 0, CHUNK);
    }
  } finally {
    await fh.close();
  }
}

/** The Readable path, as the engine sees a source's bytes. */
async function streamInto(file: string, update: (chunk: Buffer) => void): Promise<void> {
  for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) update(chunk as Buffer);
}

/** Seconds for the fastest of RUNS runs, and the last run's result. */
async function best<T>(fn: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  let seconds = Infinity;
  let result!: T;
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    result = await fn();
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return { seconds, result };
}

const mbps = (seconds: number): number => Math.round((SIZE / 1e6 / seconds) * 10) / 10;

function hasRclone(): boolean {
  try {
    execFileSync('rclone', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const suite: BenchSuite = async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gb-bench-hash-'));
  const file = path.join(dir, 'data.bin');
  try {
    await makeFile(file);
    // A first read so every measurement below sees the same (cached) file.
    await streamInto(file, () => {});

    const rows: BenchRow[] = [];

    // The way hashFile reads a local file (double-buffered, reads overlap hashing)...
    const ours = await best(async () => {
      const h = new QuickXorHash();
      await readFileChunks(file, (c) => h.update(c));
      return h.digest().toString('hex');
    });
    // ...and through a Readable, where Node's stream machinery costs about as much as the hash.
    const oursStream = await best(async () => {
      const h = new QuickXorHash();
      await streamInto(file, (c) => h.update(c));
      return h.digest().toString('hex');
    });
    if (oursStream.result !== ours.result) throw new Error('QuickXorHash differs between read paths');

    const peer = hasRclone()
      ? await best(async () => {
          // Whole-process wall time, as a user running rclone sees it (start-up is tens of ms).
          const { stdout } = await run('rclone', ['hashsum', 'quickxor', file], {
            env: { ...process.env, RCLONE_CONFIG: '/dev/null' },
          });
          return stdout.trim().split(/\s+/)[0] ?? '';
        })
      : null;
    if (peer && peer.result !== ours.result) {
      throw new Error(`QuickXorHash disagrees with rclone: ours ${ours.result}, rclone ${peer.result}`);
    }
    const ratio = (seconds: number): number => Math.round(((peer?.seconds ?? NaN) / seconds) * 100) / 100;
    const peerField = peer ? { name: 'rclone hashsum quickxor', value: mbps(peer.seconds), unit: 'MB/s' } : undefined;
    const noPeer = peer ? '' : ' (rclone not on PATH: no peer measured)';

    rows.push({
      name: `QuickXorHash, 1 GiB file read as hashFile reads it${noPeer}`,
      value: mbps(ours.seconds),
      unit: 'MB/s',
      ...(peer ? { peer: peerField, ratio: ratio(ours.seconds), met: ratio(ours.seconds) >= 3 } : {}),
      goal: '>= 3x rclone',
    });
    rows.push({
      name: `QuickXorHash, 1 GiB file through fs.createReadStream (1 MiB chunks), for reference${noPeer}`,
      value: mbps(oursStream.seconds),
      unit: 'MB/s',
      ...(peer ? { peer: peerField, ratio: ratio(oursStream.seconds) } : {}),
    });

    for (const [algo, label] of [
      ['sha1', 'SHA-1'],
      ['sha256', 'SHA-256'],
    ] as const) {
      const r = await best(async () => {
        const h = createHash(algo);
        await readFileChunks(file, (c) => h.update(c));
        return h.digest('hex');
      });
      rows.push({ name: `node:crypto ${label}, 1 GiB file`, value: mbps(r.seconds), unit: 'MB/s' });
    }

    const all = await best(() => hashFile(file));
    rows.push({
      name: 'hashFile (SHA-1 + SHA-256 + QuickXorHash, one pass), 1 GiB file',
      value: mbps(all.seconds),
      unit: 'MB/s',
    });

    // Through the Transform, as the engine uses it: bytes go on to a consumer (discarded here).
    const multi = await best(async () => {
      const hasher = new MultiHasher();
      await pipeline(
        createReadStream(file, { highWaterMark: CHUNK }),
        hasher,
        new Writable({
          write(_chunk, _enc, cb) {
            cb();
          },
        }),
      );
      return hasher.digest();
    });
    if (multi.result.quickXor !== all.result.quickXor || multi.result.sha256 !== all.result.sha256) {
      throw new Error('MultiHasher and hashFile disagree');
    }
    rows.push({
      name: 'MultiHasher stream (SHA-1 + SHA-256 + QuickXorHash) through fs.createReadStream, 1 GiB',
      value: mbps(multi.seconds),
      unit: 'MB/s',
    });
    return rows;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
};
