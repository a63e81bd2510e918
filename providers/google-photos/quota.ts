// The tool's own count of Library API requests, per OAuth client (Google's quota is per project)
// and per Pacific-time day (when Google resets it). It lives under GALLERY_BRIDGE_HOME, shared by
// every state file and every run on the machine; SQLite (WAL, busy timeout) makes concurrent
// increments from several processes safe. The service's 429 stays authoritative: this count
// serves `plan` and warnings, and remembers that the service said "spent" today.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { useWal } from '../../src/lib/sqlite-wal.ts';

const PACIFIC = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Los_Angeles', year: 'numeric', month: '2-digit', day: '2-digit' });

/** The calendar date in Pacific time (YYYY-MM-DD), when Google's daily quota resets. */
export function pacificDay(ms = Date.now()): string {
  return PACIFIC.format(ms);
}

export interface DayUsage {
  day: string;
  requests: number;
  media: number;
  /** The service answered the daily-quota 429 today. */
  exhausted: boolean;
}

export class QuotaCounter {
  private readonly db: Database.Database;
  private readonly bump: Database.Statement;
  private readonly bumpMedia: Database.Statement;

  constructor(
    home: string,
    private readonly client: string,
  ) {
    const dir = path.join(home, 'google-photos');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.db = new Database(path.join(dir, 'quota.sqlite'));
    this.db.pragma('busy_timeout = 10000');
    useWal(this.db);
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS usage (client TEXT NOT NULL, day TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0,
      media INTEGER NOT NULL DEFAULT 0, exhausted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (client, day))`);
    this.bump = this.db.prepare(
      'INSERT INTO usage(client, day, requests) VALUES (?, ?, ?) ON CONFLICT(client, day) DO UPDATE SET requests = requests + excluded.requests',
    );
    this.bumpMedia = this.db.prepare(
      'INSERT INTO usage(client, day, media) VALUES (?, ?, ?) ON CONFLICT(client, day) DO UPDATE SET media = media + excluded.media',
    );
  }

  /** One more API request (uploads included) today. */
  count(n = 1): void {
    this.bump.run(this.client, pacificDay(), n);
  }

  /** One more media-byte request (baseUrl download), counted apart as Google does. */
  countMedia(n = 1): void {
    this.bumpMedia.run(this.client, pacificDay(), n);
  }

  markExhausted(): void {
    this.db
      .prepare('INSERT INTO usage(client, day, exhausted) VALUES (?, ?, 1) ON CONFLICT(client, day) DO UPDATE SET exhausted = 1')
      .run(this.client, pacificDay());
  }

  today(): DayUsage {
    const day = pacificDay();
    const row = this.db.prepare('SELECT requests, media, exhausted FROM usage WHERE client = ? AND day = ?').get(this.client, day) as
      | { requests: number; media: number; exhausted: number }
      | undefined;
    return { day, requests: row?.requests ?? 0, media: row?.media ?? 0, exhausted: !!row?.exhausted };
  }

  close(): void {
    this.db.close();
  }
}
