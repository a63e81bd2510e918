// Google Photos as a destination (Library API, upload-only scopes), its sign-in and its emulator.

import { readOption } from '../options.ts';
import type { ProviderModule } from '../types.ts';
import { GOOGLE_OPTIONS } from './options.ts';

// The client, destination and sign-in load google-auth-library and sharp: imported only when used, so
// `--help` and runs without Google Photos do not pay for them.

export const googlePhotosProvider: ProviderModule = {
  name: 'google-photos',
  description: 'Google Photos through the Library API (destination; 10,000 requests a day per project)',
  // Measured by bench/concurrency.ts (see the README's --concurrency); more items in flight also fill batchCreate's 50 sooner.
  defaultConcurrency: { destination: 16 },
  cliOptions: Object.values(GOOGLE_OPTIONS),
  async createDestination(ctx) {
    const [{ GoogleApi }, { GooglePhotosDestination }] = await Promise.all([import('./client.ts'), import('./destination.ts')]);
    const api = await GoogleApi.create({
      env: ctx.env,
      home: ctx.home,
      account: ctx.account,
      log: ctx.log,
      writesPerMinute: readOption(ctx, GOOGLE_OPTIONS.writesPerMinute) ?? 0,
      signal: ctx.signal,
    });
    const today = api.quota.today();
    if (today.exhausted)
      ctx.log.warn('Google Photos said earlier today (Pacific time) that the daily request quota is spent; the run stops at the first refusal.');
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
