// One retry loop for every HTTP call a provider makes, in the spirit of rclone's pacer.Call:
// the caller says how to make one attempt and how to read its outcome; this loop owns the
// pacing, the back-off (Retry-After as a floor), the cap on attempts and the stop signal.
// Providers differ only in their classifier, so a fix to the loop reaches all of them.

import { backoffDelay, sleep, type BackoffOptions } from './backoff.ts';

/** What one attempt gave: its value, or what it threw. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** The classifier's word on one outcome. A classifier may also throw, which ends the call. */
export type Verdict<T> =
  /**
   * The call is over: return `value`. With `afterBackOff`, only after the back-off a retry would
   * have waited, so the caller's next request is paced as the retry would have been.
   */
  | { kind: 'done'; value: T; afterBackOff?: boolean }
  /**
   * Try again; counts against the attempts, and `error` is thrown when they are spent.
   * `retryAfterMs` (the server's Retry-After) is the least the back-off waits. With `shared`,
   * the wait is imposed on every request through `Pacing.pause` (throttling counts against the
   * service's limits for all workers), even when this call gives up.
   */
  | { kind: 'retry'; error: Error; retryAfterMs?: number; shared?: boolean }
  /**
   * Try again at once without counting an attempt: the classifier mended something (renewed a
   * token) or imposed a pause itself. It must bound how often it answers this.
   */
  | { kind: 'again' };

export interface Pacing {
  /** Attempts counted by `retry` verdicts, the first included. */
  attempts: number;
  /** The run's stop: every wait ends with it, and an attempt that throws once it is raised ends the call. */
  signal?: AbortSignal;
  /**
   * Runs before every attempt: the wait on a Pacer shared by the provider's requests, and
   * whatever else must precede a request (a budget, a count, a token). What it throws ends the
   * call; only what the attempt throws is classified.
   */
  before?: (signal?: AbortSignal) => Promise<void>;
  /** Pauses every request sharing the pacer (slept off in `before`); needed for `shared` verdicts. May throw to stop the run. */
  pause?: (ms: number) => void;
  backoff?: BackoffOptions;
}

/** Makes attempts until the classifier says done, throws, or the attempts are spent. */
export async function retryCall<R, T>(
  attempt: (n: number) => Promise<R>,
  classify: (outcome: Outcome<R>, n: number) => Verdict<T> | Promise<Verdict<T>>,
  pacing: Pacing,
): Promise<T> {
  const { signal } = pacing;
  for (let n = 1; ; ) {
    await pacing.before?.(signal);
    let outcome: Outcome<R>;
    try {
      outcome = { ok: true, value: await attempt(n) };
    } catch (error) {
      if (signal?.aborted) throw error;
      outcome = { ok: false, error };
    }
    const verdict = await classify(outcome, n);
    if (verdict.kind === 'again') continue;
    if (verdict.kind === 'done') {
      if (verdict.afterBackOff) await sleep(backoffDelay(n, undefined, pacing.backoff), signal);
      return verdict.value;
    }
    const delay = backoffDelay(n, verdict.retryAfterMs, pacing.backoff);
    if (verdict.shared) {
      if (!pacing.pause) throw new Error('retryCall: a shared retry needs Pacing.pause');
      pacing.pause(delay);
    }
    if (n >= pacing.attempts) throw verdict.error;
    // A shared pause is slept off in the next before(), with every other request.
    if (!verdict.shared) await sleep(delay, signal);
    n++;
  }
}

/** Shorthands for classifiers. */
export const done = <T>(value: T, afterBackOff = false): Verdict<T> => ({ kind: 'done', value, afterBackOff });
export const retry = (error: Error, retryAfterMs?: number, shared = false): Verdict<never> => ({ kind: 'retry', error, retryAfterMs, shared });
export const again: Verdict<never> = { kind: 'again' };
