// SHA-1 and SHA-256 of a file read back, on a worker thread, straight from the buffer the file
// was read into. node:crypto's update() is synchronous, and a folder copy hashes every byte
// twice on the run's one thread: the source as it is read, and the copy read back to verify it
// (23% of the thread's CPU together, perf, 2,000 files of 50-350 KB). A read-back is read into
// one of SLOTS buffers of shared memory and the worker hashes it there: no copy, and no call
// into the worker's event loop. The two threads meet in the shared memory: the worker looks for
// work every POLL_MS while there is some (a wake a digest cost the run's thread about as much
// as hashing 200 KB on two busy cores) and writes each digest beside its buffer.
//
// Tried and left out (docs/benchmarks.md): WebCrypto's digest (the libuv pool; a copy into fresh
// memory and the job's dispatch held the thread 35-65 us a call) and the source's bytes copied
// into shared memory for the worker (the copy cost the thread a quarter of what it saved).

import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

export const SLOT_BYTES = 1 << 20;
/**
 * Shared buffers: one for each file read at once (multihash reads at most 8) and a few for those
 * waiting for the worker (it hashes a photo in about 0.1 ms). With 8, a third of a folder copy's
 * read-backs found none free; more only add resident memory (a buffer is touched as files fill
 * it; the `scale` row's run sits near its 250 MB goal). With none free, a file is read and hashed
 * on the run's thread as before.
 */
const SLOTS = 12;
const DIGEST_BYTES = 32 + 20;
const POLL_MS = 1;
const IDLE_POLLS = 20;
// ctl: jobs queued (by the caller), jobs hashed (by the worker), the worker asleep.
const QUEUED = 0;
const HASHED = 1;
const ASLEEP = 2;
// A slot's words: length, SHA-1 wanted, status.
const WORDS = 3;
const PENDING = 0;
const DONE = 1;
const AWAITED = 2;

export interface ShaDigests {
  sha1: string | null;
  sha256: string;
}

// Plain CommonJS, evaluated: no module of ours to resolve from the sources or from dist/.
const WORKER_CODE = `
const { workerData, parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const ctl = new Int32Array(workerData.ctl);
const queue = new Int32Array(workerData.queue);
const meta = new Int32Array(workerData.meta);
const arena = new Uint8Array(workerData.arena);
const digests = new Uint8Array(workerData.digests);
for (let seq = 0, idle = 0; ; ) {
  if (seq === Atomics.load(ctl, ${QUEUED})) {
    if (idle++ < ${IDLE_POLLS}) {
      Atomics.wait(ctl, ${QUEUED}, seq, ${POLL_MS});
      continue;
    }
    Atomics.store(ctl, ${ASLEEP}, 1);
    if (seq === Atomics.load(ctl, ${QUEUED})) Atomics.wait(ctl, ${QUEUED}, seq);
    Atomics.store(ctl, ${ASLEEP}, 0);
    continue;
  }
  idle = 0;
  const slot = queue[seq % ${SLOTS}];
  const m = slot * ${WORDS};
  const bytes = arena.subarray(slot * ${SLOT_BYTES}, slot * ${SLOT_BYTES} + meta[m]);
  digests.set(createHash('sha256').update(bytes).digest(), slot * ${DIGEST_BYTES});
  if (meta[m + 1]) digests.set(createHash('sha1').update(bytes).digest(), slot * ${DIGEST_BYTES} + 32);
  Atomics.store(ctl, ${HASHED}, ++seq);
  if (Atomics.exchange(meta, m + 2, ${DONE}) === ${AWAITED}) parentPort.postMessage(slot);
}
`;

class HashWorker {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(3 * 4));
  private readonly queue = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  private readonly meta = new Int32Array(new SharedArrayBuffer(SLOTS * WORDS * 4));
  private readonly arena = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
  private readonly digests = new Uint8Array(new SharedArrayBuffer(SLOTS * DIGEST_BYTES));
  private readonly views = Array.from({ length: SLOTS }, (_, i) => Buffer.from(this.arena, i * SLOT_BYTES, SLOT_BYTES));
  private readonly free = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
  /** Slots handed to the worker, and what their digests go to once read out. */
  private readonly lent = new Map<number, (d: ShaDigests) => void>();
  private readonly waiting = new Map<number, () => void>();
  private queued = 0;

  /** Buffers handed to the worker so far (for tests: that the worker, not the fallback, hashed them). */
  get handed(): number {
    return this.queued;
  }
  private worker: Worker | null = null;
  /** The worker failed: what it did not hash is hashed here, and so is everything after. */
  private broken = false;

  /** A free shared buffer to read into, or null (all lent, or no worker to hash them). */
  take(): { slot: number; buffer: Buffer } | null {
    if (this.broken) return null;
    if (this.free.length === 0) this.reclaim();
    const slot = this.free.pop();
    return slot === undefined ? null : { slot, buffer: this.views[slot]! };
  }

  /** A taken buffer not handed to the worker after all. */
  give(slot: number): void {
    this.free.push(slot);
  }

  /** Hands the first `length` bytes of a taken buffer to the worker; the buffer is the worker's until they are hashed. */
  hash(slot: number, length: number, sha1: boolean): () => Promise<ShaDigests> {
    if (!this.worker) this.spawn();
    const m = slot * WORDS;
    this.meta[m] = length;
    this.meta[m + 1] = sha1 ? 1 : 0;
    Atomics.store(this.meta, m + 2, PENDING);
    let digests: ShaDigests | null = null;
    const result = new Promise<ShaDigests>((resolve) => {
      this.lent.set(slot, (d) => {
        digests = d;
        resolve(d);
      });
    });
    this.queue[this.queued % SLOTS] = slot;
    Atomics.store(this.ctl, QUEUED, ++this.queued);
    if (Atomics.load(this.ctl, ASLEEP)) Atomics.notify(this.ctl, QUEUED, 1);
    return () => {
      if (digests || !this.lent.has(slot)) return result;
      if (this.broken || Atomics.compareExchange(this.meta, m + 2, PENDING, AWAITED) === DONE) {
        this.readOut(slot);
        return result;
      }
      // Referenced only while a digest is awaited: an idle worker never keeps the process alive.
      if (this.waiting.size === 0) this.worker?.ref();
      this.waiting.set(slot, () => this.readOut(slot));
      return result;
    };
  }

  /** Frees every lent buffer the worker is done with, its digests read out to their owner. */
  private reclaim(): void {
    for (const slot of [...this.lent.keys()]) if (Atomics.load(this.meta, slot * WORDS + 2) === DONE) this.readOut(slot);
  }

  /** Reads a slot's digests out (made here if the worker never got to them) and frees it. */
  private readOut(slot: number): void {
    const owner = this.lent.get(slot);
    if (!owner) return;
    this.lent.delete(slot);
    const m = slot * WORDS;
    const sha1 = this.meta[m + 1] === 1;
    let d: ShaDigests;
    if (Atomics.load(this.meta, m + 2) === DONE) {
      const at = slot * DIGEST_BYTES;
      d = {
        sha256: Buffer.from(this.digests.buffer, at, 32).toString('hex'),
        sha1: sha1 ? Buffer.from(this.digests.buffer, at + 32, 20).toString('hex') : null,
      };
    } else {
      const bytes = this.views[slot]!.subarray(0, this.meta[m]!);
      d = { sha256: createHash('sha256').update(bytes).digest('hex'), sha1: sha1 ? createHash('sha1').update(bytes).digest('hex') : null };
    }
    this.free.push(slot);
    owner(d);
  }

  private spawn(): void {
    const worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: { ctl: this.ctl.buffer, queue: this.queue.buffer, meta: this.meta.buffer, arena: this.arena, digests: this.digests.buffer },
    });
    worker.unref();
    worker.on('message', (slot: number) => this.wake(slot));
    const fail = (): void => {
      if (this.broken) return;
      this.broken = true;
      this.worker = null;
      for (const slot of [...this.waiting.keys()]) this.wake(slot);
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    this.worker = worker;
  }

  private wake(slot: number): void {
    const w = this.waiting.get(slot);
    if (!w) return;
    this.waiting.delete(slot);
    if (this.waiting.size === 0) this.worker?.unref();
    w();
  }
}

let shared: HashWorker | null = null;

/** The hashing worker's shared buffers (one worker a process, started on the first hash). */
export function hashWorker(): HashWorker {
  return (shared ??= new HashWorker());
}

export type { HashWorker };
