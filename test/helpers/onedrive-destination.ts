// A OneDrive destination built in the test process, as the engine would build it, against an
// emulator: a static token, an in-memory provider store and session slot (saved as JSON, as the
// state database saves them), no pacing, and a log that says nothing.

import { OneDriveDestination, type OneDriveConfig } from '../../providers/onedrive/destination.ts';
import type { ProviderStore, SessionSlot } from '../../providers/types.ts';

export const quietLog = { info: () => undefined, warn: () => undefined, debug: () => undefined };

/** A ProviderStore in memory; `data` shows what the destination kept. */
export function memoryStore(): ProviderStore & { data: Map<string, unknown> } {
  const data = new Map<string, unknown>();
  return {
    data,
    get: <T>(k: string) => data.get(k) as T | undefined,
    set: (k, v) => void data.set(k, JSON.parse(JSON.stringify(v))),
    delete: (k) => void data.delete(k),
  };
}

/** One item's SessionSlot in memory; `value` is what was saved last, `saves` how many times. */
export function memorySessionSlot(): SessionSlot & { value: unknown; saves: number; behind: number } {
  const s = {
    key: 'test-item',
    value: null as unknown,
    saves: 0,
    /** saveBehind calls: a session saved with the run's next writes (a file that fits in its last fragment). */
    behind: 0,
    load: <T>() => s.value as T | null,
    save: (v: unknown) => {
      s.value = JSON.parse(JSON.stringify(v));
      s.saves++;
    },
    saveBehind: (v: unknown) => {
      s.value = JSON.parse(JSON.stringify(v));
      s.behind++;
    },
    clear: () => {
      s.value = null;
    },
  };
  return s;
}

/** The smallest settings that upload: 320 KiB fragments, one item a commit and a verify, no pacing. */
export function smallOneDriveConfig(baseUrl: string, over: Partial<OneDriveConfig> = {}): OneDriveConfig {
  return {
    baseUrl,
    root: '/P',
    user: null,
    layout: 'album',
    chunkSize: 327_680,
    userRequestsPer5Min: 0,
    appRequestsPerMinute: 0,
    commitBatchSize: 1,
    verifyBatchSize: 1,
    hashRetryMs: 10,
    maxSessionAgeMs: 1e9,
    ...over,
  };
}

/** A destination that signs every request with `token`; the caller closes it. */
export function oneDriveDestination(config: OneDriveConfig, token: string, ctx: { store?: ProviderStore; account?: string } = {}): OneDriveDestination {
  return new OneDriveDestination(
    config,
    { kind: 'static', get: async () => token },
    { store: ctx.store ?? memoryStore(), log: quietLog, account: ctx.account ?? 'x' },
  );
}
