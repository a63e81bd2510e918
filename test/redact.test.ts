// redact() masks every form of secret a message can carry; lines that cannot hold one of its
// patterns (no ':' or '=', no "bearer") skip the scans and come back unchanged.

import { describe, expect, it } from 'vitest';
import { redact } from '../src/lib/redact.ts';

describe('redact', () => {
  it('masks headers, bearer tokens, token parameters, JSON secrets and upload URLs', () => {
    expect(redact('Authorization: Bearer abc.def-ghi')).toBe('Authorization: Bearer [redacted]');
    expect(redact('sent bearer abcdefgh123 to it')).toBe('sent Bearer [redacted] to it');
    expect(redact('BEARER abcdefgh123')).toBe('Bearer [redacted]');
    expect(redact('GET /x?access_token=s3cr3t&y=1')).toBe('GET /x?access_token=[redacted]&y=1');
    expect(redact('{"refresh_token": "r-123", "a": 1}')).toBe('{"refresh_token": "[redacted]", "a": 1}');
    expect(redact('PUT https://127.0.0.1:8443/upload/abc?tempauth=xyz failed')).toBe('PUT https://127.0.0.1:8443/[upload-url redacted] failed');
  });

  it('leaves a line with nothing to mask as it is', () => {
    for (const line of ['uploaded     IMG_0001.jpg\n', 'verified     IMG_0001.jpg (bytes)\n', 'listed 500 items (500 new)', 'a (b) [c] 100%'])
      expect(redact(line)).toBe(line);
  });
});
