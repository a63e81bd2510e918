// Group durability in the folder destination: files are fsynced in groups off the copy's path,
// and an item is reported verified (the evidence that lets its source be deleted) only after
// its file and the folder holding its name have been synced. Checked with a recording SyncOps
// around the real fsyncs, on real files.

import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FolderDestination } from '../providers/folder/destination.ts';
import { MAX_UNCLAIMED, SyncGroups, fileSystemSync, realSync, type SyncOps } from '../providers/folder/durable.ts';
import { FileSystemSync, kernelReportsSyncfsErrors } from '../src/lib/syncfs.ts';
import type { Hashes, ItemFacts, SessionSlot, SourceItem } from '../providers/types.ts';
import { hashBuffer, SHA256_ONLY } from '../src/hash/multihash.ts';
import { tmpDir } from './helpers.ts';
import { FolderSource } from '../providers/folder/source.ts';
import { folderRunOptions, runOverState, writeRandomFiles } from './helpers/in-process-run.ts';

const facts: ItemFacts = { captureTime: null, captureTimeSource: 'none', mimeType: 'image/jpeg', kind: 'image' };
let sessions = 0;
const session = (): SessionSlot => {
  let v: unknown = null;
  return { key: `test-${++sessions}`, load: <T>() => v as T, save: (x) => void (v = x), clear: () => void (v = null) };
};

function recorder(): SyncOps & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    async file(p, fh) {
      await realSync.file(p, fh);
      log.push(`file ${path.basename(p)}`);
    },
    async dir(p) {
      await realSync.dir(p);
      log.push(`dir ${path.basename(p)}`);
    },
  };
}

async function put(dest: FolderDestination, name: string, album: string, bytes: Buffer): Promise<{ destPath: string; hashes: Hashes; item: SourceItem }> {
  const item: SourceItem = { id: `${album}/${name}`, name, albumId: album, albumName: album, size: bytes.length, kind: 'image' };
  const container = await dest.prepareContainer(item, facts);
  const staged = await dest.upload({
    item,
    facts,
    container,
    name,
    size: bytes.length,
    body: Readable.from([bytes]),
    session: session(),
    signal: new AbortController().signal,
  });
  const hashes = hashBuffer(bytes, SHA256_ONLY);
  const [res] = await dest.commit([{ staged, input: { item, facts, container, name, size: bytes.length, session: undefined as never }, hashes }]);
  if (res!.outcome !== 'created') throw new Error(`commit: ${res!.outcome}`);
  return { destPath: res!.destPath!, hashes, item };
}

describe('folder destination: group durability', () => {
  it('syncs files in groups and reports verified only after the file and its folder are synced', async () => {
    const root = tmpDir();
    const ops = recorder();
    // A long wait, so the group stays open until the test closes it by size.
    const dest = new FolderDestination(root, 'album', new SyncGroups(ops, { maxFiles: 6, maxBytes: 1 << 30, maxWaitMs: 60_000 }));
    const files = await Promise.all(Array.from({ length: 6 }, (_, i) => put(dest, `IMG_${i}.jpg`, i % 2 ? 'A' : 'B', crypto.randomBytes(1000 + i))));
    // The sixth file closed the group: six file syncs, then the two folders once each.
    const results = await Promise.all(
      files.map((f) => dest.verify([{ destId: f.destPath, destPath: f.destPath, item: f.item, facts, hashes: f.hashes, size: f.hashes.size }])),
    );
    for (const [r] of results) expect(r!.outcome).toBe('verified');
    expect(ops.log.filter((l) => l.startsWith('file')).sort()).toEqual(files.map((f) => `file ${path.basename(f.destPath)}`).sort());
    expect(ops.log.slice(6).sort()).toEqual(['dir A', 'dir B']);
    expect(fs.readdirSync(path.join(root, 'A')).filter((n) => n.startsWith('.'))).toEqual([]);
    await dest.close();
  });

  it('remembers at most MAX_UNCLAIMED synced files nobody asked about; one let go is synced again when asked', async () => {
    const synced: string[] = [];
    const ops: SyncOps = { file: async (p) => void synced.push(p), dir: async () => undefined };
    const groups = new SyncGroups(ops, { maxFiles: 1000, maxBytes: 1 << 30, maxWaitMs: 60_000 });
    const n = MAX_UNCLAIMED + 50;
    for (let i = 0; i < n; i++) groups.add(`/d/f${i}`, '/d', 1);
    await groups.flush();
    expect(synced.length).toBe(n);
    // The newest are still known durable: no second sync.
    await groups.durable(`/d/f${n - 1}`, '/d');
    expect(synced.length).toBe(n);
    // The oldest was let go: asked about, it is synced again before it counts as durable.
    const asked = groups.durable('/d/f0', '/d');
    await groups.flush();
    await asked;
    expect(synced.slice(n)).toEqual(['/d/f0']);
  });

  it('holds a verification until its group is synced, and reports it at once after', async () => {
    const root = tmpDir();
    const ops = recorder();
    const groups = new SyncGroups(ops, { maxFiles: 100, maxBytes: 1 << 30, maxWaitMs: 60_000 });
    const dest = new FolderDestination(root, 'album', groups);
    const f = await put(dest, 'IMG_1.jpg', 'A', crypto.randomBytes(5000));
    let verified = false;
    const v = dest.verify([{ destId: f.destPath, destPath: f.destPath, item: f.item, facts, hashes: f.hashes, size: f.hashes.size }]).then((r) => {
      verified = r[0]!.outcome === 'verified';
      return r;
    });
    // Give the read-back every chance to finish: the answer still waits for the sync.
    await new Promise((r) => setTimeout(r, 200));
    expect(verified).toBe(false);
    expect(ops.log).toEqual([]);
    await groups.flush();
    await v;
    expect(verified).toBe(true);
    expect(ops.log).toEqual(['file IMG_1.jpg', 'dir A']);
  });

  it('a failed sync fails the verification of every file in the group', async () => {
    const root = tmpDir();
    const failing: SyncOps = {
      file: async (_p, fd) => {
        if (fd !== undefined) fs.closeSync(fd);
        throw Object.assign(new Error('EIO'), { code: 'EIO' });
      },
      dir: realSync.dir,
    };
    const dest = new FolderDestination(root, 'album', new SyncGroups(failing, { maxFiles: 2, maxBytes: 1 << 30, maxWaitMs: 50 }));
    const files = [await put(dest, 'a.jpg', 'A', crypto.randomBytes(10)), await put(dest, 'b.jpg', 'A', crypto.randomBytes(11))];
    for (const f of files) {
      const [r] = await dest.verify([{ destId: f.destPath, destPath: f.destPath, item: f.item, facts, hashes: f.hashes, size: f.hashes.size }]);
      expect(r!.outcome).toBe('error');
    }
    // The bytes are there all the same; a later verification (its own sync) can prove them.
    expect(await fsp.readFile(path.join(root, files[0]!.destPath))).toHaveLength(10);
  });

  it('a run gathers many files into each group: its verifications wait together, not one after another', async () => {
    const src = tmpDir();
    const dst = tmpDir();
    const sent = writeRandomFiles(src, 60, (i) => ({ rel: `album-${i % 3}/IMG_${i}.jpg`, size: 2000 + i }));
    const ops = recorder();
    // Groups close by time only (20 ms, the default wait), as in a real run.
    const dest = new FolderDestination(dst, 'album', new SyncGroups(ops, { maxFiles: 1000, maxBytes: 1 << 30, maxWaitMs: 20 }));
    const result = await runOverState(path.join(tmpDir(), 'state.db'), new FolderSource(src), dest, folderRunOptions(src, dst));
    expect(result.counts.verified.items).toBe(60);
    for (const [rel, bytes] of sent) expect(fs.readFileSync(path.join(dst, rel)).equals(bytes)).toBe(true);
    // Each group syncs its files, then its folders: a folder entry followed by a file entry starts a new group.
    const groups = 1 + ops.log.filter((l, i) => l.startsWith('dir') && ops.log[i + 1]?.startsWith('file')).length;
    // Each file is synced once: its verification after its group synced does not sync it again.
    expect(ops.log.filter((l) => l.startsWith('file'))).toHaveLength(60);
    // One verification at a time made a group per file (60); together they share a few.
    expect(groups).toBeLessThanOrEqual(20);
    // Every file's check came, before or after its group synced: nothing is left remembered.
    expect(dest.groups.unclaimed).toBe(0);
  });

  it("a second attempt at an item closes the first attempt's temp file and starts it over", async () => {
    const root = tmpDir();
    const dest = new FolderDestination(root, 'album', new SyncGroups(realSync, { maxFiles: 100, maxBytes: 1 << 30, maxWaitMs: 60_000 }));
    const item: SourceItem = { id: 'A/IMG_1.jpg', name: 'IMG_1.jpg', albumId: 'A', albumName: 'A', size: 10, kind: 'image' };
    const container = await dest.prepareContainer(item, facts);
    const slot = session();
    const openFds = () => fs.readdirSync('/proc/self/fd').length;
    const before = openFds();
    const first = crypto.randomBytes(10);
    await dest.upload({ item, facts, container, name: item.name, size: 10, body: Readable.from([first]), session: slot, signal: new AbortController().signal });
    expect(openFds()).toBe(before + 1);
    // Its commit never came (it failed); the retry writes the same temp name again.
    const second = crypto.randomBytes(10);
    const staged = await dest.upload({
      item,
      facts,
      container,
      name: item.name,
      size: 10,
      body: Readable.from([second]),
      session: slot,
      signal: new AbortController().signal,
    });
    expect(openFds()).toBe(before + 1);
    const [res] = await dest.commit([
      { staged, input: { item, facts, container, name: item.name, size: 10, session: undefined as never }, hashes: hashBuffer(second, SHA256_ONLY) },
    ]);
    expect(res!.outcome).toBe('created');
    await dest.close();
    expect(openFds()).toBe(before);
    expect(fs.readFileSync(path.join(root, 'A', 'IMG_1.jpg')).equals(second)).toBe(true);
    expect(fs.readdirSync(path.join(root, 'A'))).toEqual(['IMG_1.jpg']);
  });

  it('with syncfs: one sync of the file system a group, no fsync a file or folder, and verified only after it', async () => {
    const root = tmpDir();
    const log: string[] = [];
    const fss = new FileSystemSync();
    const ops: SyncOps = {
      file: async (p) => void log.push(`file ${path.basename(p)}`),
      dir: async (p) => void log.push(`dir ${path.basename(p)}`),
      watch: (r) => void fss.watch(r),
      fileSystem: async () => {
        const done = await fss.sync();
        log.push(`syncfs ${done}`);
        return done;
      },
      covers: (d) => fss.covers(d),
      close: () => fss.close(),
    };
    const groups = new SyncGroups(ops, { maxFiles: 100, maxBytes: 1 << 30, maxWaitMs: 60_000 });
    const dest = new FolderDestination(root, 'album', groups);
    const files = await Promise.all(Array.from({ length: 4 }, (_, i) => put(dest, `IMG_${i}.jpg`, i % 2 ? 'A' : 'B', crypto.randomBytes(3000 + i))));
    let verified = 0;
    const checks = files.map((f) =>
      dest.verify([{ destId: f.destPath, destPath: f.destPath, item: f.item, facts, hashes: f.hashes, size: f.hashes.size }]).then(([r]) => {
        if (r!.outcome === 'verified') verified++;
        return r!.outcome;
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(verified).toBe(0);
    await groups.flush();
    expect(await Promise.all(checks)).toEqual(['verified', 'verified', 'verified', 'verified']);
    // Available: Linux 5.8+ with koffi installed (an optional dependency).
    const probe = new FileSystemSync();
    const available = probe.watch(root);
    probe.close();
    // Where syncfs works, it alone covers the group (names included); elsewhere each file and folder is fsynced.
    if (available) expect(log).toEqual(['syncfs true']);
    else expect(log.filter((l) => l.startsWith('file'))).toHaveLength(4);
    await dest.close();
    // The descriptors written through are closed by the sync, and the watched folder's at close.
    const target = (fd: string) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return ''; // the descriptor readdir itself had open
      }
    };
    expect(
      fs
        .readdirSync('/proc/self/fd')
        .map(target)
        .filter((t) => t.startsWith(root)),
    ).toEqual([]);
  });

  /** fileSystemSync(fss) with each fsync of a file or folder recorded (and made). */
  function recordingFileSystemSync(fss: FileSystemSync, log: string[]): SyncOps {
    return {
      ...fileSystemSync(fss),
      file: async (p, fd) => {
        await realSync.file(p, fd);
        log.push(`file ${path.basename(path.dirname(p))}/${path.basename(p)}`);
      },
      dir: async (p) => {
        await realSync.dir(p);
        log.push(`dir ${path.basename(p)}`);
      },
    };
  }

  async function putAndVerify(dest: FolderDestination, groups: SyncGroups, album: string, names: string[]): Promise<string[]> {
    const files = await Promise.all(names.map((n, i) => put(dest, n, album, crypto.randomBytes(2000 + i))));
    const checks = files.map((f) => dest.verify([{ destId: f.destPath, destPath: f.destPath, item: f.item, facts, hashes: f.hashes, size: f.hashes.size }]));
    await groups.flush();
    return (await Promise.all(checks)).map(([r]) => r!.outcome);
  }

  it("with syncfs: a file in a folder on another file system than the root's is fsynced on its own, with its folder", async () => {
    const root = tmpDir();
    const log: string[] = [];
    let syncfsCalls = 0;
    // A syncfs binding that counts its calls, and a folder named Elsewhere reported on another device.
    const binding = {
      async: (_fd: number, done: (err: unknown, rc: number) => void) => {
        syncfsCalls++;
        setImmediate(() => done(null, 0));
      },
    };
    const fss = new FileSystemSync(
      () => binding,
      (d) => (path.basename(d) === 'Elsewhere' ? -1 : fs.statSync(d).dev),
    );
    const groups = new SyncGroups(recordingFileSystemSync(fss, log), { maxFiles: 100, maxBytes: 1 << 30, maxWaitMs: 60_000 });
    const dest = new FolderDestination(root, 'album', groups);
    const files = [
      ...(await Promise.all(['a.jpg', 'b.jpg'].map((n, i) => put(dest, n, 'Home', crypto.randomBytes(100 + i))))),
      ...(await Promise.all(['c.jpg', 'd.jpg'].map((n, i) => put(dest, n, 'Elsewhere', crypto.randomBytes(200 + i))))),
    ];
    const checks = files.map((f) => dest.verify([{ destId: f.destPath, destPath: f.destPath, item: f.item, facts, hashes: f.hashes, size: f.hashes.size }]));
    await groups.flush();
    expect((await Promise.all(checks)).map(([r]) => r!.outcome)).toEqual(['verified', 'verified', 'verified', 'verified']);
    // One syncfs for the group covers Home; Elsewhere's files and folder are fsynced as without syncfs.
    expect(syncfsCalls).toBe(1);
    expect(log.sort()).toEqual(['dir Elsewhere', 'file Elsewhere/c.jpg', 'file Elsewhere/d.jpg']);
    await dest.close();
  });

  const shmDev = (() => {
    try {
      return fs.statSync('/dev/shm').dev;
    } catch {
      return null;
    }
  })();
  const probe = new FileSystemSync();
  const syncfsHere = probe.watch(os.tmpdir());
  probe.close();
  it.skipIf(!syncfsHere || shmDev === null || shmDev === fs.statSync(os.tmpdir()).dev)(
    'with the real syncfs: an album folder that is a symlink onto another file system (/dev/shm) gets an fsync a file and folder',
    async () => {
      const root = tmpDir();
      const elsewhere = fs.mkdtempSync('/dev/shm/gb-');
      try {
        fs.symlinkSync(elsewhere, path.join(root, 'Linked'));
        const log: string[] = [];
        const groups = new SyncGroups(recordingFileSystemSync(new FileSystemSync(), log), { maxFiles: 100, maxBytes: 1 << 30, maxWaitMs: 60_000 });
        const dest = new FolderDestination(root, 'album', groups);
        expect(await putAndVerify(dest, groups, 'Camera', ['a.jpg', 'b.jpg'])).toEqual(['verified', 'verified']);
        expect(await putAndVerify(dest, groups, 'Linked', ['c.jpg'])).toEqual(['verified']);
        // The root's file system took one syncfs a group and no fsync; the file on /dev/shm had its own.
        expect(log).toEqual(['file Linked/c.jpg', `dir Linked`]);
        expect(fs.readdirSync(elsewhere)).toEqual(['c.jpg']);
        await dest.close();
      } finally {
        fs.rmSync(elsewhere, { recursive: true, force: true });
      }
    },
  );

  it('a syncfs that reports an error fails its whole group, and every later group is synced file by file', async () => {
    const root = tmpDir();
    const log: string[] = [];
    let fileSystemCalls = 0;
    const ops: SyncOps = {
      file: async (p, fd) => {
        await realSync.file(p, fd);
        log.push(`file ${path.basename(p)}`);
      },
      dir: async (p) => {
        await realSync.dir(p);
        log.push(`dir ${path.basename(p)}`);
      },
      fileSystem: async () => {
        fileSystemCalls++;
        throw new Error('syncfs of the destination folder reported a write-back error');
      },
    };
    const groups = new SyncGroups(ops, { maxFiles: 100, maxBytes: 1 << 30, maxWaitMs: 60_000 });
    const dest = new FolderDestination(root, 'album', groups);
    // Both checks wait on their group's one sync (a check that came after its group failed would join a group of its own).
    const checkGroup = async (files: Array<Awaited<ReturnType<typeof put>>>) => {
      const checks = files.map((f) => dest.verify([{ destId: f.destPath, destPath: f.destPath, item: f.item, facts, hashes: f.hashes, size: f.hashes.size }]));
      await new Promise((r) => setTimeout(r, 100));
      await groups.flush();
      return (await Promise.all(checks)).map(([r]) => r!.outcome);
    };
    const first = [await put(dest, 'a.jpg', 'A', crypto.randomBytes(10)), await put(dest, 'b.jpg', 'A', crypto.randomBytes(11))];
    expect(await checkGroup(first)).toEqual(['error', 'error']);
    expect(log).toEqual([]);
    // The next group does not trust syncfs again: its files are fsynced through their own descriptors.
    const second = [await put(dest, 'c.jpg', 'A', crypto.randomBytes(12)), await put(dest, 'd.jpg', 'A', crypto.randomBytes(13))];
    expect(await checkGroup(second)).toEqual(['verified', 'verified']);
    expect(fileSystemCalls).toBe(1);
    expect(log.sort()).toEqual(['dir A', 'file c.jpg', 'file d.jpg']);
    await dest.close();
  });

  it('without syncfs here (no descriptor watched, or no binding) a group is synced file by file', async () => {
    const none = new FileSystemSync(() => null);
    expect(none.watch(tmpDir())).toBe(false);
    expect(await none.sync()).toBe(false);
    const root = tmpDir();
    const log: string[] = [];
    const ops = fileSystemSync(none);
    const groups = new SyncGroups(
      {
        ...ops,
        file: async (p, fd) => {
          await realSync.file(p, fd);
          log.push(`file ${path.basename(p)}`);
        },
      },
      { maxFiles: 1, maxBytes: 1 << 30, maxWaitMs: 60_000 },
    );
    const dest = new FolderDestination(root, 'album', groups);
    const f = await put(dest, 'a.jpg', 'A', crypto.randomBytes(10));
    const [r] = await dest.verify([{ destId: f.destPath, destPath: f.destPath, item: f.item, facts, hashes: f.hashes, size: f.hashes.size }]);
    expect(r!.outcome).toBe('verified');
    expect(log).toEqual(['file a.jpg']);
    await dest.close();
  });

  it('syncfs is used only on kernels whose syncfs reports write-back errors (Linux 5.8 and later)', () => {
    expect(kernelReportsSyncfsErrors('5.7.19')).toBe(false);
    expect(kernelReportsSyncfsErrors('4.19.0-26-amd64')).toBe(false);
    expect(kernelReportsSyncfsErrors('5.8.0')).toBe(true);
    expect(kernelReportsSyncfsErrors('6.18.44-fc-v1300')).toBe(true);
    expect(kernelReportsSyncfsErrors('10.0')).toBe(true);
    expect(kernelReportsSyncfsErrors('unknown')).toBe(false);
  });
});
