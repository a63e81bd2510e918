// A state row in the shapes of the provider contract: what a stage hands a Source or a
// Destination about an item it read from the state store. A leaf: it imports only types, so
// every stage may use it without reaching into another stage.

import type { DeletionProof, Hashes, ItemFacts, SessionSlot, SourceItem, Staged, VerifyRequest } from '../../providers/types.ts';
import type { ItemRow, Items } from '../../state/items.ts';

/** A staged upload on its way to commit. */
export interface StagedItem {
  item: SourceItem;
  facts: ItemFacts;
  container: string;
  staged: Staged;
  /** Hashes of the bytes uploaded: the source's, or the dated copy's. */
  hashes: Hashes;
  /** Hashes of the bytes read at the source (what a deletion binds to). */
  read: Hashes;
  /** How the dated copy differs from the source, when the copy is what was uploaded. */
  copyNote: string | null;
}

/** The item as the source listed it. */
export function sourceItem(row: ItemRow): SourceItem {
  return JSON.parse(row.item_json) as SourceItem;
}

export function factsFromRow(row: ItemRow, item: SourceItem): ItemFacts {
  return {
    captureTime: row.capture_time,
    captureTimeSource: (row.capture_source as ItemFacts['captureTimeSource']) ?? 'none',
    captureTimeDetail: row.capture_detail,
    dateAdded: !!row.copy_sha256,
    mimeType: row.mime_type ?? item.mimeType ?? 'application/octet-stream',
    kind: (row.kind as ItemFacts['kind']) ?? item.kind,
    width: row.width,
    height: row.height,
  };
}

/** The hashes the destination holds for this item: the dated copy's when one was uploaded, else the source's. */
export function uploadedHashes(row: ItemRow): Hashes {
  if (row.copy_sha256) return { sha1: row.copy_sha1, sha256: row.copy_sha256, quickXor: row.copy_quickxor, size: row.copy_size! };
  return { sha1: row.sha1, sha256: row.sha256!, quickXor: row.quickxor, size: row.bytes_read! };
}

/** The hashes of the bytes read at the source: what a deletion binds to (never the dated copy's). */
export function sourceHashes(row: ItemRow): Hashes {
  return { sha1: row.sha1, sha256: row.sha256!, quickXor: row.quickxor, size: row.bytes_read! };
}

/** What the engine proved about the item, for the source that is asked to delete it. */
export function deletionProof(row: ItemRow, readThisRun: boolean): DeletionProof {
  return { hashes: sourceHashes(row), readThisRun };
}

/** A staged upload a killed run saved, to commit without sending the bytes again. */
export function stagedFromRow(row: ItemRow): StagedItem {
  const item = sourceItem(row);
  return {
    item,
    facts: factsFromRow(row, item),
    container: row.container ?? '',
    staged: { handle: JSON.parse(row.staged!) },
    hashes: uploadedHashes(row),
    read: sourceHashes(row),
    copyNote: row.copy_sha256 ? row.date_note : null,
  };
}

/** What the destination is asked to prove about an item it holds. */
export function verifyRequest(row: ItemRow): VerifyRequest {
  const item = sourceItem(row);
  // A dated copy is what the destination holds: it is verified against the copy's hashes.
  const hashes = uploadedHashes(row);
  return { destId: row.dest_id!, destPath: row.dest_path, item, facts: factsFromRow(row, item), hashes, size: hashes.size };
}

/** The item's upload session, kept in its row (durably: the service holds it). */
export function sessionSlot(items: Items, row: ItemRow): SessionSlot {
  const id = row.id;
  let current: unknown = row.upload_session ? JSON.parse(row.upload_session) : null;
  return {
    key: `${items.stateId()}-${id}`,
    load: <T>() => current as T | null,
    save: (v: unknown) => {
      current = v;
      items.saveSession(id, v);
    },
    saveBehind: (v: unknown) => {
      current = v;
      items.saveSessionBehind(id, v);
    },
    clear: () => {
      current = null;
      items.clearSession(id);
    },
  };
}
