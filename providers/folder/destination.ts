// A local folder as a destination. Staging writes a hidden temp file beside its target;
// committing links it into place (link(2) never overwrites, so a name taken by other bytes is
// never clobbered); verification reads the file back and then waits until the file and its
// name are on disk (durable.ts: files are fsynced in groups, off the path of the next file).
// So an item is verified, and its source may be deleted, only once its copy is durable.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type {
  CapacityInfo,
  CommitRequest,
  CommitResult,
  Destination,
  ItemFacts,
  SourceItem,
  Staged,
  UploadInput,
  VerifyRequest,
  VerifyResult,
} from '../types.ts';
import { RetryableError, StopRunError } from '../types.ts';
import { SHA256_ONLY, hashFile, hashFileLater } from '../../src/hash/multihash.ts';
import { numberedName, safeComponent } from './names.ts';
import { SyncGroups, fileSystemSync } from './durable.ts';
import { closeQuietly, createFd, writeAllFd } from '../../src/lib/fd.ts';

interface Handle {
  tmp: string;
  dir: string;
  size: number;
}

function fsError(err: unknown, what: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new StopRunError('destination-full', `the destination disk is full (${what})`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new StopRunError('config', `the destination folder is not writable (${what}: ${code})`);
  if (code === 'ENOTDIR' || code === 'EEXIST') return new StopRunError('config', `the destination is not a folder (${what}: ${code})`);
  return err instanceof Error ? err : new Error(String(err));
}

export class FolderDestination implements Destination {
  readonly kind = 'folder';
  readonly identity: string;
  readonly localPath: string;
  /** A rerun's link finds the same bytes under the name and reports them as already there. */
  readonly idempotentCommit = true;
  /** Its verification is a read-back from this disk: the engine asks right after the commit. */
  readonly verifiesLocally = true;
  /** A file is compared by its SHA-256 (and size): no other hash is computed for it. */
  readonly hashes = [] as const;
  /**
   * One commit and one verification per call, but 64 verifications at once: each waits for its
   * file's fsync group, so a group gathers many files. Not more: each one reading back holds two 1 MiB buffers.
   */
  readonly limits = { verifyConcurrency: 64 };
  private readonly root: string;
  /** Written temp files still open, by path: their descriptor is fsynced (and closed) with their group. */
  private readonly writing = new Map<string, number>();
  /** Folders known to exist, so an item does not pay a mkdir. */
  private readonly made = new Set<string>();
  readonly groups: SyncGroups;

  constructor(
    root: string,
    private readonly layout: 'album' | 'date',
    groups = new SyncGroups(fileSystemSync()),
  ) {
    this.groups = groups;
    this.root = path.resolve(root);
    this.localPath = this.root;
    this.identity = `folder:${this.root}`;
  }

  async prepareContainer(item: SourceItem, facts: ItemFacts): Promise<string> {
    let rel: string;
    if (this.layout === 'date') {
      // The wall clock where it was taken (the time keeps its offset): a photo from New Year's
      // Eve at 23:30 belongs in December, whatever the zone of the machine doing the move.
      const m = /^(\d{4})-(\d{2})-\d{2}T/.exec(facts.captureTime ?? '');
      rel = m ? `${m[1]}/${m[2]}` : 'undated';
    } else {
      rel = item.albumName
        ? item.albumName
            .split('/')
            .map((c) => safeComponent(c))
            .join('/')
        : '';
    }
    if (this.made.has(rel)) return rel;
    try {
      await fsp.mkdir(path.join(this.root, rel), { recursive: true });
      this.made.add(rel);
    } catch (err) {
      // A recursive mkdir on a read-only mount says ENOENT; ask the root itself what is wrong.
      await fsp.access(this.root, fs.constants.W_OK).catch((e) => {
        throw fsError(e, `the folder ${this.root}`);
      });
      throw fsError(err, `creating ${rel || '.'}`);
    }
    return rel;
  }

  async upload(input: UploadInput): Promise<Staged> {
    const dir = path.join(this.root, input.container);
    // A temp file left by a killed attempt is useless (a local write restarts from zero). Its
    // name comes from the session's key, the same on every attempt, so it is found without a
    // commit to the state first (that commit, one an item, was the state store's largest cost).
    // One saved by an older version of this tool is found where its session says.
    const previous = input.session.load<{ tmp: string }>();
    if (previous?.tmp) await fsp.rm(previous.tmp, { force: true });
    const tmp = path.join(dir, `.gallery-bridge-${input.session.key}.part`);
    // An earlier attempt in this process whose commit failed may still hold it open.
    const stale = this.writing.get(tmp);
    this.writing.delete(tmp);
    if (stale !== undefined) closeQuietly(stale);
    this.groups.watch(this.root);
    let fd: number;
    try {
      fd = await createTemp(tmp);
    } catch (err) {
      // The folder went away under the run: make it again next attempt.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.made.delete(input.container);
      throw fsError(err, `writing into ${input.container || '.'}`);
    }
    let written = 0;
    try {
      for await (const chunk of input.body as AsyncIterable<Buffer>) {
        input.signal.throwIfAborted();
        await writeAllFd(fd, chunk);
        written += chunk.length;
      }
      // The file's time is the capture time: file browsers and photo apps sort by it.
      const taken = input.facts.captureTime ? new Date(input.facts.captureTime) : null;
      if (taken && !Number.isNaN(taken.getTime())) fs.futimesSync(fd, taken, taken);
    } catch (err) {
      closeQuietly(fd);
      await fsp.rm(tmp, { force: true });
      throw fsError(err, `writing ${input.name}`);
    }
    // Not fsynced here: the descriptor stays open until the file's group is synced (see verify).
    this.writing.set(tmp, fd);
    const handle: Handle = { tmp, dir, size: written };
    return { handle };
  }

  canCommitLater(handle: unknown): boolean {
    const h = handle as Handle;
    try {
      return fs.statSync(h.tmp).size === h.size;
    } catch {
      return false;
    }
  }

  async commit(requests: CommitRequest[]): Promise<CommitResult[]> {
    const out: CommitResult[] = [];
    for (const r of requests) {
      try {
        out.push(await this.commitOne(r));
      } catch (err) {
        out.push({ outcome: 'error', error: fsError(err, `committing ${r.input.name}`) });
      }
    }
    return out;
  }

  private async commitOne(r: CommitRequest): Promise<CommitResult> {
    const h = r.staged.handle as Handle;
    const base = safeComponent(r.input.name);
    for (let n = 1; n < 10_000; n++) {
      const name = n === 1 ? base : numberedName(base, n);
      const target = path.join(h.dir, name);
      const rel = path.relative(this.root, target);
      try {
        // Directly, not through the pool: a name in a folder, microseconds (see src/lib/fd.ts).
        fs.linkSync(h.tmp, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // The name is taken. The same bytes mean this item is already here (a rerun, or a copy).
        const existing = await hashFile(target, SHA256_ONLY).catch(() => null);
        if (existing && existing.sha256 === r.hashes.sha256 && existing.size === r.hashes.size) {
          await this.discard(h.tmp);
          // Evidence that may let the source go: the copy already there must be on disk too.
          await this.groups.durable(target, h.dir);
          return {
            outcome: 'duplicate',
            destId: rel,
            destPath: rel,
            evidence: { level: 'bytes', detail: `${rel} already holds the same bytes (SHA-256 ${r.hashes.sha256.slice(0, 16)}…)` },
          };
        }
        continue;
      }
      const fd = this.writing.get(h.tmp);
      this.writing.delete(h.tmp);
      // The name is linked: a temp name that cannot be removed is only a hidden leftover.
      try {
        removeIfThere(h.tmp);
      } catch {
        // See above.
      }
      this.groups.add(target, h.dir, h.size, fd);
      return { outcome: 'created', destId: rel, destPath: rel };
    }
    throw new Error(`no free name for ${base}`);
  }

  async abort(staged: Staged): Promise<void> {
    await this.discard((staged.handle as Handle).tmp);
  }

  private async discard(tmp: string): Promise<void> {
    const fd = this.writing.get(tmp);
    this.writing.delete(tmp);
    if (fd !== undefined) closeQuietly(fd);
    await fsp.rm(tmp, { force: true });
  }

  async close(): Promise<void> {
    await this.groups.flush();
    for (const fd of this.writing.values()) closeQuietly(fd);
    this.writing.clear();
    this.groups.release();
  }

  async verify(requests: VerifyRequest[]): Promise<VerifyResult[]> {
    const out: VerifyResult[] = [];
    for (const r of requests) {
      const file = path.join(this.root, r.destPath ?? r.destId);
      try {
        const later = await hashFileLater(file, SHA256_ONLY, r.hashes.size);
        // Recorded as verified only once the file and its name are durable: the sync is waited
        // for while the bytes read back are hashed (off the run's thread for a photo).
        try {
          await this.groups.durable(file, path.dirname(file));
        } catch (err) {
          later.drop();
          throw err;
        }
        const h = await later.take();
        if (h.size === r.hashes.size && h.sha256 === r.hashes.sha256) {
          out.push({ outcome: 'verified', evidence: { level: 'bytes', detail: `read back ${h.size} bytes; SHA-256 equals the bytes read from the source` } });
        } else {
          out.push({ outcome: 'mismatch', reason: `the file at the destination differs from the source (size ${h.size} vs ${r.hashes.size})` });
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        out.push(
          code === 'ENOENT'
            ? { outcome: 'mismatch', reason: 'the file is missing at the destination' }
            : { outcome: 'error', error: new RetryableError(`cannot read back or make durable: ${code ?? (err as Error).message}`) },
        );
      }
    }
    return out;
  }

  async capacity(): Promise<CapacityInfo> {
    try {
      // Planning writes nothing: ask the nearest folder that exists.
      let dir = this.root;
      while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
      const s = await fsp.statfs(dir);
      return { remainingBytes: s.bavail * s.bsize };
    } catch {
      return { remainingBytes: null };
    }
  }
}

/**
 * Creates the temp file, removing one left by a killed attempt first. Tried before any unlink:
 * an unlink that finds nothing (every item, nearly always) cost a failed syscall and an Error.
 */
async function createTemp(tmp: string): Promise<number> {
  try {
    return await createFd(tmp, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  removeIfThere(tmp);
  return createFd(tmp, 'wx', 0o644);
}

function removeIfThere(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, `removing ${path.basename(file)}`);
  }
}
