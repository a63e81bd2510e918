// SHA-256 (our own record, always), SHA-1 (Google, Xiaomi) and QuickXorHash (OneDrive) in one
// pass, so an item's bytes are read once. A run computes only the hashes it uses: SHA-1 when the
// source declares one or the destination compares it, QuickXorHash when the destination does
// (see hashesFor()); each costs as much CPU as the copy itself on a local disk.

import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { closeQuietly, openFd, readFd, readFdUpTo } from '../lib/fd.ts';
import { Transform, type TransformCallback } from 'node:stream';
import type { ExtraHash, Hashes, SourceItem } from '../../providers/types.ts';
import { QuickXorHash } from './quickxor.ts';
import { SLOT_BYTES, hashWorker } from './off-thread.ts';

// Large enough that per-chunk overhead vanishes, small enough that memory stays flat per file.
const READ_CHUNK = 1 << 20;

/** Which hashes besides SHA-256 to compute. */
export interface HashChoice {
  sha1: boolean;
  quickXor: boolean;
}

export const ALL_HASHES: HashChoice = { sha1: true, quickXor: true };
export const SHA256_ONLY: HashChoice = { sha1: false, quickXor: false };

/**
 * The hashes one item needs: SHA-1 when its source declares one (it is checked against the
 * bytes) or the destination compares SHA-1; QuickXorHash when the destination compares it.
 * A destination that does not say which it uses gets all of them.
 */
export function hashesFor(item: Pick<SourceItem, 'sha1'>, destinationUses: readonly ExtraHash[] | undefined): HashChoice {
  if (!destinationUses) return ALL_HASHES;
  return { sha1: !!item.sha1 || destinationUses.includes('sha1'), quickXor: destinationUses.includes('quickXor') };
}

/** The hashes of bytes handed over in order; `finish()` once, at the end. */
export class Hashers {
  private readonly sha1: Hash | null;
  private readonly sha256: Hash = createHash('sha256');
  private readonly qx: QuickXorHash | null;
  size = 0;

  constructor(choice: HashChoice) {
    this.sha1 = choice.sha1 ? createHash('sha1') : null;
    this.qx = choice.quickXor ? new QuickXorHash() : null;
  }

  update(chunk: Uint8Array): void {
    this.sha1?.update(chunk);
    this.sha256.update(chunk);
    this.qx?.update(chunk);
    this.size += chunk.length;
  }

  /** node:crypto hashes can be finalised once only, so callers cache the result. */
  finish(): Hashes {
    return {
      sha1: this.sha1 ? this.sha1.digest('hex') : null,
      sha256: this.sha256.digest('hex'),
      quickXor: this.qx ? this.qx.digestBase64() : null,
      size: this.size,
    };
  }
}

/**
 * A pass-through stream that hashes what flows through it. Pipe the source through it on the
 * way to the destination; `digest()` is valid once the stream has ended.
 */
export class MultiHasher extends Transform {
  private readonly hashers: Hashers;
  private result: Hashes | null = null;

  constructor(choice: HashChoice = ALL_HASHES) {
    super();
    this.hashers = new Hashers(choice);
  }

  /** Bytes seen so far (valid at any time, unlike digest()). */
  get bytes(): number {
    return this.hashers.size;
  }

  override _transform(chunk: unknown, encoding: BufferEncoding, callback: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Uint8Array);
    this.hashers.update(buf);
    callback(null, buf);
  }

  override _flush(callback: TransformCallback): void {
    this.result = this.hashers.finish();
    callback();
  }

  digest(): Hashes {
    if (!this.result) throw new Error('MultiHasher.digest() called before the stream ended');
    return { ...this.result };
  }
}

// Read buffers are reused from file to file: a fresh 1 MiB pair per file made the garbage
// collector the largest cost of a folder-to-folder run. The pool keeps at most 16, and at most
// MAX_READING files are read at once, so the buffers in use never outgrow it: a folder copy
// reads back up to 64 files at once (its verifications), and those past the pool's 16 buffers
// each allocated two fresh ones (1,030 MiB for 2,000 photos), whose external memory set off a
// full collection (mark-compact) every 100-150 ms. A file that fits in one chunk takes one buffer.
const pool: Buffer[] = [];
const POOL_MAX = 16;
/** Files read at once through readFileChunks; more wait their turn (the libuv pool reads 4 at a time anyway). */
const MAX_READING = POOL_MAX / 2;
let reading = 0;
const waitingToRead: Array<() => void> = [];

function takeTurn(): Promise<void> | undefined {
  if (reading < MAX_READING) {
    reading++;
    return undefined;
  }
  return new Promise<void>((resolve) => waitingToRead.push(resolve));
}

/** The turn passes straight to the next waiter, if any (the count stays). */
function endTurn(): void {
  const next = waitingToRead.shift();
  if (next) next();
  else reading--;
}

function takeBuffer(size: number): Buffer {
  const i = pool.findIndex((b) => b.length === size);
  return i >= 0 ? pool.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(size);
}

function giveBuffer(b: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(b);
}

/**
 * Read a file front to back, handing each chunk to `onChunk` synchronously. Two buffers
 * alternate: the kernel fills one (on the libuv pool) while we hash the other, so disk and CPU
 * overlap, and memory stays at two chunks whatever the file size. The chunk is only valid
 * during the call (the buffers go back to a pool for the next file).
 */
export async function readFileChunks(path: string, onChunk: (chunk: Buffer) => void, chunkSize = READ_CHUNK): Promise<number> {
  await takeTurn();
  try {
    return await readTurn(path, onChunk, chunkSize);
  } finally {
    endTurn();
  }
}

async function readTurn(path: string, onChunk: (chunk: Buffer) => void, chunkSize: number): Promise<number> {
  const fd = await openFd(path, 'r');
  // A read may return less than asked before the end (a network file system, a signal): only a
  // short read at or past the size fstat gave ends the file, so a local photo still takes one read.
  const size = fs.fstatSync(fd).size;
  const a = takeBuffer(chunkSize);
  // Taken once the first read fills a whole chunk: a photo is usually read in one.
  let b: Buffer | null = null;
  let pending: Promise<number> | null = null;
  try {
    let current: Buffer = a;
    let next: Buffer | null = null;
    let position = 0;
    pending = readFd(fd, current, 0, chunkSize, position);
    for (;;) {
      const bytesRead: number = await pending;
      pending = null;
      if (bytesRead === 0) break;
      position += bytesRead;
      if (bytesRead === chunkSize || position < size) {
        next ??= b = takeBuffer(chunkSize);
        pending = readFd(fd, next, 0, chunkSize, position);
      }
      onChunk(current.subarray(0, bytesRead));
      if (!pending) break;
      [current, next] = [next!, current];
    }
    return position;
  } finally {
    // Let a read in flight land before the descriptor is closed and its buffer reused.
    if (pending) await pending.catch(() => undefined);
    closeQuietly(fd);
    giveBuffer(a);
    if (b) giveBuffer(b);
  }
}

export async function hashFile(path: string, choice: HashChoice = ALL_HASHES): Promise<Hashes> {
  return (await hashFileLater(path, choice)).take();
}

/** Hashes being made elsewhere, taken when wanted: `take()` (once or more), or `drop()` when they are not wanted after all. */
export class HashesLater {
  private taken: Promise<Hashes> | null = null;

  constructor(private readonly make: () => Promise<Hashes>) {}

  take(): Promise<Hashes> {
    return (this.taken ??= this.make());
  }

  /** The buffer holding the bytes is freed all the same. */
  drop(): void {
    this.take().catch(() => undefined);
  }
}

/**
 * Reads a file and returns its hashes to take when wanted. A file under a MiB whose hashes are
 * SHA-1 and SHA-256 only (a photo read back) is read into a shared buffer and hashed there by
 * the hashing worker (off-thread.ts), so a caller with something else to wait for (a read-back
 * waits for its file's sync) waits for both at once, and the run's thread does not hash it.
 */
export async function hashFileLater(path: string, choice: HashChoice = ALL_HASHES, expectedSize?: number): Promise<HashesLater> {
  // `expectedSize` (what the file should hold) spares a file too small or large for the worker an open and a stat.
  const mayHandOver = expectedSize === undefined || (expectedSize >= OFF_THREAD_MIN && expectedSize < SLOT_BYTES);
  if (!choice.quickXor && mayHandOver) {
    const later = await readIntoShared(path, choice.sha1);
    if (later) return later;
  }
  // Not through MultiHasher: nothing downstream wants the bytes, so skip the stream machinery.
  const hashers = new Hashers(choice);
  await readFileChunks(path, (chunk) => hashers.update(chunk));
  const h = hashers.finish();
  return new HashesLater(() => Promise.resolve(h));
}

/**
 * Smaller files are hashed on the run's thread: 64 KiB take it ~40 us, about what handing them
 * over saves, and a run of small files (the scale bench's items are 200-500 bytes) never starts
 * the worker (~10 MB of resident memory) at all.
 */
const OFF_THREAD_MIN = 64 * 1024;

/** A file of 64 KiB up to a MiB read into a shared buffer and handed to the hashing worker; null for another size, or no buffer free. */
async function readIntoShared(path: string, sha1: boolean): Promise<HashesLater | null> {
  await takeTurn();
  try {
    const fd = await openFd(path, 'r');
    let taken: ReturnType<ReturnType<typeof hashWorker>['take']> = null;
    let handed = false;
    try {
      const size = fs.fstatSync(fd).size;
      if (size < OFF_THREAD_MIN || size >= SLOT_BYTES) return null;
      taken = hashWorker().take();
      if (!taken) return null;
      const n = await readFdUpTo(fd, taken.buffer, size);
      // It grew to a MiB meanwhile: read it in chunks instead.
      if (n === SLOT_BYTES) return null;
      const digests = hashWorker().hash(taken.slot, n, sha1);
      handed = true;
      return new HashesLater(() => digests().then((d) => ({ sha1: d.sha1, sha256: d.sha256, quickXor: null, size: n })));
    } finally {
      closeQuietly(fd);
      if (taken && !handed) hashWorker().give(taken.slot);
    }
  } finally {
    endTurn();
  }
}

export function hashBuffer(buf: Uint8Array, choice: HashChoice = ALL_HASHES): Hashes {
  const hashers = new Hashers(choice);
  hashers.update(buf);
  return hashers.finish();
}
