import path from 'node:path';
import type { ProviderModule } from '../types.ts';
import { StopRunError } from '../types.ts';
import { FolderSource } from './source.ts';
import { FolderDestination } from './destination.ts';

function folderPath(arg: string): string {
  if (!arg) throw new StopRunError('config', 'folder needs a path: folder:PATH');
  return path.resolve(arg);
}

export const folderProvider: ProviderModule = {
  name: 'folder',
  description: 'a local folder: sub-folders are albums, files are items',
  async createSource(ctx) {
    return new FolderSource(folderPath(ctx.arg));
  },
  async createDestination(ctx) {
    return new FolderDestination(folderPath(ctx.arg), ctx.options.layout === 'date' ? 'date' : 'album');
  },
};
