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

import type { EvidenceLevel, Source, SourceItem } from '../../providers/types.ts';
import { EVIDENCE_ORDER, ItemGoneError } from '../../providers/types.ts';
import type { ItemRow, Items } from '../../state/items.ts';
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
  deleted = 0;
  failed = 0;

  constructor(
    private readonly source: Source,
    private readonly items: Items,
    private readonly runId: number,
    private readonly policy: DeletionPolicy,
    private readonly log: (msg: string) => void,
    private readonly onDeleted: (row: ItemRow) => void = () => undefined,
  ) {}

  /** Queues the item for deletion if the rule allows; resolves once it is handled. */
  consider(itemId: number): Promise<void> {
    const next = this.chain.then(() => this.deleteOne(itemId));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async deleteOne(itemId: number): Promise<void> {
    // Re-read the row: the verdict is taken on what the state store holds, not on memory.
    const row = this.items.get(itemId);
    const verdict = deletionVerdict(row, this.policy);
    if (!verdict.delete) return;
    const item = JSON.parse(row.item_json) as SourceItem;
    let response: string;
    try {
      response = (await this.source.delete(item)).response;
    } catch (err) {
      if (err instanceof ItemGoneError) response = `already gone at the source: ${reason(err)}`;
      else {
        this.failed++;
        this.log(`could not delete ${row.name} at the source: ${reason(err)}`);
        return;
      }
    }
    this.items.markSourceDeleted(itemId, this.runId, reason(response));
    this.deleted++;
    this.onDeleted(row);
    if (this.source.deletePauseMs) await sleep(this.source.deletePauseMs);
  }

  drain(): Promise<void> {
    return this.chain;
  }
}
