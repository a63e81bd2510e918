// A pacer shared by every request a provider makes: a sliding-window rate limit, and a
// pause that one throttled answer (429/503 with Retry-After) imposes on all workers at once,
// as rclone's pacer does. Throttled requests still count against the service's limits, so
// pausing only the one request that was told to wait would keep the others hammering.

import { sleep } from './backoff.ts';

export interface PacerOptions {
  /** At most this many requests per window (0 or undefined: no limit). */
  maxRequests?: number;
  windowMs?: number;
  /** Minimum gap between two requests. */
  minIntervalMs?: number;
}

export class Pacer {
  private pausedUntil = 0;
  private last = 0;
  private readonly stamps: number[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: PacerOptions = {}) {}

  /** Resolves when the next request may go. Calls are served in order. */
  wait(signal?: AbortSignal): Promise<void> {
    const turn = this.chain.then(() => this.waitTurn(signal));
    this.chain = turn.catch(() => undefined);
    return turn;
  }

  /** Every worker waits at least this long from now (the longest pause wins). */
  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }

  get pausedMs(): number {
    return Math.max(0, this.pausedUntil - Date.now());
  }

  private async waitTurn(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      let until = Math.max(this.pausedUntil, this.last + (this.opts.minIntervalMs ?? 0));
      const { maxRequests, windowMs = 1000 } = this.opts;
      if (maxRequests && maxRequests > 0) {
        while (this.stamps.length && this.stamps[0]! <= now - windowMs) this.stamps.shift();
        if (this.stamps.length >= maxRequests) until = Math.max(until, this.stamps[0]! + windowMs);
      }
      if (until <= now) break;
      await sleep(until - now, signal);
    }
    this.last = Date.now();
    if (this.opts.maxRequests) this.stamps.push(this.last);
  }
}

export interface AdaptivePacerOptions {
  /** The floor: the least gap between one call's answer and the next call. */
  minSleepMs: number;
  /** The ceiling the gap grows to while the service keeps saying it is busy. */
  maxSleepMs?: number;
}

/**
 * One call at a time, each after a gap that adapts the way rclone's default pacer calculator
 * does (lib/pacer, decayConstant 2, attackConstant 1): a call the service took shrinks the gap
 * by a quarter down to the floor, a busy answer (5xx, 429, "system busy", a timeout) doubles it
 * up to the ceiling, and a Retry-After is taken as the gap. The gap runs from the last answer, as
 * the public Xiaomi clients' sleeps do, so the floor is never tighter than theirs.
 */
export class AdaptivePacer {
  private gapMs: number;
  private nextAt = 0;
  /** Counters, for the bench and the tests. */
  readonly stats = { calls: 0, busy: 0 };

  constructor(private readonly opts: AdaptivePacerOptions) {
    this.gapMs = opts.minSleepMs;
  }

  /** The gap the next call waits after the last answer. */
  get currentGapMs(): number {
    return this.gapMs;
  }

  /** Resolves when the next call may go. */
  async wait(signal?: AbortSignal): Promise<void> {
    for (let left = this.nextAt - Date.now(); left > 0; left = this.nextAt - Date.now()) await sleep(left, signal);
    this.stats.calls++;
  }

  /** The service took the call: the gap decays toward the floor. */
  took(): void {
    this.gapMs = Math.max(this.opts.minSleepMs, (this.gapMs * 3) / 4);
    this.nextAt = Date.now() + this.gapMs;
  }

  /** The service was busy (or gave no answer): the gap doubles, or becomes its Retry-After. */
  busy(retryAfterMs?: number): void {
    this.stats.busy++;
    const max = this.opts.maxSleepMs ?? 2000;
    const grown = retryAfterMs !== undefined ? retryAfterMs : Math.min(max, Math.max(this.gapMs, 10) * 2);
    this.gapMs = Math.max(this.opts.minSleepMs, grown);
    this.nextAt = Date.now() + this.gapMs;
  }
}
