// The run: list -> transfer -> commit -> verify -> delete, one module per stage, composed here;
// the scheduler (scheduler.ts) feeds the transfer stage on a bounded p-queue. Work is pulled from
// the state store a page at a time, so a run over a
// million-item state starts at once and memory does not grow with the library. Each step's
// outcome is written to the state store before the next step starts: a run killed at any
// instant resumes correctly.

import type { Destination, Source } from '../../providers/types.ts';
import type { DB } from '../../state/db.ts';
import { startWriteBehind, stopWriteBehind } from '../../state/db.ts';
import type { ItemState } from '../../state/items.ts';
import { CommitStage } from './commit.ts';
import { RunContext } from './context.ts';
import type { RunOptions, StopReason } from './context.ts';
import { Deleter } from './deletion.ts';
import { writesDatedCopies } from './dating.ts';
import { startListing } from './list.ts';
import { refuseOverlap } from './overlap.ts';
import { checkIdentity, finishRun, startRun } from './runs.ts';
import { Scheduler, Wakeup } from './scheduler.ts';
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

  if (!writesDatedCopies(destination)) {
    const n = ctx.items.retryDatedCopyRejections();
    if (n) ctx.log('info', `${n} item(s) refused earlier because their dated copy differed from the source go again, unchanged`);
  }
  const listing = startListing(ctx, wakeUp.nudge);
  // Nothing at the source is read or deleted before the first page shows the source is there.
  await Promise.race([listing.firstPage, new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }))]);
  let retryAt: number | null = null;
  if (!ctx.signal.aborted) {
    verify.resumeEarlierRuns();
    deleter.resumeEarlierRuns();
    // Earlier runs' items are verified and checked again as the run goes: one may come back to migrate.
    retryAt = await new Scheduler(ctx, commits, verify, listing, wakeUp, () => deleter.checkingEarlierRuns || verify.checkingEarlierRuns).run();
  }

  await listing.done;
  await commits.close();
  await verify.drain();
  await deleter.drain();
  if (retryAt !== null)
    ctx.halt(
      'waiting',
      `nothing is left to do before ${new Date(retryAt).toISOString()}, when the items waiting to retry may go (${ctx.lastWaitReason ?? 'the service asked to wait'}): run again then; the migration resumes where it stopped`,
    );
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
