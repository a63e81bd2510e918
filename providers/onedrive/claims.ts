// A per-name lock for the uploads of one process. A second item for the same name waits for the
// first to be committed, then meets its file as an ordinary name conflict: Business would refuse
// its session (a second session for a path answers 409) and Personal would take all its bytes
// and refuse them at the last fragment.

import { sleep } from '../../src/lib/backoff.ts';

/** How long an upload waits for another upload of the run that targets the same name. */
const CLAIM_WAIT_MS = 5 * 60_000;

interface Claim {
  itemId: string;
  done: Promise<void>;
  release: () => void;
}

export class NameClaims {
  /** Target paths (lower case) with an upload in flight, and how to wait for it. */
  private readonly claims = new Map<string, Claim>();

  /**
   * Waits until no other upload of this process targets the same name, then claims it. The wait
   * is bounded: a staged upload whose commit never comes must not hold another item forever (it
   * then meets the name as OneDrive answers it, which is slower but safe). Returns the release.
   */
  async claim(p: string, itemId: string, signal: AbortSignal): Promise<() => void> {
    const key = p.toLowerCase();
    const giveUpAt = Date.now() + CLAIM_WAIT_MS;
    for (;;) {
      const other = this.claims.get(key);
      if (!other || other.itemId === itemId || Date.now() >= giveUpAt) break;
      const timer = new AbortController();
      try {
        await Promise.race([other.done, sleep(Math.max(1, giveUpAt - Date.now()), AbortSignal.any([signal, timer.signal]))]);
      } catch (e) {
        if (signal.aborted) throw e;
      } finally {
        timer.abort(); // no timer outlives the wait
      }
    }
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    const entry = { itemId, done, release };
    this.claims.set(key, entry);
    return () => {
      if (this.claims.get(key) === entry) this.claims.delete(key);
      release();
    };
  }

  /** Releases the claim this item holds on the name, if it still holds it. */
  release(p: string, itemId: string): void {
    const c = this.claims.get(p.toLowerCase());
    if (c && c.itemId === itemId) {
      this.claims.delete(p.toLowerCase());
      c.release();
    }
  }

  releaseAll(): void {
    for (const c of this.claims.values()) c.release();
    this.claims.clear();
  }
}
