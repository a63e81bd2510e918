// Stage 3, commit: create staged uploads at the destination, batched as the destination wants
// (Google's batchCreate takes 50). A created item goes on to verification; one the destination
// already held goes straight to the deletion rule with the evidence it came with.

import type { CommitRequest, CommitResult } from '../../providers/types.ts';
import type { ItemRow } from '../../state/items.ts';
import { commitBatcher, type Batcher } from './batcher.ts';
import { IN_LIBRARY_DETAIL, type RunContext } from './context.ts';
import type { Deleter } from './deletion.ts';
import type { StagedItem } from './rows.ts';
import type { VerifyStage } from './verify.ts';

/**
 * Fault point for the crash test: with GALLERY_BRIDGE_FAULT_KILL_AFTER_UPLOADED=N the process
 * kills itself right after its Nth item is committed at the destination (and recorded as
 * uploaded, where that is recorded apart from its verification), before its verification: for
 * the folder destination, inside the item's durability group (linked, not yet fsynced; the
 * state still says transferring, with what came before committed). A kill on the item's progress
 * line cannot aim there: the record is written behind (up to 50 ms) and the kill lands before it.
 */
const KILL_AFTER_UPLOADED = Number(process.env.GALLERY_BRIDGE_FAULT_KILL_AFTER_UPLOADED ?? 0);
let uploadedThisProcess = 0;
function uncheckedWindow(commitRecord: () => void): void {
  if (KILL_AFTER_UPLOADED > 0 && ++uploadedThisProcess === KILL_AFTER_UPLOADED) {
    commitRecord();
    process.kill(process.pid, 'SIGKILL');
  }
}

export class CommitStage {
  // A partial batch waits for company (LINGER_MS at most): each batch call costs a quota request,
  // and the wait is nothing next to an upload token's day of life. The run flushes at once
  // when nothing else is coming.
  private readonly batcher: Batcher<CommitRequest, CommitResult>;
  /** The destination verifies on this machine: an item is verified at its commit, both recorded in one write. */
  private readonly verifyAtCommit: boolean;
  /** Verifications begun at an item's commit and not ended, by item. */
  private readonly verifying = new Map<number, Promise<void>>();

  constructor(
    private readonly ctx: RunContext,
    private readonly verify: VerifyStage,
    private readonly deleter: Deleter,
  ) {
    this.batcher = commitBatcher(ctx.destination, ctx.opts.fence);
    this.verifyAtCommit = !!ctx.destination.verifiesLocally && !!ctx.destination.idempotentCommit;
  }

  /**
   * The verification begun at this item's commit, while it lasts: until it ends the item's row
   * still says transferring, so the scheduler keeps it in flight (not queued again).
   */
  verifyingAtCommit(id: number): Promise<void> | undefined {
    return this.verifying.get(id);
  }

  /** Commits one staged item and records the outcome. Throws what the commit threw. */
  async commit(row: ItemRow, s: StagedItem): Promise<void> {
    const { ctx } = this;
    const { items } = ctx;
    const result = await this.batcher.add(s.container, {
      staged: s.staged,
      input: { item: s.item, facts: s.facts, container: s.container, name: s.item.name, size: s.hashes.size, session: undefined as never },
      hashes: s.hashes,
    });
    if (result.outcome === 'error') throw result.error;
    if (result.outcome === 'in-library') {
      items.markInLibrary(row.id, result.destId, result.reason, result.evidence);
      ctx.emit({ type: 'item', name: row.name, state: 'skipped', bytes: s.hashes.size, detail: IN_LIBRARY_DETAIL });
      this.deleter.consider(row.id);
      return;
    }
    if (result.outcome === 'duplicate') {
      items.markDuplicate(row.id, result.destId, result.destPath ?? null, result.evidence ?? null);
      ctx.emit({ type: 'item', name: row.name, state: 'skipped', bytes: s.hashes.size, detail: 'already at the destination' });
      this.deleter.consider(row.id);
      return;
    }
    if (this.verifyAtCommit) {
      // Recorded with its verification, in one write (see Destination.verifiesLocally).
      uncheckedWindow(() => items.commitNow());
      ctx.emit({ type: 'item', name: row.name, state: 'uploaded', bytes: s.hashes.size });
      const verified = this.verify.atCommit(row, s, result.destId, result.destPath ?? null).finally(() => this.verifying.delete(row.id));
      this.verifying.set(row.id, verified);
      return;
    }
    const state = items.markUploaded(row.id, result.destId, result.destPath ?? null);
    // A rerun must not create the item twice: its record goes to disk before anything else.
    if (!ctx.destination.idempotentCommit) items.commitNow();
    if (state === 'skipped') {
      this.verify.settleDuplicate(row.id, row.name, s.hashes.size);
      return;
    }
    uncheckedWindow(() => items.commitNow());
    ctx.emit({ type: 'item', name: row.name, state, bytes: s.hashes.size });
    this.verify.start(row.id);
  }

  flush(): void {
    this.batcher.flush();
  }

  /** A batch is being committed or is ready to be: items waiting for their commit will move without a flush. */
  get sending(): boolean {
    return this.batcher.sending;
  }

  close(): Promise<void> {
    return this.batcher.close();
  }
}
