// The one place that names every provider. The CLI asks it to turn "kind:ARG" specs into
// Sources and Destinations; the engine never sees this file. Adding a provider means adding
// its folder and one line here.
//
// Providers load lazily: a cloud SDK can take seconds to import, and a run should pay only for
// the providers it names.

import type { ProviderModule } from './types.ts';

const LOADERS: Record<string, () => Promise<ProviderModule>> = {
  folder: async () => (await import('./folder/index.ts')).folderProvider,
  xiaomi: async () => (await import('./xiaomi/index.ts')).xiaomiProvider,
  onedrive: async () => (await import('./onedrive/index.ts')).onedriveProvider,
  'google-photos': async () => (await import('./google-photos/index.ts')).googlePhotosProvider,
};

export const PROVIDER_NAMES: readonly string[] = Object.keys(LOADERS);

const loaded = new Map<string, ProviderModule>();

export async function loadProvider(name: string): Promise<ProviderModule | undefined> {
  const load = LOADERS[name];
  if (!load) return undefined;
  if (!loaded.has(name)) loaded.set(name, await load());
  return loaded.get(name);
}

export async function loadProviders(names: Iterable<string> = PROVIDER_NAMES): Promise<ProviderModule[]> {
  const out: ProviderModule[] = [];
  for (const n of names) {
    const p = await loadProvider(n);
    if (p) out.push(p);
  }
  return out;
}

/** The providers loaded so far (the CLI loads the ones a command names before parsing). */
export function loadedProviders(): ProviderModule[] {
  return [...loaded.values()];
}

/** Splits "onedrive:/Pictures" into ["onedrive", "/Pictures"]; a bare name has an empty arg. */
export function splitSpec(spec: string): { name: string; arg: string } {
  const i = spec.indexOf(':');
  return i < 0 ? { name: spec, arg: '' } : { name: spec.slice(0, i), arg: spec.slice(i + 1) };
}
