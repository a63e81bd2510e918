// Stage 4, verify: ask the destination whether what it holds is the bytes we sent, batched as
// the destination wants. A verified item (and any duplicate sharing its destination item) goes
// on to the deletion rule; a mismatch goes back to be uploaded again.

import type { VerifyRequest, VerifyResult } from '../../providers/types.ts';
import { RetryableError, StopRunError } from '../../providers/types.ts';
import type { ItemRow } from '../../state/items.ts';
import { backoffDelay, sleep } from '../lib/backoff.ts';
import { reason } from '../lib/redact.ts';
import { LINGER_MS, verifyBatcher, type Batcher } from './batcher.ts';
import { IN_LIBRARY_DETAIL, type RunContext } from './context.ts';
import type { Deleter } from './deletion.ts';
import { verifyRequest } from './rows.ts';

export class VerifyStage {
  // A partial batch waits for company (LINGER_MS at most): each batch call costs a quota request.
  private readonly batcher: Batcher<VerifyRequest, VerifyResult>;
  private pending = 0;

  constructor(
    private readonly ctx: RunContext,
    private readonly deleter: Deleter,
  ) {
    const d = ctx.destination;
    this.batcher = verifyBatcher(d, LINGER_MS);
  }

  /** Starts verifying an uploaded item; it runs on its own (drain() waits for it). */
  start(rowId: number): void {
    this.pending++;
    void this.verifyItem(rowId)
      .catch((err) => this.ctx.log('warn', `verification of item ${rowId}: ${reason(err)}`))
      .finally(() => this.pending--);
  }

  /** Items an earlier run committed but could not verify yet. */
  resumeEarlierRuns(): void {
    for (let after = 0; ; ) {
      const batch = this.ctx.items.uploaded(after, 500);
      if (!batch.length) break;
      for (const r of batch) this.start(r.id);
      after = batch[batch.length - 1]!.id;
    }
  }

  flush(): void {
    this.batcher.flush();
  }

  async drain(): Promise<void> {
    while (this.pending > 0) {
      this.batcher.flush();
      await sleep(50);
    }
    await this.batcher.close();
  }

  private async verifyItem(rowId: number): Promise<void> {
    const { ctx } = this;
    const { items } = ctx;
    const deadline = Date.now() + ctx.opts.verifyWaitMs;
    for (let attempt = 1; ; attempt++) {
      if (ctx.signal.aborted) return;
      const row = items.get(rowId);
      if (row.state !== 'uploaded' || !row.dest_id || !row.sha256) return;
      let res: VerifyResult;
      try {
        res = await this.batcher.add('', verifyRequest(row));
      } catch (err) {
        res = { outcome: 'error', error: err as Error };
      }
      if (res.outcome === 'verified') {
        // The copy's own proof (only the date differs from the source) goes with the destination's.
        const detail = row.copy_sha256 && row.date_note ? `${row.date_note}; against the uploaded copy: ${res.evidence.detail}` : res.evidence.detail;
        items.markVerified(rowId, res.evidence.level, detail);
        ctx.emit({ type: 'item', name: row.name, state: 'verified', bytes: row.bytes_read ?? 0, detail: res.evidence.level });
        this.afterVerified(row, res.evidence.level, detail);
        return;
      }
      if (res.outcome === 'in-library') {
        items.markInLibrary(rowId, row.dest_id, res.reason, res.evidence);
        ctx.emit({ type: 'item', name: row.name, state: 'skipped', bytes: row.bytes_read ?? 0, detail: IN_LIBRARY_DETAIL });
        this.deleter.consider(rowId);
        return;
      }
      if (res.outcome === 'mismatch') {
        items.markVerifyMismatch(rowId, `verification failed: ${reason(res.reason)}`);
        ctx.failedAttempt(rowId);
        ctx.emit({ type: 'item', name: row.name, state: 'failed', bytes: 0, detail: res.reason });
        return;
      }
      if (res.outcome === 'error' && res.error instanceof StopRunError) {
        ctx.halt(res.error.kind, reason(res.error));
        return;
      }
      const wait =
        res.outcome === 'pending' ? res.retryAfterMs : backoffDelay(attempt, res.error instanceof RetryableError ? res.error.retryAfterMs : undefined);
      if (Date.now() + wait > deadline) {
        ctx.log('warn', `${row.name}: not verified yet (${res.outcome === 'pending' ? res.reason : reason(res.error)}); a later run will ask again`);
        return;
      }
      // Many items may be waiting at once (videos still processing): each on a signal of its own.
      await ctx.waits.run((signal) => sleep(wait, signal)).catch(() => undefined);
    }
  }

  /** `level` and `detail` are the evidence just recorded for the row. */
  private afterVerified(row: ItemRow, level: string, detail: string): void {
    const { items } = this.ctx;
    // Duplicates of this item share its destination item: same bytes, same evidence.
    for (const dup of items.duplicatesOf(row.id)) {
      if (dup.sha256 && dup.sha256 === row.sha256) {
        items.inheritEvidence(dup.id, level, `same bytes as item ${row.id}: ${detail}`);
        this.deleter.consider(dup.id);
      }
    }
    this.deleter.consider(row.id);
  }
}
