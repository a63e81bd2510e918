import { describe, expect, it } from 'vitest';
import { again, done, retry, retryCall, type Outcome } from '../src/lib/retry.ts';

const quick = { baseMs: 1, maxMs: 5, scale: 1 };

/** An attempt that fails `failures` times (throwing), then gives `value`. */
function flaky(failures: number, value = 'ok') {
  const calls: number[] = [];
  const attempt = async (n: number) => {
    calls.push(n);
    if (calls.length <= failures) throw new Error(`failure ${calls.length}`);
    return value;
  };
  return { attempt, calls };
}

const retryOnThrow = (out: Outcome<string>) => (out.ok ? done(out.value) : retry(new Error(`gave up after ${String(out.error)}`)));

describe('retryCall', () => {
  it('tries again until the attempt succeeds, numbering the attempts', async () => {
    const f = flaky(2);
    await expect(retryCall(f.attempt, retryOnThrow, { attempts: 5, backoff: quick })).resolves.toBe('ok');
    expect(f.calls).toEqual([1, 2, 3]);
  });

  it('throws the verdict error once the attempts are spent', async () => {
    const f = flaky(10);
    await expect(retryCall(f.attempt, retryOnThrow, { attempts: 3, backoff: quick })).rejects.toThrow('gave up after Error: failure 3');
    expect(f.calls).toEqual([1, 2, 3]);
  });

  it('waits at least the Retry-After the classifier passes on', async () => {
    const f = flaky(1);
    const t0 = Date.now();
    await retryCall(f.attempt, (out) => (out.ok ? done(out.value) : retry(new Error('x'), 120)), { attempts: 2, backoff: quick });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);
  });

  it('does not count an attempt the classifier answers with again', async () => {
    const f = flaky(3);
    let mended = 0;
    const classify = (out: Outcome<string>) => {
      if (out.ok) return done(out.value);
      if (mended < 2) {
        mended++;
        return again;
      }
      return retry(new Error('spent'));
    };
    await expect(retryCall(f.attempt, classify, { attempts: 2, backoff: quick })).resolves.toBe('ok');
    expect(f.calls).toEqual([1, 1, 1, 2]);
  });

  it('waits on the pacer before every attempt', async () => {
    const f = flaky(2);
    let waits = 0;
    await retryCall(f.attempt, retryOnThrow, { attempts: 5, backoff: quick, before: async () => void waits++ });
    expect(waits).toBe(3);
  });

  it('ends the call with what the step before an attempt throws, without classifying it', async () => {
    const f = flaky(0);
    let asked = 0;
    const before = async () => {
      throw new Error('no token');
    };
    const classify = (out: Outcome<string>) => {
      asked++;
      return retryOnThrow(out);
    };
    await expect(retryCall(f.attempt, classify, { attempts: 5, backoff: quick, before })).rejects.toThrow('no token');
    expect(f.calls).toEqual([]);
    expect(asked).toBe(0);
  });

  it('imposes a shared pause through the pacer, even when it gives up, instead of sleeping alone', async () => {
    const f = flaky(10);
    const pauses: number[] = [];
    const classify = (out: Outcome<string>) => (out.ok ? done(out.value) : retry(new Error('throttled'), 1000, true));
    const t0 = Date.now();
    await expect(retryCall(f.attempt, classify, { attempts: 2, backoff: { baseMs: 1, maxMs: 5, scale: 1 }, pause: (ms) => pauses.push(ms) })).rejects.toThrow(
      'throttled',
    );
    expect(pauses).toHaveLength(2);
    for (const p of pauses) expect(p).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - t0).toBeLessThan(900);
  });

  it('returns a done-after-back-off value only after the back-off', async () => {
    const t0 = Date.now();
    const v = await retryCall(
      async () => 'lost',
      (out) => done(out.ok ? out.value : 'x', true),
      { attempts: 3, backoff: { baseMs: 100, maxMs: 100, scale: 1 } },
    );
    expect(v).toBe('lost');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
  });

  it('ends a back-off wait when the stop signal is raised', async () => {
    const stop = new AbortController();
    const f = flaky(10);
    setTimeout(() => stop.abort(new Error('stopped')), 20);
    const t0 = Date.now();
    await expect(
      retryCall(f.attempt, retryOnThrow, { attempts: 5, signal: stop.signal, backoff: { baseMs: 60_000, maxMs: 60_000, scale: 1 } }),
    ).rejects.toThrow('stopped');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(f.calls).toEqual([1]);
  });

  it('hands back what an attempt throws once the stop signal is raised, without asking the classifier', async () => {
    const stop = new AbortController();
    let asked = 0;
    const attempt = async () => {
      stop.abort();
      throw new Error('cut by the stop');
    };
    await expect(
      retryCall(
        attempt,
        () => {
          asked++;
          return again;
        },
        { attempts: 5, signal: stop.signal },
      ),
    ).rejects.toThrow('cut by the stop');
    expect(asked).toBe(0);
  });
});
