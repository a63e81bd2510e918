// The sources of a chaos round, and the person who keeps changing them: files are added,
// edited in place, deleted, replaced under a reused name, and the source goes away for a while.
// Each source keeps a ledger of every content that ever existed there and notices, from the
// outside, which ones the tool deleted (a folder's file gone; the Xiaomi emulator's own
// deletion record), so the checks never rely on the tool's belief.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startXiaomiEmulator, type XiaomiEmulator } from '../../providers/xiaomi/emulator/server.ts';
import { readXiaomiEmulatorState } from '../../providers/xiaomi/emulator/store.ts';
import type { CommonFlags } from '../../src/emulator/kit.ts';
import { noiseJpeg, pick, pixelHash, sha1, type Random } from './content.ts';

export type ChangeKind = 'add' | 'edit' | 'delete' | 'replace' | 'unavailable';
export const CHANGE_KINDS: readonly ChangeKind[] = ['add', 'edit', 'delete', 'replace', 'unavailable'];

export interface LedgerEntry {
  sourceId: string;
  name: string;
  /** The person removed or overwrote it: it need not reach the destination. */
  removedByPerson: boolean;
  /** The tool deleted it at the source (seen from the outside). */
  deletedByTool: boolean;
  /** A later content took over its source id (a reused name or an edit). */
  superseded: boolean;
  /** The state may record either hash, as the destination needs. */
  sha256: string;
}

/** Every content (by SHA-1) that ever existed at the source. */
export class Ledger {
  readonly contents = new Map<string, LedgerEntry>();
  /** SHA-1 of decoded pixels -> SHA-1 of the bytes. */
  readonly pixels = new Map<string, string>();
  async note(bytes: Buffer, sourceId: string, name: string): Promise<void> {
    const hash = sha1(bytes);
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    this.contents.set(hash, { sourceId, name, removedByPerson: false, deletedByTool: false, superseded: false, sha256 });
    const px = await pixelHash(bytes);
    if (px) this.pixels.set(px, hash);
  }
  removedByPerson(hash: string, superseded = false): void {
    const e = this.contents.get(hash);
    if (e && !e.deletedByTool) e.removedByPerson = true;
    if (e && superseded) e.superseded = true;
  }
  deletedByTool(hash: string): void {
    const e = this.contents.get(hash);
    if (e) e.deletedByTool = true;
  }
}

export interface SourceWorld {
  readonly kind: 'folder' | 'xiaomi';
  readonly spec: string;
  readonly ledger: Ledger;
  readonly changes: Record<ChangeKind, number>;
  /** Oddities seen from the outside that are not the person's doing (the source modified by the tool...). */
  readonly anomalies: string[];
  env(): Record<string, string>;
  /** Notes what the tool deleted since the last look; returns source id -> SHA-1 of what is there now. */
  reconcile(): Map<string, string>;
  /** One change by the person; `during` is true while a run is going on. */
  change(kind: ChangeKind, rand: Random): Promise<void>;
  close(): Promise<void>;
}

const ALBUMS = ['Camera', 'Trip 2024', 'Screenshots'];

function counters(): Record<ChangeKind, number> {
  return { add: 0, edit: 0, delete: 0, replace: 0, unavailable: 0 };
}

// ---------------------------------------------------------------- folder

export class FolderWorld implements SourceWorld {
  readonly kind = 'folder';
  readonly ledger = new Ledger();
  readonly changes = counters();
  readonly anomalies: string[] = [];
  /** What the source holds if the tool deleted nothing: relative path -> SHA-1. */
  private expected = new Map<string, string>();
  private serial = 0;
  private away = false;

  constructor(readonly root: string) {}

  get spec(): string {
    return `folder:${this.root}`;
  }
  env(): Record<string, string> {
    return {};
  }

  async seed(n: number, rand: Random): Promise<void> {
    fs.mkdirSync(this.root, { recursive: true });
    for (let i = 0; i < n; i++) await this.add(rand);
  }

  private newName(rand: Random): string {
    return `${pick(rand, ALBUMS)}/IMG_${String(++this.serial).padStart(4, '0')}.jpg`;
  }

  private async add(rand: Random, rel = this.newName(rand)): Promise<void> {
    const bytes = await noiseJpeg(rand);
    fs.mkdirSync(path.dirname(path.join(this.root, rel)), { recursive: true });
    fs.writeFileSync(path.join(this.root, rel), bytes);
    this.expected.set(rel, sha1(bytes));
    await this.ledger.note(bytes, rel, path.basename(rel));
  }

  reconcile(): Map<string, string> {
    if (this.away) throw new Error('reconcile while the source is away');
    const seen = new Map<string, string>();
    // Hidden files are kept too: a file the tool set aside while deleting it is still here.
    const hidden = new Set<string>();
    const walk = (rel: string): void => {
      for (const d of fs.readdirSync(path.join(this.root, rel), { withFileTypes: true })) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        if (d.isDirectory()) walk(r);
        else if (d.isFile() && d.name.startsWith('.')) hidden.add(sha1(fs.readFileSync(path.join(this.root, r))));
        else if (d.isFile()) seen.set(r, sha1(fs.readFileSync(path.join(this.root, r))));
      }
    };
    walk('');
    for (const [rel, hash] of this.expected) {
      const now = seen.get(rel);
      if (now === undefined && hidden.has(hash)) continue;
      if (now === undefined) {
        this.ledger.deletedByTool(hash);
        this.expected.delete(rel);
      } else if (now !== hash) this.anomalies.push(`${rel} at the source changed to bytes nobody wrote there`);
    }
    for (const rel of seen.keys()) if (!this.expected.has(rel)) this.anomalies.push(`${rel} appeared at the source`);
    return new Map(this.expected);
  }

  async change(kind: ChangeKind, rand: Random): Promise<void> {
    if (this.away) return;
    if (kind === 'add') await this.add(rand);
    else if (kind === 'unavailable') await this.goAway(200 + Math.floor(rand() * 1500));
    else {
      const rels = [...this.expected.keys()].filter((r) => fs.existsSync(path.join(this.root, r)));
      if (rels.length === 0) return;
      const rel = pick(rand, rels);
      const old = this.expected.get(rel)!;
      const file = path.join(this.root, rel);
      if (kind === 'delete') {
        try {
          fs.unlinkSync(file);
        } catch {
          return; // the tool got there first; the next reconcile sees it
        }
        this.ledger.removedByPerson(old);
        this.expected.delete(rel);
      } else if (kind === 'edit') {
        // In place: same inode, truncated and rewritten, as an editor that saves over the file.
        const bytes = await noiseJpeg(rand);
        let fd: number;
        try {
          fd = fs.openSync(file, 'r+');
        } catch {
          return;
        }
        try {
          fs.ftruncateSync(fd, 0);
          fs.writeSync(fd, bytes, 0, bytes.length, 0);
          const unlinked = fs.fstatSync(fd).nlink === 0;
          this.ledger.removedByPerson(old, true);
          if (unlinked) {
            // The tool unlinked the file while it was being rewritten: the old bytes were its to
            // delete; the new ones went into a deleted file, the person's own race.
            this.ledger.deletedByTool(old);
            this.expected.delete(rel);
          } else {
            this.expected.set(rel, sha1(bytes));
            await this.ledger.note(bytes, rel, path.basename(rel));
          }
        } finally {
          fs.closeSync(fd);
        }
      } else {
        // Replaced under the same name: a new file (new inode, other size) renamed over the old one.
        const bytes = await noiseJpeg(rand);
        const tmp = path.join(path.dirname(file), `.chaos-${process.pid}.tmp`);
        fs.writeFileSync(tmp, bytes);
        fs.renameSync(tmp, file);
        this.ledger.removedByPerson(old, true);
        this.expected.set(rel, sha1(bytes));
        await this.ledger.note(bytes, rel, path.basename(rel));
      }
    }
    this.changes[kind]++;
  }

  /** The folder goes away (an unplugged drive) and comes back. */
  private async goAway(ms: number): Promise<void> {
    const aside = `${this.root}.away`;
    fs.renameSync(this.root, aside);
    this.away = true;
    await new Promise((r) => setTimeout(r, ms));
    fs.renameSync(aside, this.root);
    this.away = false;
  }

  async close(): Promise<void> {
    while (this.away) await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- xiaomi

interface XiaomiState {
  deleted: Record<string, { sha1: string; fileName: string }>;
  counters: Record<string, number>;
}

/**
 * The i.mi.com emulator serving a seed folder. The person's changes happen while the service is
 * down (the emulator reads its seed when it starts): a restart in the middle of a run is the
 * service going away for a moment and coming back with the changes.
 */
export class XiaomiWorld implements SourceWorld {
  readonly kind = 'xiaomi';
  readonly spec = 'xiaomi';
  readonly ledger = new Ledger();
  readonly changes = counters();
  readonly anomalies: string[] = [];
  private emu: XiaomiEmulator | null = null;
  private port = 0;
  /** Live items as the person sees them: emulator id -> { rel, sha1 }. */
  private live = new Map<string, { rel: string; hash: string }>();
  private serial = 0;
  private restarting: Promise<void> | null = null;

  constructor(
    readonly seedDir: string,
    readonly data: string,
    private readonly flags: Omit<CommonFlags, 'port' | 'data'>,
    private readonly extra: { faultWrongSha1: number; faultExpiredLink: number },
  ) {}

  async seed(n: number, rand: Random): Promise<void> {
    fs.mkdirSync(this.seedDir, { recursive: true });
    for (let i = 0; i < n; i++) await this.write(rand, `${pick(rand, ALBUMS)}/IMG_${String(++this.serial).padStart(4, '0')}.jpg`);
    await this.start();
  }

  private async write(rand: Random, rel: string): Promise<string> {
    const bytes = await noiseJpeg(rand);
    fs.mkdirSync(path.dirname(path.join(this.seedDir, rel)), { recursive: true });
    fs.writeFileSync(path.join(this.seedDir, rel), bytes);
    return sha1(bytes);
  }

  private async start(): Promise<void> {
    this.emu = await startXiaomiEmulator({ common: { ...this.flags, port: this.port, data: this.data }, seed: this.seedDir, ...this.extra });
    this.port = this.emu.port;
    const deleted = this.state().deleted;
    for (const m of this.emu.manifest()) {
      if (deleted[m.id] || !m.file) continue;
      const rel = path.relative(this.seedDir, m.file).split(path.sep).join('/');
      if (!this.live.has(m.id) || this.live.get(m.id)!.hash !== m.sha1) await this.ledger.note(fs.readFileSync(m.file), m.id, m.fileName);
      this.live.set(m.id, { rel, hash: m.sha1 });
    }
  }

  private state(): XiaomiState {
    return readXiaomiEmulatorState(this.data);
  }

  env(): Record<string, string> {
    return { ...this.emu!.env, XIAOMI_DELETE_PAUSE_MS: '0' };
  }

  /** Injected expired links (the emulator counts them with the real expiries, which are rare here). */
  expiredLinks(): number {
    return this.state().counters.expiredLinks ?? 0;
  }

  reconcile(): Map<string, string> {
    const deleted = this.state().deleted;
    for (const [id, { hash }] of this.live) {
      const d = deleted[id];
      if (!d) continue;
      if (d.sha1 !== hash) this.anomalies.push(`item ${id} was deleted with SHA-1 ${d.sha1}, but it held ${hash}`);
      this.ledger.deletedByTool(d.sha1);
      this.live.delete(id);
    }
    return new Map([...this.live].map(([id, v]) => [id, v.hash]));
  }

  async change(kind: ChangeKind, rand: Random): Promise<void> {
    if (this.restarting) return;
    this.restarting = this.restartWith(kind, rand);
    try {
      await this.restarting;
    } finally {
      this.restarting = null;
    }
  }

  /** Takes the service down, makes the change in its seed, and brings it back on the same port. */
  private async restartWith(kind: ChangeKind, rand: Random): Promise<void> {
    await this.emu!.close();
    this.reconcile();
    const ids = [...this.live.keys()];
    if (kind === 'unavailable') await new Promise((r) => setTimeout(r, 200 + Math.floor(rand() * 1500)));
    else if (kind === 'add') await this.write(rand, `${pick(rand, ALBUMS)}/IMG_${String(++this.serial).padStart(4, '0')}.jpg`);
    else if (ids.length > 0) {
      const id = pick(rand, ids);
      const { rel, hash } = this.live.get(id)!;
      if (kind === 'delete') {
        fs.unlinkSync(path.join(this.seedDir, rel));
        this.ledger.removedByPerson(hash);
        this.live.delete(id);
      } else {
        // An edit keeps the item id with new bytes; a replacement reuses the name (the emulator
        // derives ids from names, so it is the same id too, with another size).
        await this.write(rand, rel);
        this.ledger.removedByPerson(hash, true);
      }
    }
    await this.start();
    this.changes[kind]++;
  }

  async close(): Promise<void> {
    while (this.restarting) await this.restarting.catch(() => undefined);
    await this.emu?.close();
  }
}
