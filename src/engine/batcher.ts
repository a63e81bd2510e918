// Groups requests into batches of up to `size` (per key) and runs up to `parallel` batches at
// once (one, unless the destination says more). Destinations that batch (Google's batchCreate
// and batchGet take 50) want full batches to save quota, and Google wants commits serial per
// user; destinations that don't batch get size 1 and no waiting. A folder's verification waits
// for its file's durability group: run one at a time, each group held one file, and the copy
// waited on the disk once per photo.

import { destinationLimits, type CommitRequest, type CommitResult, type Destination, type VerifyRequest, type VerifyResult } from '../../providers/types.ts';

/**
 * The longest a partial batch of commits or verifications waits for company. The run sends a
 * partial batch at once when no transfer still running could join it, so this only bounds the
 * wait behind a slow upload (a long video): shorter, and batches left while uploads were merely
 * slow (a busy server, a slow source), costing a batchCreate and a batchGet each.
 */
export const LINGER_MS = 30_000;

export class Batcher<Req, Res> {
  private readonly groups = new Map<string, Array<{ req: Req; resolve: (r: Res) => void; reject: (e: unknown) => void }>>();
  private timer: NodeJS.Timeout | null = null;
  /** Batches ready to go while `parallel` are running. */
  private readonly ready: Array<() => Promise<void>> = [];
  private running = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly size: number,
    private readonly run: (batch: Req[]) => Promise<Res[]>,
    /** How long a partial batch waits for company before it goes anyway. */
    private readonly lingerMs: number,
    /** How many batches may run at once. */
    private readonly parallel = 1,
  ) {}

  add(key: string, req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      let group = this.groups.get(key);
      if (!group) this.groups.set(key, (group = []));
      group.push({ req, resolve, reject });
      if (group.length >= this.size) this.flushKey(key);
      else this.arm();
    });
  }

  /** Sends every partial batch now (nothing else is coming soon). */
  flush(): void {
    for (const key of [...this.groups.keys()]) this.flushKey(key);
  }

  /** True while a batch is being sent or is ready to go: waiting on it makes progress. */
  get sending(): boolean {
    return this.running > 0 || this.ready.length > 0;
  }

  get waiting(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.length;
    return n;
  }

  private arm(): void {
    if (this.timer || this.size <= 1) {
      if (this.size <= 1) this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.lingerMs);
  }

  private flushKey(key: string): void {
    const group = this.groups.get(key);
    if (!group || group.length === 0) return;
    this.groups.delete(key);
    for (let i = 0; i < group.length; i += this.size) {
      const slice = group.slice(i, i + this.size);
      this.ready.push(() => this.send(slice));
    }
    if (this.groups.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.startReady();
  }

  private async send(slice: Array<{ req: Req; resolve: (r: Res) => void; reject: (e: unknown) => void }>): Promise<void> {
    try {
      const results = await this.run(slice.map((s) => s.req));
      if (results.length !== slice.length) throw new Error(`batch answered ${results.length} results for ${slice.length} requests`);
      for (const [j, s] of slice.entries()) s.resolve(results[j]!);
    } catch (err) {
      for (const s of slice) s.reject(err);
    }
  }

  private startReady(): void {
    while (this.running < this.parallel && this.ready.length > 0) {
      const next = this.ready.shift()!;
      this.running++;
      void next().finally(() => {
        this.running--;
        this.startReady();
        if (this.running === 0 && this.ready.length === 0) for (const w of this.idle.splice(0)) w();
      });
    }
  }

  async close(): Promise<void> {
    this.flush();
    if (this.running === 0 && this.ready.length === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }
}

/**
 * Commits batched as the destination takes them (Google's batchCreate takes 50), as many calls at
 * once as it allows (one unless it says more); `fence` is awaited right before each call (see
 * RunOptions.fence).
 */
export function commitBatcher(d: Destination, fence?: () => Promise<void>): Batcher<CommitRequest, CommitResult> {
  const commit = fence
    ? async (reqs: CommitRequest[]) => {
        await fence();
        return d.commit(reqs);
      }
    : (reqs: CommitRequest[]) => d.commit(reqs);
  const { commitBatch, commitConcurrency } = destinationLimits(d);
  return new Batcher(commitBatch, commit, LINGER_MS, commitConcurrency);
}

/** Verifications batched and overlapped as the destination says (the run's and the deletion re-check's). */
export function verifyBatcher(d: Destination, lingerMs: number): Batcher<VerifyRequest, VerifyResult> {
  const { verifyBatch, verifyConcurrency } = destinationLimits(d);
  return new Batcher(verifyBatch, (reqs) => d.verify(reqs), lingerMs, verifyConcurrency);
}
