// What the Google Photos emulator can be started with (args.ts parses the flags), and the
// answers and names it shares between routes.

import type { CommonFlags } from '../../../src/emulator/kit.ts';

export interface Options {
  common: CommonFlags;
  acceptTokens: string[];
  dailyQuota: number;
  writesPerMinute: number;
  granularity: number;
  videoProcessingMs: number;
  albumLimit: number;
  storageLimit: number;
  clientSecret: string | null;
  refreshTokenTtlMs: number;
  preexisting: string | null;
  retryAfter: number;
  preexistingAnswer: 'exists' | 'failed' | 'item' | 'mixed';
}

export const GENERIC_CREATE_FAILURE = 'Failed: There was an error while trying to create this media item.';
export const EXISTS_FAILURE = 'EXISTS: There was an error while trying to create this media item.';
/** The owner of items another app (the phone's own backup) put in the library. */
export const OTHER_APP = 'other-app:com.google.android.apps.photos';
export const SCOPE_EDIT = 'https://www.googleapis.com/auth/photoslibrary.edit.appcreateddata';
export const CONSUMER = "for consumer 'project_number:000000000000'";
