// What the OneDrive emulator keeps: every stored file is a plain file at DATA/<drive>/<path>
// ("me" for the signed-in drive, the user id for /users/{id}/drive); item metadata, unfinished
// upload sessions and issued tokens live under DATA/.emulator/, so all of it survives a restart.

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

export class Store {
  readonly dataDir: string;
  readonly metaDir: string;
  readonly items = new Map<string, ItemMeta>();
  readonly byPath = new Map<string, string>();
  readonly sessions = new Map<string, UploadSession>();
  readonly tokens = new Map<string, TokenInfo>();
  readonly refreshTokens = new Map<string, RefreshGrant>();

  constructor(data: string) {
    this.dataDir = path.resolve(data);
    this.metaDir = path.join(this.dataDir, '.emulator');
    for (const d of ['items', 'uploads']) fs.mkdirSync(path.join(this.metaDir, d), { recursive: true });
    this.load();
  }

  private load(): void {
    for (const f of fs.readdirSync(path.join(this.metaDir, 'items'))) {
      if (!f.endsWith('.json')) continue;
      const m = JSON.parse(fs.readFileSync(path.join(this.metaDir, 'items', f), 'utf8')) as ItemMeta;
      this.items.set(m.id, m);
      this.byPath.set(this.key(m.drive, m.path), m.id);
    }
    for (const f of fs.readdirSync(path.join(this.metaDir, 'uploads'))) {
      if (!f.endsWith('.json')) continue;
      const s = JSON.parse(fs.readFileSync(path.join(this.metaDir, 'uploads', f), 'utf8')) as UploadSession;
      this.sessions.set(s.id, s);
    }
    const tokFile = path.join(this.metaDir, 'tokens.json');
    if (fs.existsSync(tokFile)) {
      const t = JSON.parse(fs.readFileSync(tokFile, 'utf8')) as { access: [string, TokenInfo][]; refresh: [string, RefreshGrant][] };
      for (const [k, v] of t.access) this.tokens.set(k, v);
      for (const [k, v] of t.refresh) this.refreshTokens.set(k, v);
    }
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
    this.items.set(m.id, m);
    this.byPath.set(this.key(m.drive, m.path), m.id);
    this.saveItem(m);
  }

  saveItem(m: ItemMeta): void {
    fs.writeFileSync(path.join(this.metaDir, 'items', `${m.id}.json`), JSON.stringify(m));
  }

  /** Forgets an item's metadata (not its bytes). */
  removeItem(m: ItemMeta): void {
    this.items.delete(m.id);
    this.byPath.delete(this.key(m.drive, m.path));
    fs.rmSync(path.join(this.metaDir, 'items', `${m.id}.json`), { force: true });
  }

  partFile(sessionId: string): string {
    return path.join(this.metaDir, 'uploads', `${sessionId}.part`);
  }

  saveSession(s: UploadSession): void {
    fs.writeFileSync(path.join(this.metaDir, 'uploads', `${s.id}.json`), JSON.stringify(s));
  }

  dropSession(s: UploadSession): void {
    this.sessions.delete(s.id);
    fs.rmSync(path.join(this.metaDir, 'uploads', `${s.id}.json`), { force: true });
    fs.rmSync(this.partFile(s.id), { force: true });
  }
}
