// The promise, tried as a careful user would: nothing is deleted at the source unless that very
// object is, right now, at the destination. Every scenario runs the real CLI on real files (and
// the Xiaomi emulator for deletes that fail), and is then checked from the outside: every
// content that ever existed is at the destination or still at the source, and every deletion at
// the source has its record.

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { makeSeed, readEmulatorState, startEmulator } from '../providers/xiaomi/test-support.ts';
import { CLI, FIXTURES, makeSource, runCli, sha256File, tmpDir, treeHashes } from './helpers.ts';

const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
});
function mount(args: string[], dir: string): boolean {
  try {
    execFileSync('mount', [...args, dir], { stdio: 'ignore' });
    mounts.push(dir);
    return true;
  } catch {
    return false;
  }
}

/** Every content seen so far (sha256), added to as a test writes files. */
class Contents {
  readonly all = new Set<string>();
  see(dir: string): this {
    for (const h of treeHashes(dir).values()) this.all.add(h);
    return this;
  }
}

interface Row {
  id: number;
  source_id: string;
  name: string;
  state: string;
  last_error: string | null;
  reason: string | null;
  kept_reason: string | null;
  evidence_detail: string | null;
  deleting_run: number | null;
}

function rows(db: string): Row[] {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare('SELECT * FROM items ORDER BY id').all() as Row[];
  } finally {
    d.close();
  }
}

function deletions(db: string): Array<{ item_id: number; response: string; evidence: string | null }> {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare('SELECT * FROM deletions ORDER BY id').all() as Array<{ item_id: number; response: string; evidence: string | null }>;
  } finally {
    d.close();
  }
}

/** The promise, checked from the outside: nothing that ever existed is lost, and every deletion is on record. */
function expectNothingLost(contents: Contents, src: string, dst: string, db: string | null): void {
  const present = new Set([...treeHashes(src).values(), ...treeHashes(dst).values()]);
  for (const h of contents.all) expect(present.has(h), `content ${h.slice(0, 12)} is neither at the source nor at the destination`).toBe(true);
  if (!db || !fs.existsSync(db)) return;
  const all = rows(db);
  const recorded = new Set(deletions(db).map((d) => d.item_id));
  for (const r of all.filter((x) => x.state === 'source-deleted')) expect(recorded.has(r.id), `${r.source_id} deleted with no record`).toBe(true);
  expect(recorded.size).toBe(all.filter((x) => x.state === 'source-deleted').length);
  // A file gone from the source that the state does not call deleted was not deleted by the tool.
  for (const r of all) if (r.state !== 'source-deleted') expect(r.deleting_run, `${r.source_id}: a deletion left unrecorded`).toBeNull();
}

function args(src: string, dst: string, db: string, extra: string[] = []): string[] {
  return ['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db, ...extra];
}

function setup(albums: Record<string, string[]>): { t: string; src: string; dst: string; db: string } {
  const t = tmpDir('gb-safety-');
  const src = path.join(t, 'src');
  makeSource(src, albums);
  return { t, src, dst: path.join(t, 'dst'), db: path.join(t, 'state.db') };
}

describe('deletion binds to the exact bytes it proved', () => {
  it('an edit in place and a reused name are new versions: migrated on their own, the old ones kept, nothing counted as done', async () => {
    const { src, dst, db } = setup({ Camera: ['canon-dslr.jpg', 'cookiezen.jpg', 'IMG_20180725_163423.jpg', 'heic-iphone7.heic'] });
    const same = path.join(src, 'Camera', 'cookiezen.jpg');
    // A whole second, so that the edit below can put the very same time back.
    const when = new Date('2021-06-01T12:00:00Z');
    fs.utimesSync(same, when, when);
    const seen = new Contents().see(src);
    expect((await runCli(args(src, dst, db))).code).toBe(0);

    // Edited in place (the same file, other bytes) ...
    fs.appendFileSync(path.join(src, 'Camera', 'canon-dslr.jpg'), Buffer.from('an edit'));
    // ... edited in place keeping size and modification time (only a re-read can tell) ...
    const bytes = fs.readFileSync(same);
    bytes[bytes.length - 10]! ^= 0xff;
    fs.writeFileSync(same, bytes);
    fs.utimesSync(same, when, when);
    // ... and a phone reset reusing a name already migrated.
    fs.rmSync(path.join(src, 'Camera', 'IMG_20180725_163423.jpg'));
    fs.copyFileSync(path.join(FIXTURES, 'VID_20211224_183000.mov'), path.join(src, 'Camera', 'IMG_20180725_163423.jpg'));
    seen.see(src);

    // plan does not count the new bytes under old names as done (the in-place edit with the old time is only caught when deleting).
    const plan = await runCli(['plan', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db, '--json']);
    const p = JSON.parse(plan.stdout.trim().split('\n').pop()!) as { toMove: { items: number }; done: { items: number } };
    expect(p.toMove.items).toBe(2);

    const run = await runCli(args(src, dst, db, ['--delete-source']));
    expect(run.code, run.stderr).toBe(0);
    expectNothingLost(seen, src, dst, db);
    // Every version, old and new, is at the destination; the source is empty.
    const atDst = new Set(treeHashes(dst).values());
    for (const h of seen.all) expect(atDst.has(h)).toBe(true);
    expect(treeHashes(src).size).toBe(0);
    // The state (and so the report) shows both versions of each changed item.
    const all = rows(db);
    for (const name of ['canon-dslr.jpg', 'cookiezen.jpg', 'IMG_20180725_163423.jpg']) {
      const versions = all.filter((r) => r.name === name);
      expect(versions.length, name).toBe(2);
      expect(versions.filter((r) => r.kept_reason !== null).length, name).toBe(1);
      expect(versions.filter((r) => r.state === 'source-deleted').length, name).toBe(1);
    }
    expect(all.find((r) => r.name === 'cookiezen.jpg' && r.kept_reason)!.kept_reason).toMatch(/SHA-256 read again/);
  }, 180_000);

  it('refuses a destination that is the source, an alias of it, or inside it (exit 2, nothing touched)', async () => {
    const { t, src, db } = setup({ Camera: ['canon-dslr.jpg', 'cookiezen.jpg'] });
    const before = treeHashes(src);
    const alias = path.join(t, 'alias');
    fs.symlinkSync(src, alias);
    const cases: Array<[string, RegExp]> = [
      [src, /same folder/],
      [alias, /same folder/],
      [path.join(src, 'organised'), /inside the source/],
      [path.join(alias, 'Camera', 'deeper'), /inside the source/],
    ];
    const bind = path.join(t, 'bind');
    fs.mkdirSync(bind);
    if (mount(['--bind', src], bind)) cases.push([bind, /alias/], [path.join(bind, 'sorted'), /inside the source .*\(through an alias\)/]);
    for (const [dst, why] of cases) {
      const r = await runCli(args(src, dst, db, ['--delete-source', '--layout', 'date']));
      expect(r.code, `${dst}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(why);
      expect(r.stderr.trim().split('\n').length).toBe(1);
      expect(treeHashes(src)).toEqual(before);
    }
    // The other way round: a source inside the destination.
    const r = await runCli(args(path.join(src, 'Camera'), src, path.join(t, 'other.db'), ['--delete-source']));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/inside the destination/);
    expect(treeHashes(src)).toEqual(before);
  }, 120_000);

  it("checks again before deleting an earlier run's item: a destination copy removed or changed is migrated again first", async () => {
    const { src, dst, db } = setup({ Camera: ['canon-dslr.jpg', 'cookiezen.jpg', 'heic-iphone7.heic'] });
    const seen = new Contents().see(src);
    expect((await runCli(args(src, dst, db))).code).toBe(0);
    const byName = new Map(rows(db).map((r) => [r.name, r]));
    const dstOf = (name: string) => {
      const d = new Database(db, { readonly: true });
      const p = (d.prepare('SELECT dest_path FROM items WHERE name = ?').get(name) as { dest_path: string }).dest_path;
      d.close();
      return path.join(dst, p);
    };
    // Someone (or the service's retention) removes one copy and changes another.
    fs.rmSync(dstOf('canon-dslr.jpg'));
    fs.writeFileSync(dstOf('cookiezen.jpg'), Buffer.from('not the photo any more'));
    expect(byName.size).toBe(3);

    const run = await runCli(args(src, dst, db, ['--delete-source']));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr + run.stdout).toMatch(/gone or changed since it was verified/);
    expectNothingLost(seen, src, dst, db);
    expect(treeHashes(src).size).toBe(0);
    // The untouched item was deleted on fresh evidence, the other two after migrating again.
    const recs = deletions(db);
    expect(recs.length).toBe(3);
    const heic = rows(db).find((r) => r.name === 'heic-iphone7.heic')!;
    expect(recs.find((d) => d.item_id === heic.id)!.evidence).toMatch(/checked again before deletion/);
    for (const h of seen.all) expect([...treeHashes(dst).values()]).toContain(h);
  }, 120_000);

  it('awaits and records all 400 deletions of items verified by an earlier run', async () => {
    const { src, dst, db } = setup({});
    for (let a = 0; a < 4; a++) {
      fs.mkdirSync(path.join(src, `album-${a}`), { recursive: true });
      for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(src, `album-${a}`, `f-${i}.bin`), crypto.randomBytes(200 + i));
    }
    const seen = new Contents().see(src);
    expect((await runCli(args(src, dst, db), { timeoutMs: 300_000 })).code).toBe(0);
    const run = await runCli(args(src, dst, db, ['--delete-source']), { timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(treeHashes(src).size).toBe(0);
    expect(deletions(db).length).toBe(400);
    expect(rows(db).every((r) => r.state === 'source-deleted')).toBe(true);
    expectNothingLost(seen, src, dst, db);
  }, 400_000);

  it("one run per state file: a second run exits 2 naming the first one's pid; a killed run's lock is taken over", async () => {
    const { src, dst, db } = setup({ Camera: ['canon-dslr.jpg', 'cookiezen.jpg', 'heic-iphone7.heic', 'VID_20211224_183000.mov'] });
    const seen = new Contents().see(src);
    // The first run is frozen (SIGSTOP) as soon as it shows work: it holds the state, whatever the machine's speed.
    const first = spawn(process.execPath, [CLI, ...args(src, dst, db, ['--delete-source', '--json'])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01' },
    });
    const firstDone = new Promise<number | null>((r) => first.on('close', (c) => r(c)));
    await new Promise<void>((r) => first.stdout.once('data', () => r()));
    first.kill('SIGSTOP');
    try {
      const second = await runCli(args(src, dst, db, ['--delete-source']));
      expect(second.code).toBe(2);
      expect(second.stderr).toMatch(new RegExp(`in use by another run \\(process ${first.pid}\\b`));
    } finally {
      first.kill('SIGCONT');
    }
    expect(await firstDone).toBe(0);
    expectNothingLost(seen, src, dst, db);

    // A run killed outright leaves its lock behind; the next run takes it over and finishes.
    makeSource(src, { Trip: ['cookiezen.jpg', 'IMG_20180725_163423.jpg'] });
    seen.see(src);
    const killed = spawn(process.execPath, [CLI, ...args(src, dst, db, ['--json'])], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((r) => killed.stdout.once('data', () => r()));
    killed.kill('SIGKILL');
    await new Promise((r) => killed.on('close', r));
    const next = await runCli(args(src, dst, db, ['--delete-source']));
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr + next.stdout).toMatch(new RegExp(`process ${killed.pid} .*taking it over`));
    expect(treeHashes(src).size).toBe(0);
    expectNothingLost(seen, src, dst, db);
  }, 180_000);

  it('two runs started together on a new state file: one runs, the other is refused naming its pid, every time', async () => {
    // Each run waits 2 s for its copies' durability group, so the two overlap whatever the
    // machine's speed; who wins the start is left to the race, which is the point.
    const env = { GALLERY_BRIDGE_FOLDER_SYNC_MS: '2000' };
    for (let round = 0; round < 8; round++) {
      const { src, dst, db } = setup({ Camera: ['cookiezen.jpg', 'canon-dslr.jpg'] });
      const seen = new Contents().see(src);
      const start = () => {
        const child = spawn(process.execPath, [CLI, ...args(src, dst, db)], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01', ...env },
        });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        return { pid: child.pid!, done: new Promise<{ code: number | null; err: string }>((r) => child.on('close', (code) => r({ code, err }))) };
      };
      const runs = [start(), start()];
      const [a, b] = await Promise.all(runs.map((r) => r.done));
      const refused = a!.code === 2 ? 0 : 1;
      const ran = 1 - refused;
      expect([a!.code, b!.code].sort(), `round ${round}: ${a!.err} | ${b!.err}`).toEqual([0, 2]);
      const said = [a!, b!][refused]!.err.trim();
      expect(said.split('\n'), said).toHaveLength(1);
      expect(said).toMatch(new RegExp(`in use by another run \\(process ${runs[ran]!.pid}\\b`));
      expectNothingLost(seen, src, dst, db);
      expect(treeHashes(dst).size).toBe(2);
    }
  }, 240_000);

  it('retries a delete that fails transiently, exits 1 while deletions are owed, and a rerun finishes them', async () => {
    const t = tmpDir('gb-safety-');
    const seed = makeSeed(path.join(t, 'seed'), undefined, (n) =>
      ['canon-dslr.jpg', 'cookiezen.jpg', 'heic-iphone7.heic', 'VID_20211224_183000.mov', 'f6t.jpg'].includes(n),
    );
    const out = path.join(t, 'out');
    const db = path.join(t, 'state.db');
    const home = path.join(t, 'home');
    const xargs = ['migrate', '--from', 'xiaomi', '--to', `folder:${out}`, '--state', db, '--delete-source'];
    const data = path.join(t, 'data');

    // Half the deletes fail (a 503, nothing deleted): retried with back-off, every one gets through.
    let emu = await startEmulator(data, { seed, faultDelete: 0.5 });
    const listed = emu.manifest().filter((m) => m.albumName !== 'Private');
    let run = await runCli(xargs, { env: { ...emu.env, GALLERY_BRIDGE_HOME: home } });
    await emu.close();
    expect(run.code, run.stderr).toBe(0);
    let state = readEmulatorState(data);
    expect(state.counters.faultDelete ?? 0).toBeGreaterThan(0);
    expect(Object.keys(state.deleted).length).toBe(listed.length);
    expect(deletions(db).length).toBe(listed.length);

    // New photos, and a service that refuses every delete: the run says so (exit 1), reasons in status.
    const seed2 = makeSeed(path.join(t, 'seed2'), undefined, (n) => ['noexif.jpg', 'Bush-dog.tif'].includes(n));
    emu = await startEmulator(path.join(t, 'data2'), { seed: seed2, faultDelete: 1 });
    const db2 = path.join(t, 'state2.db');
    const args2 = ['migrate', '--from', 'xiaomi', '--to', `folder:${path.join(t, 'out2')}`, '--state', db2, '--delete-source'];
    run = await runCli(args2, { env: { ...emu.env, GALLERY_BRIDGE_HOME: home } });
    await emu.close();
    expect(run.code, run.stderr).toBe(1);
    const owed = rows(db2).filter((r) => r.state === 'verified');
    expect(owed.length).toBeGreaterThan(0);
    for (const r of owed) expect(r.last_error).toMatch(/deletion owed/);
    const status = await runCli(['status', '--state', db2]);
    expect(status.stdout).toMatch(/deletion owed/);
    state = readEmulatorState(path.join(t, 'data2'));
    expect(Object.keys(state.deleted).length).toBe(0);
    // The service recovers: the rerun finishes every owed deletion and exits 0.
    emu = await startEmulator(path.join(t, 'data2'), { seed: seed2 });
    run = await runCli(args2, { env: { ...emu.env, GALLERY_BRIDGE_HOME: home } });
    await emu.close();
    expect(run.code, run.stderr).toBe(0);
    state = readEmulatorState(path.join(t, 'data2'));
    expect(Object.keys(state.deleted).length).toBe(owed.length);
    expect(deletions(db2).length).toBe(owed.length);
    // Every deleted item's bytes are at the destination.
    const atDst = new Set([...treeHashes(path.join(t, 'out2')).values()]);
    for (const m of emu.manifest().filter((x) => state.deleted[x.id])) expect(atDst.has(sha256File(m.file!))).toBe(true);
  }, 240_000);

  it('a source folder renamed away stops the run before anything is marked; items found missing are revived when back', async () => {
    const { t, src, dst, db } = setup({ Camera: ['canon-dslr.jpg', 'cookiezen.jpg'], Trip: ['heic-iphone7.heic', 'IMG_20180725_163423.jpg'] });
    const seen = new Contents().see(src);
    expect((await runCli(args(src, dst, db))).code).toBe(0);
    const before = rows(db);

    // The card is not mounted: the folder is gone, or there but empty.
    const away = path.join(t, 'away');
    fs.renameSync(src, away);
    let run = await runCli(args(src, dst, db, ['--delete-source']));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/is the card mounted\?/);
    fs.mkdirSync(src);
    run = await runCli(args(src, dst, db, ['--delete-source']));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/is the card mounted\?/);
    expect(rows(db)).toEqual(before);
    expect(deletions(db).length).toBe(0);
    fs.rmdirSync(src);
    fs.renameSync(away, src);
    expectNothingLost(seen, src, dst, db);

    // New photos arrive in an album that is then renamed away for a while: the run that misses
    // them marks them gone, and they come back when the album does.
    const ro = path.join(t, 'ro-dst');
    fs.mkdirSync(ro);
    makeSource(src, { Later: ['VID_20230514_101112.mp4', 'VID_20211224_183000.mov'] });
    seen.see(src);
    const db2 = path.join(t, 'state2.db');
    // A first run lists everything but cannot write (a read-only destination): the new items stay pending.
    if (mount(['-t', 'tmpfs', '-o', 'size=50000k,ro', 'tmpfs'], ro)) {
      run = await runCli(args(src, ro, db2));
      expect(run.code).toBe(2);
      expect(rows(db2).some((r) => r.name === 'VID_20230514_101112.mp4')).toBe(true);
      execFileSync('mount', ['-o', 'remount,rw', ro]);
      fs.renameSync(path.join(src, 'Later'), path.join(t, 'Later-away'));
      run = await runCli(args(src, ro, db2, ['--delete-source']));
      expect(run.code).toBe(1);
      const gone = rows(db2).filter((r) => r.name.startsWith('VID_'));
      expect(gone.map((r) => r.state)).toEqual(['rejected', 'rejected']);
      expect(gone[0]!.reason).toMatch(/gone from the source/);
      fs.renameSync(path.join(t, 'Later-away'), path.join(src, 'Later'));
      run = await runCli(args(src, ro, db2, ['--delete-source']));
      expect(run.code, run.stderr).toBe(0);
      expect(rows(db2).every((r) => r.state === 'source-deleted')).toBe(true);
      expect(treeHashes(src).size).toBe(0);
      expectNothingLost(seen, src, ro, db2);
    }
  }, 180_000);

  it('a source emptied on purpose: the default still stops (exit 2, naming the flag); --source-may-be-empty goes on, the items count as gone, the destination keeps every byte', async () => {
    const { src, dst, db } = setup({ Camera: ['canon-dslr.jpg', 'cookiezen.jpg'] });
    expect((await runCli(args(src, dst, db))).code).toBe(0);
    // Two more photos; the run that lists them cannot write their album (a file stands where its
    // folder goes), so they stay to be moved, as the chaos harness's item "still in transfer".
    makeSource(src, { Trip: ['IMG_20180725_163423.jpg', 'heic-iphone7.heic'] });
    const blocker = path.join(dst, 'Trip');
    fs.writeFileSync(blocker, 'not a folder');
    let run = await runCli(args(src, dst, db));
    expect(run.code, run.stderr).toBe(2);
    const pending = rows(db).filter((r) => r.name !== 'canon-dslr.jpg' && r.name !== 'cookiezen.jpg');
    expect(pending.map((r) => r.state).sort()).toEqual(['failed', 'failed']);
    fs.rmSync(blocker);

    // The person deletes every photo at the source, the last two included.
    for (const album of fs.readdirSync(src)) fs.rmSync(path.join(src, album), { recursive: true });
    const atDst = treeHashes(dst);
    expect(atDst.size).toBe(2);
    const before = rows(db);

    run = await runCli(args(src, dst, db, ['--delete-source']));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/is the card mounted\?/);
    expect(run.stderr).toMatch(/--source-may-be-empty/);
    expect(rows(db)).toEqual(before);
    const plan = await runCli(['plan', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/lists no items.*--source-may-be-empty/);

    run = await runCli(args(src, dst, db, ['--delete-source', '--source-may-be-empty']));
    // As for items missing from a longer listing: the two not moved are gone (rejected, exit 1).
    expect(run.code, run.stderr).toBe(1);
    const after = rows(db);
    for (const r of after.filter((x) => pending.some((p) => p.id === x.id))) {
      expect(r.state).toBe('rejected');
      expect(r.reason).toMatch(/^gone from the source/);
    }
    // The moved two were already gone too: recorded as such, nothing deleted by the tool.
    for (const r of after.filter((x) => !pending.some((p) => p.id === x.id))) expect(r.state).toBe('source-deleted');
    for (const d of deletions(db)) expect(d.response).toMatch(/already gone at the source/);
    const status = await runCli(['status', '--state', db]);
    expect(status.stdout).toMatch(/gone from the source/);
    // Every byte the destination held is still there, unchanged.
    const now = treeHashes(dst);
    for (const [rel, hash] of atDst) expect(now.get(rel), rel).toBe(hash);
  }, 120_000);
});
