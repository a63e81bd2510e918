// What a provider gets from the engine, in memory, for tests that build a provider in the test
// process: a ProviderStore and a SessionSlot that keep values as JSON (as the state database does,
// so a provider cannot rely on handing over a live object), and a log that says nothing.

import type { ProviderStore, SessionSlot } from '../../providers/types.ts';

export const quietLog = { info: () => undefined, warn: () => undefined, debug: () => undefined };

const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** A ProviderStore in memory. */
export function memoryStore(): ProviderStore {
  const data = new Map<string, unknown>();
  return {
    get: <T>(k: string) => (data.has(k) ? copy(data.get(k) as T) : undefined),
    set: (k, v) => void data.set(k, copy(v)),
    delete: (k) => void data.delete(k),
    keys: (prefix) => [...data.keys()].filter((k) => k.startsWith(prefix)),
  };
}

/**
 * One item's SessionSlot in memory; `value` is what was saved last, `saves` how many times it was
 * saved durably, `behind` how many times with the run's next writes (saveBehind).
 */
export function memorySessionSlot(): SessionSlot & { value: unknown; saves: number; behind: number } {
  const s = {
    key: 'test-item',
    value: null as unknown,
    saves: 0,
    behind: 0,
    load: <T>() => s.value as T | null,
    save: (v: unknown) => {
      s.value = copy(v);
      s.saves++;
    },
    saveBehind: (v: unknown) => {
      s.value = copy(v);
      s.behind++;
    },
    clear: () => {
      s.value = null;
    },
  };
  return s;
}
