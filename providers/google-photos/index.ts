// Google Photos as a destination (Library API, upload-only scopes), its sign-in and its emulator.

import type { ProviderModule } from '../types.ts';

// The client, destination and sign-in load google-auth-library and sharp: imported only when used, so
// `--help` and runs without Google Photos do not pay for them.

const num = (v: unknown): number | undefined => (v === undefined || v === null || v === '' ? undefined : Number(v));

export const googlePhotosProvider: ProviderModule = {
  name: 'google-photos',
  description: 'Google Photos through the Library API (destination; 10,000 requests a day per project)',
  // Measured by bench/concurrency.ts (see the README's --concurrency); more items in flight also fill batchCreate's 50 sooner.
  defaultConcurrency: { destination: 16 },
  cliOptions: [
    { flags: '--google-raw-threshold <bytes>', description: 'Google Photos: photos up to this size go in one raw upload request (default 33554432); larger ones and videos use resumable uploads' },
    { flags: '--google-daily-quota <n>', description: 'Google Photos: requests a day your project may make, for plan (default 10000)' },
    { flags: '--keep-bytes', description: 'Google Photos: upload every file unchanged; by default a JPEG or MP4/MOV without a date of its own gets its resolved capture date written in (EXIF / movie header), since Google dates such items by upload time' },
    { flags: '--google-writes-per-minute <n>', description: 'Google Photos: pace uploads and creations to this many a minute (default: no pacing; 429 answers are honoured anyway)' },
  ],
  async createDestination(ctx) {
    const [{ GoogleApi }, { GooglePhotosDestination }] = await Promise.all([import('./client.ts'), import('./destination.ts')]);
    const api = await GoogleApi.create({
      env: ctx.env,
      home: ctx.home,
      account: ctx.account,
      log: ctx.log,
      writesPerMinute: num(ctx.options.googleWritesPerMinute ?? ctx.env.GOOGLE_PHOTOS_WRITES_PER_MINUTE) ?? 0,
      signal: ctx.signal,
    });
    const today = api.quota.today();
    if (today.exhausted) ctx.log.warn('Google Photos said earlier today (Pacific time) that the daily request quota is spent; the run stops at the first refusal.');
    return new GooglePhotosDestination(api, ctx);
  },
  async auth(ctx) {
    const { runAuth } = await import('./auth.ts');
    return runAuth(ctx);
  },
  async emulator(args) {
    const { startGooglePhotosEmulator } = await import('./emulator/server.ts');
    const handle = await startGooglePhotosEmulator(args);
    return { env: handle.env, close: handle.close };
  },
};
