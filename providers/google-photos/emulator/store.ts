// What the Google Photos emulator keeps, in DATA/.emulator/state.sqlite: media items (their
// bytes in DATA/<id>-<file name>), albums, upload tokens (bytes under .emulator/uploads),
// resumable sessions (bytes under .emulator/sessions), OAuth tokens and codes, and a key-value
// table for the daily quota and the baseUrl signing secret.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import * as P from '../protocol.ts';
import type { Detected, MediaInfo } from './media.ts';

export interface MediaRow {
  id: string;
  owner: string;
  sha1: string;
  size: number;
  filename: string;
  file: string;
  mime: string;
  kind: string;
  format: string;
  width: number | null;
  height: number | null;
  creation_time: string | null;
  camera_make: string | null;
  camera_model: string | null;
  description: string | null;
  created_at: number;
  playable: number;
  seq: number;
}

/** A media item to add: by a batchCreate, or by another app before this one ran. */
export interface MediaInsert extends Pick<MediaRow, 'id' | 'owner' | 'sha1' | 'size' | 'filename' | 'file' | 'description'> {
  detected: Detected;
  info: MediaInfo;
  createdAt: number;
  playable: boolean;
}

export interface SessionRow {
  id: string;
  owner: string;
  size: number;
  received: number;
  mime: string | null;
  file_name: string | null;
  created_at: number;
  status: string;
  token: string | null;
}

export interface UploadRow {
  token: string;
  owner: string;
  file: string;
  size: number;
  sha1: string;
  created_at: number;
}

export interface AlbumRow {
  id: string;
  title: string;
  owner: string;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS media_items (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL, sha1 TEXT NOT NULL, size INTEGER NOT NULL,
    filename TEXT NOT NULL, file TEXT NOT NULL, mime TEXT NOT NULL, kind TEXT NOT NULL, format TEXT NOT NULL, width INTEGER, height INTEGER,
    creation_time TEXT, camera_make TEXT, camera_model TEXT, description TEXT, created_at INTEGER NOT NULL, playable INTEGER NOT NULL DEFAULT 1);
  CREATE INDEX IF NOT EXISTS media_by_hash ON media_items(owner, sha1, size);
  CREATE TABLE IF NOT EXISTS albums (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL, title TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS album_items (album_id TEXT NOT NULL, media_id TEXT NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (album_id, media_id));
  CREATE TABLE IF NOT EXISTS uploads (token TEXT PRIMARY KEY, owner TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, sha1 TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, owner TEXT NOT NULL, size INTEGER NOT NULL, received INTEGER NOT NULL, mime TEXT, file_name TEXT,
    created_at INTEGER NOT NULL, status TEXT NOT NULL, token TEXT);
  CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS codes (code TEXT PRIMARY KEY, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, challenge TEXT, method TEXT, scopes TEXT NOT NULL,
    offline INTEGER NOT NULL, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export const b64url = (n: number) => crypto.randomBytes(n).toString('base64url');
export const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

export class Store {
  readonly dataDir: string;
  /** DATA/.emulator: the database, upload tokens' and sessions' bytes. */
  readonly own: string;
  readonly db: Database.Database;

  constructor(data: string) {
    this.dataDir = path.resolve(data);
    this.own = path.join(this.dataDir, '.emulator');
    fs.mkdirSync(path.join(this.own, 'uploads'), { recursive: true });
    fs.mkdirSync(path.join(this.own, 'sessions'), { recursive: true });
    this.db = new Database(path.join(this.own, 'state.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
  }

  kvGet<T>(key: string, dflt: T): T {
    const row = this.db.prepare('SELECT value FROM kv WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : dflt;
  }

  kvSet(key: string, value: unknown): void {
    this.db.prepare('INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value));
  }

  /** The secret baseUrls are signed with, made once and kept. */
  urlSecret(): string {
    let secret = this.kvGet<string>('urlSecret', '');
    if (!secret) this.kvSet('urlSecret', (secret = b64url(32)));
    return secret;
  }

  /** Expired upload tokens go, with their bytes. */
  dropExpiredUploads(now = Date.now()): void {
    for (const u of this.db.prepare('SELECT token, file FROM uploads WHERE created_at < ?').all(now - P.UPLOAD_TOKEN_TTL_MS) as Array<{
      token: string;
      file: string;
    }>) {
      fs.rmSync(u.file, { force: true });
      this.db.prepare('DELETE FROM uploads WHERE token = ?').run(u.token);
    }
  }

  /** Keeps an uploaded file under a new upload token. */
  newUploadToken(owner: string, file: string, size: number, sha1hex: string): string {
    const token = `CAIS${b64url(96)}`;
    const dest = path.join(this.own, 'uploads', sha256(token).slice(0, 32));
    fs.renameSync(file, dest);
    this.db
      .prepare('INSERT INTO uploads(token, owner, file, size, sha1, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(token, owner, dest, size, sha1hex, Date.now());
    return token;
  }

  upload(token: string): UploadRow | undefined {
    return this.db.prepare('SELECT * FROM uploads WHERE token = ?').get(token) as UploadRow | undefined;
  }

  sessionFile(id: string): string {
    return path.join(this.own, 'sessions', id);
  }

  session(id: string): SessionRow | undefined {
    return this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
  }

  setSessionReceived(id: string, received: number): void {
    this.db.prepare('UPDATE sessions SET received = ? WHERE id = ?').run(received, id);
  }

  cancelSession(id: string): void {
    this.db.prepare("UPDATE sessions SET status = 'cancelled' WHERE id = ?").run(id);
    fs.rmSync(this.sessionFile(id), { force: true });
  }

  /** Adds a media item: its content's facts as read from the file, and who made it when. */
  addMediaItem(m: MediaInsert): void {
    this.db
      .prepare(`INSERT INTO media_items(id, owner, sha1, size, filename, file, mime, kind, format, width, height, creation_time, camera_make, camera_model, description, created_at, playable)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(
        m.id,
        m.owner,
        m.sha1,
        m.size,
        m.filename,
        m.file,
        m.detected.mimeType,
        m.detected.kind,
        m.detected.format,
        m.info.width,
        m.info.height,
        m.info.creationTime,
        m.info.cameraMake ?? null,
        m.info.cameraModel ?? null,
        m.description,
        m.createdAt,
        m.playable ? 1 : 0,
      );
  }

  mediaItem(id: string): MediaRow | undefined {
    return this.db.prepare('SELECT * FROM media_items WHERE id = ?').get(id) as MediaRow | undefined;
  }

  /** The owner's item with these bytes, if any. */
  mediaByHash(owner: string, sha1: string, size: number): MediaRow | undefined {
    return this.db.prepare('SELECT * FROM media_items WHERE owner = ? AND sha1 = ? AND size = ?').get(owner, sha1, size) as MediaRow | undefined;
  }

  mediaOf(owner: string): MediaRow[] {
    return this.db.prepare('SELECT * FROM media_items WHERE owner = ? ORDER BY seq').all(owner) as MediaRow[];
  }

  albumMedia(albumId: string, owner: string): MediaRow[] {
    return this.db
      .prepare('SELECT m.* FROM album_items a JOIN media_items m ON m.id = a.media_id WHERE a.album_id = ? AND m.owner = ? ORDER BY a.pos')
      .all(albumId, owner) as MediaRow[];
  }

  storageUsed(): number {
    return (this.db.prepare('SELECT COALESCE(SUM(size), 0) AS n FROM media_items').get() as { n: number }).n;
  }

  album(id: string): AlbumRow | undefined {
    return this.db.prepare('SELECT id, title, owner FROM albums WHERE id = ?').get(id) as AlbumRow | undefined;
  }

  albumCount(albumId: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM album_items WHERE album_id = ?').get(albumId) as { n: number }).n;
  }

  /** True when the album holds an item with these bytes. */
  albumHolds(albumId: string, sha1: string, size: number): boolean {
    return !!this.db
      .prepare('SELECT 1 FROM album_items a JOIN media_items m ON m.id = a.media_id WHERE a.album_id = ? AND m.sha1 = ? AND m.size = ?')
      .get(albumId, sha1, size);
  }

  addToAlbum(albumId: string, mediaId: string): void {
    const pos = (this.db.prepare('SELECT COALESCE(MAX(pos), 0) + 1 AS p FROM album_items WHERE album_id = ?').get(albumId) as { p: number }).p;
    this.db.prepare('INSERT OR IGNORE INTO album_items(album_id, media_id, pos) VALUES (?, ?, ?)').run(albumId, mediaId, pos);
  }

  close(): void {
    this.db.close();
  }
}
