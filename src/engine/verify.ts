// Stage 4, verify: ask the destination whether what it holds is the bytes we sent, batched as
// the destination wants. A verified item (and any duplicate sharing its destination item) goes
// on to the deletion rule; a mismatch goes back to be uploaded again. Items an earlier run left
// awaiting verification are read from the state store a page at a time, as many at once as the
// destination takes: a state of a million of them costs the memory of a page, not of a million.

import type { VerifyRequest, VerifyResult } from '../../providers/types.ts';
import { destinationLimits, RetryableError, StopRunError } from '../../providers/types.ts';
import type { ItemRow } from '../../state/items.ts';
import { backoffDelay, sleep } from '../lib/backoff.ts';
import { reason } from '../lib/redact.ts';
import { LINGER_MS, verifyBatcher, type Batcher } from './batcher.ts';
import { IN_LIBRARY_DETAIL, type RunContext } from './context.ts';
import type { Deleter } from './deletion.ts';
import { verifyRequest, type StagedItem } from './rows.ts';

/** Rows read from the state store at a time. */
const PAGE = 200;
/**
 * Earlier runs' items that may wait out a Retry-After at once (a video still processing), beside
 * those being asked: a fixed bound, so waiting items never hold up the rest, nor grow with them.
 */
const MAX_WAITING = 1000;

export class VerifyStage {
  // A partial batch waits for company (LINGER_MS at most): each batch call costs a quota request.
  private readonly batcher: Batcher<VerifyRequest, VerifyResult>;
  /** Items being verified (not every item committed in the run: those in flight). */
  private readonly active = new Set<number>();
  /** Verifications the destination takes at once: its batch times its calls at once. */
  private readonly window: number;
  /** Verifications waiting on the destination now (this run's and earlier runs'). */
  private asking = 0;
  /** Earlier runs' items being verified: asking, or waiting out a Retry-After. */
  private earlierActive = 0;
  /**
   * Wakes whoever waits for a verification to end or get its answer: the walk over earlier runs'
   * items, or drain() (which runs after that walk is over).
   */
  private wake: (() => void) | null = null;
  private earlier: Promise<void> | null = null;
  /** Set by drain(): every item that will be verified is in, so a batch waits for no company. */
  private draining = false;

  constructor(
    private readonly ctx: RunContext,
    private readonly deleter: Deleter,
  ) {
    const d = ctx.destination;
    this.batcher = verifyBatcher(d, LINGER_MS);
    const { verifyBatch, verifyConcurrency } = destinationLimits(d);
    this.window = verifyBatch * verifyConcurrency;
  }

  /** Starts verifying an uploaded item; it runs on its own (drain() waits for it). */
  start(rowId: number): void {
    this.track(rowId, Date.now() + this.ctx.opts.verifyWaitMs);
  }

  /**
   * Verifies an item just committed to a destination that verifies locally, asked at once with
   * what the commit stage holds (its row is not read again). Verified, its commit and its
   * verification are recorded in one write; any other answer records the commit first and goes
   * on as start() does, from that answer. Resolves when the item's verification has ended.
   */
  atCommit(row: ItemRow, s: StagedItem, destId: string, destPath: string | null): Promise<void> {
    const rowId = row.id;
    this.active.add(rowId);
    return this.firstAtCommit(row, s, destId, destPath)
      .catch((err) => this.ctx.log('warn', `verification of item ${rowId}: ${reason(err)}`))
      .finally(() => this.verificationEnded(rowId));
  }

  private async firstAtCommit(row: ItemRow, s: StagedItem, destId: string, destPath: string | null): Promise<void> {
    const { ctx } = this;
    const { items } = ctx;
    const deadline = Date.now() + ctx.opts.verifyWaitMs;
    const res = await this.ask({ destId, destPath, item: s.item, facts: s.facts, hashes: s.hashes, size: s.hashes.size });
    if (res.outcome === 'verified') {
      const detail = s.copyNote ? `${s.copyNote}; against the uploaded copy: ${res.evidence.detail}` : res.evidence.detail;
      if (items.markCommittedVerified(row.id, destId, destPath, res.evidence.level, detail) === 'skipped') {
        this.settleDuplicate(row.id, row.name, s.hashes.size);
        return;
      }
      ctx.emit({ type: 'item', name: row.name, state: 'verified', bytes: s.read.size, detail: res.evidence.level });
      this.afterVerified(row.id, s.read.sha256, res.evidence.level, detail);
      return;
    }
    if (items.markUploaded(row.id, destId, destPath) === 'skipped') {
      this.settleDuplicate(row.id, row.name, s.hashes.size);
      return;
    }
    await this.verifyItem(row.id, deadline, res);
  }

  /**
   * An item committed to a destination item another item holds (recorded as its duplicate): it
   * takes that one's evidence, if that one has it, and goes on to the deletion rule.
   */
  settleDuplicate(rowId: number, name: string, bytes: number): void {
    const { items } = this.ctx;
    this.ctx.emit({ type: 'item', name, state: 'skipped', bytes });
    const dup = items.get(rowId);
    const original = items.get(dup.duplicate_of!);
    if (original.evidence_level && original.sha256 === dup.sha256) {
      items.inheritEvidence(rowId, original.evidence_level, `same bytes as item ${original.id}: ${original.evidence_detail ?? ''}`);
      this.deleter.consider(rowId);
    }
  }

  /** True while earlier runs' items are still being verified (a mismatch sends one back to migrate). */
  get checkingEarlierRuns(): boolean {
    return this.earlier !== null || this.earlierActive > 0;
  }

  /**
   * Items an earlier run committed but could not verify yet. They share one deadline, from now:
   * each is asked at least once, and none waits past it (as when all of them started at once).
   */
  resumeEarlierRuns(): void {
    const deadline = Date.now() + this.ctx.opts.verifyWaitMs;
    this.earlier = this.walkEarlierRuns(deadline)
      .catch((err) => this.ctx.log('warn', `verifying items committed by earlier runs: ${reason(err)}`))
      .finally(() => (this.earlier = null));
  }

  private async walkEarlierRuns(deadline: number): Promise<void> {
    for (let after = 0; !this.ctx.signal.aborted; ) {
      const page = this.ctx.items.uploaded(after, PAGE);
      if (!page.length) break;
      after = page[page.length - 1]!.id;
      for (const row of page) {
        // Bytes read by this run: start() took the item when it was committed.
        if (row.read_run === this.ctx.runId) continue;
        await this.roomForEarlier();
        if (this.ctx.signal.aborted) return;
        // Being verified already (committed in this run from bytes an earlier run read and staged).
        if (this.active.has(row.id)) continue;
        this.earlierActive++;
        this.track(row.id, deadline, () => this.earlierActive--);
      }
      // Nothing else will join a partial batch of them: committed long ago, they need not wait for company.
      this.batcher.flush();
    }
  }

  /** Waits until the destination has room for another verification and few enough earlier items wait. */
  private async roomForEarlier(): Promise<void> {
    while (!this.ctx.signal.aborted && (this.asking >= this.window || this.earlierActive >= this.window + MAX_WAITING)) {
      this.batcher.flush();
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  private freed(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Verifies an item on its own, unless it is already (drain() waits for it); `ended` runs when it is done. */
  private track(rowId: number, deadline: number, ended?: () => void): void {
    if (this.active.has(rowId)) return;
    this.active.add(rowId);
    void this.verifyItem(rowId, deadline)
      .catch((err) => this.ctx.log('warn', `verification of item ${rowId}: ${reason(err)}`))
      .finally(() => {
        ended?.();
        this.verificationEnded(rowId);
      });
  }

  flush(): void {
    this.batcher.flush();
  }

  /**
   * Resolves when every verification has ended. A partial batch waits for no company now (none
   * is coming), and the end is seen as it happens: a 50 ms poll here held every run's exit up
   * to 50 ms after its last answer.
   */
  async drain(): Promise<void> {
    while (this.earlier) await this.earlier;
    this.draining = true;
    while (this.active.size > 0) {
      this.batcher.flush();
      await new Promise<void>((r) => (this.wake = r));
    }
    await this.batcher.close();
  }

  private verificationEnded(rowId: number): void {
    this.active.delete(rowId);
    this.freed();
  }

  /** `first`: the answer to a first ask already made (at the item's commit). */
  private async verifyItem(rowId: number, deadline: number, first?: VerifyResult): Promise<void> {
    const { ctx } = this;
    const { items } = ctx;
    for (let attempt = 1; ; attempt++) {
      if (ctx.signal.aborted) return;
      const row = items.get(rowId);
      if (row.state !== 'uploaded' || !row.dest_id || !row.sha256) return;
      const res = attempt === 1 && first ? first : await this.ask(verifyRequest(row));
      if (res.outcome === 'verified') {
        // The copy's own proof (only the date differs from the source) goes with the destination's.
        const detail = row.copy_sha256 && row.date_note ? `${row.date_note}; against the uploaded copy: ${res.evidence.detail}` : res.evidence.detail;
        items.markVerified(rowId, res.evidence.level, detail);
        ctx.emit({ type: 'item', name: row.name, state: 'verified', bytes: row.bytes_read ?? 0, detail: res.evidence.level });
        this.afterVerified(row.id, row.sha256, res.evidence.level, detail);
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

  /** The destination's answer for one item (an error as an answer); counted while asked, so the window holds. */
  private async ask(request: VerifyRequest): Promise<VerifyResult> {
    this.asking++;
    try {
      const answer = this.batcher.add('', request);
      // Asked again while draining (after a Retry-After): no other item will join its batch.
      if (this.draining) this.batcher.flush();
      return await answer;
    } catch (err) {
      return { outcome: 'error', error: err as Error };
    } finally {
      this.asking--;
      this.freed();
    }
  }

  /** `level` and `detail` are the evidence just recorded for the item; `sha256`, of the bytes read at the source. */
  private afterVerified(id: number, sha256: string, level: string, detail: string): void {
    const { items } = this.ctx;
    // Duplicates of this item share its destination item: same bytes, same evidence.
    for (const dup of items.duplicatesOf(id)) {
      if (dup.sha256 && dup.sha256 === sha256) {
        items.inheritEvidence(dup.id, level, `same bytes as item ${id}: ${detail}`);
        this.deleter.consider(dup.id);
      }
    }
    this.deleter.consider(id);
  }
}
