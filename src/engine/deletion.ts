// THE deletion rule. This is the only module that calls a Source's delete(), and the rule
// below is the only way an item gets there:
//
//   an item is deleted at the source only when
//     1. the run was given --delete-source, and
//     2. the item is verified at the destination (or skipped as a duplicate with its own evidence), and
//     3. the bytes were read and hashed by us, and the source's declared hash, where it has one, matched them, and
//     4. its evidence is at least the required level (default: bytes or pixels; --delete-evidence received widens it).
//
// A later run with --delete-source applies the same rule to items verified in earlier runs.
// Every deletion is recorded in the state store (the deletions table) in the same transaction
// as the item's move to source-deleted.

import type { EvidenceLevel, SourceItem } from '../../providers/types.ts';
import { EVIDENCE_ORDER, ItemGoneError } from '../../providers/types.ts';
import type { ItemRow } from '../../state/items.ts';
import type { RunContext } from './context.ts';
import { sleep } from '../lib/backoff.ts';
import { reason } from '../lib/redact.ts';

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
  if (EVIDENCE_ORDER.indexOf(row.evidence_level) > EVIDENCE_ORDER.indexOf(policy.minimumEvidence)) {
    return { delete: false, why: `evidence "${row.evidence_level}" is weaker than the required "${policy.minimumEvidence}"` };
  }
  return { delete: true };
}

/** Applies the rule and deletes, one item at a time, paced as the source asks. */
export class Deleter {
  private chain: Promise<void> = Promise.resolve();
  private earlier: Promise<void> = Promise.resolve();
  deleted = 0;
  failed = 0;
  private readonly policy: DeletionPolicy;

  constructor(private readonly ctx: RunContext) {
    this.policy = { deleteSource: ctx.opts.deleteSource, minimumEvidence: ctx.opts.deleteEvidence };
  }

  /** Queues the item for deletion if the rule allows; resolves once it is handled. */
  consider(itemId: number): Promise<void> {
    const next = this.chain.then(() => this.deleteOne(itemId));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Items verified by earlier runs and not yet deleted fall under the same rule. */
  resumeEarlierRuns(): void {
    if (!this.policy.deleteSource) return;
    this.earlier = (async () => {
      for (let after = 0; ; ) {
        const batch = this.ctx.items.deletable(after, 500);
        if (!batch.length) break;
        for (const r of batch) await this.consider(r.id);
        after = batch[batch.length - 1]!.id;
      }
    })().catch((err) => this.ctx.log('warn', `deleting items verified by earlier runs: ${reason(err)}`));
  }

  private async deleteOne(itemId: number): Promise<void> {
    const { items, source } = this.ctx;
    // Re-read the row: the verdict is taken on what the state store holds, not on memory.
    const row = items.get(itemId);
    const verdict = deletionVerdict(row, this.policy);
    if (!verdict.delete) return;
    const item = JSON.parse(row.item_json) as SourceItem;
    let response: string;
    try {
      const proof = { hashes: { sha1: row.sha1, sha256: row.sha256!, quickXor: row.quickxor, size: row.bytes_read! }, readThisRun: this.ctx.readThisRun.has(itemId) };
      response = (await source.delete(item, proof)).response;
    } catch (err) {
      if (err instanceof ItemGoneError) response = `already gone at the source: ${reason(err)}`;
      else {
        this.failed++;
        this.ctx.log('warn', `could not delete ${row.name} at the source: ${reason(err)}`);
        return;
      }
    }
    items.markSourceDeleted(itemId, this.ctx.runId, reason(response));
    this.deleted++;
    this.ctx.emit({ type: 'item', name: row.name, state: 'source-deleted', bytes: 0, detail: `evidence: ${row.evidence_level}` });
    if (source.deletePauseMs) await sleep(source.deletePauseMs);
  }

  /** Resolves when no deletion is queued or in flight, including those of earlier runs' items. */
  async drain(): Promise<void> {
    await this.earlier;
    await this.chain;
  }
}
