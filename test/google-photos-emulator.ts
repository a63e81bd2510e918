// Starts the Google Photos emulator in-process for tests and reads its state over HTTP, from the
// outside: what the tests check is what the emulator stored, not what the client believes.

import { googlePhotosProvider } from '../providers/google-photos/index.ts';
import { tmpDir } from './helpers.ts';

export interface EmuState {
  quota: { used: Record<string, number> };
  requests: Record<string, number>;
  mediaItems: Array<{
    id: string;
    owner: 'this-app' | 'other-app';
    filename: string;
    file: string;
    sha1: string;
    size: number;
    status: string;
    albumIds: string[];
  }>;
  albums: Array<{ id: string; title: string; count: number }>;
}

export interface Emu {
  env: Record<string, string>;
  data: string;
  close(): Promise<void>;
  state(): Promise<EmuState>;
  nextDay(): Promise<void>;
}

export async function startGoogleEmulator(token: string, extra: string[] = [], prefix = 'gp-emu-'): Promise<Emu> {
  const data = tmpDir(prefix);
  const h = await googlePhotosProvider.emulator!(['--port', '0', '--data', data, '--accept-token', token, ...extra]);
  const base = h.env.GOOGLE_PHOTOS_BASE_URL!;
  return {
    env: h.env,
    data,
    close: h.close,
    state: async () => (await (await fetch(`${base}/__emulator/state`)).json()) as EmuState,
    nextDay: async () => void (await fetch(`${base}/__emulator/next-day`, { method: 'POST' })),
  };
}
