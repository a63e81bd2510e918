// The provider contracts: the only thing the engine in src/ knows about providers.
// A provider is a Source (where items come from) or a Destination (where they go), or both.
// Everything here is plain data or an interface so that adding a provider never touches the engine.

import type { Readable } from 'node:stream';

/** What a destination can prove about an uploaded item, strongest first. */
export type EvidenceLevel = 'bytes' | 'pixels' | 'received';
export const EVIDENCE_ORDER: readonly EvidenceLevel[] = ['bytes', 'pixels', 'received'];

export type MediaKind = 'image' | 'video' | 'other';

/** An item as the source declares it, before any byte is read. JSON-serialisable, no secrets. */
export interface SourceItem {
  /** Stable id at the source. Always a string: Xiaomi ids exceed Number.MAX_SAFE_INTEGER. */
  id: string;
  name: string;
  albumId: string | null;
  albumName: string | null;
  /** Declared size in bytes, or null when the source does not know it. */
  size: number | null;
  /** Declared SHA-1 (lower-case hex) when the source publishes one. */
  sha1?: string | null;
  mimeType?: string | null;
  kind: MediaKind;
  /** Capture time the source declares (ISO 8601), used when the file has no EXIF date. */
  declaredCaptureTime?: string | null;
  /** What the declared time is called at the source, for reports ("Xiaomi's dateTaken"). */
  declaredCaptureTimeLabel?: string | null;
  /** The file system's modification time (a local folder): the last resort for a capture date. */
  fileModifiedTime?: string | null;
  /** What the source knows about the item that no destination can take (a favourite mark, a private album). */
  notCarried?: string[];
  /** Last modification time the source declares (ISO 8601). */
  modifiedTime?: string | null;
  description?: string | null;
  /** Anything else the provider wants back in open()/delete(); never secrets. */
  extra?: Record<string, unknown>;
  /**
   * Names this version of the object (folder: device, inode, size and modification time;
   * Xiaomi: its SHA-1). When an item already moved is listed again with another version, the
   * new bytes become an item of their own and the proven version keeps its row. Absent when
   * the source cannot tell versions apart.
   */
  version?: string | null;
}

export interface ListPage {
  items: SourceItem[];
  /** Opaque cursor for the next page, or null when the listing is complete. */
  cursor: string | null;
  /**
   * One line per problem that may leave items at the source this run (an unreadable page, an
   * album that listed fewer items than it holds). The engine logs each and ends the run with exit 1.
   */
  warnings?: string[];
}

/** A note for `plan`: something the listing leaves behind or the user should know. */
export interface PlanNote {
  message: string;
  items?: number;
  bytes?: number;
}

export interface OpenOptions {
  /** Start at this byte offset. Only honoured when `randomAccess` is true. */
  offset?: number;
  /** Read at most this many bytes. Only honoured when `randomAccess` is true. */
  length?: number;
  signal?: AbortSignal;
}

export interface DeleteResult {
  /** What the service answered, for the deletion log (no secrets). */
  response: string;
}

/**
 * What the engine proved before it asks for a deletion: these bytes, read from the item as it
 * was listed, are at the destination. The source deletes only that very object and refuses
 * (SourceChangedError) when what it holds now is another one.
 */
export interface DeletionProof {
  /** The bytes read and hashed by the engine, and verified at the destination. */
  hashes: Hashes;
  /**
   * False when the bytes were read by an earlier run: the object may have changed since in ways
   * a cheap check misses, so a source that can re-read it (a local file) re-hashes it first.
   */
  readThisRun: boolean;
}

export interface Source {
  /** Provider name, e.g. "folder", "xiaomi". */
  readonly kind: string;
  /** Stable identity of what is being read (a folder's absolute path, an account id): a state file remembers it. */
  readonly identity: string;
  /** True when open() honours offset and length cheaply (a local file). */
  readonly randomAccess: boolean;
  /** One page of items across all albums; pass back the cursor it returned to continue. */
  listItems(cursor: string | null, signal?: AbortSignal): Promise<ListPage>;
  /** The item's bytes as a stream. Throw ItemGoneError when the item no longer exists. */
  open(item: SourceItem, options?: OpenOptions): Promise<Readable>;
  /**
   * Delete the item at the source, only if it is still the object the proof is about; else
   * throw SourceChangedError and delete nothing. Throw ItemGoneError when it no longer exists.
   * Called only by the engine's deletion rule.
   */
  delete(item: SourceItem, proof: DeletionProof): Promise<DeleteResult>;
  /** How the engine may overlap this source's calls; see SourceLimits. */
  readonly limits?: Partial<SourceLimits>;
  /** Notes for plan: skipped albums, quota, anything the user should know before moving. */
  planNotes?(): Promise<PlanNote[]>;
  /** The local folder the items are read from, when there is one: the engine refuses a destination that overlaps it. */
  readonly localPath?: string;
  close?(): Promise<void>;
}

/** What the engine learned from the bytes and the metadata, handed to the destination. */
export interface ItemFacts {
  /**
   * Capture time the engine settled on (ISO 8601 with the offset it was taken at, e.g.
   * 2019-07-01T10:11:12+02:00), or null: the file's own date, else the source's declared one,
   * else a date in the file name, else (folder sources) the file's modification time.
   */
  captureTime: string | null;
  /** Where the capture time came from. */
  captureTimeSource: 'exif' | 'container' | 'declared' | 'filename' | 'mtime' | 'none';
  /** Says where, in words ("Xiaomi's dateTaken", "the file name (whatsapp pattern)"). */
  captureTimeDetail?: string | null;
  /** True when the bytes handed to the destination carry the capture time that the source file lacked. */
  dateAdded?: boolean;
  mimeType: string;
  kind: MediaKind;
  width?: number | null;
  height?: number | null;
}

/** Key-value storage in the state database, scoped to one provider instance (album ids, cached lookups). */
export interface ProviderStore {
  get<T = unknown>(key: string): T | undefined;
  set(key: string, value: unknown): void;
  delete(key: string): void;
  /** The keys that start with `prefix` (ASCII), in no set order. Absent: a store that cannot list. */
  keys?(prefix: string): string[];
}

/** Persistence for one item's in-flight upload session (OneDrive upload URL, Google session URL). */
export interface SessionSlot {
  /**
   * A name for this item's upload: the same on every attempt and every run, and found in no
   * other state file. A destination that keeps a local temp file names it from this, so that the
   * next attempt finds a killed one's leftovers without saving anything first.
   */
  readonly key: string;
  load<T = unknown>(): T | null;
  /** Saved in the state database before the call returns, so a kill right after resumes from it. */
  save(value: unknown): void;
  /**
   * Saved with the run's next writes (committed within 50 ms), not before the call returns: only
   * for a session the service holds no byte of yet and will hold none of before commit(). A kill
   * before that commit leaves the session unknown to the next run, as a kill while it was being
   * created does. Absent: use save().
   */
  saveBehind?(value: unknown): void;
  clear(): void;
}

export interface UploadInput {
  item: SourceItem;
  facts: ItemFacts;
  /** The container from prepareContainer(). */
  container: string;
  /** File name to use at the destination (the source's name). */
  name: string;
  /** Exact byte count the body will deliver. */
  size: number;
  /**
   * The item's bytes from offset 0. A destination resuming a session discards
   * the bytes the service already has instead of sending them again. Iterated, not piped:
   * the engine hands over its own async generator (a stream only for a dated copy).
   */
  body: AsyncIterable<Buffer>;
  session: SessionSlot;
  signal: AbortSignal;
}

/** A staged upload: every byte sent, nothing created at the destination yet. */
export interface Staged {
  /** JSON-serialisable handle that commit() and abort() understand; stored (never printed) to survive restarts. */
  handle: unknown;
}

export type CommitResult =
  | { outcome: 'created'; destId: string; destPath?: string }
  /** The same bytes already exist at the destination (a rerun, or the same file twice). */
  | { outcome: 'duplicate'; destId: string; destPath?: string; evidence?: Evidence }
  /**
   * The destination's library already held these bytes, put there by something else (Google:
   * the phone's own backup), and this tool may not read that item back. Recorded once and never
   * sent again; `evidence` is the destination's word only (none when it said nothing clear), so
   * the source is kept unless the user accepts that level. `destId` when the destination named it.
   * The outcome is the kind (in-library-from-another-app); `reason` is only for people.
   */
  | { outcome: 'in-library'; destId: string | null; reason: string; evidence: Evidence | null }
  | { outcome: 'error'; error: Error };

export interface CommitRequest {
  staged: Staged;
  input: Omit<UploadInput, 'body' | 'signal'>;
  hashes: Hashes;
}

export interface VerifyRequest {
  destId: string;
  destPath?: string | null;
  item: SourceItem;
  facts: ItemFacts;
  hashes: Hashes;
  size: number;
}

export interface Evidence {
  level: EvidenceLevel;
  /** One line saying what was compared and found equal. */
  detail: string;
}

export type VerifyResult =
  | { outcome: 'verified'; evidence: Evidence }
  /** Not decidable yet (hash not computed, video PROCESSING): ask again after the delay. */
  | { outcome: 'pending'; retryAfterMs: number; reason: string }
  | { outcome: 'mismatch'; reason: string }
  /** The item is one the destination held before (see CommitResult 'in-library'): not readable by this tool. */
  | { outcome: 'in-library'; reason: string; evidence: Evidence }
  | { outcome: 'error'; error: Error };

/**
 * A hash besides SHA-256 that a destination compares. SHA-256 is always computed (identity and
 * dedupe); the others only when used: SHA-1 when the source declares one or the destination
 * names it, QuickXorHash when the destination names it.
 */
export type ExtraHash = 'sha1' | 'quickXor';

export interface Hashes {
  /** hex; null when neither the source declared a SHA-1 nor the destination uses one. */
  sha1: string | null;
  sha256: string; // hex
  /** base64, OneDrive's form; null when the destination does not use it. */
  quickXor: string | null;
  size: number;
}

export interface CapacityInfo {
  /** Bytes free at the destination, or null when unknown. */
  remainingBytes: number | null;
  /** Requests the destination can still make today, or null when unlimited. */
  requestBudget?: { remainingToday: number; perDay: number; requestsPerItem: number } | null;
  notes?: PlanNote[];
}

// ---- Limits: how much the engine may batch and overlap a provider's calls. ----
// A provider states only what differs from the cautious default below; the engine reads the
// whole set through sourceLimits() and destinationLimits(). (Items in flight for a whole run are
// chosen before any provider exists, from ProviderModule.defaultConcurrency.)

export interface SourceLimits {
  /**
   * Deletions at once. One unless deletions wait on a disk, not on a service's quota (a folder);
   * a service paces its own deletions inside delete().
   */
  deleteConcurrency: number;
}

export interface DestinationLimits {
  /** Commits one commit() call takes (Google's batchCreate takes 50). */
  commitBatch: number;
  /**
   * commit() calls at once. One (Google wants its batchCreate calls serial per user); a
   * destination whose commit is an independent request per item (OneDrive's last fragment)
   * says more, so that one batch in flight does not hold back the next.
   */
  commitConcurrency: number;
  /** Verifications one verify() call takes. */
  verifyBatch: number;
  /**
   * verify() calls at once. A destination whose verification waits on something shared (a
   * folder's fsync group) says more, so that the waits overlap.
   */
  verifyConcurrency: number;
}

/** The default for every limit a provider leaves out: one at a time. */
export const SOURCE_LIMITS: Readonly<SourceLimits> = { deleteConcurrency: 1 };
export const DESTINATION_LIMITS: Readonly<DestinationLimits> = { commitBatch: 1, commitConcurrency: 1, verifyBatch: 1, verifyConcurrency: 1 };

/** A source's limits, each absent or unusable one (below 1) at its default. */
export function sourceLimits(source: Pick<Source, 'limits'>): SourceLimits {
  return { deleteConcurrency: atLeastOne(source.limits?.deleteConcurrency, SOURCE_LIMITS.deleteConcurrency) };
}

/** A destination's limits, each absent or unusable one (below 1) at its default. */
export function destinationLimits(destination: Pick<Destination, 'limits'>): DestinationLimits {
  const l = destination.limits ?? {};
  return {
    commitBatch: atLeastOne(l.commitBatch, DESTINATION_LIMITS.commitBatch),
    commitConcurrency: atLeastOne(l.commitConcurrency, DESTINATION_LIMITS.commitConcurrency),
    verifyBatch: atLeastOne(l.verifyBatch, DESTINATION_LIMITS.verifyBatch),
    verifyConcurrency: atLeastOne(l.verifyConcurrency, DESTINATION_LIMITS.verifyConcurrency),
  };
}

const atLeastOne = (n: number | undefined, fallback: number): number => (n === undefined || !Number.isFinite(n) ? fallback : Math.max(1, Math.floor(n)));

/**
 * How a destination dates an item whose file carries no date of its own. "Written in" means the
 * engine writes the capture time into the uploaded copy (a JPEG's EXIF, an MP4's header times),
 * checks locally that the copy differs only by that date, and hands over the copy's size and hashes.
 * - 'metadata': from the capture time handed over in ItemFacts (OneDrive's fileSystemInfo, a folder's file time); the file is sent as it is.
 * - 'metadata-and-file': the same, and written in where the format allows (OneDrive's --embed-dates).
 * - 'file': only from a date inside the file, so it is written in; where it cannot be, the upload dates the item (Google Photos).
 * - 'upload': only from a date inside the file, and files are sent as they are: the upload dates an item without one (Google Photos with --keep-bytes).
 */
export type DatingRule = 'metadata' | 'metadata-and-file' | 'file' | 'upload';

export interface Destination {
  readonly kind: string;
  readonly identity: string;
  /** How the destination dates an item whose file carries no date of its own. Absent: 'metadata'. */
  readonly dating?: DatingRule;
  /** How the engine may batch and overlap this destination's calls; see DestinationLimits. */
  readonly limits?: Partial<DestinationLimits>;
  /**
   * True when commit() called again for bytes it already committed finds them instead of
   * creating a second copy (a folder's link finds the same bytes under the name). The engine may
   * then gather the record of a commit with later writes; otherwise it commits the record at once.
   */
  readonly idempotentCommit?: boolean;
  /**
   * True when verify() checks this machine's own disk (the folder: a read-back), so asking right
   * after a commit proves as much as asking later. With idempotentCommit, the engine then asks at
   * once and records the commit and its verification in one write: a kill in between leaves the
   * item to be staged again, and its commit finds the same bytes already there.
   */
  readonly verifiesLocally?: boolean;
  /**
   * The hashes besides SHA-256 this destination compares (in commit and verify).
   * Only those are computed while the bytes flow. Absent: all of them, to be safe.
   */
  readonly hashes?: readonly ExtraHash[];
  /** Reject an item before any byte moves (too large, unsupported format). Return the reason, for people (its kind is 'refused-by-destination'), or null. */
  refuse?(item: SourceItem, facts: ItemFacts): string | null;
  /** Find or create the folder or album for an item; idempotent across restarts (keep ids in the ProviderStore). */
  prepareContainer(item: SourceItem, facts: ItemFacts): Promise<string>;
  /** Send every byte, create nothing yet. Must consume `body` to the end or throw. */
  upload(input: UploadInput): Promise<Staged>;
  /** Create the items at the destination. Results in request order. Never called concurrently. */
  commit(requests: CommitRequest[]): Promise<CommitResult[]>;
  /**
   * Throw away a staged upload whose bytes did not match what the source declared. Absent when
   * a staged upload leaves nothing to undo (Google's upload tokens expire on their own).
   */
  abort?(staged: Staged): Promise<void>;
  /** True when a staged handle saved by an earlier process can still be committed. */
  canCommitLater?(handle: unknown): boolean;
  /**
   * Is each item at the destination, with these bytes? Also asked again, with the stored
   * destination id, right before an item verified by an earlier run is deleted at the source
   * (the copy may have been removed or changed since): keep it as cheap as the service allows.
   */
  verify(requests: VerifyRequest[]): Promise<VerifyResult[]>;
  capacity?(): Promise<CapacityInfo>;
  /** The local folder the items are written to, when there is one: the engine refuses a source that overlaps it. */
  readonly localPath?: string;
  close?(): Promise<void>;
}

// ---- Outcome kinds: why an item is skipped or stays at the source, as data. ----
// The state stores the kind with each skipped or rejected item; status, the reports and the
// engine decide by it. The sentence that goes with it is only for people, so a provider may word
// it as it likes.

/** Why an item needed no transfer of its own. A CommitResult's outcome names its kind. */
export type SkipKind =
  /** The destination already held these bytes (a rerun, the same file twice): CommitResult 'duplicate'. */
  | 'same-bytes-at-destination'
  /** Another item of this state became the same destination item. */
  | 'duplicate-of-item'
  /** The destination's library held the bytes from another app and this tool may not read them: 'in-library'. */
  | 'in-library-from-another-app';

/** Why an item stays at the source for good. */
export type RejectionKind =
  /** It no longer exists at the source (ItemGoneError); listed again, it is migrated after all. */
  | 'gone-from-source'
  /** A newer version replaced it at the source before it could be read; that version is an item of its own. */
  | 'replaced-at-source'
  /** The source does not say how large it is. */
  | 'size-not-declared'
  /** The copy with the capture date written in differed from the source by more than the date. */
  | 'dated-copy-differs'
  /** The source will not hand the item out (RejectedError from a Source). */
  | 'refused-by-source'
  /** The destination will not take it: refuse(), or a RejectedError from a Destination. */
  | 'refused-by-destination';

// ---- Errors: how a provider tells the engine what kind of trouble it met. ----

/** Transient: the engine retries the item later (after retryAfterMs when given). */
export class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RetryableError';
  }
}

/** Permanent for this item (unsupported format, too large, refused by the service). It stays at the source. */
export class RejectedError extends Error {
  /** `kind` says who refused it (a provider: 'refused-by-source' or 'refused-by-destination'); the message says why, for people. */
  constructor(
    message: string,
    readonly kind: RejectionKind,
  ) {
    super(message);
    this.name = 'RejectedError';
  }
}

/** The item no longer exists at the source (Xiaomi's code 50050). Not retried. */
export class ItemGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ItemGoneError';
  }
}

/** The object at the source is no longer the one that was proven at the destination: nothing was deleted. */
export class SourceChangedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceChangedError';
  }
}

export type StopKind = 'quota' | 'credentials' | 'destination-full' | 'config';

/** The whole run must stop cleanly: quota spent, credentials expired, destination full, bad configuration. */
export class StopRunError extends Error {
  constructor(
    readonly kind: StopKind,
    message: string,
  ) {
    super(message);
    this.name = 'StopRunError';
  }
}

// ---- Construction: how providers/index.ts builds providers from "kind:ARG" specs. ----

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export interface ProviderContext {
  /** The part after "kind:" in the spec, e.g. the path of "folder:/photos". */
  arg: string;
  /** GALLERY_BRIDGE_HOME: where credentials and shared counters live. */
  home: string;
  /** --account NAME (default "default"). */
  account: string;
  env: NodeJS.ProcessEnv;
  /** Parsed CLI options, including the ones a provider declared in cliOptions. */
  options: Record<string, unknown>;
  /** Storage in the state database scoped to this provider instance. */
  store: ProviderStore;
  log: Logger;
  /**
   * Aborted when the run is asked to stop (Ctrl-C, SIGTERM). A provider ends every wait of its
   * own (throttling pauses, back-off, rate limits) on it. Absent outside a run.
   */
  signal?: AbortSignal;
}

/**
 * A provider's command-line option. It declares how its text becomes a value, so a provider reads
 * it typed through readOption() (providers/options.ts) instead of parsing an untyped bag its own way.
 */
export interface CliOption<T = unknown> {
  flags: string;
  description: string;
  defaultValue?: string | boolean;
  /** Text of the flag (or of `env`) to value; throws StopRunError('config') with one clear line. Absent: the value as given (a switch's true, a path). */
  parse?: (text: string) => T;
  /** The environment variable read when the flag is not given. */
  env?: string;
}

export interface EmulatorHandle {
  /** The KEY=VALUE pairs printed on start. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface ProviderModule {
  name: string;
  description: string;
  createSource?(ctx: ProviderContext): Promise<Source>;
  createDestination?(ctx: ProviderContext): Promise<Destination>;
  cliOptions?: CliOption[];
  /**
   * Items in flight that suit this provider in each role, used when the person does not pass
   * --concurrency: a run takes its destination's, or the lower of the two when its source names
   * one too. Measured by `npm run bench concurrency` (bench/concurrency.ts), except where a
   * service's own limits call for less than a local emulator shows. Absent: no preference.
   */
  defaultConcurrency?: { source?: number; destination?: number };
  /** `gallery-bridge auth NAME`. */
  auth?(ctx: ProviderContext): Promise<void>;
  /** `gallery-bridge emulator NAME`: args are the raw arguments after the name. */
  emulator?(args: string[]): Promise<EmulatorHandle>;
}
