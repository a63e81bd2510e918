// The run: list -> transfer -> commit -> verify -> delete, one module per stage, composed here
// on a bounded p-queue. Work is pulled from the state store a page at a time, so a run over a
// million-item state starts at once and memory does not grow with the library. Each step's
// outcome is written to the state store before the next step starts: a run killed at any
// instant resumes correctly.

import PQueue from 'p-queue';
import type { Destination, Source } from '../../providers/types.ts';
import type { DB } from '../../state/db.ts';
import { startWriteBehind, statement, stopWriteBehind } from '../../state/db.ts';
import type { ItemState } from '../../state/items.ts';
import { sleep } from '../lib/backoff.ts';
import { CommitStage } from './commit.ts';
import { RunContext } from './context.ts';
import type { RunOptions, StopReason } from './context.ts';
import { Deleter } from './deletion.ts';
import { startListing } from './list.ts';
import type { Listing } from './list.ts';
import { refuseOverlap } from './overlap.ts';
import { checkIdentity, finishRun, startRun } from './runs.ts';
import { transferOne } from './transfer.ts';
import { VerifyStage } from './verify.ts';

export type { RunEvent, RunOptions, StopReason } from './context.ts';

export interface RunResult {
  runId: number;
  stopped: StopReason | null;
  message: string | null;
  counts: Record<ItemState, { items: number; bytes: number }>;
  deleted: number;
  exitCode: number;
}

const STOP_EXIT: Record<StopReason, number> = { quota: 4, until: 4, waiting: 4, credentials: 3, 'destination-full': 5, config: 2, signal: 130 };

export async function runMigration(db: DB, source: Source, destination: Destination, opts: RunOptions): Promise<RunResult> {
  refuseOverlap(source, destination);
  checkIdentity(db, source.identity, destination.identity);
  const runId = startRun(db, opts);
  startWriteBehind(db);
  try {
    return await runStages(db, source, destination, runId, opts);
  } finally {
    stopWriteBehind(db);
  }
}

async function runStages(db: DB, source: Source, destination: Destination, runId: number, opts: RunOptions): Promise<RunResult> {
  const ctx = new RunContext(db, source, destination, runId, opts);
  const unwatch = watchStops(ctx);

  const wakeUp = new Wakeup();
  const deleter = new Deleter(ctx, wakeUp.nudge);
  const verify = new VerifyStage(ctx, deleter);
  const commits = new CommitStage(ctx, verify, deleter);

  const listing = startListing(ctx, wakeUp.nudge);
  // Nothing at the source is read or deleted before the first page shows the source is there.
  await Promise.race([listing.firstPage, new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }))]);
  let retryAt: number | null = null;
  if (!ctx.signal.aborted) {
    verify.resumeEarlierRuns();
    deleter.resumeEarlierRuns();
    retryAt = await transferAll(ctx, commits, verify, listing, wakeUp, () => deleter.checkingEarlierRuns);
  }

  await listing.done;
  await commits.close();
  await verify.drain();
  await deleter.drain();
  if (retryAt !== null) ctx.halt('waiting', `nothing is left to do before ${new Date(retryAt).toISOString()}, when the items waiting to retry may go (${ctx.lastWaitReason ?? 'the service asked to wait'}): run again then; the migration resumes where it stopped`);
  unwatch();

  const counts = ctx.items.countsByState();
  let exitCode: number;
  if (ctx.stopped) exitCode = STOP_EXIT[ctx.stopped];
  else if (listing.error || listing.warnings.length > 0) exitCode = 1;
  else exitCode = counts.failed.items + counts.rejected.items + counts.uploaded.items + counts.discovered.items + counts.transferring.items > 0 ? 1 : 0;
  // With --delete-source, 0 also means every item is deleted at the source or deliberately kept.
  const owed = deleter.owed();
  if (exitCode === 0 && owed > 0) {
    exitCode = 1;
    ctx.log('warn', `${owed} deletion(s) at the source are still owed (see status); a rerun finishes them`);
  }
  stopWriteBehind(db);
  finishRun(db, ctx.runId, ctx.stopped ?? (exitCode === 0 ? 'complete' : 'partial'), exitCode, counts);
  return { runId: ctx.runId, stopped: ctx.stopped, message: ctx.stopMessage, counts, deleted: deleter.deleted, exitCode };
}

/** A signal or --until stops the run cleanly. Returns the function that stops watching. */
function watchStops(ctx: RunContext): () => void {
  const { opts } = ctx;
  const onSignal = () => ctx.halt('signal', 'interrupted: in-flight work is checkpointed; run again to resume');
  opts.signal.addEventListener('abort', onSignal, { once: true });
  if (opts.signal.aborted) onSignal();
  let untilTimer: NodeJS.Timeout | null = null;
  if (opts.until) {
    const until = opts.until;
    const ms = until.getTime() - Date.now();
    if (ms <= 0) ctx.halt('until', `--until ${until.toISOString()} has passed: nothing started`);
    else untilTimer = setTimeout(() => ctx.halt('until', `reached --until ${until.toISOString()}: stopping cleanly; run again to resume`), ms);
  }
  return () => {
    if (untilTimer) clearTimeout(untilTimer);
    opts.signal.removeEventListener('abort', onSignal);
  };
}

/** Wakes the scheduling loop: a listed page, a finished item. */
class Wakeup {
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

/**
 * Feeds pending items to the transfer stage until nothing is left that this run may still try,
 * the listing has ended, every commit has settled, and no more items may come back (an earlier
 * run's item whose destination copy turned out gone is migrated again). Returns the time of the
 * earliest retry when only items waiting far into the future are left (a Retry-After of hours), else null.
 */
async function transferAll(ctx: RunContext, commits: CommitStage, verify: VerifyStage, listing: Listing, wakeUp: Wakeup, moreMayCome: () => boolean): Promise<number | null> {
  const { opts, items, db } = ctx;
  const inFlight = new Set<number>();
  const committing = new Set<Promise<void>>();
  const stopped$ = new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
  // Staged items waiting for their commit are bounded too (a OneDrive one holds its last fragment).
  const maxCommitting = Math.max(opts.concurrency * 2, ctx.destination.commitBatchSize * 2);
  const queue = new PQueue({ concurrency: Math.max(1, opts.concurrency) });
  const mayTry = (id: number) => (ctx.attempts.get(id) ?? 0) < opts.maxAttempts;

  // Is any unfinished item still worth trying in this run? Only in-flight and exhausted items
  // can hide one, so looking at that many rows (plus one) answers it without a full scan.
  const hasRetryable = (): boolean => {
    let exhausted = 0;
    for (const n of ctx.attempts.values()) if (n >= opts.maxAttempts) exhausted++;
    const rows = statement(db, `SELECT id FROM items WHERE state IN ('discovered','transferring','failed') LIMIT ?`)
      .all(inFlight.size + exhausted + 1) as Array<{ id: number }>;
    return rows.some((r) => !inFlight.has(r.id) && mayTry(r.id));
  };

  // 'next' fires after p-queue has counted the finished task out, so the loop sees it gone.
  queue.on('next', wakeUp.nudge);
  let cursorId = 0;
  while (!ctx.signal.aborted) {
    if (queue.size + queue.pending >= opts.concurrency * 2) {
      await queue.onSizeLessThan(opts.concurrency);
      continue;
    }
    if (committing.size >= maxCommitting) {
      commits.flush();
      await Promise.race([...committing, stopped$]);
      continue;
    }
    const page = items.pending(cursorId, 200, Date.now());
    const batch = page.filter((r) => !inFlight.has(r.id) && mayTry(r.id));
    // Past this page next time, even when none of it could go (all in flight or out of attempts
    // for this run): otherwise a page of such items at the front hid every item after it.
    if (page.length) cursorId = page[page.length - 1]!.id;
    if (batch.length) {
      for (const row of batch) {
        inFlight.add(row.id);
        void queue.add(async () => {
          const { commit } = await transferOne(ctx, commits, row);
          const tracked = commit.finally(() => {
            inFlight.delete(row.id);
            committing.delete(tracked);
            wakeUp.nudge();
          });
          committing.add(tracked);
        });
      }
      continue;
    }
    if (page.length) continue;
    // Nothing more from here on: wait for the listing, for in-flight work, or for a retry to come due.
    const retryDue = statement(db, `SELECT min(next_attempt_at) AS t FROM items WHERE state IN ('discovered','transferring','failed')`)
      .get() as { t: number | null };
    const retryable = hasRetryable();
    const idle = queue.size + queue.pending === 0;
    if (listing.finished && !moreMayCome() && idle && committing.size === 0 && !retryable) break;
    if (listing.finished && !moreMayCome() && idle && committing.size === 0 && retryDue.t !== null && retryDue.t - Date.now() > MAX_IDLE_MS) {
      await queue.onIdle();
      return retryDue.t;
    }
    // A partial batch goes at once only when no transfer still running can join it; otherwise
    // it waits for them (at most the batcher's linger). Flushing on every wake made each upload
    // finishing at the tail a batch of its own: one more batchCreate and batchGet per photo.
    if (idle) commits.flush();
    if (idle && committing.size === 0) verify.flush();
    // Woken by a listed page, a finished item or a stop; never by an already-settled promise,
    // which would spin this loop on microtasks and starve the I/O it waits for.
    const waitFor: Promise<unknown>[] = [wakeUp.next()];
    if (retryable && retryDue.t !== null) waitFor.push(sleep(Math.max(10, Math.min(1000, retryDue.t - Date.now()))));
    else waitFor.push(sleep(1000));
    await Promise.race([...waitFor, stopped$]);
    cursorId = 0;
  }

  await queue.onIdle();
  await listing.done;
  commits.flush();
  await Promise.all(committing);
  return null;
}
