import { describe, expect, it } from 'vitest';
import { AdaptivePacer } from '../src/lib/pacer.ts';

describe('AdaptivePacer (rclone default calculator: attack 1, decay 2)', () => {
  it('doubles the gap on busy up to the ceiling, decays by a quarter to the floor, takes Retry-After as the gap', () => {
    const p = new AdaptivePacer({ minSleepMs: 100, maxSleepMs: 1000 });
    expect(p.currentGapMs).toBe(100);
    p.busy();
    expect(p.currentGapMs).toBe(200);
    p.busy();
    p.busy();
    p.busy();
    expect(p.currentGapMs).toBe(1000);
    p.took();
    expect(p.currentGapMs).toBe(750);
    for (let i = 0; i < 20; i++) p.took();
    expect(p.currentGapMs).toBe(100);
    p.busy(1500);
    expect(p.currentGapMs).toBe(1500);
    p.busy(10);
    expect(p.currentGapMs).toBe(100);
  });

  it('waits the gap after the last answer', async () => {
    const p = new AdaptivePacer({ minSleepMs: 60 });
    await p.wait();
    const t0 = Date.now();
    p.took();
    await p.wait();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
  });
});
