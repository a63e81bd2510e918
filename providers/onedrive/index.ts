// OneDrive as a destination: `--to onedrive:/Pictures/Xiaomi` (the signed-in account's drive)
// or `--to onedrive:USER:/Pictures/Xiaomi` (a user's drive, with app-only credentials).

import { nonNegativeNumber, option, readOption, runOptions } from '../options.ts';
import { StopRunError, type Destination, type ProviderContext, type ProviderModule } from '../types.ts';
import type { OneDriveConfig } from './destination.ts';

// The sign-in (msal) and the destination (the Graph SDK) are imported only when used, so
// `--help` and runs without OneDrive do not pay for them.
type DestinationModule = typeof import('./destination.ts');

export const GRAPH_BASE_URL = 'https://graph.microsoft.com/v1.0';

/** "PATH" or "USER:PATH" -> { user, root }. A PATH starts with "/" (added when missing). */
export function parseOneDriveArg(arg: string): { user: string | null; root: string } {
  let user: string | null = null;
  let p = arg.trim();
  const colon = p.indexOf(':');
  if (colon >= 0 && !p.startsWith('/')) {
    user = p.slice(0, colon).trim() || null;
    p = p.slice(colon + 1);
  }
  const root = p
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => `/${s}`)
    .join('');
  return { user, root };
}

/** "10MiB", "320KiB", "5M" or a byte count. */
export function parseSize(v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  const m = /^(\d+(?:\.\d+)?)\s*(k|kib|m|mib|g|gib|b)?$/i.exec(String(v).trim());
  if (!m) throw new StopRunError('config', `cannot read the size "${String(v)}"`);
  const mult = { k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3, b: 1 }[(m[2] ?? 'b').toLowerCase()]!;
  return Math.round(Number(m[1]) * mult);
}

/** OneDrive's options, each with its parser: configFromContext reads them typed. */
export const ONEDRIVE_OPTIONS = {
  embedDates: option<boolean>({
    flags: '--embed-dates',
    description: 'OneDrive: also write the capture date into JPEG and MP4/MOV files that lack one (as for Google Photos); fileSystemInfo carries it either way',
  }),
  chunkSize: option({
    flags: '--onedrive-chunk-size <size>',
    description: 'OneDrive upload fragment size, a multiple of 320 KiB under 60 MiB (default 10MiB)',
    env: 'ONEDRIVE_CHUNK_SIZE',
    parse: (t) => parseSize(t, 0),
  }),
  requestsPer5Min: option({
    flags: '--onedrive-requests-per-5min <n>',
    description: 'OneDrive requests per 5 minutes per user (default 3000, 0 = no limit)',
    env: 'ONEDRIVE_REQUESTS_PER_5MIN',
    parse: nonNegativeNumber,
  }),
  appRequestsPerMinute: option({
    flags: '--onedrive-app-requests-per-minute <n>',
    description: 'OneDrive requests per minute for this app (default 1200, 0 = no limit)',
    env: 'ONEDRIVE_APP_REQUESTS_PER_MINUTE',
    parse: nonNegativeNumber,
  }),
  maxWait: option({
    flags: '--onedrive-max-wait <seconds>',
    description: 'longest OneDrive throttling pause (Retry-After) to wait out; a longer one stops the run with exit 4 and the time to rerun (default 900)',
    env: 'ONEDRIVE_MAX_WAIT',
    parse: nonNegativeNumber,
  }),
  commitBatch: option({
    flags: '--onedrive-commit-batch <n>',
    description: 'OneDrive uploads finished per commit call (default 1: each as soon as it is ready, --concurrency at once)',
    env: 'ONEDRIVE_COMMIT_BATCH',
    parse: nonNegativeNumber,
  }),
};

/** Items in flight when --concurrency is not given (see defaultConcurrency below). */
const DEFAULT_CONCURRENCY = 16;

export function configFromContext(
  ctx: ProviderContext,
  { DEFAULT_CHUNK, DEFAULT_MAX_WAIT_MS, MAX_SESSION_AGE_MS, validateChunkSize }: DestinationModule,
): OneDriveConfig {
  const { user, root } = parseOneDriveArg(ctx.arg);
  const run = runOptions(ctx);
  const O = ONEDRIVE_OPTIONS;
  return {
    baseUrl: (ctx.env.GRAPH_BASE_URL || GRAPH_BASE_URL).replace(/\/+$/, ''),
    root,
    user,
    layout: run.layout,
    embedDates: readOption(ctx, O.embedDates) === true,
    chunkSize: validateChunkSize(readOption(ctx, O.chunkSize) ?? DEFAULT_CHUNK),
    userRequestsPer5Min: readOption(ctx, O.requestsPer5Min) ?? 3000,
    appRequestsPerMinute: readOption(ctx, O.appRequestsPerMinute) ?? 1200,
    // Graph has no batch for a last fragment or a read-back: each item's is a request of its own,
    // sent as soon as the item is ready, --concurrency of them at once. Batches of 8 run one at a
    // time (the engine's default) held commits and read-backs to half the concurrency and made
    // each wait for seven others: 0.41 of the latency bound at 50 ms (docs/benchmarks.md).
    commitBatchSize: Math.max(1, Math.floor(readOption(ctx, O.commitBatch) ?? 1)),
    verifyBatchSize: 1,
    callsInFlight: run.concurrency || DEFAULT_CONCURRENCY,
    hashRetryMs: ctx.env.ONEDRIVE_HASH_RETRY_MS ? nonNegativeNumber(ctx.env.ONEDRIVE_HASH_RETRY_MS) : 5000,
    maxSessionAgeMs: MAX_SESSION_AGE_MS,
    maxWaitMs: (readOption(ctx, O.maxWait) ?? DEFAULT_MAX_WAIT_MS / 1000) * 1000,
    until: run.until,
  };
}

export async function createOneDriveDestination(ctx: ProviderContext): Promise<Destination> {
  const [{ authSettings, isAppOnly, tokenSource }, destination] = await Promise.all([import('./auth.ts'), import('./destination.ts')]);
  const config = configFromContext(ctx, destination);
  const settings = authSettings(ctx.env, ctx.home, ctx.account);
  if (isAppOnly(settings) && !config.user) {
    throw new StopRunError('config', 'app-only credentials cannot use /me: name the user, as in onedrive:alice@contoso.com:/Pictures/Xiaomi');
  }
  const made = new destination.OneDriveDestination(config, tokenSource(settings), ctx);
  made.askEarly();
  return made;
}

export const onedriveProvider: ProviderModule = {
  name: 'onedrive',
  description: 'Microsoft OneDrive (personal or work) through Microsoft Graph: onedrive:PATH or onedrive:USER:PATH',
  createDestination: createOneDriveDestination,
  // Measured by bench/concurrency.ts (see the README's --concurrency): fewer leaves the latency of
  // each item's requests unfilled. A staged item waiting for its commit holds only its last fragment (< 320 KiB).
  defaultConcurrency: { destination: DEFAULT_CONCURRENCY },
  cliOptions: Object.values(ONEDRIVE_OPTIONS),
  async auth(ctx) {
    const { authSettings, signIn } = await import('./auth.ts');
    const settings = authSettings(ctx.env, ctx.home, ctx.account);
    await signIn(settings, (line) => ctx.log.info(line));
  },
  async emulator(args) {
    // Loaded only here: the emulator shares no code with the client above.
    const { startOneDriveEmulator } = await import('./emulator/server.ts');
    const started = await startOneDriveEmulator(args);
    return { env: started.env, close: started.close };
  },
};
