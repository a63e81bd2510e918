import path from 'node:path';
import { runOptions } from '../options.ts';
import type { ProviderModule } from '../types.ts';
import { StopRunError } from '../types.ts';
import { FolderSource } from './source.ts';
import { FolderDestination } from './destination.ts';
import { DEFAULT_LIMITS, SyncGroups, fileSystemSync, realSync } from './durable.ts';

function folderPath(arg: string): string {
  if (!arg) throw new StopRunError('config', 'folder needs a path: folder:PATH');
  return path.resolve(arg);
}

export const folderProvider: ProviderModule = {
  name: 'folder',
  description: 'a local folder: sub-folders are albums, files are items',
  // Measured by bench/concurrency.ts (see the README's --concurrency): folder to folder peaked
  // between 8 and 32 in flight on two cores, 16 the steadiest; a folder source reads for any
  // destination without a limit of its own.
  defaultConcurrency: { destination: 16 },
  async createSource(ctx) {
    return new FolderSource(folderPath(ctx.arg));
  },
  async createDestination(ctx) {
    // GALLERY_BRIDGE_FOLDER_SYNC_MS: how long a group of written files waits for company before
    // it is fsynced (the crash test widens it so that kills land inside groups).
    const wait = Number(ctx.env.GALLERY_BRIDGE_FOLDER_SYNC_MS);
    // GALLERY_BRIDGE_FOLDER_SYNCFS=0: an fsync a file even where syncfs is available (tests run both ways).
    const ops = ctx.env.GALLERY_BRIDGE_FOLDER_SYNCFS === '0' ? realSync : fileSystemSync();
    const groups = new SyncGroups(ops, Number.isFinite(wait) && wait >= 0 ? { ...DEFAULT_LIMITS, maxWaitMs: wait } : DEFAULT_LIMITS);
    return new FolderDestination(folderPath(ctx.arg), runOptions(ctx).layout, groups);
  },
};
