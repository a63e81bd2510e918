import { describe, expect, it } from 'vitest';
import { GOOGLE_OPTIONS } from '../providers/google-photos/options.ts';
import { ONEDRIVE_OPTIONS } from '../providers/onedrive/index.ts';
import { XIAOMI_OPTIONS } from '../providers/xiaomi/options.ts';
import { optionKey, readOption, runOptions } from '../providers/options.ts';
import { StopRunError } from '../providers/types.ts';

const ctx = (options: Record<string, unknown>, env: Record<string, string> = {}) => ({ options, env });

describe('provider options', () => {
  it('are stored under the key commander gives their long flag', () => {
    expect(optionKey(ONEDRIVE_OPTIONS.requestsPer5Min)).toBe('onedriveRequestsPer5min');
    expect(optionKey(GOOGLE_OPTIONS.keepBytes)).toBe('keepBytes');
  });

  it('hand the provider a parsed value: the flag first, else its environment variable, else nothing', () => {
    const o = GOOGLE_OPTIONS.writesPerMinute;
    expect(readOption(ctx({ googleWritesPerMinute: '30' }, { GOOGLE_PHOTOS_WRITES_PER_MINUTE: '5' }), o)).toBe(30);
    expect(readOption(ctx({}, { GOOGLE_PHOTOS_WRITES_PER_MINUTE: '5' }), o)).toBe(5);
    expect(readOption(ctx({}), o)).toBeUndefined();
    expect(readOption(ctx({ onedriveChunkSize: '320KiB' }), ONEDRIVE_OPTIONS.chunkSize)).toBe(327_680);
    expect(readOption(ctx({ keepBytes: true }), GOOGLE_OPTIONS.keepBytes)).toBe(true);
  });

  it('are found among the raw arguments `auth NAME` passes on, a switch alone and a value after its flag or an =', () => {
    const args = ['--cookie', '--cookie-file', '/tmp/c.txt', '--xiaomi-download-hosts=.cdn.example'];
    expect(readOption(ctx({ args }), XIAOMI_OPTIONS.cookie)).toBe(true);
    expect(readOption(ctx({ args }), XIAOMI_OPTIONS.cookieFile)).toBe('/tmp/c.txt');
    expect(readOption(ctx({ args }), XIAOMI_OPTIONS.downloadHosts)).toBe('.cdn.example');
    expect(readOption(ctx({ args: ['--cookie-file'] }, { XIAOMI_COOKIE_FILE: '/env/c.txt' }), XIAOMI_OPTIONS.cookieFile)).toBe('/env/c.txt');
    expect(readOption(ctx({ args: [] }), XIAOMI_OPTIONS.includePrivate)).toBeUndefined();
  });

  it("give the run's own options typed, with the cautious reading of an absent one", () => {
    const until = new Date('2030-01-02T03:04:05Z');
    expect(runOptions(ctx({ layout: 'date', concurrency: 12, until }))).toEqual({ layout: 'date', concurrency: 12, until });
    expect(runOptions(ctx({}))).toEqual({ layout: 'album', concurrency: undefined, until: null });
  });

  it('refuse a bad value with one line that stops the run as a configuration error', () => {
    for (const o of [GOOGLE_OPTIONS.rawThreshold, ONEDRIVE_OPTIONS.maxWait]) {
      let err: unknown;
      try {
        readOption(ctx({ [optionKey(o)]: 'lots' }), o);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StopRunError);
      expect((err as StopRunError).kind).toBe('config');
      expect((err as Error).message).toBe('expected a non-negative number, got "lots"');
    }
  });
});
