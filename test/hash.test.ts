import { describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { QuickXorHash, quickXorBase64 } from '../src/hash/quickxor.ts';
import { hashWorker } from '../src/hash/off-thread.ts';
import { MultiHasher, SHA256_ONLY, hashBuffer, hashFile, hashFileLater, readFileChunks } from '../src/hash/multihash.ts';
import { fileHead } from '../providers/google-photos/evidence.ts';
import { seeded } from './helpers.ts';

/** Straight from the spec, one bit at a time: slow, but hard to get wrong. */
function referenceQuickXor(data: Uint8Array): Buffer {
  const bits = new Uint8Array(160);
  for (let i = 0; i < data.length; i++) {
    const base = (i * 11) % 160;
    for (let b = 0; b < 8; b++) {
      if ((data[i]! >> b) & 1) bits[(base + b) % 160]! ^= 1;
    }
  }
  const out = Buffer.alloc(20);
  for (let k = 0; k < 160; k++) if (bits[k]) out[k >> 3]! |= 1 << (k & 7);
  let len = BigInt(data.length);
  for (let k = 12; k < 20; k++) {
    out[k]! ^= Number(len & 0xffn);
    len >>= 8n;
  }
  return out;
}

/** Deterministic 32-bit pseudo-random numbers, from the tests' shared seeded source, so a failure can be repeated. */
function prng(seed: number): () => number {
  const r = seeded(seed);
  return () => (r() * 4294967296) >>> 0;
}

function randomBytes(n: number, seed: number): Buffer {
  const next = prng(seed);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** Split `data` into chunks of random length, each copied to a random alignment in its own buffer. */
function randomChunks(data: Buffer, seed: number, maxChunk: number): Uint8Array[] {
  const next = prng(seed);
  const chunks: Uint8Array[] = [];
  let i = 0;
  while (i < data.length) {
    const len = Math.min(data.length - i, next() % (maxChunk + 1));
    const pad = next() % 8;
    const holder = new Uint8Array(len + pad + 3);
    holder.set(data.subarray(i, i + len), pad);
    chunks.push(holder.subarray(pad, pad + len));
    i += len;
  }
  return chunks;
}

describe('QuickXorHash', () => {
  it.each([
    ['', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='],
    ['hello world', 'aCgDG9jwBhDc4Q1yawMZAAAAAAA='],
    ['abc', 'YRDDGAAAAAAAAAAAAwAAAAAAAAA='],
  ])('hashes %j to the known vector', (text, expected) => {
    expect(new QuickXorHash().update(Buffer.from(text)).digestBase64()).toBe(expected);
  });

  it('matches the known vectors for 1 MiB of zeros and short binary inputs', () => {
    expect(quickXorBase64(Buffer.alloc(1 << 20))).toBe('AAAAAAAAAAAAAAAAAAAQAAAAAAA=');
    expect(quickXorBase64(Buffer.from('Sg==', 'base64'))).toBe('SgAAAAAAAAAAAAAAAQAAAAAAAAA=');
    expect(quickXorBase64(Buffer.from('tbQ=', 'base64'))).toBe('taAFAAAAAAAAAAAAAgAAAAAAAAA=');
  });

  it('agrees with the bit-by-bit reference around the 160-byte period', () => {
    for (const n of [1, 2, 19, 20, 21, 159, 160, 161, 319, 320, 321, 480, 4099]) {
      const data = randomBytes(n, 1000 + n);
      const ours = new QuickXorHash().update(data).digest();
      expect(ours.toString('hex'), `length ${n}`).toBe(referenceQuickXor(data).toString('hex'));
      expect(ours.length).toBe(20);
    }
  });

  it('agrees with the reference when the input does not start on a 4-byte boundary', () => {
    const data = randomBytes(200_000, 7);
    const want = referenceQuickXor(data).toString('hex');
    for (const offset of [1, 2, 3, 5]) {
      const holder = new Uint8Array(data.length + offset);
      holder.set(data, offset);
      const view = holder.subarray(offset);
      expect(new QuickXorHash().update(view).digest().toString('hex'), `offset ${offset}`).toBe(want);
    }
  });

  it('gives the same digest however the stream is split', () => {
    const data = randomBytes(100_003, 42);
    const want = referenceQuickXor(data).toString('hex');
    for (const [seed, maxChunk] of [
      [1, 1],
      [2, 7],
      [3, 163],
      [4, 1000],
      [5, 70_000],
    ] as const) {
      const h = new QuickXorHash();
      for (const c of randomChunks(data, seed, maxChunk)) h.update(c);
      expect(h.digest().toString('hex'), `seed ${seed}`).toBe(want);
    }
  });

  it('can report a digest mid-stream and keep going', () => {
    const data = randomBytes(1000, 9);
    const h = new QuickXorHash().update(data.subarray(0, 333));
    expect(h.digest().toString('hex')).toBe(referenceQuickXor(data.subarray(0, 333)).toString('hex'));
    h.update(data.subarray(333));
    expect(h.digest().toString('hex')).toBe(referenceQuickXor(data).toString('hex'));
  });

  const rclone = (() => {
    try {
      execFileSync('rclone', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!rclone)('agrees with `rclone hashsum quickxor` on random files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qxh-'));
    try {
      for (const n of [0, 1, 159, 160, 161, 65_537, 3_000_001]) {
        const file = path.join(dir, `f${n}.bin`);
        const data = randomBytes(n, 77 + n);
        fs.writeFileSync(file, data);
        const out = execFileSync('rclone', ['hashsum', 'quickxor', file], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
          env: { ...process.env, RCLONE_CONFIG: '/dev/null' },
        });
        const hex = out.trim().split(/\s+/)[0]!;
        expect(hex, `length ${n}`).toMatch(/^[0-9a-f]{40}$/);
        expect(new QuickXorHash().update(data).digest().toString('hex'), `length ${n}`).toBe(hex);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('MultiHasher', () => {
  const data = randomBytes(1_234_567, 5);
  const want = {
    sha1: createHash('sha1').update(data).digest('hex'),
    sha256: createHash('sha256').update(data).digest('hex'),
    quickXor: referenceQuickXor(data).toString('base64'),
    size: data.length,
  };

  it('passes bytes through unchanged and hashes them in one pass', async () => {
    const hasher = new MultiHasher();
    const received: Buffer[] = [];
    await pipeline(
      Readable.from(randomChunks(data, 11, 50_000).map((c) => Buffer.from(c.buffer, c.byteOffset, c.length))),
      hasher,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          received.push(chunk);
          cb();
        },
      }),
    );
    expect(Buffer.concat(received).equals(data)).toBe(true);
    expect(hasher.digest()).toEqual(want);
    expect(hasher.bytes).toBe(data.length);
  });

  it('refuses to give a digest before the stream ended', () => {
    const hasher = new MultiHasher();
    hasher.write(Buffer.from('abc'));
    expect(() => hasher.digest()).toThrow(/before the stream ended/);
  });

  it('hashBuffer and hashFile agree with independent hashes', async () => {
    expect(hashBuffer(data)).toEqual(want);
    expect(hashBuffer(new Uint8Array(0))).toEqual({
      sha1: 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      quickXor: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      size: 0,
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-'));
    try {
      const file = path.join(dir, 'data.bin');
      fs.writeFileSync(file, data);
      expect(await hashFile(file)).toEqual(want);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hashes files read back on the hashing worker: the same hashes as node:crypto, taken early or late, many at once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-'));
    const MiB = 1 << 20;
    // From 64 KiB to under a MiB in shared buffers on the worker; others read and hashed here.
    const sizes = [0, 1, 64 * 1024 - 1, 64 * 1024, 200_000, 350_001, MiB - 1, MiB, MiB + 1, 3 * MiB + 5];
    try {
      // 60 at once: more than the worker's 12 buffers and the 8 files read at a time.
      const files = Array.from({ length: 60 }, (_, i) => {
        const bytes = randomBytes(sizes[i % sizes.length]!, 500 + i);
        const file = path.join(dir, `f${i}.bin`);
        fs.writeFileSync(file, bytes);
        return { file, bytes };
      });
      const handedBefore = hashWorker().handed;
      // Half told the size they should have (as a read-back is), half not.
      const laters = await Promise.all(
        files.map((f, i) => hashFileLater(f.file, i % 2 ? { sha1: true, quickXor: false } : SHA256_ONLY, i % 4 < 2 ? f.bytes.length : undefined)),
      );
      expect(hashWorker().handed - handedBefore).toBeGreaterThan(0);
      // Taken after every file was read (their buffers lent and reused meanwhile), and taken again.
      for (const [i, later] of laters.entries()) {
        const want = hashBuffer(files[i]!.bytes, { sha1: i % 2 === 1, quickXor: false });
        expect(await later.take()).toEqual(want);
        expect(await later.take()).toEqual(want);
      }
      // Taken as soon as read, one after another: each waits for its own digest.
      for (const f of files) expect(await hashFile(f.file, SHA256_ONLY)).toEqual(hashBuffer(f.bytes, SHA256_ONLY));
      // With QuickXorHash asked for, all of it is made on this thread, as before.
      expect(await hashFile(files[4]!.file)).toEqual(hashBuffer(files[4]!.bytes));
      // A dropped one frees its buffer: 40 more dropped, then more read, still right.
      for (let i = 0; i < 40; i++) (await hashFileLater(files[i % 9]!.file, SHA256_ONLY)).drop();
      expect(await hashFile(files[3]!.file, SHA256_ONLY)).toEqual(hashBuffer(files[3]!.bytes, SHA256_ONLY));
      await expect(hashFile(path.join(dir, 'missing.bin'), SHA256_ONLY)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads many files at once with the read buffers of a few, each hashed right, and an error in one lets the rest go on', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-'));
    const MiB = 1 << 20;
    const rand = seeded(7);
    // Around the chunk boundary (1 MiB) and past two of them; 48 read at once (a folder copy reads back up to 64).
    const sizes = [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + 17];
    const files = Array.from({ length: 48 }, (_, i) => {
      const bytes = Buffer.alloc(sizes[i % sizes.length]!);
      for (let j = 0; j < bytes.length; j += 4096) bytes[j] = Math.floor(rand() * 256);
      const file = path.join(dir, `f${i}.bin`);
      fs.writeFileSync(file, bytes);
      return { file, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
    });
    try {
      const before = process.memoryUsage().arrayBuffers;
      let peak = before;
      const read = (f: (typeof files)[number], i: number) => {
        const h = createHash('sha256');
        return readFileChunks(f.file, (chunk) => {
          peak = Math.max(peak, process.memoryUsage().arrayBuffers);
          if (i === 5) throw new Error('the reader gave up');
          h.update(chunk);
        }).then((n) => ({ n, sha256: h.digest('hex') }));
      };
      const results = await Promise.allSettled(files.map(read));
      for (const [i, r] of results.entries()) {
        if (i === 5) expect(r.status).toBe('rejected');
        else expect(r).toEqual({ status: 'fulfilled', value: { n: files[i]!.size, sha256: files[i]!.sha256 } });
      }
      // Two 1 MiB buffers a file read at once would be 96 MiB; a few reads at a time share a pool of 16.
      expect(peak - before).toBeLessThan(40 * MiB);
      // The reader that failed gave its turn back: reads still go on.
      expect((await hashFile(files[6]!.file)).sha256).toBe(files[6]!.sha256);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads whole files whose reads come back short (a network file system): the same hashes and sizes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-'));
    const read = fs.read;
    // Every read returns at most 4093 bytes, as a read from an SMB or NFS mount may: less than
    // asked though the file goes on.
    const spy = vi
      .spyOn(fs, 'read')
      .mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number, cb: never) =>
        read(fd, buf, off, Math.min(len, 4093), pos, cb)) as never);
    try {
      // Under 64 KiB (the run's thread), 64 KiB to a MiB (the hashing worker), several chunks.
      for (const [i, size] of [10_000, 300_000, 3 * 1024 * 1024 + 17].entries()) {
        const bytes = randomBytes(size, 40 + i);
        const file = path.join(dir, `short-${size}.bin`);
        fs.writeFileSync(file, bytes);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const sha1 = createHash('sha1').update(bytes).digest('hex');
        const later = await (await hashFileLater(file, { sha1: true, quickXor: false }, size)).take();
        expect(later).toMatchObject({ sha1, sha256, size });
        expect((await hashFile(file)).sha256).toBe(sha256);
        let total = 0;
        expect(await readFileChunks(file, (c) => (total += c.length))).toBe(size);
        expect(total).toBe(size);
      }
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the head of a photo (where EXIF lives) whole when reads come back short', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-'));
    const read = fs.read;
    const spy = vi
      .spyOn(fs, 'read')
      .mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number, cb: never) =>
        read(fd, buf, off, Math.min(len, 4093), pos, cb)) as never);
    try {
      for (const [i, size] of [10_000, 700_000].entries()) {
        const bytes = randomBytes(size, 50 + i);
        const file = path.join(dir, `head-${size}.bin`);
        fs.writeFileSync(file, bytes);
        const want = bytes.subarray(0, 512 * 1024);
        expect((await fileHead(file)).equals(want)).toBe(true);
      }
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hashes a large file with memory that does not grow with its size', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-'));
    const file = path.join(dir, 'zeros.bin');
    const size = 384 * 1024 * 1024;
    // A sparse file: no disk space used, but every byte is still read and hashed.
    fs.closeSync(fs.openSync(file, 'w'));
    fs.truncateSync(file, size);
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }, 5);
    try {
      const h = await hashFile(file);
      expect(h.size).toBe(size);
      // Only the length term survives for an all-zero stream: 384 MiB = 0x18000000.
      const qx = Buffer.alloc(20);
      qx.writeBigUInt64LE(BigInt(size), 12);
      expect(h.quickXor).toBe(qx.toString('base64'));
      expect(peak - before).toBeLessThan(64 * 1024 * 1024);
    } finally {
      clearInterval(timer);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
