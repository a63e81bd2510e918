// The destinations of a chaos round, each read from the outside: the files in a folder, the
// files the OneDrive emulator stored under its DATA, the bytes the Google Photos emulator keeps
// for each media item. contents() hashes those bytes itself.

import fs from 'node:fs';
import path from 'node:path';
import { startOneDriveEmulator } from '../../providers/onedrive/emulator/server.ts';
import { googlePhotosProvider } from '../../providers/google-photos/index.ts';
import { sha1 } from './content.ts';

export type DestKind = 'folder' | 'onedrive' | 'onedrive-business' | 'google-photos';

export interface Stored {
  hash: string;
  where: string;
  /** The stored file, where the destination may keep other bytes of the same picture (Google Photos). */
  file?: string;
}

export interface DestWorld {
  readonly kind: DestKind;
  readonly spec: string;
  env(): Record<string, string>;
  /** Every content stored at the destination, hashed from its bytes. */
  contents(): Promise<Stored[]>;
  close(): Promise<void>;
}

const TOKEN = 'chaos-access-token-0123456789';

/** Regular files below dir, skipping the names an emulator or the tool keeps for itself. */
function filesBelow(dir: string, skip: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (skip(e.name)) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

export class FolderDest implements DestWorld {
  readonly kind = 'folder';
  constructor(readonly root: string) {}
  get spec(): string {
    return `folder:${this.root}`;
  }
  env(): Record<string, string> {
    return {};
  }
  async contents(): Promise<Stored[]> {
    // Hidden files are the tool's staging files: never a migrated item.
    return filesBelow(this.root, (n) => n.startsWith('.')).map((f) => ({ hash: sha1(fs.readFileSync(f)), where: path.relative(this.root, f) }));
  }
  async close(): Promise<void> {}
}

/** Under vitest one test CA serves every emulator (test/setup/tls.ts); elsewhere the emulator makes its own. */
function testTls(): string[] {
  const t = process.env.GALLERY_BRIDGE_TEST_TLS;
  if (!t) return [];
  const f = JSON.parse(t) as { ca: string; cert: string; key: string };
  return ['--tls-cert', f.cert, '--tls-key', f.key, '--tls-ca', f.ca];
}

export class OneDriveDest implements DestWorld {
  private handle: Awaited<ReturnType<typeof startOneDriveEmulator>> | null = null;
  constructor(
    readonly kind: 'onedrive' | 'onedrive-business',
    readonly data: string,
    private readonly flags: string[],
  ) {}
  readonly spec = 'onedrive:/Pictures/Chaos';
  async start(): Promise<void> {
    const flavor = this.kind === 'onedrive-business' ? ['--flavor', 'business'] : [];
    this.handle = await startOneDriveEmulator(['--port', '0', '--data', this.data, '--accept-token', TOKEN, ...flavor, ...testTls(), ...this.flags]);
  }
  env(): Record<string, string> {
    return { ...this.handle!.env, ONEDRIVE_ACCESS_TOKEN: TOKEN };
  }
  async contents(): Promise<Stored[]> {
    return filesBelow(this.data, (n) => n === '.emulator').map((f) => ({ hash: sha1(fs.readFileSync(f)), where: path.relative(this.data, f) }));
  }
  async close(): Promise<void> {
    await this.handle?.close();
  }
}

export class GoogleDest implements DestWorld {
  readonly kind = 'google-photos';
  readonly spec = 'google-photos';
  private handle: { env: Record<string, string>; close(): Promise<void> } | null = null;
  constructor(
    readonly data: string,
    private readonly flags: string[],
  ) {}
  async start(): Promise<void> {
    this.handle = await googlePhotosProvider.emulator!(['--port', '0', '--data', this.data, '--accept-token', TOKEN, ...this.flags]);
  }
  env(): Record<string, string> {
    return { ...this.handle!.env, GOOGLE_ACCESS_TOKEN: TOKEN };
  }
  async contents(): Promise<Stored[]> {
    const res = await fetch(`${this.handle!.env.GOOGLE_PHOTOS_BASE_URL}/__emulator/state`);
    const st = (await res.json()) as { mediaItems: Array<{ id: string; file: string }> };
    return st.mediaItems.map((m) => {
      const file = path.join(this.data, path.basename(m.file));
      return { hash: sha1(fs.readFileSync(file)), where: `mediaItem ${m.id}`, file };
    });
  }
  async close(): Promise<void> {
    await this.handle?.close();
  }
}
