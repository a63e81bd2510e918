// THE deletion rule. This is the only module that calls a Source's delete(), and the rule
// below is the only way an item gets there:
//
//   an item is deleted at the source only when
//     1. the run was given --delete-source, and
//     2. the item is verified at the destination (or skipped as a duplicate with its own evidence), and
//     3. the bytes were read and hashed by us, and the source's declared hash, where it has one, matched them, and
//     4. its evidence is at least the required level (default: bytes or pixels; --delete-evidence received widens it), and
//     5. it is not deliberately kept (a newer version replaced it at the source), and
//     6. when it was verified by an earlier run, the destination shows it again now, and
//     7. the object at the source is still the very one whose bytes were proven: the source
//        checks that (Source.delete receives the proof) and refuses otherwise.
//
// Every deletion is recorded in the state store (the deletions table) in the same transaction
// as the item's move to source-deleted. The intent is written (durably) before the source is
// asked, so a kill between the deletion and its record is found and repaired by the next run;
// that is why the record itself may be written behind (state/items.ts, markSourceDeleted). In queue mode
// the intent and its proof are also recorded in PostgreSQL under the account's lease
// (opts.beforeDelete) before the source is asked, so the proof outlives the machine.

import PQueue from 'p-queue';
import type { EvidenceLevel, VerifyRequest, VerifyResult } from '../../providers/types.ts';
import { EVIDENCE_ORDER, ItemGoneError, RejectedError, RetryableError, SourceChangedError, sourceLimits, StopRunError } from '../../providers/types.ts';
import type { ItemRow } from '../../state/items.ts';
import { backoffDelay, sleep } from '../lib/backoff.ts';
import { reason } from '../lib/redact.ts';
import { verifyBatcher, type Batcher } from './batcher.ts';
import type { DeletionDone, DeletionIntent, RunContext } from './context.ts';
import { deletionProof, sourceItem, verifyRequest } from './rows.ts';

export interface DeletionPolicy {
  deleteSource: boolean;
  /** The weakest evidence that still allows deletion. */
  minimumEvidence: EvidenceLevel;
}

export type Verdict = { delete: true } | { delete: false; why: string };

export function deletionVerdict(row: ItemRow, policy: DeletionPolicy): Verdict {
  if (!policy.deleteSource) return { delete: false, why: '--delete-source not given' };
  if (row.state !== 'verified' && row.state !== 'skipped') return { delete: false, why: `item is ${row.state}, not verified` };
  if (!row.sha256 || row.bytes_read === null) return { delete: false, why: 'its bytes were never read and hashed here' };
  if (row.declared_sha1 && row.declared_hash_ok !== 1) return { delete: false, why: "the source's declared SHA-1 did not match the bytes read" };
  if (!row.evidence_level) return { delete: false, why: 'no verification evidence' };
  if (row.kept_reason) return { delete: false, why: row.kept_reason };
  if (EVIDENCE_ORDER.indexOf(row.evidence_level) > EVIDENCE_ORDER.indexOf(policy.minimumEvidence)) {
    return { delete: false, why: `evidence "${row.evidence_level}" is weaker than the required "${policy.minimumEvidence}"` };
  }
  return { delete: true };
}

/**
 * Fault point for the crash test: with GALLERY_BRIDGE_FAULT_KILL_AFTER_DELETE=N the process
 * kills itself right after its Nth deletion at the source, before the record, which is the
 * window a random kill almost never hits and the next run must repair.
 */
const KILL_AFTER_DELETE = Number(process.env.GALLERY_BRIDGE_FAULT_KILL_AFTER_DELETE ?? 0);
let deletionsThisProcess = 0;
function crashWindow(): void {
  if (KILL_AFTER_DELETE > 0 && ++deletionsThisProcess === KILL_AFTER_DELETE) process.kill(process.pid, 'SIGKILL');
}

/** Attempts per deletion within one run; a deletion still failing is owed, and a rerun tries again. */
const DELETE_ATTEMPTS = 6;

/** Rows read from the state store at a time. */
const PAGE = 200;

/**
 * Deletion intents written in one commit, per deletion the source takes at once: enough that a
 * fast source (a folder, 8 at once) commits once per 32 deletions, few enough that a paced one
 * (Xiaomi, one at a time) is never more than 4 intents ahead of its deletions.
 */
const INTENTS_PER_SLOT = 4;

/**
 * Applies the rule and deletes, paced as the source asks. What is due is read from the state
 * store a page at a time (its deletable index), never queued in memory per item: a source that
 * deletes slowly (Xiaomi paces its deletions) leaves verified items waiting in the state, and
 * memory stays the same for ten items or a million.
 */
export class Deleter {
  /** Deletions in flight: one at a time unless the source's limits say more; never more queued than that. */
  private readonly queue: PQueue;
  private readonly concurrency: number;
  /** Intents written in one commit, ahead of their deletions. */
  private readonly intentsAhead: number;
  /** The pass over the deletable items under way, if any: passes run one after another. */
  private running: Promise<void> | null = null;
  /** The lowest item id made deletable since the last pass began (Infinity: none). */
  private dueFrom = Number.POSITIVE_INFINITY;
  /** The next pass also checks again the items verified by earlier runs. */
  private earlierDue = false;
  private earlierPending = false;
  deleted = 0;
  private readonly policy: DeletionPolicy;
  /** Fresh proof for items verified by earlier runs, batched as the destination wants. */
  private readonly recheck: Batcher<VerifyRequest, VerifyResult>;

  constructor(
    private readonly ctx: RunContext,
    /** Told when an item goes back to be migrated again (its destination copy is gone). */
    private readonly onSentBack: () => void = () => undefined,
  ) {
    this.policy = { deleteSource: ctx.opts.deleteSource, minimumEvidence: ctx.opts.deleteEvidence };
    this.concurrency = sourceLimits(ctx.source).deleteConcurrency;
    this.intentsAhead = this.concurrency * INTENTS_PER_SLOT;
    this.queue = new PQueue({ concurrency: this.concurrency });
    this.recheck = verifyBatcher(ctx.destination, 0);
  }

  /** An item proven in this run: the rule is applied to it (and to any other item then due) by the next pass over the state. */
  consider(itemId: number): void {
    // A copy run deletes nothing.
    if (!this.policy.deleteSource) return;
    this.dueFrom = Math.min(this.dueFrom, itemId);
    this.kick();
  }

  /** True while items verified by earlier runs are still being checked again (some may come back to migrate). */
  get checkingEarlierRuns(): boolean {
    return this.earlierPending;
  }

  /**
   * Items verified by earlier runs and not yet deleted fall under the same rule, with fresh
   * proof: the destination is asked again, since its copy may have been removed or changed since.
   */
  resumeEarlierRuns(): void {
    if (!this.policy.deleteSource) return;
    this.earlierPending = true;
    this.earlierDue = true;
    this.dueFrom = 0;
    this.kick();
  }

  /** Starts the next pass unless one is under way (it starts again when that one ends). */
  private kick(): void {
    if (this.running || this.dueFrom === Number.POSITIVE_INFINITY) return;
    const after = this.dueFrom - 1;
    const earlier = this.earlierDue;
    this.dueFrom = Number.POSITIVE_INFINITY;
    this.earlierDue = false;
    this.running = this.pass(after, earlier)
      .catch((err) => this.ctx.log('warn', `deleting at the source: ${reason(err)}`))
      .finally(() => {
        this.running = null;
        if (earlier) {
          this.earlierPending = false;
          this.onSentBack();
        }
        this.kick();
      });
  }

  /**
   * One pass over the deletable items with ids above `after`, in pages. An item already tried in
   * this run (its intent names this run) is left for a rerun; one verified by an earlier run is
   * taken only by the pass that checks those again. Ends when its deletions have, so the next
   * pass reads each item's state after them.
   */
  private async pass(after: number, earlier: boolean): Promise<void> {
    while (!this.ctx.signal.aborted) {
      const page = this.ctx.items.deletable(after, PAGE);
      if (!page.length) break;
      after = page[page.length - 1]!.id;
      const due = page.filter((r) => r.deleting_run !== this.ctx.runId && deletionVerdict(r, this.policy).delete);
      const rechecked = earlier ? await this.checkAgain(due.filter((r) => !this.provenThisRun(r))) : [];
      const go = due.filter((r) => this.provenThisRun(r) || rechecked.includes(r));
      for (let i = 0; i < go.length && !this.ctx.signal.aborted; i += this.intentsAhead) await this.enqueue(go.slice(i, i + this.intentsAhead));
    }
    await this.queue.onIdle();
  }

  /**
   * Records the intents of a few deletions in one write, then queues them. An intent written
   * before its deletion's turn only says the item may be deleted: a kill before then leaves it
   * verified at the source, and the next run deletes it as any other.
   */
  private async enqueue(rows: ItemRow[]): Promise<void> {
    const marked = this.ctx.items.markDeletingMany(
      rows.map((r) => r.id),
      this.ctx.runId,
    );
    for (const r of rows) {
      if (this.ctx.signal.aborted) break;
      if (!marked.has(r.id)) continue;
      if (this.queue.size >= this.concurrency) await this.queue.onSizeLessThan(this.concurrency);
      void this.queue.add(() => this.deleteOne(r.id, r.deleting_run)).catch((err) => this.ctx.log('warn', `deletion of item ${r.id}: ${reason(err)}`));
    }
  }

  /** Asks the destination again about items verified by earlier runs; returns those it still shows. */
  private async checkAgain(rows: ItemRow[]): Promise<ItemRow[]> {
    const results = await Promise.all(
      rows.map((r) => this.recheck.add('', verifyRequest(r)).catch((err: unknown) => ({ outcome: 'error' as const, error: err as Error }))),
    );
    return rows.filter((r, i) => !this.ctx.signal.aborted && this.acceptRecheck(r, results[i]!));
  }

  private provenThisRun(row: ItemRow): boolean {
    return row.verified_at !== null && row.verified_at >= this.ctx.startedAt;
  }

  /** Records what the destination showed again; true when the deletion may go ahead. */
  private acceptRecheck(row: ItemRow, res: VerifyResult): boolean {
    const { items } = this.ctx;
    if (res.outcome === 'verified' || res.outcome === 'in-library') {
      // The rule is applied again to this evidence, which may be weaker than the first.
      items.refreshEvidence(row.id, res.evidence.level, `checked again before deletion: ${res.evidence.detail}`);
      return true;
    }
    if (res.outcome === 'mismatch') {
      items.markDestinationLost(row.id, `the destination copy failed the check before deletion (${reason(res.reason)}): migrating it again`);
      this.ctx.log(
        'warn',
        `${row.name}: the destination copy is gone or changed since it was verified (${reason(res.reason)}); it stays at the source and is migrated again`,
      );
      this.ctx.emit({ type: 'item', name: row.name, state: 'failed', bytes: 0, detail: res.reason });
      this.onSentBack();
      return false;
    }
    if (res.outcome === 'error' && res.error instanceof StopRunError) this.ctx.halt(res.error.kind, reason(res.error));
    const why = res.outcome === 'pending' ? res.reason : reason(res.error);
    items.noteDeletionOwed(row.id, `deletion owed: the destination could not be checked again (${why}); a rerun tries again`);
    return false;
  }

  /** `intendedBy`: the run whose intent the item carried before this one's (a run killed mid-deletion), or null. */
  private async deleteOne(itemId: number, intendedBy: number | null): Promise<void> {
    const { items, source } = this.ctx;
    // Re-read the row: the verdict is taken on what the state store holds, not on memory.
    const row = items.get(itemId);
    if (!deletionVerdict(row, this.policy).delete) return;
    const item = sourceItem(row);
    // Bytes read by this very run (recorded with their hashes) let the source trust its cheap identity checks.
    const proof = deletionProof(row, row.read_run === this.ctx.runId);
    if (row.deleting_run !== this.ctx.runId) items.markDeleting(itemId, this.ctx.runId);
    for (let attempt = 1; ; attempt++) {
      let done: DeletionDone | undefined;
      try {
        done = await this.ctx.opts.beforeDelete?.(this.intent(row));
        const res = await source.delete(item, proof);
        crashWindow();
        this.record(row, reason(res.response), done);
        break;
      } catch (err) {
        if (err instanceof ItemGoneError) {
          // Gone with our intent on record: the earlier run deleted it and was killed before the
          // record. The destination was just checked again; that is the evidence recorded.
          const what = intendedBy !== null ? `deleted in an interrupted run (run ${intendedBy}); found gone at the source` : 'already gone at the source';
          this.record(row, `${what}: ${reason(err)}`, done);
          break;
        }
        if (err instanceof SourceChangedError) {
          // Other bytes under the proven name: they are a new version, to migrate on their own.
          if (items.splitVersion(itemId, `kept at the source: ${reason(err)}`) === null) items.keepAtSource(itemId, `kept at the source: ${reason(err)}`);
          this.ctx.log('warn', `${row.name}: not deleted: ${reason(err)}; the bytes there now are migrated as a new item`);
          this.onSentBack();
          return;
        }
        if (err instanceof RejectedError) {
          items.keepAtSource(itemId, `kept at the source: ${reason(err)}`);
          this.ctx.log('warn', `${row.name}: kept at the source: ${reason(err)}`);
          return;
        }
        if (err instanceof StopRunError) this.ctx.halt(err.kind, reason(err));
        if (attempt >= DELETE_ATTEMPTS || this.ctx.signal.aborted) {
          items.noteDeletionOwed(itemId, `deletion owed: ${reason(err)} (${attempt} attempt${attempt > 1 ? 's' : ''}); a rerun tries again`);
          this.ctx.log('warn', `could not delete ${row.name} at the source: ${reason(err)}; a rerun tries again`);
          return;
        }
        await sleep(backoffDelay(attempt, err instanceof RetryableError ? err.retryAfterMs : undefined), this.ctx.signal).catch(() => undefined);
      }
    }
  }

  /** The proof the deletion rests on, for the pre-deletion hook (the rule already held for this row). */
  private intent(row: ItemRow): DeletionIntent {
    return {
      runId: this.ctx.runId,
      sourceId: row.source_id,
      name: row.name,
      sha1: row.sha1,
      sha256: row.sha256!,
      bytes: row.bytes_read!,
      evidence: row.evidence_level!,
      evidenceDetail: row.evidence_detail,
    };
  }

  private record(row: ItemRow, response: string, done: DeletionDone | undefined): void {
    // The evidence as the record reads it, in the same write: no read of its own.
    const fresh = this.ctx.items.markSourceDeleted(row.id, this.ctx.runId, response, (r) => `${r.evidence_level}: ${r.evidence_detail ?? ''}`);
    // Best effort and not awaited: the intent recorded before the deletion already backs it.
    done?.(response).catch((err) =>
      this.ctx.log('warn', `${row.name}: deleted, but its deletion record could not be marked done (${reason(err)}); its intent stands`),
    );
    this.deleted++;
    this.ctx.emit({ type: 'item', name: row.name, state: 'source-deleted', bytes: 0, detail: `evidence: ${fresh.evidence_level}` });
  }

  /** Resolves when no deletion is due, queued or in flight, including those of earlier runs' items. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
    await this.queue.onIdle();
    await this.recheck.close();
  }

  /** Items the rule would delete that are still at the source (the run owes them): the exit code says so. */
  owed(): number {
    if (!this.policy.deleteSource) return 0;
    let n = 0;
    for (let after = 0; ; ) {
      const page = this.ctx.items.deletable(after, 1000);
      if (!page.length) return n;
      for (const r of page) if (deletionVerdict(r, this.policy).delete) n++;
      after = page[page.length - 1]!.id;
    }
  }
}
