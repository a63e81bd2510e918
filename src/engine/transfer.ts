// Stage 2, transfer. One item, from the source's bytes to a staged upload: open the stream, hash it while it
// flows (SHA-1, SHA-256 and QuickXorHash in one pass), hold back the first MiB just long enough
// to learn the capture time (which some destinations need before the first byte), stage the
// upload, and check the bytes against what the source declared before anything is committed.

import { Readable } from 'node:stream';
import type { Destination, Hashes, ItemFacts, Source, SourceItem, Staged } from '../../providers/types.ts';
import { RejectedError, RetryableError } from '../../providers/types.ts';
import { Hashers, MultiHasher, hashesFor } from '../hash/multihash.ts';
import { MvhdScanner } from '../media/mvhd.ts';
import type { Items, ItemRow } from '../../state/items.ts';
import type { CommitStage } from './commit.ts';
import type { RunContext } from './context.ts';
import { datesByFile, datingNote, decideDating } from './dating.ts';
import { HEAD_BYTES, probeFacts, settleCaptureTime } from './facts.ts';
import { sessionSlot, sourceItem, stagedFromRow, type StagedItem } from './rows.ts';
import { planDatedCopy, type DatedCopy } from '../media/dated-copy.ts';
import { isEmbeddedSource } from '../media/capture-time.ts';
import { systemZone } from '../media/zone.ts';

export class DeclaredHashMismatch extends RetryableError {
  constructor(message: string) {
    super(message);
    this.name = 'DeclaredHashMismatch';
  }
}

async function readRange(source: Source, item: SourceItem, offset: number, length: number): Promise<Buffer> {
  const s = await source.open(item, { offset, length });
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Plans the dated copy when the destination wants dates written in and the file lacks one. */
function planCopy(
  destination: Destination,
  facts: ItemFacts,
  format: string | null,
  head: Buffer,
  size: number,
): { copy: DatedCopy | null; note: string | null } {
  const from = facts.captureTimeDetail ?? facts.captureTimeSource;
  let copy: DatedCopy | null = null;
  const dating = decideDating(destination, { present: !!facts.captureTime, own: isEmbeddedSource(facts.captureTimeSource) }, () => {
    const plan = planDatedCopy({ format, head, size, time: facts.captureTime!, from, datesByFile: datesByFile(destination) });
    if ('skip' in plan) return plan.skip;
    copy = plan;
    return null;
  });
  return { copy, note: datingNote(dating, facts.captureTime, from) };
}

/** Runs an item's work at the destination in one of its slots (see readAheadFor in scheduler.ts). */
export type DestinationSlot = <T>(work: () => Promise<T>) => Promise<T>;

const noSlot: DestinationSlot = (work) => work();

/** Streams one item into a staged upload. Throws RejectedError, RetryableError or StopRunError. */
export async function stageItem(
  source: Source,
  destination: Destination,
  items: Items,
  row: ItemRow,
  signal: AbortSignal,
  zone: string = systemZone(),
  inSlot: DestinationSlot = noSlot,
): Promise<StagedItem> {
  const item = sourceItem(row);
  const size = item.size;
  if (size === null || size === undefined) throw new RejectedError('the source does not declare the size of this item', 'size-not-declared');

  const raw = await source.open(item, { signal });
  // Hashed as each chunk is taken (no Transform stream in between: one stream layer less per item).
  const hasher = new Hashers(hashesFor(item, destination.hashes));
  const it = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const scanner = new MvhdScanner();

  let total = 0;
  const take = (chunk: Buffer): Buffer => {
    total += chunk.length;
    if (total > size) throw new RetryableError(`the source sent more bytes than the ${size} it declared`);
    hasher.update(chunk);
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
  // A photo's head is usually its one chunk (a local file is read a MiB at a time): used as it is,
  // not copied, since it is only read. Copying it was an allocation and a memcpy of each file.
  const head = headChunks.length === 1 ? headChunks[0]! : Buffer.concat(headChunks);
  const probe = await probeFacts(item, head, scanner.result(), readAt, zone);
  const refusal = destination.refuse?.(item, probe.facts) ?? null;
  if (refusal) {
    raw.destroy();
    items.recordFacts(row.id, probe.record);
    throw new RejectedError(refusal, 'refused-by-destination');
  }

  // From here on the item holds one of the destination's slots, read and probed already.
  return inSlot(async () => {
    let container: string;
    try {
      // A run stopped while the item waited for its slot sends it nowhere.
      signal.throwIfAborted();
      container = await destination.prepareContainer(item, probe.facts);
    } catch (err) {
      raw.destroy();
      items.recordFacts(row.id, probe.record);
      throw err;
    }
    return stageRecorded(destination, items, row, signal, {
      item,
      size,
      raw,
      it,
      take,
      headChunks,
      ended,
      probe,
      container,
      head,
      hasher,
      scanner,
      zone,
      total: () => total,
    });
  });
}

/**
 * What the bytes told and where the item goes are recorded with its hashes once it is staged;
 * an item that stops on the way records them on their own (a report shows them for it too).
 */
async function stageRecorded(destination: Destination, items: Items, row: ItemRow, signal: AbortSignal, s: Streaming): Promise<StagedItem> {
  const { probe, container } = s;
  try {
    return await stageInto(destination, items, row, signal, s);
  } catch (err) {
    if (!(err instanceof StagedAlready)) {
      items.together(() => {
        items.recordFacts(row.id, probe.record);
        items.setContainer(row.id, container);
      });
    }
    throw err instanceof StagedAlready ? err.cause : err;
  }
}

/** Thrown past stageItem's recording of the facts when the staged write already holds them. */
class StagedAlready extends Error {
  constructor(override readonly cause: unknown) {
    super('staged');
  }
}

interface Streaming {
  item: SourceItem;
  size: number;
  raw: Readable;
  it: AsyncIterator<Buffer>;
  take: (chunk: Buffer) => Buffer;
  headChunks: Buffer[];
  ended: boolean;
  probe: Awaited<ReturnType<typeof probeFacts>>;
  container: string;
  head: Buffer;
  hasher: Hashers;
  scanner: MvhdScanner;
  zone: string;
  total: () => number;
}

/** stageItem from the prepared container on: the bytes go to the destination, then one write records all of it. */
async function stageInto(destination: Destination, items: Items, row: ItemRow, signal: AbortSignal, s: Streaming): Promise<StagedItem> {
  const { item, size, raw, it, take, headChunks, ended, probe, container, head, hasher, scanner, zone } = s;
  const { copy, note } = planCopy(destination, probe.facts, probe.format, head, size);
  const facts: ItemFacts = copy ? { ...probe.facts, dateAdded: true } : probe.facts;

  // The destination pulls from this: the held-back head first, then the rest as it arrives.
  // Handed to it as it is: a Readable around it (a stream and an async iterator more an item)
  // is only made for a dated copy, whose transform is piped.
  const sourceBytes = (async function* () {
    for (const c of headChunks) {
      copy?.check.source(c);
      yield c;
    }
    if (!ended) {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        copy?.check.source(r.value);
        yield take(r.value);
      }
    }
    if (s.total() !== size) throw new RetryableError(`the source sent ${s.total()} bytes but declared ${size}: the download was cut short or the file changed`);
  })();
  // A dated copy: the date written in as the bytes pass, hashed again on the way out.
  // The copy is what the destination holds and compares: only the hashes it uses.
  const copyHasher = copy ? new MultiHasher(hashesFor({ sha1: null }, destination.hashes)) : null;
  let body: AsyncIterable<Buffer> = sourceBytes;
  const streams: Readable[] = [];
  if (copy && copyHasher) {
    const flowing = Readable.from(sourceBytes, { objectMode: false, highWaterMark: 1 });
    flowing.on('error', (err) => copy.transform.destroy(err));
    copy.transform.on('error', (err) => copyHasher.destroy(err));
    copy.transform.on('data', (c: Buffer) => copy.check.copy(c));
    const piped = flowing.pipe(copy.transform).pipe(copyHasher);
    streams.push(flowing, piped);
    body = piped;
  }

  let staged: Staged;
  try {
    staged = await destination.upload({
      item,
      facts,
      container,
      name: item.name,
      size: copy ? copy.size : size,
      body,
      session: sessionSlot(items, row),
      signal,
    });
  } catch (err) {
    copy?.check.dispose();
    throw err;
  } finally {
    raw.destroy();
    for (const stream of streams) stream.destroy();
  }
  if (s.total() !== size) {
    copy?.check.dispose();
    throw new RetryableError(`the destination finished after ${s.total()} of ${size} bytes`);
  }

  const hashes = hasher.finish();
  // The container time may only have shown up at the end of the stream (moov after mdat).
  if (probe.facts.kind === 'video' && !probe.record.exifTime && scanner.result()) {
    const r = settleCaptureTime(item, { kind: 'container', iso: scanner.result()! }, zone);
    Object.assign(probe.record, {
      exifTime: scanner.result(),
      captureTime: r.time,
      captureSource: r.source,
      captureDetail: r.detail,
      captureOffsetFrom: r.offsetFrom,
    });
    Object.assign(facts, { captureTime: r.time, captureTimeSource: r.source, captureTimeDetail: r.detail, dateAdded: false });
  }

  let uploaded = hashes;
  let copyRecord: { hashes: Hashes | null; note: string | null } = { hashes: null, note };
  if (copy && copyHasher) {
    const verdict = await copy.check.verdict();
    if (!verdict.ok) {
      await destination.abort?.(staged).catch(() => undefined);
      throw new RejectedError(
        `the dated copy was not uploaded: it differs from the source by more than the date (${verdict.detail}); run again with --keep-bytes (Google Photos) or without --embed-dates (OneDrive) to move the file unchanged`,
        'dated-copy-differs',
      );
    }
    const copyHashes = copyHasher.digest();
    if (copyHashes.sha256 !== hashes.sha256) {
      uploaded = copyHashes;
      copyRecord = { hashes: copyHashes, note: `date added: ${copy.time} from ${copy.from}; ${verdict.detail}` };
    } else {
      // The file had its own date after all (a video's moov came last): the source's bytes went up.
      copyRecord = { hashes: null, note: null };
    }
  }

  const declaredOk = item.sha1 ? item.sha1.toLowerCase() === hashes.sha1 : null;
  // The facts, the container, the copy (if any) and the staged upload: one write.
  try {
    // The row is the one startTransfer returned: its last_run is this run.
    items.recordStaged(row.id, hashes, declaredOk, declaredOk === false ? null : staged.handle, row.last_run, {
      facts: probe.record,
      container,
      copy: copyRecord.hashes,
      note: copyRecord.note,
    });
  } catch (err) {
    throw new StagedAlready(err);
  }
  if (declaredOk === false) {
    await destination.abort?.(staged).catch(() => undefined);
    throw new StagedAlready(
      new DeclaredHashMismatch(
        `the SHA-1 of the bytes read (${hashes.sha1}) differs from the source's declared SHA-1 (${item.sha1}): corrupted download, not uploaded`,
      ),
    );
  }
  return { item, facts, container, staged, hashes: uploaded, read: hashes, copyNote: copyRecord.hashes ? copyRecord.note : null };
}

/**
 * Stages one item inside a queue slot and returns its commit, which runs outside the slot:
 * a worker moves on to the next item while staged ones gather into full commit batches
 * (Google's batchCreate takes 50, far more than the items a queue has in flight).
 * The commit never rejects: its failure is written to the item's row.
 */
export async function transferOne(ctx: RunContext, commits: CommitStage, id: number, inSlot: DestinationSlot): Promise<{ commit: Promise<void> }> {
  const { items, source, destination } = ctx;
  // The row as startTransfer leaves it: the scheduler queues ids, and a row read when the item
  // was queued would be read again here anyway (a listing may have described it anew since).
  let row: ItemRow | null = null;
  try {
    row = items.startTransfer(id, ctx.runId);
    // A staged upload saved by a killed run is committed without sending the bytes again.
    if (row.staged && row.sha256 && row.declared_hash_ok !== 0 && destination.canCommitLater?.(JSON.parse(row.staged))) {
      const taken = row;
      return { commit: commits.commit(taken, stagedFromRow(taken)).catch((err) => ctx.itemFailed(taken, err)) };
    }
    const taken = row;
    const staged = await stageItem(source, destination, items, taken, ctx.signal, ctx.opts.timeZone, inSlot);
    ctx.emit({ type: 'bytes', bytes: staged.hashes.size });
    // Wrapped in an object: returning the bare promise would make this await the commit too.
    return { commit: commits.commit(taken, staged).catch((err) => ctx.itemFailed(taken, err)) };
  } catch (err) {
    ctx.itemFailed(row ?? items.get(id), err);
    return { commit: Promise.resolve() };
  }
}
