// The Xiaomi Cloud gallery (i.mi.com) provider: a Source, `auth xiaomi` and `emulator xiaomi`.

import { readOption } from '../options.ts';
import { StopRunError, type ProviderContext, type ProviderModule, type Source } from '../types.ts';
import { authXiaomi } from './auth.ts';
import { XiaomiClient } from './client.ts';
import { XIAOMI_OPTIONS } from './options.ts';
import { baseUrlOf, hostPolicyOf, resolveCredentials, storeSession } from './session.ts';
import { DELETE_FLOOR_MS, XiaomiSource } from './source.ts';

export async function createXiaomiSource(ctx: ProviderContext): Promise<XiaomiSource> {
  const base = baseUrlOf(ctx.env);
  const { creds, origin } = resolveCredentials(ctx);
  const hint = ctx.arg.trim();
  if (hint && hint !== creds.userId) {
    throw new StopRunError(
      'config',
      `the source says xiaomi:${hint} but the credentials are for another Xiaomi account; run \`gallery-bridge auth xiaomi\` for that account or drop the hint`,
    );
  }
  const client = new XiaomiClient({
    baseUrl: base.href,
    credentials: creds,
    hosts: hostPolicyOf(ctx, base),
    log: ctx.log,
    maxRequestsPerSecond: ctx.env.XIAOMI_MAX_RPS !== undefined && Number.isFinite(Number(ctx.env.XIAOMI_MAX_RPS)) ? Number(ctx.env.XIAOMI_MAX_RPS) : undefined,
    // A stored session keeps its renewed serviceToken, so the next run starts signed in.
    onTokenChange: origin === 'stored' ? (c) => storeSession(ctx, c) : undefined,
  });
  if (!creds.serviceToken) await client.renew();
  const pageSize = Number(ctx.env.XIAOMI_PAGE_SIZE ?? 50);
  const pause = Number(ctx.env.XIAOMI_DELETE_PAUSE_MS ?? DELETE_FLOOR_MS);
  return new XiaomiSource(client, {
    includePrivate: readOption(ctx, XIAOMI_OPTIONS.includePrivate) === true,
    pageSize: Number.isFinite(pageSize) ? pageSize : 50,
    deletePauseMs: Number.isFinite(pause) && pause >= 0 ? pause : DELETE_FLOOR_MS,
    log: ctx.log,
  });
}

export const xiaomiProvider: ProviderModule = {
  name: 'xiaomi',
  description: 'Xiaomi Cloud gallery at i.mi.com (source): albums, SHA-1-checked three-step downloads, paced (soft) deletion',
  createSource: (ctx): Promise<Source> => createXiaomiSource(ctx),
  // A cap for the whole run, whatever the destination takes. Held below what the emulator shows
  // (bench/concurrency.ts: 16 in flight moved about 1.35x as many items/s as 8 at 50 ms a request) on
  // purpose: Xiaomi documents no limit for one account, and the public clients that work against
  // it run 3-8 downloads at once. A blocked account mid-migration costs far more than the gap.
  defaultConcurrency: { source: 8 },
  auth: authXiaomi,
  // The emulator (and the image library it reads EXIF with) loads only when started.
  emulator: async (args) => (await import('./emulator/args.ts')).runXiaomiEmulator(args),
  cliOptions: Object.values(XIAOMI_OPTIONS),
};
