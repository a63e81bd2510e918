// The one place that names every provider. The CLI asks it to turn "kind:ARG" specs into
// Sources and Destinations; the engine never sees this file. Adding a provider means adding
// its folder and one line here.

import type { ProviderModule } from './types.ts';
import { folderProvider } from './folder/index.ts';
import { xiaomiProvider } from './xiaomi/index.ts';
import { onedriveProvider } from './onedrive/index.ts';
import { googlePhotosProvider } from './google-photos/index.ts';

export const PROVIDERS: ProviderModule[] = [folderProvider, xiaomiProvider, onedriveProvider, googlePhotosProvider];

export function findProvider(name: string): ProviderModule | undefined {
  return PROVIDERS.find((p) => p.name === name);
}

/** Splits "onedrive:/Pictures" into ["onedrive", "/Pictures"]; a bare name has an empty arg. */
export function splitSpec(spec: string): { name: string; arg: string } {
  const i = spec.indexOf(':');
  return i < 0 ? { name: spec, arg: '' } : { name: spec.slice(0, i), arg: spec.slice(i + 1) };
}
