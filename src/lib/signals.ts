// One AbortSignal shared by everything in flight collects one 'abort' listener per wait: a
// read stream opened with `signal` holds one until it ends, and so do an HTTP request and a
// sleep(). At 32 items in flight Node printed MaxListenersExceededWarning (its limit is 10),
// and a long run's listeners on the shared signal are only as bounded as its waits are.
// SignalFanOut gives each wait a signal of its own, aborted with the shared one, which carries
// a single listener for all of them; a wait's signal is dropped as soon as the wait ends.

export interface ChildSignal {
  signal: AbortSignal;
  /** The wait is over: the child is no longer aborted with the parent, nor kept alive by it. */
  release(): void;
}

export class SignalFanOut {
  private readonly live = new Set<AbortController>();

  constructor(readonly parent: AbortSignal) {
    if (!parent.aborted) parent.addEventListener('abort', () => this.abortAll(), { once: true });
  }

  /** How many children are live (for tests: it must fall back to 0 once every wait is over). */
  get size(): number {
    return this.live.size;
  }

  child(): ChildSignal {
    if (this.parent.aborted) return { signal: AbortSignal.abort(this.parent.reason), release: () => undefined };
    const c = new AbortController();
    this.live.add(c);
    return { signal: c.signal, release: () => void this.live.delete(c) };
  }

  /**
   * child(), aborted also with `other` (with its reason), which holds one listener for it until
   * release. For a call that ends with either of two signals, where `other` is short-lived (an
   * item's own signal): AbortSignal.any costs about 17 us on Node 20 (three times a child), and
   * leaves a reference on each signal it follows, so one of them alive all run long grows with
   * every call (xiaomi/client.ts's deadline() says the same).
   */
  childWith(other: AbortSignal): ChildSignal {
    if (other.aborted) return { signal: AbortSignal.abort(other.reason), release: () => undefined };
    if (this.parent.aborted) return this.child();
    const c = new AbortController();
    this.live.add(c);
    const follow = () => c.abort(other.reason);
    other.addEventListener('abort', follow, { once: true });
    return {
      signal: c.signal,
      release: () => {
        this.live.delete(c);
        other.removeEventListener('abort', follow);
      },
    };
  }

  /** Runs one wait with a child signal, released when the wait settles. */
  async run<T>(wait: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { signal, release } = this.child();
    try {
      return await wait(signal);
    } finally {
      release();
    }
  }

  private abortAll(): void {
    const children = [...this.live];
    this.live.clear();
    for (const c of children) c.abort(this.parent.reason);
  }
}
