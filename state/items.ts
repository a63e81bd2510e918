// THE item state machine. Every change of an item's state is one function here, one
// transaction, guarded by the states it may start from, so a kill at any instant leaves the
// item either before or after the transition, never between.
//
//   discovered ─► transferring ─► uploaded ─► verified ─► source-deleted
//        │             │  ▲           │
//        │             ▼  │           ▼
//        │           failed ◄─────────┘ (verification mismatch)
//        │             │
//        └─────────────┴─► rejected (permanent: refused, gone, unsupported)
//   transferring ─► skipped (the same bytes are already at the destination) ─► source-deleted
//   transferring/uploaded ─► skipped (already in the library from another app, not readable here)
//   verified/skipped ─► failed (the destination copy is gone or changed when checked again before deletion)
//   rejected ─► discovered (an item gone from the source is listed again: revived; an item whose
//                           dated copy differed, in a run that sends files unchanged)
//
// A version of an item already moved stays its row when the source lists another version under
// the same id (an edit in place, a reused name): its source_id gets a "//replaced-N" suffix and
// the new bytes become a new row of their own. Only the proven version may be deleted.
//
// During a run, writes whose loss in a kill costs only redoing work are deferred (gathered into
// one commit, see db.ts); those the next outside action relies on are durable.

import type { DB } from './db.ts';
import { commitPending, deferredWrite, durableWrite, getMeta, statement } from './db.ts';

export type ItemState = 'discovered' | 'transferring' | 'uploaded' | 'verified' | 'source-deleted' | 'failed' | 'rejected' | 'skipped';
export const ITEM_STATES: readonly ItemState[] = ['discovered', 'transferring', 'uploaded', 'verified', 'source-deleted', 'failed', 'rejected', 'skipped'];

/**
 * Why an item is skipped or rejected: the fixed set of values of the reason_kind column (the
 * reason_kinds table of migration v4). The providers' contract names the same kinds
 * (SkipKind, RejectionKind in providers/types.ts).
 */
export type SkipReasonKind = 'same-bytes-at-destination' | 'duplicate-of-item' | 'in-library-from-another-app';
export type RejectReasonKind =
  | 'gone-from-source'
  | 'replaced-at-source'
  | 'size-not-declared'
  | 'dated-copy-differs'
  | 'refused-by-source'
  | 'refused-by-destination';
export type ReasonKind = SkipReasonKind | RejectReasonKind;

export interface ItemRow {
  id: number;
  source_id: string;
  name: string;
  album_id: string | null;
  album_name: string | null;
  size: number | null;
  kind: string;
  declared_sha1: string | null;
  declared_time: string | null;
  item_json: string;
  state: ItemState;
  attempts: number;
  last_error: string | null;
  next_attempt_at: number;
  reason: string | null;
  /** The kind of `reason`, which is only for people: status, reports and the engine decide by this. */
  reason_kind: ReasonKind | null;
  mime_type: string | null;
  exif_time: string | null;
  capture_time: string | null;
  capture_source: string | null;
  gps: string | null;
  camera: string | null;
  width: number | null;
  height: number | null;
  sha1: string | null;
  sha256: string | null;
  quickxor: string | null;
  bytes_read: number | null;
  declared_hash_ok: number | null;
  container: string | null;
  upload_session: string | null;
  staged: string | null;
  dest_id: string | null;
  dest_path: string | null;
  duplicate_of: number | null;
  evidence_level: 'bytes' | 'pixels' | 'received' | null;
  evidence_detail: string | null;
  verified_at: string | null;
  deleted_at: string | null;
  first_run: number | null;
  last_run: number | null;
  updated_at: string;
  capture_detail: string | null;
  capture_offset_from: string | null;
  date_note: string | null;
  copy_sha1: string | null;
  copy_sha256: string | null;
  copy_quickxor: string | null;
  copy_size: number | null;
  source_version: string | null;
  kept_reason: string | null;
  deleting_run: number | null;
  /** The run that read and hashed the bytes (recorded with the hashes). */
  read_run: number | null;
}

export interface DiscoveredItem {
  sourceId: string;
  name: string;
  albumId: string | null;
  albumName: string | null;
  size: number | null;
  kind: string;
  declaredSha1: string | null;
  declaredTime: string | null;
  json: string;
  /** The source's name for this version of the object, or null when it cannot tell. */
  version?: string | null;
}

export interface ItemFactsRecord {
  mimeType: string;
  exifTime: string | null;
  captureTime: string | null;
  captureSource: string;
  /** Where the capture time came from, in words. */
  captureDetail?: string | null;
  /** 'file' when the offset is the file's (or source's) own, 'timezone' when --timezone supplied it. */
  captureOffsetFrom?: string | null;
  gps: string | null;
  camera: string | null;
  width: number | null;
  height: number | null;
}

export interface HashRecord {
  sha1: string | null;
  sha256: string;
  quickXor: string | null;
  size: number;
}

/** What a transfer learned besides the hashes, recorded with them (see recordStaged). */
export interface StagedAbout {
  facts: ItemFactsRecord;
  container: string;
  /** The dated copy's hashes, or null when the source's bytes were uploaded. */
  copy: HashRecord | null;
  /** How the item's date reaches the destination. */
  note: string | null;
}

// Several writes an item each stamp the time: one string per millisecond, not one per write.
let nowMs = 0;
let nowIso = '';
const now = (): string => {
  const ms = Date.now();
  if (ms !== nowMs) {
    nowMs = ms;
    nowIso = new Date(ms).toISOString();
  }
  return nowIso;
};

export class IllegalTransition extends Error {
  constructor(id: number, to: ItemState, from: readonly ItemState[]) {
    super(`item ${id} cannot move to ${to}: it is not in ${from.join('/')}`);
    this.name = 'IllegalTransition';
  }
}

/** Whether the state may hold a duplicate (see duplicatesOf); per database, whichever Items writes to it. */
const anyDuplicate = new WeakMap<DB, boolean>();

export class Items {
  private readonly stmts;
  constructor(private readonly db: DB) {
    this.stmts = {
      insert:
        db.prepare(`INSERT INTO items (source_id, name, album_id, album_name, size, kind, declared_sha1, declared_time, item_json, source_version, state, first_run, last_run, updated_at)
        VALUES (@sourceId, @name, @albumId, @albumName, @size, @kind, @declaredSha1, @declaredTime, @json, @version, 'discovered', @run, @run, @now)`),
      // An item not yet moved takes the source's latest description of itself.
      describe: db.prepare(`UPDATE items SET name=@name, size=@size, declared_sha1=@declaredSha1, item_json=@json,
        source_version=coalesce(@version, source_version), last_run=@run, updated_at=@now WHERE id=@id`),
      // One already at the destination keeps what it was moved as (a source that did not know versions before now names it).
      seen: db.prepare(`UPDATE items SET last_run=@run, source_version=coalesce(source_version, @version) WHERE id=@id`),
      // Other bytes under the id of an item not yet moved: start it over with them.
      restart: db.prepare(`UPDATE items SET name=@name, size=@size, declared_sha1=@declaredSha1, item_json=@json, source_version=@version,
        state='discovered', reason=NULL, reason_kind=NULL, last_error=NULL, next_attempt_at=0, staged=NULL, upload_session=NULL,
        sha1=NULL, sha256=NULL, quickxor=NULL, bytes_read=NULL, declared_hash_ok=NULL,
        copy_sha1=NULL, copy_sha256=NULL, copy_quickxor=NULL, copy_size=NULL, date_note=NULL, last_run=@run, updated_at=@now WHERE id=@id`),
      // Listed again after it was found missing: it comes back to be migrated.
      revive: db.prepare(`UPDATE items SET name=@name, size=@size, declared_sha1=@declaredSha1, item_json=@json,
        source_version=coalesce(@version, source_version), state='discovered', reason=NULL, reason_kind=NULL, next_attempt_at=0, last_run=@run, updated_at=@now WHERE id=@id`),
      // A moved version gives its id up to the new bytes (its own item_json keeps the id the source knows).
      replace: db.prepare(`UPDATE items SET source_id = source_id || '//replaced-' || id, updated_at=@now WHERE id=@id`),
      keptFor: db.prepare(`UPDATE items SET kept_reason=@why, updated_at=@now WHERE id=@id AND state != 'source-deleted' AND kept_reason IS NULL`),
      byId: db.prepare('SELECT * FROM items WHERE id = ?'),
      bySourceId: db.prepare('SELECT * FROM items WHERE source_id = ?'),
    };
  }

  /**
   * Several writes about one item (facts and container, copy and staged upload) as one
   * transaction: one commit instead of several. Not for state changes, which are each their own.
   */
  together<T>(fn: () => T): T {
    return this.deferred(fn);
  }

  /** Lost in a kill, it is only work done again (see db.ts). */
  private deferred<T>(fn: () => T): T {
    return deferredWrite(this.db, fn);
  }

  /** deferred(), for a write of one statement (a read or two before it may come with it): no savepoint needed. */
  private deferredOne<T>(fn: () => T): T {
    return deferredWrite(this.db, fn, true);
  }

  /** Committed, with everything gathered before it, before the caller goes on. */
  private durable<T>(fn: () => T): T {
    return durableWrite(this.db, fn);
  }

  /**
   * What is gathered goes to disk now: the caller is about to do something a rerun would
   * repeat (a commit that a second call would create twice).
   */
  commitNow(): void {
    commitPending(this.db);
  }

  private ownId: string | null = null;

  /** The state file's own name (meta state_id, made by the first run). */
  stateId(): string {
    return (this.ownId ??= getMeta(this.db, 'state_id') ?? 'state');
  }

  /** Every statement is prepared once per database and reused (see statement()). */
  private sql(text: string) {
    return statement(this.db, text);
  }

  get(id: number): ItemRow {
    const row = this.stmts.byId.get(id) as ItemRow | undefined;
    if (!row) throw new Error(`no item ${id}`);
    return row;
  }

  bySourceId(sourceId: string): ItemRow | undefined {
    return this.stmts.bySourceId.get(sourceId) as ItemRow | undefined;
  }

  /**
   * Records one listed page and the cursor after it in one transaction: a kill never loses a
   * page or lists it twice. Returns how many items are new (or back) to migrate.
   */
  recordPage(items: DiscoveredItem[], afterPage: () => void, runId: number): number {
    let added = 0;
    this.deferred(() => {
      for (const it of items) if (this.recordListed(it, runId)) added++;
      afterPage();
    });
    return added;
  }

  private recordListed(it: DiscoveredItem, runId: number): boolean {
    const p = { ...it, version: it.version ?? null, run: runId, now: now() };
    const old = this.stmts.bySourceId.get(it.sourceId) as ItemRow | undefined;
    if (!old) {
      this.stmts.insert.run(p);
      return true;
    }
    const otherBytes = old.source_version !== null && p.version !== null && old.source_version !== p.version;
    // A 'transferring' row left by an earlier (killed) run holds nothing at the destination either;
    // one this run is transferring right now goes on as the version it is reading.
    const notMoved =
      old.state === 'discovered' || old.state === 'failed' || old.state === 'rejected' || (old.state === 'transferring' && old.last_run !== runId);
    if (otherBytes && notMoved) {
      this.stmts.restart.run({ ...p, id: old.id });
      return true;
    }
    if (otherBytes) {
      // An edit in place or a reused name: the moved version keeps its row; the new bytes are an item of their own.
      this.stmts.replace.run({ id: old.id, now: p.now });
      const id = Number(this.stmts.insert.run(p).lastInsertRowid);
      this.stmts.keptFor.run({ id: old.id, why: `replaced at the source by a newer version (item ${id}), which is migrated on its own`, now: p.now });
      return true;
    }
    // Found missing at the source earlier, and listed again: it comes back to be migrated.
    if (old.state === 'rejected' && old.reason_kind === 'gone-from-source') {
      this.stmts.revive.run({ ...p, id: old.id });
      return true;
    }
    if (old.state === 'discovered' || old.state === 'failed') this.stmts.describe.run({ ...p, id: old.id });
    else this.stmts.seen.run({ id: old.id, run: runId, version: p.version });
    return false;
  }

  /** One UPDATE, guarded by the states it may start from. `extra` is a fixed SQL assignment. */
  private move(id: number, from: readonly ItemState[], to: ItemState, set: Record<string, unknown> = {}, extra = ''): void {
    const cols = Object.keys(set);
    const assignments = [...cols.map((c) => `${c} = @${c}`), ...(extra ? [extra] : [])].join(', ');
    const sql = `UPDATE items SET state = @to, updated_at = @now${assignments ? ', ' + assignments : ''} WHERE id = @id AND state IN (${from.map((s) => `'${s}'`).join(',')})`;
    const r = this.sql(sql).run({ ...set, to, now: now(), id });
    if (r.changes !== 1) throw new IllegalTransition(id, to, from);
  }

  /**
   * A worker takes the item: counts the attempt. An item left 'transferring' by a killed run is
   * taken again. Returns the row as it is now (a listing may have described the item anew since
   * it was queued).
   */
  startTransfer(id: number, runId: number): ItemRow {
    // The UPDATE and a read by id, not UPDATE ... RETURNING *: RETURNING cost ~0.1 ms more of
    // the run's thread an item (about 2% of a small photo's CPU to OneDrive), and nothing
    // else writes between the two on this connection.
    return this.deferredOne(() => {
      const r = this.sql(`UPDATE items SET state = 'transferring', last_run = ?, last_error = NULL, attempts = attempts + 1, updated_at = ?
          WHERE id = ? AND state IN ('discovered','failed','transferring')`).run(runId, now(), id);
      if (r.changes !== 1) throw new IllegalTransition(id, 'transferring', ['discovered', 'failed', 'transferring']);
      return this.get(id);
    });
  }

  /** What the bytes and metadata told us. Not a state change. */
  recordFacts(id: number, f: ItemFactsRecord): void {
    return this.deferredOne(() => {
      this.sql(`UPDATE items SET mime_type=@mimeType, exif_time=@exifTime, capture_time=@captureTime, capture_source=@captureSource,
          capture_detail=@captureDetail, capture_offset_from=@captureOffsetFrom,
          gps=@gps, camera=@camera, width=@width, height=@height, updated_at=@now WHERE id=@id`).run({
        captureDetail: null,
        captureOffsetFrom: null,
        ...f,
        id,
        now: now(),
      });
    });
  }

  /**
   * How the item's date reaches the destination (`note`, one line), and the hashes and size of the
   * uploaded copy when the date was written into it (null: the source's bytes were uploaded).
   */
  recordCopy(id: number, copy: HashRecord | null, note: string | null): void {
    return this.deferredOne(() => {
      this.sql(
        `UPDATE items SET copy_sha1=@sha1, copy_sha256=@sha256, copy_quickxor=@quickXor, copy_size=@size, date_note=@note, updated_at=@now WHERE id=@id`,
      ).run({ sha1: copy?.sha1 ?? null, sha256: copy?.sha256 ?? null, quickXor: copy?.quickXor ?? null, size: copy?.size ?? null, note, now: now(), id });
    });
  }

  setContainer(id: number, container: string): void {
    return this.deferredOne(() => {
      this.sql('UPDATE items SET container = ?, updated_at = ? WHERE id = ?').run(container, now(), id);
    });
  }

  /** The in-flight upload session (an upload URL with a temporary credential): kept to resume, never printed. */
  saveSession(id: number, session: unknown): void {
    return this.durable(() => {
      this.sql('UPDATE items SET upload_session = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(session), now(), id);
    });
  }

  /**
   * saveSession(), written behind: for a session the service holds no byte of, where a kill
   * before the next commit (at most MAX_BEHIND_MS) only leaves it unknown (see SessionSlot.saveBehind).
   */
  saveSessionBehind(id: number, session: unknown): void {
    return this.deferredOne(() => {
      this.sql('UPDATE items SET upload_session = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(session), now(), id);
    });
  }

  clearSession(id: number): void {
    return this.deferred(() => {
      this.sql('UPDATE items SET upload_session = NULL, updated_at = ? WHERE id = ?').run(now(), id);
    });
  }

  /**
   * Every byte is at the destination, nothing created yet; the hashes, whether they matched the
   * source's declaration, and the run that read them (null: not said, so a deletion reads the bytes again).
   * `about`, when given, goes in the same statement: what the bytes told, where the item goes, and
   * the dated copy (recordFacts, setContainer and recordCopy in one write: an item's transfer
   * was three writes, and each write costs a run more than the columns in it).
   */
  recordStaged(id: number, hashes: HashRecord, declaredHashOk: boolean | null, staged: unknown, runId: number | null = null, about?: StagedAbout): void {
    return this.deferredOne(() => {
      const p = {
        ...hashes,
        run: runId,
        ok: declaredHashOk === null ? null : declaredHashOk ? 1 : 0,
        staged: JSON.stringify(staged),
        now: now(),
        id,
      };
      const r = about
        ? this.sql(`UPDATE items SET sha1=@sha1, sha256=@sha256, quickxor=@quickXor, bytes_read=@size, declared_hash_ok=@ok, staged=@staged, read_run=@run,
            mime_type=@mimeType, exif_time=@exifTime, capture_time=@captureTime, capture_source=@captureSource,
            capture_detail=@captureDetail, capture_offset_from=@captureOffsetFrom, gps=@gps, camera=@camera, width=@width, height=@height,
            container=@container, copy_sha1=@copySha1, copy_sha256=@copySha256, copy_quickxor=@copyQuickXor, copy_size=@copySize, date_note=@note,
            updated_at=@now WHERE id=@id AND state='transferring'`).run({
            captureDetail: null,
            captureOffsetFrom: null,
            ...about.facts,
            ...p,
            container: about.container,
            copySha1: about.copy?.sha1 ?? null,
            copySha256: about.copy?.sha256 ?? null,
            copyQuickXor: about.copy?.quickXor ?? null,
            copySize: about.copy?.size ?? null,
            note: about.note,
          })
        : this.sql(`UPDATE items SET sha1=@sha1, sha256=@sha256, quickxor=@quickXor, bytes_read=@size, declared_hash_ok=@ok,
          staged=@staged, read_run=@run, updated_at=@now WHERE id=@id AND state='transferring'`).run(p);
      if (r.changes !== 1) throw new IllegalTransition(id, 'transferring', ['transferring']);
    });
  }

  /** Committed at the destination. If another item already holds this destination id, this one is its duplicate. */
  markUploaded(id: number, destId: string, destPath: string | null): 'uploaded' | 'skipped' {
    return this.deferredOne(() => {
      if (this.skipIfDestinationHeld(id, destId, destPath)) return 'skipped' as const;
      this.move(id, ['transferring'], 'uploaded', { dest_id: destId, dest_path: destPath, staged: null, upload_session: null });
      return 'uploaded' as const;
    });
  }

  /**
   * Committed at the destination and verified there, in one write (markUploaded and markVerified
   * together: a destination that verifies on this machine is asked right after its commit).
   * If another item already holds this destination id, this one is its duplicate, as in markUploaded.
   */
  markCommittedVerified(id: number, destId: string, destPath: string | null, level: string, detail: string): 'verified' | 'skipped' {
    return this.deferredOne(() => {
      if (this.skipIfDestinationHeld(id, destId, destPath)) return 'skipped' as const;
      this.move(id, ['transferring'], 'verified', {
        dest_id: destId,
        dest_path: destPath,
        staged: null,
        upload_session: null,
        evidence_level: level,
        evidence_detail: detail,
        verified_at: now(),
        last_error: null,
      });
      return 'verified' as const;
    });
  }

  /**
   * A transferring item committed to a destination item another item holds: skipped as that one's
   * duplicate. An item that found the same bytes already there (markDuplicate) does not hold it:
   * when two items of the same bytes go at once, the second's commit may find the first's file
   * before the first is recorded, and the one that created it was then called the duplicate.
   */
  private skipIfDestinationHeld(id: number, destId: string, destPath: string | null): boolean {
    const other = this.sql(
      `SELECT id FROM items WHERE dest_id = ? AND id != ? AND duplicate_of IS NULL AND reason_kind IS NOT 'same-bytes-at-destination' ORDER BY id LIMIT 1`,
    ).get(destId, id) as { id: number } | undefined;
    if (!other) return false;
    anyDuplicate.set(this.db, true);
    this.move(id, ['transferring'], 'skipped', {
      dest_id: destId,
      dest_path: destPath,
      duplicate_of: other.id,
      staged: null,
      upload_session: null,
      reason: `same bytes as item ${other.id}: one destination item`,
      reason_kind: 'duplicate-of-item',
    });
    return true;
  }

  /** The same bytes were already at the destination; the destination proved it with this evidence. */
  markDuplicate(id: number, destId: string, destPath: string | null, evidence: { level: string; detail: string } | null): void {
    return this.deferredOne(() => {
      this.move(id, ['transferring'], 'skipped', {
        dest_id: destId,
        dest_path: destPath,
        staged: null,
        upload_session: null,
        reason: 'already at the destination (same bytes)',
        reason_kind: 'same-bytes-at-destination',
        evidence_level: evidence?.level ?? null,
        evidence_detail: evidence?.detail ?? null,
        verified_at: evidence ? now() : null,
      });
    });
  }

  /**
   * The destination's library already held these bytes from another app and this tool cannot
   * read that item: terminal (never sent again), kept at the source unless the user accepts the
   * destination's word (`evidence`, at most 'received').
   */
  markInLibrary(id: number, destId: string | null, reasonText: string, evidence: { level: string; detail: string } | null): void {
    return this.deferred(() => {
      this.move(id, ['transferring', 'uploaded'], 'skipped', {
        dest_id: destId,
        staged: null,
        upload_session: null,
        reason: reasonText,
        reason_kind: 'in-library-from-another-app',
        evidence_level: evidence?.level ?? null,
        evidence_detail: evidence?.detail ?? null,
        verified_at: evidence ? now() : null,
      });
    });
  }

  markVerified(id: number, level: string, detail: string): void {
    return this.deferredOne(() => {
      this.move(id, ['uploaded'], 'verified', { evidence_level: level, evidence_detail: detail, verified_at: now(), last_error: null });
    });
  }

  /** A duplicate is verified by its original's evidence once the original is verified. */
  inheritEvidence(id: number, level: string, detail: string): void {
    return this.deferred(() => {
      const r = this.sql(
        `UPDATE items SET evidence_level=?, evidence_detail=?, verified_at=?, updated_at=? WHERE id=? AND state='skipped' AND evidence_level IS NULL`,
      ).run(level, detail, now(), now(), id);
      if (r.changes > 1) throw new Error('inheritEvidence touched more than one row');
    });
  }

  /** Transient trouble: the item will be tried again (no earlier than nextAttemptAt). Its session is kept to resume. */
  markFailed(id: number, error: string, nextAttemptAt: number): void {
    return this.deferredOne(() => {
      this.move(id, ['discovered', 'transferring', 'uploaded', 'failed'], 'failed', { last_error: error, next_attempt_at: nextAttemptAt, staged: null });
    });
  }

  /** The run stopped under the item (quota, signal): its staged upload is kept, so the next run commits it without sending the bytes again. */
  markInterrupted(id: number, error: string): void {
    return this.deferred(() => {
      this.move(id, ['discovered', 'transferring', 'failed'], 'failed', { last_error: error, next_attempt_at: 0 });
    });
  }

  /** The destination holds other bytes than the source: upload again. */
  markVerifyMismatch(id: number, error: string): void {
    return this.deferred(() => {
      this.move(id, ['uploaded'], 'failed', { last_error: error, next_attempt_at: 0, dest_id: null, dest_path: null, staged: null });
    });
  }

  /** Permanent: stays at the source, listed with its reason (for people) and its kind (absent: the destination refused it). */
  markRejected(id: number, reasonText: string, kind: RejectReasonKind = 'refused-by-destination'): void {
    return this.deferred(() => {
      this.move(id, ['discovered', 'transferring', 'failed', 'uploaded'], 'rejected', {
        reason: reasonText,
        reason_kind: kind,
        staged: null,
        upload_session: null,
      });
    });
  }

  /**
   * Items rejected because their dated copy differed from the source by more than the date go
   * again, for a run that sends files unchanged (--keep-bytes, or OneDrive without --embed-dates):
   * the reason they were refused does not apply to it. Returns how many.
   */
  retryDatedCopyRejections(): number {
    return this.deferred(
      () =>
        this.sql(
          `UPDATE items SET state='discovered', reason=NULL, reason_kind=NULL, last_error=NULL, next_attempt_at=0, updated_at=? WHERE state='rejected' AND reason_kind='dated-copy-differs'`,
        ).run(now()).changes,
    );
  }

  /**
   * Deleted at the source: the state change and the deletion log row are one transaction.
   * `evidence` says what the destination showed when the deletion relied on it (given the row as
   * read in this write, when a function). Returns that row, as it was before the move.
   * Deferred: the intent (markDeleting) was durable before the source was asked, so a kill that
   * loses this record leaves the item verified with its intent, and the next run checks the
   * destination again, finds the item gone at the source and records it then (the repair a
   * kill between the deletion and its record already needs). The next intent commits it anyway.
   */
  markSourceDeleted(id: number, runId: number, response: string, evidence: string | ((row: ItemRow) => string) | null = null): ItemRow {
    return this.deferred(() => {
      const row = this.get(id);
      this.move(id, ['verified', 'skipped'], 'source-deleted', { deleted_at: now(), deleting_run: null, last_error: null });
      this.sql('INSERT INTO deletions (item_id, source_id, name, run_id, evidence_level, response, at, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
        id,
        row.source_id,
        row.name,
        runId,
        row.evidence_level ?? 'none',
        response,
        now(),
        typeof evidence === 'function' ? evidence(row) : (evidence ?? row.evidence_detail),
      );
      return row;
    });
  }

  /** The run is about to delete the item at the source: written first, so a kill before the record is noticed. */
  markDeleting(id: number, runId: number): void {
    if (!this.markDeletingMany([id], runId).has(id)) throw new IllegalTransition(id, 'source-deleted', ['verified', 'skipped']);
  }

  /**
   * The intents of the next few deletions in one durable write (each still before its own
   * deletion): a write each made every deletion a commit, which also committed the run's
   * writes-behind one deletion at a time. Returns the ids marked (those still verified or skipped).
   */
  markDeletingMany(ids: readonly number[], runId: number): Set<number> {
    return this.durable(() => {
      const mark = this.sql(`UPDATE items SET deleting_run=?, updated_at=? WHERE id=? AND state IN ('verified','skipped')`);
      const at = now();
      const marked = new Set<number>();
      for (const id of ids) if (mark.run(runId, at, id).changes === 1) marked.add(id);
      return marked;
    });
  }

  /** The deletion could not be done in this run: why, for status (a rerun tries again). */
  noteDeletionOwed(id: number, why: string): void {
    return this.deferredOne(() => {
      this.sql(`UPDATE items SET last_error=?, updated_at=? WHERE id=? AND state IN ('verified','skipped')`).run(why, now(), id);
    });
  }

  /** Deliberately left at the source, with the reason (the object there is not the one proven). */
  keepAtSource(id: number, why: string): void {
    return this.durable(() => {
      this.sql(`UPDATE items SET kept_reason=?, deleting_run=NULL, last_error=NULL, updated_at=? WHERE id=? AND state IN ('verified','skipped')`).run(
        why,
        now(),
        id,
      );
    });
  }

  /**
   * The object at the source is not the one proven (found when deleting: an edit that kept size
   * and time). The proven row is kept, with the reason; a new row takes the id, to be migrated.
   * Returns the new row's id, or null when a newer row already has it.
   */
  splitVersion(id: number, why: string): number | null {
    return this.durable(() => {
      const row = this.get(id);
      if (row.kept_reason || !['verified', 'skipped'].includes(row.state)) return null;
      this.stmts.replace.run({ id, now: now() });
      const p = {
        sourceId: row.source_id,
        name: row.name,
        albumId: row.album_id,
        albumName: row.album_name,
        size: row.size,
        kind: row.kind,
        declaredSha1: row.declared_sha1,
        declaredTime: row.declared_time,
        json: row.item_json,
        version: null,
        run: row.last_run,
        now: now(),
      };
      const newId = Number(this.stmts.insert.run(p).lastInsertRowid);
      this.sql(`UPDATE items SET kept_reason=?, deleting_run=NULL, last_error=NULL, updated_at=? WHERE id=?`).run(
        `${why}; the bytes there now are item ${newId}, migrated on their own`,
        now(),
        id,
      );
      return newId;
    });
  }

  /** Checked again before its deletion, the destination still holds the bytes: the fresher evidence. */
  refreshEvidence(id: number, level: string, detail: string): void {
    return this.deferredOne(() => {
      this.sql(`UPDATE items SET evidence_level=?, evidence_detail=?, verified_at=?, updated_at=? WHERE id=? AND state IN ('verified','skipped')`).run(
        level,
        detail,
        now(),
        now(),
        id,
      );
    });
  }

  /** Checked again before its deletion, the destination copy is gone or different: migrate it again. */
  markDestinationLost(id: number, why: string): void {
    return this.durable(() => {
      this.move(id, ['verified', 'skipped'], 'failed', {
        last_error: why,
        next_attempt_at: 0,
        dest_id: null,
        dest_path: null,
        duplicate_of: null,
        evidence_level: null,
        evidence_detail: null,
        verified_at: null,
        staged: null,
        deleting_run: null,
      });
    });
  }

  /** What the state knows of a listed item, for plan: its state, version, and whether the destination's library held it from another app. */
  listedAs(sourceId: string): { state: ItemState; source_version: string | null; inLibrary: number } | undefined {
    return this.sql(
      `SELECT state, source_version, (state = 'skipped' AND reason_kind IS 'in-library-from-another-app') AS inLibrary FROM items WHERE source_id = ?`,
    ).get(sourceId) as { state: ItemState; source_version: string | null; inLibrary: number } | undefined;
  }

  /** Is anything on record as still at the source? (A source that lists nothing then is probably not mounted.) */
  knowsItemsAtSource(): boolean {
    return !!this.db
      .prepare(
        `SELECT 1 FROM items WHERE state != 'source-deleted' AND kept_reason IS NULL AND NOT (state = 'rejected' AND reason_kind IS 'gone-from-source') LIMIT 1`,
      )
      .get();
  }

  /**
   * Ids of the items a worker may take now, in id order, a page at a time (a million-item state is
   * never loaded whole). Ids, not rows: the scheduler reads a page again on every wake and most of
   * it is already in flight; whole rows (item_json and 40-odd columns each) cost a run of 500
   * small photos to OneDrive 150 reads of up to 200 rows, ~3% of its thread.
   */
  pendingIds(afterId: number, limit: number, notBefore: number): number[] {
    // INDEXED BY: without statistics the planner took items_state_size and sorted every
    // pending row to return 200, on every call: a cost that grew with the library.
    return this.sql(
      `SELECT id FROM items INDEXED BY items_pending WHERE state IN ('discovered','transferring','failed') AND id > ? AND next_attempt_at <= ? ORDER BY id LIMIT ?`,
    )
      .pluck()
      .all(afterId, notBefore, limit) as number[];
  }

  /** Ids of up to `limit` items not finished (to be moved, being moved, or failed), in no particular order. */
  unfinished(limit: number): number[] {
    return (this.sql(`SELECT id FROM items WHERE state IN ('discovered','transferring','failed') LIMIT ?`).all(limit) as Array<{ id: number }>).map(
      (r) => r.id,
    );
  }

  /** The earliest time an unfinished item may be tried (ms since the epoch), or null when none is left. */
  retryDue(): number | null {
    return (this.sql(`SELECT min(next_attempt_at) AS t FROM items WHERE state IN ('discovered','transferring','failed')`).get() as { t: number | null }).t;
  }

  uploaded(afterId: number, limit: number): ItemRow[] {
    return this.sql(`SELECT * FROM items INDEXED BY items_uploaded WHERE state = 'uploaded' AND id > ? ORDER BY id LIMIT ?`).all(afterId, limit) as ItemRow[];
  }

  /** Verified items still at the source, not deliberately kept there. */
  deletable(afterId: number, limit: number): ItemRow[] {
    return this.sql(
      `SELECT * FROM items INDEXED BY items_deletable WHERE state IN ('verified','skipped') AND kept_reason IS NULL AND id > ? ORDER BY id LIMIT ?`,
    ).all(afterId, limit) as ItemRow[];
  }

  /** Duplicates waiting for their original's evidence. */
  duplicatesOf(originalId: number): ItemRow[] {
    // Asked for every verified item, and nearly always none: once the state is known to hold no
    // duplicate at all, the answer is kept until markUploaded makes one (the only write that does).
    let any = anyDuplicate.get(this.db);
    if (any === undefined) {
      any = this.sql(`SELECT 1 FROM items WHERE state = 'skipped' AND duplicate_of IS NOT NULL LIMIT 1`).get() !== undefined;
      anyDuplicate.set(this.db, any);
    }
    if (!any) return [];
    return this.sql(`SELECT * FROM items WHERE duplicate_of = ? AND state = 'skipped'`).all(originalId) as ItemRow[];
  }

  countsByState(): Record<ItemState, { items: number; bytes: number }> {
    const out = Object.fromEntries(ITEM_STATES.map((s) => [s, { items: 0, bytes: 0 }])) as Record<ItemState, { items: number; bytes: number }>;
    for (const r of this.sql('SELECT state, count(*) AS n, coalesce(sum(size),0) AS b FROM items GROUP BY state').all() as Array<{
      state: ItemState;
      n: number;
      b: number;
    }>) {
      out[r.state] = { items: r.n, bytes: r.b };
    }
    return out;
  }
}
