// Builds Sources and Destinations from "kind:ARG" specs for the commands. The engine never
// sees this: it gets the built objects through the contracts.

import type { DB } from '../../state/db.ts';
import { durableWrite } from '../../state/db.ts';
import type { Destination, Logger, ProviderContext, ProviderModule, ProviderStore, Source } from '../../providers/types.ts';
import { StopRunError } from '../../providers/types.ts';
import { loadProvider, loadProviders, splitSpec } from '../../providers/index.ts';
import { defaultHome } from '../lib/credentials.ts';

export function providerStore(db: DB, scope: string): ProviderStore {
  const get = db.prepare('SELECT value FROM provider_kv WHERE scope = ? AND key = ?');
  const set = db.prepare('INSERT INTO provider_kv (scope, key, value) VALUES (?, ?, ?) ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value');
  const del = db.prepare('DELETE FROM provider_kv WHERE scope = ? AND key = ?');
  // A range on the primary key (scope, key): from the prefix to the prefix with its last character one higher.
  const keys = db.prepare('SELECT key FROM provider_kv WHERE scope = ? AND key >= ? AND key < ?').pluck();
  const allKeys = db.prepare('SELECT key FROM provider_kv WHERE scope = ?').pluck();
  return {
    get: <T>(key: string) => {
      const r = get.get(scope, key) as { value: string } | undefined;
      return r ? (JSON.parse(r.value) as T) : undefined;
    },
    // Durable at once: a provider keeps here what it created outside (an album's id), so that a
    // rerun never creates it twice.
    set: (key, value) => void durableWrite(db, () => set.run(scope, key, JSON.stringify(value))),
    delete: (key) => void durableWrite(db, () => del.run(scope, key)),
    keys: (prefix) => (prefix === '' ? allKeys.all(scope) : keys.all(scope, prefix, afterPrefix(prefix))) as string[],
  };
}

/** The first string past every string that starts with `prefix` (its last character one higher). */
function afterPrefix(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

async function resolve(spec: string, role: 'source' | 'destination'): Promise<{ mod: ProviderModule; arg: string }> {
  const { name, arg } = splitSpec(spec);
  const mod = await loadProvider(name);
  const can = (m: ProviderModule) => (role === 'source' ? !!m.createSource : !!m.createDestination);
  if (!mod || !can(mod)) {
    const known = (await loadProviders())
      .filter(can)
      .map((p) => p.name)
      .join(', ');
    throw new StopRunError('config', `unknown ${role} "${spec}": use one of ${known} (written NAME or NAME:ARG)`);
  }
  return { mod, arg };
}

export async function contextFor(
  db: DB,
  spec: string,
  role: 'source' | 'destination',
  options: Record<string, unknown>,
  log: Logger,
  signal?: AbortSignal,
): Promise<{ mod: ProviderModule; ctx: ProviderContext }> {
  const { mod, arg } = await resolve(spec, role);
  return {
    mod,
    ctx: {
      arg,
      home: defaultHome(),
      // A batch names the source's and the destination's stored accounts apart; --account names both.
      account: String((role === 'source' ? options.sourceAccount : options.destinationAccount) ?? options.account ?? 'default'),
      env: process.env,
      options,
      store: providerStore(db, `${role}:${mod.name}`),
      log,
      signal,
    },
  };
}

export async function openSource(db: DB, spec: string, options: Record<string, unknown>, log: Logger, signal?: AbortSignal): Promise<Source> {
  const { mod, ctx } = await contextFor(db, spec, 'source', options, log, signal);
  return mod.createSource!(ctx);
}

export async function openDestination(db: DB, spec: string, options: Record<string, unknown>, log: Logger, signal?: AbortSignal): Promise<Destination> {
  const { mod, ctx } = await contextFor(db, spec, 'destination', options, log, signal);
  return mod.createDestination!(ctx);
}
