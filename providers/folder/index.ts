import type { ProviderModule } from '../types.ts';

export const folderProvider: ProviderModule = {
  name: 'folder',
  description: 'a local folder: sub-folders are albums, files are items',
};
