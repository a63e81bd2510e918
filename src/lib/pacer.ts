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
