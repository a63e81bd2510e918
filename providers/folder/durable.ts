// Group durability for the folder destination. An fsync per file, in the worker's path, made
// the copy wait on the disk once per photo. The safety rule only needs a file durable before
// its source is deleted, which happens after its verification is recorded: so files are
// written and linked without waiting, and a verification asks for durability instead. The
// files of a group are fsynced together (the file system commits their journal entries at
// once), then each folder that gained a name once; then every waiter of the group goes on.
//
// Where the system has it (Linux 5.8+, src/lib/syncfs.ts), a group is synced with one syncfs(2)
// of the destination's file system instead: an fsync a file made ext4 commit its journal and
// flush the disk's cache once a photo, and the run wait for it. syncfs commits the journal once,
// so the names linked in the group's folders are durable with it and no folder is fsynced.
// syncfs covers the destination root's file system only: a file whose folder is on another one
// (an album folder that is a mount point, or a symlink to another disk: told by the folder's
// st_dev) is fsynced on its own descriptor, and its folder, as without syncfs.
//
// A kill (or power cut) inside a group leaves items "uploaded", not verified: the next run
// reads them back again before anything is deleted.

import { closeQuietly, fsyncFd, openFd } from '../../src/lib/fd.ts';
import { FileSystemSync } from '../../src/lib/syncfs.ts';

export interface SyncOps {
  /** fsync a file's data and size; `open` is its descriptor still open from writing (closed here), if any. */
  file(path: string, open: number | undefined): Promise<void>;
  /** fsync a folder, so the names linked in it survive. */
  dir(path: string): Promise<void>;
  /** Called before each file is written under `root`: what fileSystem() reports errors since. */
  watch?(root: string): void;
  /**
   * Puts everything written on the file system on disk, data and names: true when done, false
   * when it cannot here (then each file and folder is synced); rejects when it reported an error.
   */
  fileSystem?(): Promise<boolean>;
  /** Whether fileSystem() covers a file in this folder (absent: it covers none). */
  covers?(dir: string): boolean;
  /** The run is over: let go of what watch() opened. */
  close?(): void;
}

export const realSync: SyncOps = {
  async file(path, open) {
    await syncFd(open ?? (await openFd(path, 'r')));
  },
  async dir(path) {
    await syncFd(await openFd(path, 'r'));
  },
};

/** realSync, but a whole group with one syncfs where the system has it. */
export function fileSystemSync(fss = new FileSystemSync()): SyncOps {
  return {
    ...realSync,
    watch: (root) => void fss.watch(root),
    fileSystem: () => fss.sync(),
    covers: (dir) => fss.covers(dir),
    close: () => fss.close(),
  };
}

/** fsyncs a descriptor, then closes it whatever happened. */
async function syncFd(fd: number): Promise<void> {
  try {
    await fsyncFd(fd);
  } finally {
    closeQuietly(fd);
  }
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

interface Entry {
  /** Its descriptor still open from writing, if any. */
  fd: number | undefined;
  /** The folder its name is linked in. */
  dir: string;
}

/** What is left to fsync one by one. */
interface PerFile {
  files: Array<[string, Entry]>;
  dirs: string[];
}

interface Group {
  files: Map<string, Entry>;
  /** Files added by their writer whose check has not come yet: remembered once synced. */
  written: Set<string>;
  dirs: Set<string>;
  bytes: number;
  waiters: Waiter[];
  timer: NodeJS.Timeout | null;
  /** Its wait is over, but a sync is running: it closes when that one ends (groups grow to the disk's pace). */
  due: boolean;
}

export interface GroupLimits {
  /** A group closes at this many files... */
  maxFiles: number;
  /** ...or this many bytes... */
  maxBytes: number;
  /** ...or this long after its first file. */
  maxWaitMs: number;
}

export const DEFAULT_LIMITS: GroupLimits = { maxFiles: 256, maxBytes: 64 * 1024 * 1024, maxWaitMs: 20 };

/**
 * Synced files whose check is not yet asked for are remembered up to this many, the oldest let
 * go first. A file whose check waited for its group is not remembered at all (kept for good, they
 * grew with the library: a 100,000-item copy held every path); this bound is for checks that
 * never come (an item that failed meanwhile). One let go and asked about later is synced again.
 */
export const MAX_UNCLAIMED = 10_000;

export class SyncGroups {
  private open: Group | null = null;
  /** Files written and linked but not yet in a synced group, by path: durable() finds them here. */
  private readonly groupOf = new Map<string, Group>();
  /**
   * Files this process wrote whose group has synced and whose durability nobody asked for yet:
   * the verification that comes after the sync finds its file here instead of syncing it again.
   * Each entry is taken once, so the set holds only the files between their sync and their check.
   */
  private readonly synced = new Set<string>();

  constructor(
    private readonly ops: SyncOps = realSync,
    private readonly limits: GroupLimits = DEFAULT_LIMITS,
  ) {}

  /**
   * Enters a written file in the open group. `handle`, if given, is its descriptor still open
   * from writing (closed by the sync); `dir` is the folder its name was linked into.
   */
  add(file: string, dir: string, bytes: number, handle?: number): void {
    this.enter(file, dir, bytes, handle).written.add(file);
  }

  private enter(file: string, dir: string, bytes: number, handle?: number): Group {
    this.synced.delete(file);
    const g = (this.open ??= { files: new Map(), written: new Set(), dirs: new Set(), bytes: 0, waiters: [], timer: null, due: false });
    const earlier = g.files.get(file)?.fd;
    if (earlier !== undefined && earlier !== handle) closeQuietly(earlier);
    g.files.set(file, { fd: handle, dir });
    g.dirs.add(dir);
    g.bytes += bytes;
    this.groupOf.set(file, g);
    if (g.files.size >= this.limits.maxFiles || g.bytes >= this.limits.maxBytes) this.close(g);
    else g.timer ??= setTimeout(() => this.waitOver(g), this.limits.maxWaitMs);
    return g;
  }

  /**
   * Resolves once `file` (and its name in `dir`) is on disk. A file this process did not write
   * (an earlier run's, checked again before its source is deleted) joins a group too.
   */
  durable(file: string, dir: string): Promise<void> {
    if (this.synced.delete(file)) return Promise.resolve();
    if (!this.groupOf.has(file)) this.enter(file, dir, 0);
    const g = this.groupOf.get(file)!;
    // Its check is waiting here: once synced, nobody will ask about it again.
    g.written.delete(file);
    return new Promise<void>((resolve, reject) => g.waiters.push({ resolve, reject }));
  }

  /** Synced files remembered for a check still to come (for tests: checks already made leave none behind). */
  get unclaimed(): number {
    return this.synced.size;
  }

  private remember(file: string): void {
    this.synced.add(file);
    if (this.synced.size > MAX_UNCLAIMED) this.synced.delete(this.synced.values().next().value!);
  }

  /** Syncs whatever is waiting, now (the end of a run). */
  async flush(): Promise<void> {
    if (this.open) this.close(this.open);
    await this.settled;
  }

  private settled: Promise<void> = Promise.resolve();
  private syncing = 0;

  /** A group's wait is over: it syncs now, or, while another sync runs, right after it. */
  private waitOver(g: Group): void {
    g.timer = null;
    if (this.syncing > 0) g.due = true;
    else this.close(g);
  }

  private close(g: Group): void {
    if (this.open === g) this.open = null;
    if (g.timer) clearTimeout(g.timer);
    g.timer = null;
    this.syncing++;
    // Groups sync one after another: a folder synced by a later group covers names an earlier
    // one linked, but never the other way round.
    this.settled = this.settled
      .then(() => this.sync(g))
      .finally(() => {
        this.syncing--;
        if (this.syncing === 0 && this.open?.due) this.close(this.open);
      });
  }

  private async sync(g: Group): Promise<void> {
    let failure: unknown = null;
    try {
      const left = await this.syncFileSystem(g);
      await Promise.all(left.files.map(([file, e]) => this.ops.file(file, e.fd)));
      await Promise.all(left.dirs.map((d) => this.ops.dir(d)));
    } catch (err) {
      failure = err;
    }
    for (const file of g.files.keys()) {
      if (this.groupOf.get(file) !== g) continue;
      this.groupOf.delete(file);
      if (!failure && g.written.has(file)) this.remember(file);
    }
    for (const w of g.waiters) failure ? w.reject(failure) : w.resolve();
  }

  /**
   * One syncfs for the whole group, where it can be used; returns what is left to fsync one by
   * one: the whole group without syncfs, else the files in folders on another file system than
   * the one synced, and those folders. A reported error fails the group. syncfs reports an error
   * once, to the first call after it, and the failed write may be a later group's (written before
   * this call, which writes back everything dirty): so from then on every group is synced file by
   * file, each through the descriptor it was written with, which still reports its own file's error.
   */
  private async syncFileSystem(g: Group): Promise<PerFile> {
    const all = (): PerFile => ({ files: [...g.files], dirs: [...g.dirs] });
    if (this.perFile || !this.ops.fileSystem) return all();
    let done = false;
    try {
      done = await this.ops.fileSystem();
    } catch (err) {
      this.perFile = true;
      for (const e of g.files.values()) if (e.fd !== undefined) closeQuietly(e.fd);
      throw err;
    }
    if (!done) return all();
    const dirs = [...g.dirs].filter((d) => !this.ops.covers?.(d));
    const files: PerFile['files'] = [];
    for (const entry of g.files) {
      if (dirs.includes(entry[1].dir)) files.push(entry);
      else if (entry[1].fd !== undefined) closeQuietly(entry[1].fd);
    }
    return { files, dirs };
  }

  /** A syncfs failed: it is not trusted again in this run. */
  private perFile = false;

  /** Before a file is written under `root`. */
  watch(root: string): void {
    this.ops.watch?.(root);
  }

  /** After the last flush: lets go of what watch() opened. */
  release(): void {
    this.ops.close?.();
  }
}
