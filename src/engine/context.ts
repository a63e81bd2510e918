// What every stage of a run shares: the options, the state store, the one stop switch, and
// how an item's failure is written down. Stages take this instead of reaching for each other.

import type { Destination, EvidenceLevel, Source, StopKind } from '../../providers/types.ts';
import { ItemGoneError, RejectedError, RetryableError, StopRunError } from '../../providers/types.ts';
import type { DB } from '../../state/db.ts';
import type { ItemRow, ItemState } from '../../state/items.ts';
import { Items } from '../../state/items.ts';
import { backoffDelay } from '../lib/backoff.ts';
import { reason } from '../lib/redact.ts';
import { SignalFanOut } from '../lib/signals.ts';
import { destinationWithOwnSignals, sourceWithOwnSignals } from './own-signals.ts';

export interface RunOptions {
  deleteSource: boolean;
  deleteEvidence: EvidenceLevel;
  concurrency: number;
  /** Stop cleanly at this time (a night's window). */
  until: Date | null;
  /** Attempts per item within one run before it is left failed for the next run. */
  maxAttempts: number;
  /** How long to keep asking about items the destination has not finished processing. */
  verifyWaitMs: number;
  /**
   * --source-may-be-empty: a source that lists nothing while the state knows items there is
   * taken at its word (the person deleted them there), not refused as an unmounted card.
   */
  sourceMayBeEmpty?: boolean;
  /** --timezone: the zone for capture times that carry no offset (IANA name or +HH:MM); default the system's. */
  timeZone?: string;
  command: string;
  sourceSpec: string;
  destinationSpec: string;
  signal: AbortSignal;
  onEvent?: (e: RunEvent) => void;
  /**
   * Queue mode: called right before every destination commit; throws when this process may no
   * longer touch the account (another worker holds it now).
   */
  fence?: () => Promise<void>;
  /**
   * Queue mode: called right before every source deletion, with the item's proof. It records the
   * intent where it outlives this machine, under the same fence (throws, recording nothing, when
   * the account is no longer this process's), and returns what to call with the source's answer.
   */
  beforeDelete?: (intent: DeletionIntent) => Promise<DeletionDone>;
}

/** What a deletion at the source rests on, as recorded before the source is asked. */
export interface DeletionIntent {
  runId: number;
  sourceId: string;
  name: string;
  /** The SHA-1 and SHA-256 of the bytes read and hashed here, and their size. */
  sha1: string | null;
  sha256: string;
  bytes: number;
  evidence: EvidenceLevel;
  evidenceDetail: string | null;
}

/** Told the source's answer once the deletion happened (best effort: the intent alone backs it). */
export type DeletionDone = (response: string) => Promise<void>;

export type RunEvent =
  | { type: 'listed'; total: number; added: number }
  | { type: 'item'; name: string; state: ItemState | 'staged'; bytes: number; detail?: string }
  | { type: 'bytes'; bytes: number }
  /** `halt`: why the run stops; a person's terminal is told it once, after the summary. */
  | { type: 'log'; level: 'info' | 'warn'; message: string; halt?: true };

/** What progress shows for an item the destination already held from another app. */
export const IN_LIBRARY_DETAIL = 'already in your library from another app';

/** 'waiting': only items whose next retry is far off are left (a long Retry-After). */
export type StopReason = StopKind | 'until' | 'signal' | 'waiting';

export class RunContext {
  readonly items: Items;
  /** Aborted by a StopRunError, --until or a signal: every stage stops taking new work. */
  readonly stop = new AbortController();
  stopped: StopReason | null = null;
  stopMessage: string | null = null;
  /**
   * Failed attempts per item in this run (the state store counts attempts across runs). Only
   * items that failed have an entry, so it grows with this run's failures, not with the library.
   */
  readonly attempts = new Map<number, number>();
  /** Why the last item set to wait long for its retry waits (for the stop message). */
  lastWaitReason: string | null = null;
  /** When this run started: evidence recorded before it is an earlier run's. */
  readonly startedAt = new Date().toISOString();
  /** A signal per wait (a pause, an item's read or upload), aborted with `signal`, which then carries one listener for all. */
  readonly waits = new SignalFanOut(this.stop.signal);
  readonly source: Source;
  readonly destination: Destination;

  constructor(
    readonly db: DB,
    source: Source,
    destination: Destination,
    readonly runId: number,
    readonly opts: RunOptions,
  ) {
    this.items = new Items(db);
    this.source = sourceWithOwnSignals(source, this.waits);
    this.destination = destinationWithOwnSignals(destination, this.waits);
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  emit(e: RunEvent): void {
    this.opts.onEvent?.(e);
  }

  log(level: 'info' | 'warn', message: string): void {
    this.emit({ type: 'log', level, message });
  }

  halt(why: StopReason, message: string): void {
    if (this.stopped) return;
    this.stopped = why;
    this.stopMessage = message;
    this.emit({ type: 'log', level: 'warn', message, halt: true });
    this.stop.abort(new Error(message));
  }

  /** Counts a failed attempt of an item in this run; returns how many it has had. */
  failedAttempt(id: number): number {
    const n = (this.attempts.get(id) ?? 0) + 1;
    this.attempts.set(id, n);
    return n;
  }

  /** Writes down what went wrong with one item, so the next attempt (or run) knows what to do. */
  itemFailed(row: ItemRow, err: unknown): void {
    const { items } = this;
    if (err instanceof StopRunError) {
      this.halt(err.kind, reason(err));
      // The item did nothing wrong: it is retried first thing next run.
      safe(() => items.markInterrupted(row.id, `interrupted: ${reason(err)}`));
      return;
    }
    if (this.signal.aborted) {
      safe(() => items.markInterrupted(row.id, 'interrupted; will resume'));
      return;
    }
    if (err instanceof RejectedError) {
      safe(() => items.markRejected(row.id, reason(err), err.kind));
      this.emit({ type: 'item', name: row.name, state: 'rejected', bytes: 0, detail: reason(err) });
      return;
    }
    if (err instanceof ItemGoneError) {
      // Not final: the item is migrated again if a later listing shows it back.
      safe(() => items.markRejected(row.id, `gone from the source: ${reason(err)}`, 'gone-from-source'));
      this.emit({ type: 'item', name: row.name, state: 'rejected', bytes: 0, detail: reason(err) });
      return;
    }
    if (safeGet(() => items.get(row.id).kept_reason)) {
      // A newer version took its place at the source while it was being read: nothing left to move.
      safe(() => items.markRejected(row.id, `replaced at the source by a newer version before it could be read: ${reason(err)}`, 'replaced-at-source'));
      return;
    }
    const n = this.failedAttempt(row.id);
    const wait = backoffDelay(n, err instanceof RetryableError ? err.retryAfterMs : undefined);
    if (wait > 60_000) this.lastWaitReason = reason(err);
    safe(() => items.markFailed(row.id, reason(err), Date.now() + wait));
    this.emit({ type: 'item', name: row.name, state: 'failed', bytes: 0, detail: reason(err) });
  }
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // The item already moved on (e.g. a concurrent verification); its row tells the truth.
  }
}

function safeGet<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
