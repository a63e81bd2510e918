// Exponential back-off with full jitter, honouring a server's Retry-After when it gives one.
// Shared by the engine (item retries) and by providers (request retries inside an upload).

export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  /** Multiplies every delay; tests set it low through GALLERY_BRIDGE_BACKOFF_SCALE. */
  scale?: number;
}

const envScale = (): number => {
  const s = Number(process.env.GALLERY_BRIDGE_BACKOFF_SCALE ?? '1');
  return Number.isFinite(s) && s >= 0 ? s : 1;
};

/** Delay before retry number `attempt` (1-based). Retry-After, when given, is a floor. */
export function backoffDelay(attempt: number, retryAfterMs?: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 1000;
  const max = opts.maxMs ?? 60_000;
  const scale = opts.scale ?? envScale();
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  return Math.max(retryAfterMs ?? 0, jittered) * scale;
}

/** Parses Retry-After (seconds or an HTTP date) into ms, or undefined. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
