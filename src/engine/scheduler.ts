// Which items go to the transfer stage, and when the run has nothing left to feed it. Pending
// items are read from the state store a page at a time, so a million-item state starts at once.

import PQueue from 'p-queue';
import { destinationLimits } from '../../providers/types.ts';
import { sleep } from '../lib/backoff.ts';
import type { CommitStage } from './commit.ts';
import type { RunContext } from './context.ts';
import type { Listing } from './list.ts';
import { transferOne, type DestinationSlot } from './transfer.ts';
import type { VerifyStage } from './verify.ts';

/** Wakes the scheduling loop: a listed page, a finished item. */
export class Wakeup {
  private wake: (() => void) | null = null;
  nudge = (): void => {
    const w = this.wake;
    this.wake = null;
    w?.();
  };
  next(): Promise<void> {
    return new Promise<void>((r) => (this.wake = r));
  }
}

/** Idling longer than this for a retry to come due is pointless: the run stops and says when to rerun. */
const MAX_IDLE_MS = 2 * 60_000;
/** Pending items read at a time. */
const PAGE = 200;

/**
 * Items a transfer may read and probe ahead of a free destination slot. An item's request
 * waited while its slot read the next file (tens of microseconds of work, but each hop through
 * the event loop waits its turn): 16 slots kept 15 sessions in flight at 50 ms latency. Only a
 * local source reads ahead (an open file waits at no cost; a paused download may time out),
 * and only for a destination across the network (a local one has no latency to fill).
 */
export function readAheadFor(ctx: Pick<RunContext, 'source' | 'destination' | 'opts'>): number {
  if (!ctx.source.localPath || ctx.destination.localPath) return 0;
  return Math.max(2, Math.ceil(ctx.opts.concurrency / 4));
}

export class Scheduler {
  private readonly inFlight = new Set<number>();
  /** Staged items waiting for their commit. */
  private readonly committing = new Set<Promise<void>>();
  private readonly queue: PQueue;
  /** The destination's slots: --concurrency items at a time past reading and probing. */
  private readonly slots: PQueue;
  private readonly inSlot: DestinationSlot;
  /** Bounds `committing` too (a OneDrive staged item holds its last fragment). */
  private readonly maxCommitting: number;
  private readonly stopped: Promise<void>;
  private cursorId = 0;

  constructor(
    private readonly ctx: RunContext,
    private readonly commits: CommitStage,
    private readonly verify: VerifyStage,
    private readonly listing: Listing,
    private readonly wakeUp: Wakeup,
    /** True while items may still come back to migrate (an earlier run's item whose destination copy turned out gone). */
    private readonly moreMayCome: () => boolean,
  ) {
    const { opts } = ctx;
    this.maxCommitting = Math.max(opts.concurrency * 2, destinationLimits(ctx.destination).commitBatch * 2);
    this.queue = new PQueue({ concurrency: Math.max(1, opts.concurrency) + readAheadFor(ctx) });
    this.slots = new PQueue({ concurrency: Math.max(1, opts.concurrency) });
    this.inSlot = (work) => this.slots.add(work);
    this.stopped = new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
    // 'next' fires after p-queue has counted the finished task out, so the loop sees it gone.
    this.queue.on('next', wakeUp.nudge);
  }

  /**
   * Feeds pending items to the transfer stage until isDone(). Returns the time of the earliest
   * retry when only items waiting far into the future are left (a Retry-After of hours), else null.
   */
  async run(): Promise<number | null> {
    while (!this.ctx.signal.aborted) {
      if (await this.relieve()) continue;
      if (this.feed()) continue;
      // Nothing more from here on: wait for the listing, for in-flight work, or for a retry to come due.
      if (this.isDone()) break;
      const due = this.ctx.items.retryDue();
      if (this.quiet() && due !== null && due - Date.now() > MAX_IDLE_MS) {
        await this.queue.onIdle();
        return due;
      }
      this.flushPartial();
      // Woken by a listed page, a finished item or a stop; never by an already-settled promise,
      // which would spin this loop on microtasks and starve the I/O it waits for.
      await Promise.race([this.wakeUp.next(), sleep(this.nextWake() - Date.now()), this.stopped]);
      this.cursorId = 0;
    }
    await this.queue.onIdle();
    await this.listing.done;
    this.commits.flush();
    await Promise.all(this.committing);
    return null;
  }

  /** Nothing is left that this run may still try: quiet, and no unfinished item may be tried again in this run. */
  isDone(): boolean {
    return this.quiet() && !this.hasRetryable();
  }

  /** When to look again without being woken: as a retry comes due (within a second), else in a second. */
  nextWake(): number {
    const now = Date.now();
    const due = this.ctx.items.retryDue();
    if (due !== null && this.hasRetryable()) return now + Math.max(10, Math.min(1000, due - now));
    return now + 1000;
  }

  /** The listing has ended, no item may come back, and nothing is queued, in flight or committing. */
  private quiet(): boolean {
    return this.listing.finished && !this.moreMayCome() && this.idle() && this.committing.size === 0;
  }

  private idle(): boolean {
    return this.queue.size + this.queue.pending === 0;
  }

  /** Waits while too much is queued or waiting for its commit; true when it waited. */
  private async relieve(): Promise<boolean> {
    // The queue's own concurrency (read-ahead included): with --concurrency alone, a queue that
    // ran more than that could pass the first test while already under the second, and spin.
    const { concurrency } = this.queue;
    if (this.queue.size + this.queue.pending >= concurrency * 2) {
      await this.queue.onSizeLessThan(concurrency);
      return true;
    }
    if (this.committing.size >= this.maxCommitting) {
      // A batch on its way frees room as it ends; flushing anyway sent the items that had just
      // begun a batch as one of their own (58 batchCreate where 41 would do at --concurrency 64).
      // Only when nothing is on its way (partial batches of many albums) is a flush the way on.
      if (!this.commits.sending) this.commits.flush();
      await Promise.race([...this.committing, this.stopped]);
      return true;
    }
    return false;
  }

  /** Queues the next page of pending items this run may try; false when no page is left. */
  private feed(): boolean {
    const page = this.ctx.items.pendingIds(this.cursorId, PAGE, Date.now());
    if (!page.length) return false;
    // Past this page next time, even when none of it could go (all in flight or out of attempts
    // for this run): otherwise a page of such items at the front hid every item after it.
    this.cursorId = page[page.length - 1]!;
    for (const id of page) if (!this.inFlight.has(id) && this.mayTry(id)) this.start(id);
    return true;
  }

  private start(id: number): void {
    this.inFlight.add(id);
    void this.queue.add(async () => {
      const { commit } = await transferOne(this.ctx, this.commits, id, this.inSlot);
      const tracked = commit.finally(() => {
        // An item verified at its commit stays in flight until that ends (its row says transferring till then).
        const verifying = this.commits.verifyingAtCommit(id);
        if (verifying) {
          void verifying.finally(() => {
            this.inFlight.delete(id);
            this.wakeUp.nudge();
          });
        } else {
          this.inFlight.delete(id);
        }
        this.committing.delete(tracked);
        this.wakeUp.nudge();
      });
      this.committing.add(tracked);
    });
  }

  /**
   * A partial batch goes at once only when no transfer still running can join it; otherwise it
   * waits for them (at most the batcher's linger). Flushing on every wake made each upload
   * finishing at the tail a batch of its own: one more batchCreate and batchGet per photo.
   */
  private flushPartial(): void {
    if (!this.idle()) return;
    this.commits.flush();
    if (this.committing.size === 0) this.verify.flush();
  }

  private mayTry(id: number): boolean {
    return (this.ctx.attempts.get(id) ?? 0) < this.ctx.opts.maxAttempts;
  }

  /**
   * Is any unfinished item still worth trying in this run? Only in-flight and exhausted items
   * can hide one, so looking at that many rows (plus one) answers it without a full scan.
   */
  private hasRetryable(): boolean {
    let exhausted = 0;
    for (const n of this.ctx.attempts.values()) if (n >= this.ctx.opts.maxAttempts) exhausted++;
    return this.ctx.items.unfinished(this.inFlight.size + exhausted + 1).some((id) => !this.inFlight.has(id) && this.mayTry(id));
  }
}
