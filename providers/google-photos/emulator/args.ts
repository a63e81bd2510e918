// `gallery-bridge emulator google-photos ...`: the emulator's own flags (the common ones are
// parsed by src/emulator/kit.ts).

import { parseEmulatorArgs } from '../../../src/emulator/kit.ts';
import * as P from '../protocol.ts';
import type { Options } from './options.ts';

export const EMULATOR_FLAG_HELP = `Google Photos emulator flags:
  --accept-token TOKEN        accept this bearer token (repeatable) with every scope
  --daily-quota N             API requests per project per day (default 10000)
  --writes-per-minute N       write requests (uploads, batchCreate, albums) per minute per user (default 0: no limit)
  --granularity N             X-Goog-Upload-Chunk-Granularity in bytes (default 262144)
  --video-processing-ms N     how long a new video stays PROCESSING (default 3000)
  --album-limit N             items per album (default 20000)
  --storage-limit BYTES       storage of the account (default: unlimited)
  --client-secret S           require this client secret at the token endpoint
  --refresh-token-ttl SEC     refresh tokens expire after this long (an app in "Testing" status: 604800)
  --retry-after SEC           Retry-After of the 429s that --fault-429 injects (default 1)
  --preexisting DIR           files already in the library, uploaded by another app (a phone's backup): this
                              app cannot read them, and uploading the same bytes gets one of Google's answers
  --preexisting-answer KIND   exists (code 6), failed (generic code 3), item (Success with the other app's
                              item) or mixed (each file always gets the same one of the three; default)`;

export function parseOptions(args: string[]): Options {
  const { common, extra } = parseEmulatorArgs(args, {
    'accept-token': { type: 'string', multiple: true },
    'daily-quota': { type: 'string', default: String(P.DEFAULT_DAILY_QUOTA) },
    'writes-per-minute': { type: 'string', default: '0' },
    granularity: { type: 'string', default: '262144' },
    'video-processing-ms': { type: 'string', default: '3000' },
    'album-limit': { type: 'string', default: String(P.MAX_ALBUM_ITEMS) },
    'storage-limit': { type: 'string', default: '0' },
    'client-secret': { type: 'string' },
    'refresh-token-ttl': { type: 'string', default: '0' },
    preexisting: { type: 'string' },
    'retry-after': { type: 'string', default: '1' },
    'preexisting-answer': { type: 'string', default: 'mixed' },
  });
  const answer = String(extra['preexisting-answer']);
  if (!['exists', 'failed', 'item', 'mixed'].includes(answer)) throw new Error(`--preexisting-answer must be exists, failed, item or mixed, got ${answer}`);
  const int = (name: string, v: unknown, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(v)}`);
    return n;
  };
  return {
    common,
    acceptTokens: (extra['accept-token'] as string[] | undefined) ?? [],
    dailyQuota: int('daily-quota', extra['daily-quota'], 0),
    writesPerMinute: int('writes-per-minute', extra['writes-per-minute'], 0),
    granularity: int('granularity', extra.granularity, 1),
    videoProcessingMs: int('video-processing-ms', extra['video-processing-ms'], 0),
    albumLimit: int('album-limit', extra['album-limit'], 1),
    storageLimit: int('storage-limit', extra['storage-limit'], 0),
    clientSecret: (extra['client-secret'] as string | undefined) ?? null,
    refreshTokenTtlMs: int('refresh-token-ttl', extra['refresh-token-ttl'], 0) * 1000,
    preexisting: (extra.preexisting as string | undefined) ?? null,
    retryAfter: int('retry-after', extra['retry-after'], 0),
    preexistingAnswer: answer as Options['preexistingAnswer'],
  };
}
