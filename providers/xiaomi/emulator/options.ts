// What the Xiaomi emulator can be started with: from the command line (args.ts) or by a test.

import type { CommonFlags } from '../../../src/emulator/kit.ts';
import type { QrEmulatorOptions } from './routes/qr.ts';

export const EMULATOR_DEFAULTS = {
  userId: '1234567890',
  passToken: 'emulator-pass-token',
  serviceToken: 'emulator-service-token',
  linkTtlSeconds: 60,
} as const;

export interface XiaomiEmulatorOptions {
  common: CommonFlags;
  seed?: string;
  synthetic?: number;
  userId?: string;
  passToken?: string;
  serviceToken?: string;
  faultWrongSha1?: number;
  faultExpiredLink?: number;
  /** Share of delete requests answered 503 (nothing deleted), from their own seeded sequence. */
  faultDelete?: number;
  linkTtlSeconds?: number;
  downloadHost?: string;
  fileHost?: string;
  /** Answers as a hostile real account may: for tests of the client's robustness. */
  hostile?: HostileListing;
  /** What the account's owner set in the gallery app, by file name: a caption, a favourite mark. */
  userMeta?: Record<string, { description?: string; isFavorite?: boolean }>;
  /** Signing in by QR code (routes/qr.ts): code lifetime, long-poll hold, the lp host. */
  qr?: QrEmulatorOptions;
  /** The gallery refuses sessions until the sign-in passed its second check (routes/trust.ts). */
  galleryNeedsTrust?: boolean;
}

/** Listing quirks a real account may serve, by file name or album name (deterministic, for tests). */
export interface HostileListing {
  /** These files' dateTaken is written in microseconds instead of milliseconds. */
  microsecondDateTaken?: string[];
  /** These pages of these albums answer code 0 with `galleries` missing. */
  missingGalleries?: Array<{ album: string; pageNum: number }>;
  /** These albums' listings end (isLastPage true) after this many items, while mediaCount counts them all. */
  truncate?: Record<string, number>;
  /** These pages of the album list answer code 0 with `albums` missing. */
  missingAlbumPages?: number[];
  /** These albums ignore pageNum (every page is the first) and never say isLastPage true. */
  endlessPages?: string[];
  /** /gallery/storage answers this error for these files. */
  storageErrors?: Record<string, { code: number; retriable: boolean }>;
}
