// Stage 2, transfer. One item, from the source's bytes to a staged upload: open the stream, hash it while it
// flows (SHA-1, SHA-256 and QuickXorHash in one pass), hold back the first MiB just long enough
// to learn the capture time (which some destinations need before the first byte), stage the
// upload, and check the bytes against what the source declared before anything is committed.

import { Readable } from 'node:stream';
import type { Destination, Hashes, ItemFacts, SessionSlot, Source, SourceItem, Staged } from '../../providers/types.ts';
import { RejectedError, RetryableError } from '../../providers/types.ts';
import { MultiHasher } from '../hash/multihash.ts';
import { MvhdScanner } from '../media/mvhd.ts';
import type { Items, ItemRow } from '../../state/items.ts';
import type { CommitStage } from './commit.ts';
import type { RunContext } from './context.ts';
import { HEAD_BYTES, probeFacts } from './facts.ts';

export interface StagedItem {
  item: SourceItem;
  facts: ItemFacts;
  container: string;
  staged: Staged;
  hashes: Hashes;
}

export class DeclaredHashMismatch extends RetryableError {
  constructor(message: string) {
    super(message);
    this.name = 'DeclaredHashMismatch';
  }
}

function sessionSlot(items: Items, id: number, row: ItemRow): SessionSlot {
  let current: unknown = row.upload_session ? JSON.parse(row.upload_session) : null;
  return {
    load: <T>() => current as T | null,
    save: (v: unknown) => {
      current = v;
      items.saveSession(id, v);
    },
    clear: () => {
      current = null;
      items.clearSession(id);
    },
  };
}

async function readRange(source: Source, item: SourceItem, offset: number, length: number): Promise<Buffer> {
  const s = await source.open(item, { offset, length });
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export function factsFromRow(row: ItemRow, item: SourceItem): ItemFacts {
  return {
    captureTime: row.capture_time,
    captureTimeSource: (row.capture_source as ItemFacts['captureTimeSource']) ?? 'none',
    mimeType: row.mime_type ?? item.mimeType ?? 'application/octet-stream',
    kind: (row.kind as ItemFacts['kind']) ?? item.kind,
    width: row.width,
    height: row.height,
  };
}

/** Streams one item into a staged upload. Throws RejectedError, RetryableError or StopRunError. */
export async function stageItem(source: Source, destination: Destination, items: Items, row: ItemRow, signal: AbortSignal): Promise<StagedItem> {
  const item = JSON.parse(row.item_json) as SourceItem;
  const size = item.size;
  if (size === null || size === undefined) throw new RejectedError('the source does not declare the size of this item');

  const raw = await source.open(item, { signal });
  const hasher = new MultiHasher();
  raw.on('error', (err) => hasher.destroy(err));
  const hashed = raw.pipe(hasher);
  const it = hashed[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const scanner = new MvhdScanner();

  let total = 0;
  const take = (chunk: Buffer): Buffer => {
    total += chunk.length;
    if (total > size) throw new RetryableError(`the source sent more bytes than the ${size} it declared`);
    scanner.push(chunk);
    return chunk;
  };

  const headChunks: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  try {
    while (headLen < HEAD_BYTES) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      headChunks.push(take(r.value));
      headLen += r.value.length;
    }
  } catch (err) {
    raw.destroy();
    throw err;
  }

  const readAt = source.randomAccess ? (o: number, l: number) => readRange(source, item, o, l) : null;
  const probe = await probeFacts(item, Buffer.concat(headChunks), scanner.result(), readAt);
  items.recordFacts(row.id, probe.record);
  const refusal = destination.refuse?.(item, probe.facts) ?? null;
  if (refusal) {
    raw.destroy();
    throw new RejectedError(refusal);
  }

  let container: string;
  try {
    container = await destination.prepareContainer(item, probe.facts);
    items.setContainer(row.id, container);
  } catch (err) {
    raw.destroy();
    throw err;
  }

  // The destination pulls from this: the held-back head first, then the rest as it arrives.
  const body = Readable.from(
    (async function* () {
      for (const c of headChunks) yield c;
      if (!ended) {
        for (;;) {
          const r = await it.next();
          if (r.done) break;
          yield take(r.value);
        }
      }
      if (total !== size) throw new RetryableError(`the source sent ${total} bytes but declared ${size}: the download was cut short or the file changed`);
    })(),
    { objectMode: false, highWaterMark: 1 },
  );

  let staged: Staged;
  try {
    staged = await destination.upload({
      item,
      facts: probe.facts,
      container,
      name: item.name,
      size,
      body,
      session: sessionSlot(items, row.id, row),
      signal,
    });
  } finally {
    raw.destroy();
    body.destroy();
  }
  if (total !== size) throw new RetryableError(`the destination finished after ${total} of ${size} bytes`);

  const hashes = hasher.digest();
  // The container time may only have shown up at the end of the stream (moov after mdat).
  if (probe.facts.kind === 'video' && !probe.record.exifTime && scanner.result()) {
    probe.record.exifTime = scanner.result();
    probe.record.captureTime = probe.record.exifTime;
    probe.record.captureSource = 'container';
    items.recordFacts(row.id, probe.record);
  }

  const declaredOk = item.sha1 ? item.sha1.toLowerCase() === hashes.sha1 : null;
  items.recordStaged(row.id, hashes, declaredOk, declaredOk === false ? null : staged.handle);
  if (declaredOk === false) {
    await destination.abort(staged).catch(() => undefined);
    throw new DeclaredHashMismatch(`the SHA-1 of the bytes read (${hashes.sha1}) differs from the source's declared SHA-1 (${item.sha1}): corrupted download, not uploaded`);
  }
  return { item, facts: probe.facts, container, staged, hashes };
}

/**
 * Stages one item inside a queue slot and returns its commit, which runs outside the slot:
 * a worker moves on to the next item while staged ones gather into full commit batches
 * (Google's batchCreate takes 50, far more than the items a queue has in flight).
 * The commit never rejects: its failure is written to the item's row.
 */
export async function transferOne(ctx: RunContext, commits: CommitStage, row: ItemRow): Promise<{ commit: Promise<void> }> {
  const { items, source, destination } = ctx;
  ctx.attempts.set(row.id, (ctx.attempts.get(row.id) ?? 0) + 1);
  try {
    items.startTransfer(row.id, ctx.runId);
    // A staged upload saved by a killed run is committed without sending the bytes again.
    if (row.staged && row.sha256 && row.declared_hash_ok !== 0 && destination.canCommitLater?.(JSON.parse(row.staged))) {
      const item = JSON.parse(row.item_json) as SourceItem;
      const staged: StagedItem = {
        item,
        facts: factsFromRow(row, item),
        container: row.container ?? '',
        staged: { handle: JSON.parse(row.staged), bytesSent: 0 },
        hashes: { sha1: row.sha1!, sha256: row.sha256, quickXor: row.quickxor!, size: row.bytes_read! },
      };
      return { commit: commits.commit(row, staged).catch((err) => ctx.itemFailed(row, err)) };
    }
    const staged = await stageItem(source, destination, items, items.get(row.id), ctx.signal);
    ctx.readThisRun.add(row.id);
    ctx.emit({ type: 'bytes', bytes: staged.hashes.size });
    // Wrapped in an object: returning the bare promise would make this await the commit too.
    return { commit: commits.commit(row, staged).catch((err) => ctx.itemFailed(row, err)) };
  } catch (err) {
    ctx.itemFailed(row, err);
    return { commit: Promise.resolve() };
  }
}
