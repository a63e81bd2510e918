// The pipeline: list -> transfer -> commit -> verify -> delete, on a bounded p-queue.
// Work is pulled from the state store a page at a time, so a run over a million-item state
// starts at once and memory does not grow with the library. Each step's outcome is written to
// the state store before the next step starts: a run killed at any instant resumes correctly.

import PQueue from 'p-queue';
import type { CommitRequest, CommitResult, Destination, EvidenceLevel, Source, SourceItem, StopKind, VerifyRequest, VerifyResult } from '../../providers/types.ts';
import { ItemGoneError, RejectedError, RetryableError, StopRunError } from '../../providers/types.ts';
import type { DB } from '../../state/db.ts';
import { getMeta, setMeta } from '../../state/db.ts';
import type { ItemRow, ItemState } from '../../state/items.ts';
import { Items } from '../../state/items.ts';
import { backoffDelay, sleep } from '../lib/backoff.ts';
import { reason } from '../lib/redact.ts';
import { Batcher } from './batcher.ts';
import { Deleter } from './deletion.ts';
import { checkIdentity, finishRun, startRun } from './runs.ts';
import { factsFromRow, stageItem } from './transfer.ts';
import type { StagedItem } from './transfer.ts';

export interface RunOptions {
  deleteSource: boolean;
  deleteEvidence: EvidenceLevel;
  concurrency: number;
  /** Stop cleanly at this time (a night's window). */
  until: Date | null;
  /** Attempts per item within one run before it is left failed for the next run. */
  maxAttempts: number;
  /** How long to keep asking about items the destination has not finished processing. */
  verifyWaitMs: number;
  command: string;
  sourceSpec: string;
  destinationSpec: string;
  signal: AbortSignal;
  onEvent?: (e: RunEvent) => void;
}

export type RunEvent =
  | { type: 'listed'; total: number; added: number }
  | { type: 'item'; name: string; state: ItemState | 'staged'; bytes: number; detail?: string }
  | { type: 'bytes'; bytes: number }
  | { type: 'log'; level: 'info' | 'warn'; message: string };

export type StopReason = StopKind | 'until' | 'signal';

export interface RunResult {
  runId: number;
  stopped: StopReason | null;
  message: string | null;
  counts: Record<ItemState, { items: number; bytes: number }>;
  deleted: number;
  exitCode: number;
}

const STOP_EXIT: Record<StopReason, number> = { quota: 4, until: 4, credentials: 3, 'destination-full': 5, config: 2, signal: 130 };

export async function runMigration(db: DB, source: Source, destination: Destination, opts: RunOptions): Promise<RunResult> {
  checkIdentity(db, source.identity, destination.identity);
  const items = new Items(db);
  const runId = startRun(db, opts);
  const emit = (e: RunEvent) => opts.onEvent?.(e);
  const log = (level: 'info' | 'warn', message: string) => emit({ type: 'log', level, message });

  // One controller stops everything: a StopRunError, --until, or a signal.
  const stop = new AbortController();
  let stopped: StopReason | null = null;
  let stopMessage: string | null = null;
  const halt = (why: StopReason, message: string) => {
    if (stopped) return;
    stopped = why;
    stopMessage = message;
    log('warn', message);
    stop.abort(new Error(message));
  };
  const onSignal = () => halt('signal', 'interrupted: in-flight work is checkpointed; run again to resume');
  opts.signal.addEventListener('abort', onSignal, { once: true });
  if (opts.signal.aborted) onSignal();
  let untilTimer: NodeJS.Timeout | null = null;
  if (opts.until) {
    const ms = opts.until.getTime() - Date.now();
    if (ms <= 0) halt('until', `--until ${opts.until.toISOString()} has passed: nothing started`);
    else untilTimer = setTimeout(() => halt('until', `reached --until ${opts.until!.toISOString()}: stopping cleanly; run again to resume`), ms);
  }

  const deleter = new Deleter(
    source,
    items,
    runId,
    { deleteSource: opts.deleteSource, minimumEvidence: opts.deleteEvidence },
    (m) => log('warn', m),
    (row) => emit({ type: 'item', name: row.name, state: 'source-deleted', bytes: 0, detail: `evidence: ${row.evidence_level}` }),
  );
  const attemptsThisRun = new Map<number, number>();
  const inFlight = new Set<number>();
  let pendingVerifications = 0;

  const handleError = (row: ItemRow, err: unknown): void => {
    if (err instanceof StopRunError) {
      halt(err.kind, reason(err));
      // The item did nothing wrong: it is retried first thing next run.
      safe(() => items.markInterrupted(row.id, `interrupted: ${reason(err)}`));
      return;
    }
    if (stop.signal.aborted) {
      safe(() => items.markInterrupted(row.id, 'interrupted; will resume'));
      return;
    }
    if (err instanceof RejectedError) {
      safe(() => items.markRejected(row.id, reason(err)));
      emit({ type: 'item', name: row.name, state: 'rejected', bytes: 0, detail: reason(err) });
      return;
    }
    if (err instanceof ItemGoneError) {
      safe(() => items.markRejected(row.id, `gone from the source: ${reason(err)}`));
      emit({ type: 'item', name: row.name, state: 'rejected', bytes: 0, detail: reason(err) });
      return;
    }
    const n = attemptsThisRun.get(row.id) ?? 1;
    const wait = backoffDelay(n, err instanceof RetryableError ? err.retryAfterMs : undefined);
    safe(() => items.markFailed(row.id, reason(err), Date.now() + wait));
    emit({ type: 'item', name: row.name, state: 'failed', bytes: 0, detail: reason(err) });
  };

  // ---- commit and verify, batched as the destination wants ----
  // A partial batch waits a few seconds for company: each batch call costs a quota request,
  // and the wait is nothing next to an upload token's day of life. The loop flushes at once
  // when nothing else is coming.
  const committer = new Batcher<CommitRequest, CommitResult>(Math.max(1, destination.commitBatchSize), (reqs) => destination.commit(reqs), 5000);
  const verifier = new Batcher<VerifyRequest, VerifyResult>(Math.max(1, destination.verifyBatchSize), (reqs) => destination.verify(reqs), 5000);

  const afterVerified = async (row: ItemRow): Promise<void> => {
    // Duplicates of this item share its destination item: same bytes, same evidence.
    const fresh = items.get(row.id);
    for (const dup of items.duplicatesOf(row.id)) {
      if (dup.sha256 && dup.sha256 === fresh.sha256 && fresh.evidence_level) {
        items.inheritEvidence(dup.id, fresh.evidence_level, `same bytes as item ${row.id}: ${fresh.evidence_detail ?? ''}`);
        await deleter.consider(dup.id);
      }
    }
    await deleter.consider(row.id);
  };

  const verifyItem = async (rowId: number): Promise<void> => {
    const deadline = Date.now() + opts.verifyWaitMs;
    for (let attempt = 1; ; attempt++) {
      if (stop.signal.aborted) return;
      const row = items.get(rowId);
      if (row.state !== 'uploaded' || !row.dest_id || !row.sha256) return;
      const item = JSON.parse(row.item_json) as SourceItem;
      const req: VerifyRequest = {
        destId: row.dest_id,
        destPath: row.dest_path,
        item,
        facts: factsFromRow(row, item),
        hashes: { sha1: row.sha1!, sha256: row.sha256, quickXor: row.quickxor!, size: row.bytes_read! },
        size: row.bytes_read!,
      };
      let res: VerifyResult;
      try {
        res = await verifier.add('', req);
      } catch (err) {
        res = { outcome: 'error', error: err as Error };
      }
      if (res.outcome === 'verified') {
        items.markVerified(rowId, res.evidence.level, res.evidence.detail);
        emit({ type: 'item', name: row.name, state: 'verified', bytes: row.bytes_read ?? 0, detail: res.evidence.level });
        await afterVerified(row);
        return;
      }
      if (res.outcome === 'mismatch') {
        items.markVerifyMismatch(rowId, `verification failed: ${reason(res.reason)}`);
        emit({ type: 'item', name: row.name, state: 'failed', bytes: 0, detail: res.reason });
        return;
      }
      if (res.outcome === 'error' && res.error instanceof StopRunError) {
        halt(res.error.kind, reason(res.error));
        return;
      }
      const wait = res.outcome === 'pending' ? res.retryAfterMs : backoffDelay(attempt, res.error instanceof RetryableError ? res.error.retryAfterMs : undefined);
      if (Date.now() + wait > deadline) {
        log('warn', `${row.name}: not verified yet (${res.outcome === 'pending' ? res.reason : reason(res.error)}); a later run will ask again`);
        return;
      }
      await sleep(wait, stop.signal).catch(() => undefined);
    }
  };

  const startVerify = (rowId: number) => {
    pendingVerifications++;
    void verifyItem(rowId)
      .catch((err) => log('warn', `verification of item ${rowId}: ${reason(err)}`))
      .finally(() => pendingVerifications--);
  };

  const commitStaged = async (row: ItemRow, s: Omit<StagedItem, 'staged'> & { staged: StagedItem['staged'] }): Promise<void> => {
    const result = await committer.add(s.container, {
      staged: s.staged,
      input: { item: s.item, facts: s.facts, container: s.container, name: s.item.name, size: s.hashes.size, session: undefined as never },
      hashes: s.hashes,
    });
    if (result.outcome === 'error') throw result.error;
    if (result.outcome === 'duplicate') {
      items.markDuplicate(row.id, result.destId, result.destPath ?? null, result.evidence ?? null);
      emit({ type: 'item', name: row.name, state: 'skipped', bytes: s.hashes.size, detail: 'already at the destination' });
      await deleter.consider(row.id);
      return;
    }
    const state = items.markUploaded(row.id, result.destId, result.destPath ?? null);
    emit({ type: 'item', name: row.name, state, bytes: s.hashes.size });
    if (state === 'skipped') {
      const dup = items.get(row.id);
      const original = items.get(dup.duplicate_of!);
      if (original.evidence_level && original.sha256 === dup.sha256) {
        items.inheritEvidence(row.id, original.evidence_level, `same bytes as item ${original.id}: ${original.evidence_detail ?? ''}`);
        await deleter.consider(row.id);
      }
      return;
    }
    startVerify(row.id);
  };

  /**
   * Stages one item inside a queue slot and returns its commit, which runs outside the slot:
   * a worker moves on to the next item while staged ones gather into full commit batches
   * (Google's batchCreate takes 50, far more than the items a queue has in flight).
   */
  const stageOne = async (row: ItemRow): Promise<{ commit: Promise<void> }> => {
    attemptsThisRun.set(row.id, (attemptsThisRun.get(row.id) ?? 0) + 1);
    try {
      items.startTransfer(row.id, runId);
      // A staged upload saved by a killed run is committed without sending the bytes again.
      if (row.staged && row.sha256 && row.declared_hash_ok !== 0 && destination.canCommitLater?.(JSON.parse(row.staged))) {
        const item = JSON.parse(row.item_json) as SourceItem;
        return {
          commit: commitStaged(row, {
          item,
          facts: factsFromRow(row, item),
          container: row.container ?? '',
          staged: { handle: JSON.parse(row.staged), bytesSent: 0 },
          hashes: { sha1: row.sha1!, sha256: row.sha256, quickXor: row.quickxor!, size: row.bytes_read! },
          }).catch((err) => handleError(row, err)),
        };
      }
      const staged = await stageItem(source, destination, items, items.get(row.id), stop.signal);
      emit({ type: 'bytes', bytes: staged.hashes.size });
      // Wrapped in an object: returning the bare promise would make this await the commit too.
      return { commit: commitStaged(row, staged).catch((err) => handleError(row, err)) };
    } catch (err) {
      handleError(row, err);
      return { commit: Promise.resolve() };
    }
  };
  const committing = new Set<Promise<void>>();
  const stopped$ = new Promise<void>((r) => stop.signal.addEventListener('abort', () => r(), { once: true }));
  // Staged items waiting for their commit are bounded too (a OneDrive one holds its last fragment).
  const maxCommitting = Math.max(opts.concurrency * 2, destination.commitBatchSize * 2);

  // ---- the work loop ----
  const queue = new PQueue({ concurrency: Math.max(1, opts.concurrency) });
  let listingDone = false;
  let listingError: unknown = null;
  let wake: (() => void) | null = null;
  const nudge = () => {
    const w = wake;
    wake = null;
    w?.();
  };

  const lister = (async () => {
    // A finished listing starts over on the next run, so new items are found (incremental reruns).
    let cursor = getMeta(db, 'list_state') === 'listing' ? (getMeta(db, 'list_cursor') ?? null) : null;
    setMeta(db, 'list_state', 'listing');
    let total = 0;
    for (;;) {
      if (stop.signal.aborted) return;
      const page = await source.listItems(cursor, stop.signal);
      const next = page.cursor;
      const added = items.recordPage(
        page.items.map((i) => ({
          sourceId: i.id,
          name: i.name,
          albumId: i.albumId,
          albumName: i.albumName,
          size: i.size,
          kind: i.kind,
          declaredSha1: i.sha1 ? i.sha1.toLowerCase() : null,
          declaredTime: i.declaredCaptureTime ?? null,
          json: JSON.stringify(i),
        })),
        () => {
          if (next === null) {
            setMeta(db, 'list_state', 'complete');
            setMeta(db, 'list_cursor', null);
          } else setMeta(db, 'list_cursor', next);
        },
        runId,
      );
      total += page.items.length;
      emit({ type: 'listed', total, added });
      nudge();
      if (next === null) return;
      cursor = next;
    }
  })()
    .catch((err) => {
      listingError = err;
      if (err instanceof StopRunError) halt(err.kind, reason(err));
      else log('warn', `listing stopped: ${reason(err)}; the items listed so far are migrated and the next run continues the listing`);
    })
    .finally(() => {
      listingDone = true;
      nudge();
    });

  // Items an earlier run committed but could not verify yet.
  for (let after = 0; ; ) {
    const batch = items.uploaded(after, 500);
    if (!batch.length) break;
    for (const r of batch) startVerify(r.id);
    after = batch[batch.length - 1]!.id;
  }
  // Items verified by earlier runs and not yet deleted fall under the same rule.
  if (opts.deleteSource) {
    void (async () => {
      for (let after = 0; ; ) {
        const batch = items.deletable(after, 500);
        if (!batch.length) break;
        for (const r of batch) await deleter.consider(r.id);
        after = batch[batch.length - 1]!.id;
      }
    })();
  }

  // Is any unfinished item still worth trying in this run? Only in-flight and exhausted items
  // can hide one, so looking at that many rows (plus one) answers it without a full scan.
  const hasRetryable = (): boolean => {
    let exhausted = 0;
    for (const n of attemptsThisRun.values()) if (n >= opts.maxAttempts) exhausted++;
    const rows = db
      .prepare(`SELECT id FROM items WHERE state IN ('discovered','transferring','failed') LIMIT ?`)
      .all(inFlight.size + exhausted + 1) as Array<{ id: number }>;
    return rows.some((r) => !inFlight.has(r.id) && (attemptsThisRun.get(r.id) ?? 0) < opts.maxAttempts);
  };

  // 'next' fires after p-queue has counted the finished task out, so the loop sees it gone.
  queue.on('next', nudge);
  let cursorId = 0;
  while (!stop.signal.aborted) {
    if (queue.size + queue.pending >= opts.concurrency * 2) {
      await queue.onSizeLessThan(opts.concurrency);
      continue;
    }
    if (committing.size >= maxCommitting) {
      committer.flush();
      await Promise.race([...committing, stopped$]);
      continue;
    }
    const batch = items.pending(cursorId, 200, Date.now()).filter((r) => !inFlight.has(r.id) && (attemptsThisRun.get(r.id) ?? 0) < opts.maxAttempts);
    if (batch.length) {
      for (const row of batch) {
        inFlight.add(row.id);
        void queue.add(async () => {
          const { commit } = await stageOne(row);
          const tracked = commit.finally(() => {
            inFlight.delete(row.id);
            committing.delete(tracked);
            nudge();
          });
          committing.add(tracked);
        });
        cursorId = row.id;
      }
      continue;
    }
    // Nothing more from here on: wait for the listing, for in-flight work, or for a retry to come due.
    const retryDue = db
      .prepare(`SELECT min(next_attempt_at) AS t FROM items WHERE state IN ('discovered','transferring','failed')`)
      .get() as { t: number | null };
    const retryable = hasRetryable();
    if (listingDone && queue.size + queue.pending === 0 && committing.size === 0 && !retryable) break;
    committer.flush();
    verifier.flush();
    // Woken by a listed page, a finished item or a stop; never by an already-settled promise,
    // which would spin this loop on microtasks and starve the I/O it waits for.
    const waitFor: Promise<unknown>[] = [new Promise<void>((r) => (wake = r))];
    if (retryable && retryDue.t !== null) waitFor.push(sleep(Math.max(10, Math.min(1000, retryDue.t - Date.now()))));
    else waitFor.push(sleep(1000));
    await Promise.race([...waitFor, stopped$]);
    cursorId = 0;
  }

  await queue.onIdle();
  await lister;
  committer.flush();
  await Promise.all(committing);
  await committer.close();
  while (pendingVerifications > 0) {
    verifier.flush();
    await sleep(50);
  }
  await verifier.close();
  await deleter.drain();
  if (untilTimer) clearTimeout(untilTimer);
  opts.signal.removeEventListener('abort', onSignal);

  const counts = items.countsByState();
  let exitCode: number;
  if (stopped) exitCode = STOP_EXIT[stopped as StopReason];
  else if (listingError) exitCode = 1;
  else exitCode = counts.failed.items + counts.rejected.items + counts.uploaded.items + counts.discovered.items + counts.transferring.items > 0 ? 1 : 0;
  finishRun(db, runId, stopped ?? (exitCode === 0 ? 'complete' : 'partial'), exitCode, counts);
  return { runId, stopped, message: stopMessage, counts, deleted: deleter.deleted, exitCode };
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // The item already moved on (e.g. a concurrent verification); its row tells the truth.
  }
}
