// The state store on a real SQLite file: modes, migrations, guarded transitions, and the deletion rule.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { openState, startWriteBehind, stopWriteBehind, StateFileError } from '../state/db.ts';
import { IllegalTransition, Items } from '../state/items.ts';
import type { ItemRow } from '../state/items.ts';
import { deletionVerdict } from '../src/engine/deletion.ts';
import { startRun } from '../src/engine/runs.ts';
import { tmpDir } from './helpers.ts';
import { MIGRATIONS } from '../state/migrations.ts';
import { providerStore } from '../src/commands/providers.ts';

const hashes = { sha1: 'a'.repeat(40), sha256: 'b'.repeat(64), quickXor: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=', size: 3 };

function seed(items: Items, sourceId: string, declaredSha1: string | null = null): ItemRow {
  items.recordPage(
    [
      {
        sourceId,
        name: `${sourceId}.jpg`,
        albumId: null,
        albumName: null,
        size: 3,
        kind: 'image',
        declaredSha1,
        declaredTime: null,
        json: JSON.stringify({ id: sourceId }),
      },
    ],
    () => undefined,
    1,
  );
  return items.bySourceId(sourceId)!;
}

describe('state store', () => {
  it('is created 0600 with WAL and refuses a database that is not ours', () => {
    const t = tmpDir();
    const file = path.join(t, 's.db');
    const db = openState(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
    const foreign = path.join(t, 'foreign.db');
    const f = new Database(foreign);
    f.exec('CREATE TABLE x (y)');
    f.close();
    expect(() => openState(foreign)).toThrow(StateFileError);
    fs.writeFileSync(path.join(t, 'junk.db'), 'not sqlite at all, just text '.repeat(200));
    expect(() => openState(path.join(t, 'junk.db'))).toThrow(StateFileError);
  });

  it("a provider's store lists the keys of a prefix, in its own scope only", () => {
    const db = openState(path.join(tmpDir(), 's.db'));
    const a = providerStore(db, 'destination:onedrive');
    const b = providerStore(db, 'source:folder');
    for (const k of ['rename:1', 'rename:22', 'renamed', 'rename;', 'folder:x', 'rename:']) a.set(k, { k });
    b.set('rename:9', 1);
    expect(a.keys!('rename:').sort()).toEqual(['rename:', 'rename:1', 'rename:22']);
    a.delete('rename:1');
    expect(a.keys!('rename:').sort()).toEqual(['rename:', 'rename:22']);
    expect(b.keys!('rename:')).toEqual(['rename:9']);
    // The empty prefix is every key of the scope.
    expect(a.keys!('').sort()).toEqual(['folder:x', 'rename:', 'rename:22', 'rename;', 'renamed']);
    expect(b.keys!('')).toEqual(['rename:9']);
    db.close();
  });

  it('deletion intents of several items go to disk in one write, with the writes gathered behind them; only verified or skipped items are marked', () => {
    const file = path.join(tmpDir(), 's.db');
    const db = openState(file);
    const items = new Items(db);
    startRun(db, { command: 'test', sourceSpec: 's', destinationSpec: 'd', deleteSource: true, deleteEvidence: 'bytes', concurrency: 1 });
    const rows = ['a', 'b', 'c'].map((id) => seed(items, id));
    startWriteBehind(db);
    for (const r of rows.slice(0, 2)) {
      items.startTransfer(r.id, 1);
      items.recordStaged(r.id, hashes, null, {});
      items.markUploaded(r.id, `dest-${r.id}`, null);
      items.markVerified(r.id, 'bytes', 'read back');
    }
    const marked = items.markDeletingMany(
      rows.map((r) => r.id),
      1,
    );
    expect([...marked].sort()).toEqual([rows[0]!.id, rows[1]!.id].sort());
    // What another process reads: committed, as a kill would leave it.
    const other = new Database(file, { readonly: true });
    try {
      const seen = other.prepare('SELECT id, state, deleting_run FROM items ORDER BY id').all();
      expect(seen).toEqual([
        { id: rows[0]!.id, state: 'verified', deleting_run: 1 },
        { id: rows[1]!.id, state: 'verified', deleting_run: 1 },
        { id: rows[2]!.id, state: 'discovered', deleting_run: null },
      ]);
    } finally {
      other.close();
    }
    expect(() => items.markDeleting(rows[2]!.id, 1)).toThrow(IllegalTransition);
    stopWriteBehind(db);
    db.close();
  });

  it('allows only the transitions of the state machine', () => {
    const db = openState(path.join(tmpDir(), 's.db'));
    const items = new Items(db);
    startRun(db, { command: 'test', sourceSpec: 's', destinationSpec: 'd', deleteSource: true, deleteEvidence: 'bytes', concurrency: 1 });
    const row = seed(items, 'one');
    expect(row.state).toBe('discovered');
    expect(() => items.markVerified(row.id, 'bytes', 'x')).toThrow(IllegalTransition);
    expect(() => items.markSourceDeleted(row.id, 1, 'x')).toThrow(IllegalTransition);
    items.startTransfer(row.id, 1);
    items.recordStaged(row.id, hashes, null, { h: 1 });
    expect(items.markUploaded(row.id, 'dest-1', 'a/one.jpg')).toBe('uploaded');
    expect(() => items.markSourceDeleted(row.id, 1, 'x')).toThrow(IllegalTransition);
    items.markVerified(row.id, 'bytes', 'read back');
    items.markSourceDeleted(row.id, 1, 'unlinked');
    const done = items.get(row.id);
    expect(done.state).toBe('source-deleted');
    expect(done.attempts).toBe(1);
    expect(db.prepare('SELECT count(*) AS n FROM deletions WHERE item_id = ?').get(row.id)).toEqual({ n: 1 });

    // A second item that lands on the same destination item is recorded as its duplicate.
    // Asked before there is one (the answer "none" is kept), the original then shows it.
    expect(items.duplicatesOf(row.id)).toEqual([]);
    const two = seed(items, 'two');
    items.startTransfer(two.id, 1);
    items.recordStaged(two.id, hashes, null, {});
    expect(items.markUploaded(two.id, 'dest-1', null)).toBe('skipped');
    expect(items.get(two.id).duplicate_of).toBe(row.id);
    expect(items.duplicatesOf(row.id).map((d) => d.id)).toEqual([two.id]);
    // Another Items on the same database (the state reopened by the next command) finds it too.
    expect(new Items(db).duplicatesOf(row.id).map((d) => d.id)).toEqual([two.id]);
    db.close();
  });

  it('an item that found the same bytes already there does not make the one that put them there a duplicate', () => {
    const db = openState(path.join(tmpDir(), 's.db'));
    const items = new Items(db);
    startRun(db, { command: 'test', sourceSpec: 's', destinationSpec: 'd', deleteSource: false, deleteEvidence: 'bytes', concurrency: 1 });
    const first = seed(items, 'A');
    const second = seed(items, 'C');
    items.startTransfer(first.id, 1);
    items.startTransfer(second.id, 1);
    // The second's commit finds the first's file (same name, same bytes) while the first is still
    // being verified: recorded first, as "already at the destination".
    items.markDuplicate(second.id, '2018/07/IMG.jpg', '2018/07/IMG.jpg', { level: 'bytes', detail: 'same bytes' });
    expect(items.markCommittedVerified(first.id, '2018/07/IMG.jpg', '2018/07/IMG.jpg', 'bytes', 'read back')).toBe('verified');
    expect(items.get(first.id)).toMatchObject({ state: 'verified', duplicate_of: null });
    expect(items.get(second.id)).toMatchObject({ state: 'skipped', reason_kind: 'same-bytes-at-destination' });
    // An item committed to a destination item that a verified one holds is still its duplicate.
    const third = seed(items, 'D');
    items.startTransfer(third.id, 1);
    items.recordStaged(third.id, hashes, null, {});
    expect(items.markUploaded(third.id, '2018/07/IMG.jpg', null)).toBe('skipped');
    expect(items.get(third.id).duplicate_of).toBe(first.id);
    db.close();
  });

  it('keeps a re-listed item that is already moved as it was moved', () => {
    const db = openState(path.join(tmpDir(), 's.db'));
    const items = new Items(db);
    const row = seed(items, 'x');
    items.startTransfer(row.id, 1);
    items.recordStaged(row.id, hashes, null, {});
    items.markUploaded(row.id, 'd', null);
    items.recordPage(
      [{ sourceId: 'x', name: 'renamed.jpg', albumId: null, albumName: null, size: 99, kind: 'image', declaredSha1: null, declaredTime: null, json: '{}' }],
      () => undefined,
      2,
    );
    expect(items.get(row.id).name).toBe('x.jpg');
    expect(items.get(row.id).size).toBe(3);
    db.close();
  });
});

describe('the deletion rule', () => {
  const base = { state: 'verified', sha256: 'b', bytes_read: 3, declared_sha1: null, declared_hash_ok: null, evidence_level: 'bytes' } as unknown as ItemRow;
  const policy = { deleteSource: true, minimumEvidence: 'pixels' as const };
  it('deletes only verified items with enough evidence and a matching declared hash', () => {
    expect(deletionVerdict(base, policy)).toEqual({ delete: true });
    expect(deletionVerdict(base, { ...policy, deleteSource: false }).delete).toBe(false);
    expect(deletionVerdict({ ...base, state: 'uploaded' }, policy).delete).toBe(false);
    expect(deletionVerdict({ ...base, evidence_level: 'received' }, policy).delete).toBe(false);
    expect(deletionVerdict({ ...base, evidence_level: 'received' }, { ...policy, minimumEvidence: 'received' })).toEqual({ delete: true });
    expect(deletionVerdict({ ...base, evidence_level: 'pixels' }, policy)).toEqual({ delete: true });
    expect(deletionVerdict({ ...base, evidence_level: 'pixels' }, { ...policy, minimumEvidence: 'bytes' }).delete).toBe(false);
    expect(deletionVerdict({ ...base, declared_sha1: 'abc', declared_hash_ok: 0 }, policy).delete).toBe(false);
    expect(deletionVerdict({ ...base, declared_sha1: 'abc', declared_hash_ok: null }, policy).delete).toBe(false);
    expect(deletionVerdict({ ...base, declared_sha1: 'abc', declared_hash_ok: 1 }, policy)).toEqual({ delete: true });
    expect(deletionVerdict({ ...base, sha256: null }, policy).delete).toBe(false);
    expect(deletionVerdict({ ...base, evidence_level: null }, policy).delete).toBe(false);
    expect(deletionVerdict({ ...base, state: 'skipped' }, policy)).toEqual({ delete: true });
  });

  it('writes behind during a run: a kill loses only deferred writes made after the last durable one', () => {
    const t = tmpDir();
    const file = path.join(t, 's.db');
    const setup = openState(file);
    const items = new Items(setup);
    const ids = ['a', 'b', 'c'].map((s) => seed(items, s).id);
    setup.close();
    // A process that writes behind, then dies by SIGKILL with the last deferred write unsaved.
    const script = `
      import { openState, startWriteBehind } from ${JSON.stringify(path.resolve('state/db.ts'))};
      import { Items } from ${JSON.stringify(path.resolve('state/items.ts'))};
      const db = openState(${JSON.stringify(file)});
      const items = new Items(db);
      startWriteBehind(db);
      items.startTransfer(${ids[0]}, 1);
      items.saveSession(${ids[0]}, { resume: 'here' });
      items.startTransfer(${ids[1]}, 1);
      items.saveSessionBehind(${ids[1]}, { nothing: 'sent yet' });
      process.kill(process.pid, 'SIGKILL');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: path.resolve('.'), encoding: 'utf8' });
    expect(r.signal).toBe('SIGKILL');
    const after = new Database(file, { readonly: true });
    const state = (id: number) =>
      after.prepare('SELECT state, upload_session FROM items WHERE id = ?').get(id) as { state: string; upload_session: string | null };
    // The durable write (an upload session the service holds) went to disk with the deferred one before it.
    expect(state(ids[0]!)).toEqual({ state: 'transferring', upload_session: JSON.stringify({ resume: 'here' }) });
    // The ones after it were lost, as if the kill had come before them: the item is simply taken
    // again, and a session saved behind (one the service holds no byte of) is opened anew.
    expect(state(ids[1]!)).toEqual({ state: 'discovered', upload_session: null });
    after.close();

    // In one process: a reader sees deferred writes once they are committed, at the latest when the run stops.
    const db = openState(file);
    const live = new Items(db);
    startWriteBehind(db);
    live.startTransfer(ids[2]!, 2);
    const reader = new Database(file, { readonly: true });
    const seen = () => (reader.prepare('SELECT state FROM items WHERE id = ?').get(ids[2]) as { state: string }).state;
    expect(seen()).toBe('discovered');
    stopWriteBehind(db);
    expect(seen()).toBe('transferring');
    reader.close();
    db.close();
  });
});
