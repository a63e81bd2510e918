// syncfs(2): one call that puts everything written to a file system on disk, data and metadata
// (the names linked and renamed too: the file system commits its journal). The folder
// destination syncs a group of written files with it instead of an fsync a file, which made
// ext4 commit its journal and flush the disk's cache once a photo.
//
// Node has no binding for it. `sync --file-system PATH` (coreutils) calls it, but on a descriptor
// it opens itself: syncfs reports only the write-back errors seen since its descriptor was opened,
// so an error between our write and that open would go unreported. Here the descriptor is opened
// before the first file is written and kept for the run, and syncfs is called through koffi (an
// FFI whose prebuilt binary comes as an npm package: no compiler needed). koffi is an optional
// dependency: where it, the C library or syncfs is missing, callers fsync each file instead.
//
// Limit: only Linux 5.8 and later report write-back errors through syncfs (earlier kernels
// return 0 whatever happened), so on older kernels this is not used at all.
//
// syncfs syncs one file system: the one the watched descriptor is on. A folder under the
// destination may be on another (an album folder that is a mount point, or a symlink to another
// disk); covers() tells by the folder's st_dev against the root's, taken when the descriptor is
// opened, and a file in a folder it does not cover is fsynced on its own, with its folder.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

interface SyncFsFunction {
  async(fd: number, done: (err: unknown, rc: number) => void): void;
}

let bound: SyncFsFunction | null | undefined;

/** Whether this kernel's syncfs reports write-back errors (Linux 5.8, commit 735e4ae5ba28). */
export function kernelReportsSyncfsErrors(release: string = os.release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 8);
}

function syncfsFunction(): SyncFsFunction | null {
  if (bound !== undefined) return bound;
  bound = null;
  if (process.platform !== 'linux' || !kernelReportsSyncfsErrors()) return bound;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as { load(lib: string): { func(decl: string): SyncFsFunction } };
    bound = koffi.load('libc.so.6').func('int syncfs(int fd)');
  } catch {
    // No koffi (an optional dependency), or no glibc (musl names its C library otherwise): fsync a file.
  }
  return bound;
}

/**
 * Syncs the file system holding a folder. `watch` must be called before the first file whose
 * durability `sync` is to prove is written: the errors syncfs reports are those since then.
 */
export class FileSystemSync {
  private fd: number | null = null;
  private tried = false;
  /** st_dev of the watched folder: the file system a syncfs through `fd` syncs. */
  private dev: number | null = null;
  /** Whether a folder is on that file system, by path: a stat a folder, not one a file. */
  private readonly onRoot = new Map<string, boolean>();

  constructor(
    private readonly available: () => SyncFsFunction | null = syncfsFunction,
    private readonly deviceOf: (dir: string) => number = (dir) => fs.statSync(dir).dev,
  ) {}

  /** Opens the descriptor syncfs reports through (once). False when syncfs cannot be used here. */
  watch(dir: string): boolean {
    if (!this.tried) {
      this.tried = true;
      if (this.available()) {
        try {
          this.fd = fs.openSync(dir, 'r');
          this.dev = fs.fstatSync(this.fd).dev;
        } catch {
          if (this.fd !== null) fs.closeSync(this.fd);
          this.fd = null;
        }
      }
    }
    return this.fd !== null;
  }

  /**
   * Whether sync() puts a file in `dir` on disk: the folder is on the watched file system. Asked
   * once a folder (a folder mounted over later in the run is not seen). A folder that cannot be
   * stat'ed is not covered: its files are fsynced, which reports what is wrong with them.
   */
  covers(dir: string): boolean {
    if (this.dev === null) return false;
    let same = this.onRoot.get(dir);
    if (same === undefined) {
      try {
        same = this.deviceOf(dir) === this.dev;
      } catch {
        return false;
      }
      this.onRoot.set(dir, same);
    }
    return same;
  }

  /**
   * Resolves true once everything written to the file system since `watch` is on disk, false when
   * syncfs is not available (nothing was synced); rejects when syncfs reported an error.
   */
  sync(): Promise<boolean> {
    const call = this.available();
    const fd = this.fd;
    if (!call || fd === null) return Promise.resolve(false);
    return new Promise((resolve, reject) =>
      call.async(fd, (err, rc) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else if (rc !== 0) reject(new Error('syncfs of the destination folder reported a write-back error'));
        else resolve(true);
      }),
    );
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.dev = null;
  }
}
