// What the OneDrive emulator keeps: every stored file is a plain file at DATA/<drive>/<path>
// ("me" for the signed-in drive, the user id for /users/{id}/drive); item metadata, unfinished
// upload sessions and issued tokens live under DATA/.emulator/, so all of it survives a restart.
//
// Item metadata and sessions go to one append-only journal (journal.ndjson, a JSON line per
// change, replayed at start), not a file each: creating two small files and removing one for
// every photo was half of the emulator's thread time serving small photos, and that thread's
// waits made every request take longer than the latency asked. A line is written with one
// write(2) before the answer goes out, so a killed emulator keeps all it answered for.

import fs from 'node:fs';
import path from 'node:path';

export interface ItemMeta {
  id: string;
  drive: string;
  /** '' for the root, else '/a/b/name' in the case it was created with. */
  path: string;
  name: string;
  parentId: string | null;
  folder: boolean;
  size: number;
  createdDateTime: string;
  lastModifiedDateTime: string;
  fsCreated: string;
  fsModified: string;
  /** driveItem.description (OneDrive personal): set through the upload session's item. */
  description?: string | null;
  quickXorHash: string | null;
  sha1Hash?: string | null;
  sha256Hash?: string | null;
  hashReadyAt: number;
  eTag: string;
}

export interface UploadSession {
  id: string;
  drive: string;
  /** Target path '/a/b/name'. */
  path: string;
  conflictBehavior: 'fail' | 'replace' | 'rename';
  declaredSize: number | null;
  total: number | null;
  next: number;
  createdAt: number;
  expiresAt: number;
  tempauth: string;
  fsCreated: string | null;
  fsModified: string | null;
  description?: string | null;
}

export interface TokenInfo {
  kind: 'delegated' | 'app';
  subject: string;
  expiresAt: number;
}

export interface RefreshGrant {
  subject: string;
  clientId: string;
  tenant: string;
  scope: string;
}

type JournalEntry = { item: ItemMeta } | { removeItem: string } | { session: UploadSession } | { dropSession: string };

export class Store {
  readonly dataDir: string;
  readonly metaDir: string;
  readonly items = new Map<string, ItemMeta>();
  readonly byPath = new Map<string, string>();
  readonly sessions = new Map<string, UploadSession>();
  readonly tokens = new Map<string, TokenInfo>();
  readonly refreshTokens = new Map<string, RefreshGrant>();
  private readonly journalFile: string;
  /** Open for appending from the first change after start (or after close). */
  private journalFd = -1;

  constructor(data: string) {
    this.dataDir = path.resolve(data);
    this.metaDir = path.join(this.dataDir, '.emulator');
    fs.mkdirSync(path.join(this.metaDir, 'uploads'), { recursive: true });
    this.journalFile = path.join(this.metaDir, 'journal.ndjson');
    this.load();
    this.compactJournal();
  }

  private load(): void {
    this.loadFilePerRecord();
    if (fs.existsSync(this.journalFile)) this.replay(fs.readFileSync(this.journalFile, 'utf8'));
    const tokFile = path.join(this.metaDir, 'tokens.json');
    if (fs.existsSync(tokFile)) {
      const t = JSON.parse(fs.readFileSync(tokFile, 'utf8')) as { access: [string, TokenInfo][]; refresh: [string, RefreshGrant][] };
      for (const [k, v] of t.access) this.tokens.set(k, v);
      for (const [k, v] of t.refresh) this.refreshTokens.set(k, v);
    }
  }

  /** A data folder an older emulator wrote: a JSON file per item and per session. */
  private loadFilePerRecord(): void {
    for (const [dir, apply] of [
      ['items', (v: unknown) => this.indexItem(v as ItemMeta)],
      ['uploads', (v: unknown) => this.sessions.set((v as UploadSession).id, v as UploadSession)],
    ] as const) {
      const folder = path.join(this.metaDir, dir);
      if (!fs.existsSync(folder)) continue;
      for (const f of fs.readdirSync(folder)) if (f.endsWith('.json')) apply(JSON.parse(fs.readFileSync(path.join(folder, f), 'utf8')));
    }
    fs.rmSync(path.join(this.metaDir, 'items'), { recursive: true, force: true });
    for (const f of fs.readdirSync(path.join(this.metaDir, 'uploads'))) if (f.endsWith('.json')) fs.rmSync(path.join(this.metaDir, 'uploads', f));
  }

  private replay(text: string): void {
    for (const line of text.split('\n')) {
      if (!line) continue;
      let entry: JournalEntry;
      try {
        entry = JSON.parse(line) as JournalEntry;
      } catch {
        // A line cut short by a kill mid-write: nothing was answered for it.
        continue;
      }
      if ('item' in entry) this.indexItem(entry.item);
      else if ('removeItem' in entry) this.unindexItem(entry.removeItem);
      else if ('session' in entry) this.sessions.set(entry.session.id, entry.session);
      else this.sessions.delete(entry.dropSession);
    }
  }

  /** Rewrites the journal as what is live now (one line a record), so replays stay short. */
  private compactJournal(): void {
    const tmp = `${this.journalFile}.tmp`;
    const lines = [...[...this.items.values()].map((item) => ({ item })), ...[...this.sessions.values()].map((session) => ({ session }))];
    fs.writeFileSync(tmp, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    fs.renameSync(tmp, this.journalFile);
  }

  private append(entry: JournalEntry): void {
    if (this.journalFd < 0) this.journalFd = fs.openSync(this.journalFile, 'a');
    fs.writeSync(this.journalFd, `${JSON.stringify(entry)}\n`);
  }

  private indexItem(m: ItemMeta): void {
    const before = this.items.get(m.id);
    if (before) this.byPath.delete(this.key(before.drive, before.path));
    this.items.set(m.id, m);
    this.byPath.set(this.key(m.drive, m.path), m.id);
  }

  private unindexItem(id: string): void {
    const m = this.items.get(id);
    if (m) this.byPath.delete(this.key(m.drive, m.path));
    this.items.delete(id);
  }

  close(): void {
    if (this.journalFd >= 0) fs.closeSync(this.journalFd);
    this.journalFd = -1;
  }

  /** Names are case-insensitive: the path index is lower case. */
  key(drive: string, p: string): string {
    return `${drive}\n${p.toLowerCase()}`;
  }

  diskPath(drive: string, p: string): string {
    return path.join(this.dataDir, drive, ...p.split('/').filter(Boolean));
  }

  saveTokens(): void {
    const file = path.join(this.metaDir, 'tokens.json');
    fs.writeFileSync(file, JSON.stringify({ access: [...this.tokens], refresh: [...this.refreshTokens] }), { mode: 0o600 });
  }

  /** Indexes an item (new, or moved to m.path) and writes its metadata. */
  putItem(m: ItemMeta): void {
    this.indexItem(m);
    this.saveItem(m);
  }

  saveItem(m: ItemMeta): void {
    this.append({ item: m });
  }

  /** Forgets an item's metadata (not its bytes). */
  removeItem(m: ItemMeta): void {
    this.unindexItem(m.id);
    this.append({ removeItem: m.id });
  }

  partFile(sessionId: string): string {
    return path.join(this.metaDir, 'uploads', `${sessionId}.part`);
  }

  saveSession(s: UploadSession): void {
    this.append({ session: s });
  }

  dropSession(s: UploadSession): void {
    this.sessions.delete(s.id);
    this.append({ dropSession: s.id });
    fs.rmSync(this.partFile(s.id), { force: true });
  }
}
