// The batcher that feeds commit() and verify(): full batches per key, at most `parallel`
// batches running at once, and close() waits for every one of them.

import { describe, expect, it } from 'vitest';
import type { CommitRequest, Destination } from '../providers/types.ts';
import { Batcher, commitBatcher } from '../src/engine/batcher.ts';

/** A run() whose calls finish only when the test says, recording how many ran at once. */
function gate() {
  const open: Array<() => void> = [];
  let running = 0;
  let peak = 0;
  const calls: number[][] = [];
  const run = async (batch: number[]): Promise<number[]> => {
    calls.push(batch);
    running++;
    peak = Math.max(peak, running);
    await new Promise<void>((r) => open.push(r));
    running--;
    return batch.map((n) => n * 10);
  };
  return { run, calls, open, peak: () => peak };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('runs one batch at a time unless told otherwise (Google wants commits serial)', async () => {
    const g = gate();
    const b = new Batcher<number, number>(1, g.run, 0);
    const results = [1, 2, 3].map((n) => b.add('', n));
    await tick();
    expect(g.calls).toEqual([[1]]);
    g.open.shift()!();
    await tick();
    expect(g.calls).toEqual([[1], [2]]);
    while (g.open.length || g.calls.length < 3) {
      g.open.shift()?.();
      await tick();
    }
    expect(await Promise.all(results)).toEqual([10, 20, 30]);
    expect(g.peak()).toBe(1);
  });

  it('runs up to `parallel` batches at once, and close() waits for all of them', async () => {
    const g = gate();
    const b = new Batcher<number, number>(2, g.run, 0, 3);
    const results = Array.from({ length: 10 }, (_, i) => b.add('', i));
    let closed = false;
    const closing = b.close().then(() => (closed = true));
    await tick();
    // Ten requests in batches of two; three run at once, the other two wait.
    expect(g.calls).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect(closed).toBe(false);
    while (g.open.length) {
      g.open.shift()!();
      await tick();
    }
    await closing;
    expect(g.calls.length).toBe(5);
    expect(g.peak()).toBe(3);
    expect(await Promise.all(results)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  it('a batch that throws rejects its own requests only', async () => {
    let n = 0;
    const b = new Batcher<number, number>(
      1,
      async (batch) => {
        if (n++ === 0) throw new Error('boom');
        return batch;
      },
      0,
      2,
    );
    const [a, c] = [b.add('', 1), b.add('', 2)];
    await expect(a).rejects.toThrow('boom');
    await expect(c).resolves.toBe(2);
    await b.close();
  });

  it("commit calls overlap as far as the destination's commitConcurrency says, one at a time without it", async () => {
    for (const [limits, peak] of [
      [{ commitBatch: 2 }, 1],
      [{ commitBatch: 2, commitConcurrency: 3 }, 3],
    ] as const) {
      const g = gate();
      const d = { limits, commit: (reqs: CommitRequest[]) => g.run(reqs.map((_, i) => i)) } as unknown as Destination;
      const b = commitBatcher(d);
      const results = Array.from({ length: 8 }, () => b.add('', {} as CommitRequest));
      await tick();
      expect(g.calls.length).toBe(peak);
      while (g.open.length) {
        g.open.shift()!();
        await tick();
      }
      await b.close();
      expect(g.peak()).toBe(peak);
      expect((await Promise.all(results)).length).toBe(8);
    }
  });
});
