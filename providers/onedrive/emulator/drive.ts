// The drive model: folders and files by path (case-insensitive), Graph's name and path rules,
// the quota, and putting a finished upload in place with its hashes.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { GraphError } from './errors.ts';
import { nowIso, rid } from './ids.ts';
import type { EmulatorMetrics } from './metrics.ts';
import { MAX_PATH, RESERVED_CHARS, RESERVED_NAMES, type OneDriveEmulatorOptions } from './options.ts';
import { EmulatorQuickXor } from './quickxor.ts';
import type { ItemMeta, Store } from './store.ts';

function folderMeta(id: string, drive: string, p: string, name: string, parentId: string | null): ItemMeta {
  const t = nowIso();
  return {
    id,
    drive,
    path: p,
    name,
    parentId,
    folder: true,
    size: 0,
    createdDateTime: t,
    lastModifiedDateTime: t,
    fsCreated: t,
    fsModified: t,
    quickXorHash: null,
    hashReadyAt: 0,
    eTag: rid(8),
  };
}

type StoredHashes = { quickXor: string; sha1: string; sha256: string };

/** QuickXorHash (base64) and the upper-case hex SHA-1 and SHA-256 Personal reports, fed the stored bytes. */
class StoredHasher {
  private readonly quickXor = new EmulatorQuickXor();
  private readonly sha1 = crypto.createHash('sha1');
  private readonly sha256 = crypto.createHash('sha256');

  update(bytes: Buffer): void {
    this.quickXor.update(bytes);
    this.sha1.update(bytes);
    this.sha256.update(bytes);
  }

  digests(): StoredHashes {
    // Personal reports these upper-case hex (sha1Hash is deprecated, sha256Hash rarely present).
    return { quickXor: this.quickXor.digestBase64(), sha1: this.sha1.digest('hex').toUpperCase(), sha256: this.sha256.digest('hex').toUpperCase() };
  }
}

function hashStoredFile(disk: string): StoredHashes {
  const hasher = new StoredHasher();
  const fd = fs.openSync(disk, 'r');
  try {
    // Sized to the file (up to 8 MiB): a fresh 8 MiB buffer for every small photo kept the
    // emulator's thread in the garbage collector a fifth of the time.
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(8 * 1024 * 1024, fs.fstatSync(fd).size)));
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      hasher.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hasher.digests();
}

/** The hashes of bytes just written whole: the same bytes the file holds, without reading them back. */
function hashWrittenBytes(bytes: Buffer): StoredHashes {
  const hasher = new StoredHasher();
  hasher.update(bytes);
  return hasher.digests();
}

export class Drive {
  constructor(
    private readonly opts: OneDriveEmulatorOptions,
    readonly store: Store,
    private readonly metrics: EmulatorMetrics,
  ) {}

  /** The drive's root folder, made on first use. */
  root(drive: string): ItemMeta {
    const id = this.store.byPath.get(this.store.key(drive, ''));
    if (id) return this.store.items.get(id)!;
    const prefix = drive === 'me' ? 'ME' : crypto.createHash('sha1').update(drive).digest('hex').slice(0, 8).toUpperCase();
    const m = folderMeta(`${prefix}!root`, drive, '', 'root', null);
    this.store.putItem(m);
    fs.mkdirSync(this.store.diskPath(drive, ''), { recursive: true });
    return m;
  }

  /** The drive's id: the part of its items' ids before the '!'. */
  driveId(drive: string): string {
    return this.root(drive).id.split('!')[0]!;
  }

  lookup(drive: string, p: string): ItemMeta | undefined {
    if (p === '' || p === '/') return this.root(drive);
    const id = this.store.byPath.get(this.store.key(drive, p));
    return id ? this.store.items.get(id) : undefined;
  }

  children(parent: ItemMeta): ItemMeta[] {
    return [...this.store.items.values()].filter((m) => m.parentId === parent.id);
  }

  used(drive: string): number {
    let n = 0;
    for (const m of this.store.items.values()) if (m.drive === drive && !m.folder) n += m.size;
    return n;
  }

  quotaTotal(): number {
    return this.opts.quotaBytes > 0 ? this.opts.quotaBytes : 1024 ** 4;
  }

  validateName(name: string): void {
    if (!name || name === '.' || name === '..') throw new GraphError(400, 'invalidRequest', 'The name is empty or invalid.');
    if (RESERVED_CHARS.test(name)) throw new GraphError(400, 'invalidRequest', `The name "${name}" contains characters that are not allowed.`);
    if (/^\s|\s$/.test(name) || name.endsWith('.'))
      throw new GraphError(400, 'invalidRequest', `The name "${name}" has a leading or trailing space or a trailing dot.`);
    if (RESERVED_NAMES.test(name) || name.startsWith('~$') || name.toLowerCase().includes('_vti_'))
      throw new GraphError(400, 'invalidRequest', `The name "${name}" is reserved.`);
  }

  /** Business: the SharePoint site path of a drive's library, counted in the 400-character limit. */
  sitePath(drive: string): string {
    if (this.opts.flavor !== 'business') return '';
    const upn = drive === 'me' ? this.opts.upn : drive;
    return `personal/${upn.replace(/[@.]/g, '_').toLowerCase()}/Documents`;
  }

  validatePath(drive: string, p: string): void {
    for (const seg of p.split('/').filter(Boolean)) this.validateName(seg);
    const full = `${this.sitePath(drive)}${p}`;
    // errors.md: the top-level code is invalidRequest; the detail sits in innererror.
    if (full.length >= MAX_PATH) throw new GraphError(400, 'invalidRequest', 'The path is too long.', {}, 'pathIsTooLong');
  }

  /** Creates the folders on the way to p (as Graph does for path-addressed uploads). */
  ensureFolders(drive: string, p: string): ItemMeta {
    let cur = this.root(drive);
    let sofar = '';
    for (const seg of p.split('/').filter(Boolean)) {
      sofar += `/${seg}`;
      const found = this.lookup(drive, sofar);
      if (found) {
        if (!found.folder) throw new GraphError(409, 'nameAlreadyExists', `A file named "${seg}" is in the way of the folder path.`);
        cur = found;
        sofar = found.path;
        continue;
      }
      cur = this.createFolder(drive, cur, seg);
      sofar = cur.path;
    }
    return cur;
  }

  createFolder(drive: string, parent: ItemMeta, name: string): ItemMeta {
    this.validateName(name);
    const m = folderMeta(`${this.driveId(drive)}!${rid(6)}`, drive, `${parent.path}/${name}`, name, parent.id);
    this.validatePath(drive, m.path);
    fs.mkdirSync(this.store.diskPath(drive, m.path), { recursive: true });
    this.store.putItem(m);
    return m;
  }

  freeName(drive: string, parent: ItemMeta, name: string): string {
    const dot = name.lastIndexOf('.');
    const stem = dot > 0 ? name.slice(0, dot) : name;
    const ext = dot > 0 ? name.slice(dot) : '';
    for (let n = 1; ; n++) {
      const candidate = `${stem} ${n}${ext}`;
      if (!this.lookup(drive, `${parent.path}/${candidate}`)) return candidate;
    }
  }

  /**
   * Puts a finished file in place: conflict rules, quota, bytes moved to DATA/<drive>/<path>,
   * QuickXorHash computed from the stored bytes.
   */
  placeFile(
    drive: string,
    targetPath: string,
    conflict: 'fail' | 'replace' | 'rename',
    source: { file: string } | { bytes: Buffer },
    size: number,
    fsInfo: { created: string | null; modified: string | null; description?: string | null },
  ): { item: ItemMeta; created: boolean } {
    const parentPath = targetPath.slice(0, targetPath.lastIndexOf('/'));
    let name = targetPath.slice(targetPath.lastIndexOf('/') + 1);
    this.validatePath(drive, targetPath);
    const existing = this.lookup(drive, targetPath);
    let replacing: ItemMeta | undefined;
    if (existing) {
      if (conflict === 'fail' || existing.folder) throw new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists.');
      if (conflict === 'rename') {
        const parent = this.lookup(drive, parentPath)!;
        name = this.freeName(drive, parent, name);
      } else replacing = existing;
    }
    const freed = replacing ? replacing.size : 0;
    if (this.used(drive) - freed + size > this.quotaTotal()) throw new GraphError(507, 'quotaLimitReached', 'Insufficient Storage: the drive is full.');
    const parent = this.ensureFolders(drive, parentPath);
    const finalPath = `${parent.path}/${name}`;
    const disk = this.store.diskPath(drive, finalPath);
    let hashes: StoredHashes;
    if ('file' in source) {
      fs.renameSync(source.file, disk);
      hashes = hashStoredFile(disk);
    } else {
      fs.writeFileSync(disk, source.bytes);
      hashes = hashWrittenBytes(source.bytes);
    }
    const t = Date.now();
    const m: ItemMeta = {
      id: replacing?.id ?? `${this.driveId(drive)}!${rid(6)}`,
      drive,
      path: finalPath,
      name,
      parentId: parent.id,
      folder: false,
      size,
      createdDateTime: replacing?.createdDateTime ?? nowIso(t),
      lastModifiedDateTime: nowIso(t),
      fsCreated: fsInfo.created ?? nowIso(t),
      fsModified: fsInfo.modified ?? nowIso(t),
      description: fsInfo.description ?? null,
      quickXorHash: hashes.quickXor,
      sha1Hash: hashes.sha1,
      sha256Hash: hashes.sha256,
      hashReadyAt: t + this.opts.hashDelayMs,
      eTag: rid(8),
    };
    this.store.putItem(m);
    this.metrics.filesCreated++;
    return { item: m, created: !replacing };
  }

  deleteItem(m: ItemMeta): void {
    if (m.parentId === null) throw new GraphError(403, 'accessDenied', 'The root cannot be deleted.');
    for (const c of this.children(m)) this.deleteItem(c);
    this.store.removeItem(m);
    fs.rmSync(this.store.diskPath(m.drive, m.path), { recursive: true, force: true });
  }

  /** Renames a file within its folder; folders and moves are not emulated. */
  renameFile(drive: string, target: ItemMeta, name: string): void {
    if (target.folder || target.parentId === null) throw new GraphError(501, 'notSupported', 'The emulator renames files only.');
    this.validateName(name);
    const parent = this.store.items.get(target.parentId)!;
    const newPath = `${parent.path}/${name}`;
    this.validatePath(drive, newPath);
    const other = this.lookup(drive, newPath);
    if (other && other.id !== target.id) throw new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists.');
    fs.renameSync(this.store.diskPath(drive, target.path), this.store.diskPath(drive, newPath));
    this.store.byPath.delete(this.store.key(drive, target.path));
    target.path = newPath;
    target.name = name;
    this.store.byPath.set(this.store.key(drive, newPath), target.id);
  }
}
