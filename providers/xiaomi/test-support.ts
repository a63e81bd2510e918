// Helpers for the Xiaomi tests and bench (not used by the tool itself): a seed folder made from
// the sample media, a ProviderContext with an in-memory store, and an emulator started in-process.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ProviderContext, ProviderStore } from '../types.ts';
import { readXiaomiEmulatorState } from './emulator/store.ts';
import { startXiaomiEmulator, type XiaomiEmulator, type XiaomiEmulatorOptions } from './emulator/server.ts';

/** Which album each sample file goes to; the rest go to Camera. */
const SPLIT: Record<string, string> = {
  'f6t.jpg': 'Screenshots',
  'noexif.jpg': 'Screenshots',
  'png_with_exif_and_gps.png': 'Screenshots',
  'cookiezen.jpg': 'Private',
  'img_1771.jpg': 'Private',
  'Bush-dog.tif': 'Holidays 2019',
  'Irvine_CA.avif': 'Holidays 2019',
  'heic-single.heic': 'Holidays 2019',
  'VID_20230514_101112.mp4': 'Holidays 2019',
};

/** Copies test/fixtures into SEED/<album>/ (Camera, Screenshots, Private, "Holidays 2019"). */
export function makeSeed(dir: string, fixtures = path.resolve('test/fixtures'), only?: (name: string) => boolean): string {
  for (const name of fs.readdirSync(fixtures).sort()) {
    if (only && !only(name)) continue;
    const album = SPLIT[name] ?? 'Camera';
    fs.mkdirSync(path.join(dir, album), { recursive: true });
    const to = path.join(dir, album, name);
    fs.copyFileSync(path.join(fixtures, name), to);
    // Keep the sample's file time: the emulator dates files without EXIF by it.
    const st = fs.statSync(path.join(fixtures, name));
    fs.utimesSync(to, st.atime, st.mtime);
  }
  return dir;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `gb-xiaomi-${prefix}-`));
}

export function memoryStore(): ProviderStore {
  const m = new Map<string, unknown>();
  return {
    get: <T>(k: string) => m.get(k) as T | undefined,
    set: (k, v) => void m.set(k, v),
    delete: (k) => void m.delete(k),
  };
}

export function testContext(env: Record<string, string>, options: Record<string, unknown> = {}, home = tmpDir('home')): ProviderContext & { lines: string[] } {
  const lines: string[] = [];
  return {
    arg: '',
    home,
    account: 'default',
    env: { ...env },
    options,
    store: memoryStore(),
    log: { info: (m) => void lines.push(`info ${m}`), warn: (m) => void lines.push(`warn ${m}`), debug: (m) => void lines.push(`debug ${m}`) },
    lines,
  };
}

export function emulatorOptions(
  data: string,
  over: Partial<XiaomiEmulatorOptions> & { sessionTtl?: number; faultCorrupt?: number; faultDrop?: number; latencyMs?: number } = {},
): XiaomiEmulatorOptions {
  const { sessionTtl = 0, faultCorrupt = 0, faultDrop = 0, latencyMs = 0, ...rest } = over;
  return {
    common: { port: 0, data, fault429: 0, fault5xx: 0, faultDrop, faultCorrupt, latencyMs, sessionTtl, randomSeed: 7 },
    ...rest,
  };
}

export async function startEmulator(data: string, over: Parameters<typeof emulatorOptions>[1] = {}): Promise<XiaomiEmulator> {
  return startXiaomiEmulator(emulatorOptions(data, over));
}

export interface EmulatorStateView {
  deleted: Record<string, { fileName: string; albumId: string; sha1: string }>;
  downloads: Record<string, number>;
  counters: Record<string, number>;
  deleteLog: Array<{ id: string; code: number }>;
}

/** The emulator's state as it lies in DATA, read from the outside. */
export function readEmulatorState(data: string): EmulatorStateView {
  return readXiaomiEmulatorState(data);
}
