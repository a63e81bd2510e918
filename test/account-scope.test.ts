// A batch's warm worker may run several accounts at once (src/batch/account-worker.ts): each
// account's registered secrets are masked in every message while it runs, and dropped from the
// process when it ends, whatever the other accounts in the process are doing.

import { describe, expect, it } from 'vitest';
import { endAccountScope, inAccountScope } from '../src/lib/account-scope.ts';
import { redact, registerSecret } from '../src/lib/redact.ts';

describe('secrets of accounts running together in one process', () => {
  it('masks every running account’s secrets, and forgets an account’s when it ends', async () => {
    let endA: () => void = () => undefined;
    let seenByB = '';
    const a = inAccountScope(async () => {
      registerSecret('cookie-of-account-a');
      await new Promise<void>((res) => (endA = res));
    });
    const b = inAccountScope(async () => {
      registerSecret('token-of-account-b');
      // B's messages mask A's secret too while A runs beside it.
      seenByB = redact('a=cookie-of-account-a b=token-of-account-b');
      await a;
      return redact('a=cookie-of-account-a b=token-of-account-b');
    });
    await new Promise((res) => setImmediate(res));
    expect(seenByB).toBe('a=[redacted] b=[redacted]');
    endA();
    // A has ended: the process no longer holds its secret; B's is still masked while B runs.
    expect(await b).toBe('a=cookie-of-account-a b=[redacted]');
    expect(redact('token-of-account-b')).toBe('token-of-account-b');
    endAccountScope();
  });

  it('a process of its own (no account scope) keeps its secrets until the account scope ends', () => {
    registerSecret('process-own-secret');
    expect(redact('x process-own-secret')).toBe('x [redacted]');
    endAccountScope();
    expect(redact('x process-own-secret')).toBe('x process-own-secret');
  });
});
