// Google Photos' command-line options, each with its parser: read typed through readOption().

import { nonNegativeNumber, option } from '../options.ts';

export const GOOGLE_OPTIONS = {
  rawThreshold: option({
    flags: '--google-raw-threshold <bytes>',
    description: 'Google Photos: photos up to this size go in one raw upload request (default 33554432); larger ones and videos use resumable uploads',
    env: 'GOOGLE_PHOTOS_RAW_THRESHOLD',
    parse: nonNegativeNumber,
  }),
  dailyQuota: option({
    flags: '--google-daily-quota <n>',
    description: 'Google Photos: requests a day your project may make, for plan (default 10000)',
    env: 'GOOGLE_PHOTOS_DAILY_QUOTA',
    parse: nonNegativeNumber,
  }),
  keepBytes: option<boolean>({
    flags: '--keep-bytes',
    description:
      'Google Photos: upload every file unchanged; by default a JPEG or MP4/MOV without a date of its own gets its resolved capture date written in (EXIF / movie header), since Google dates such items by upload time',
  }),
  writesPerMinute: option({
    flags: '--google-writes-per-minute <n>',
    description: 'Google Photos: pace uploads and creations to this many a minute (default: no pacing; 429 answers are honoured anyway)',
    env: 'GOOGLE_PHOTOS_WRITES_PER_MINUTE',
    parse: nonNegativeNumber,
  }),
};
