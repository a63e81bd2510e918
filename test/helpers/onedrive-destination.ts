// A OneDrive destination built in the test process, as the engine would build it, against an
// emulator: a static token, an in-memory provider store (test/helpers/provider-fakes.ts), no
// pacing, and a log that says nothing.

import { OneDriveDestination, type OneDriveConfig } from '../../providers/onedrive/destination.ts';
import type { ProviderStore } from '../../providers/types.ts';
import { memoryStore, quietLog } from './provider-fakes.ts';

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
