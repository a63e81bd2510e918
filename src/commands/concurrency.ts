// How many items a run keeps in flight when the person does not say: what the providers declare
// (measured by bench/concurrency.ts), and a line saying which number is used and why.

import type { ProviderModule } from '../../providers/types.ts';
import { loadProvider, splitSpec } from '../../providers/index.ts';

/** Used when neither the source nor the destination declares a default. */
export const FALLBACK_CONCURRENCY = 4;

export interface ConcurrencyChoice {
  value: number;
  /** Where the number comes from: the option, a provider's default, or the fallback. */
  from: 'option' | 'source' | 'destination' | 'fallback';
  /** For the start of a run and for plan: "concurrency 16 (onedrive's default as a destination; ...)". */
  line: string;
}

const HOW_TO_CHANGE = '--concurrency N to change';

/**
 * An explicit --concurrency always wins. Otherwise the destination's default, capped by the
 * source's when it has one: a source that must be read gently (Xiaomi's per-account service)
 * gains nothing from more items in flight than it serves well, whatever the destination takes.
 */
export function chooseConcurrency(
  explicit: number | undefined,
  source: ProviderModule | undefined,
  destination: ProviderModule | undefined,
): ConcurrencyChoice {
  if (explicit !== undefined) return { value: explicit, from: 'option', line: `concurrency ${explicit} (--concurrency)` };
  const s = source?.defaultConcurrency?.source;
  const d = destination?.defaultConcurrency?.destination;
  const sName = `${source?.name}'s default as a source`;
  const dName = `${destination?.name}'s default as a destination`;
  if (s !== undefined && d !== undefined) {
    const [value, from] = s < d ? [s, 'source' as const] : [d, 'destination' as const];
    const why = s === d ? `${sName} and ${dName}` : from === 'source' ? `${sName}, below ${dName}, ${d}` : `${dName}, below ${sName}, ${s}`;
    return { value, from, line: `concurrency ${value} (${why}; ${HOW_TO_CHANGE})` };
  }
  if (d !== undefined) return { value: d, from: 'destination', line: `concurrency ${d} (${dName}; ${HOW_TO_CHANGE})` };
  if (s !== undefined) return { value: s, from: 'source', line: `concurrency ${s} (${sName}; ${HOW_TO_CHANGE})` };
  return {
    value: FALLBACK_CONCURRENCY,
    from: 'fallback',
    line: `concurrency ${FALLBACK_CONCURRENCY} (no default declared by ${source?.name ?? 'the source'} or ${destination?.name ?? 'the destination'}; ${HOW_TO_CHANGE})`,
  };
}

/** The choice for a run from its specs ("folder:/a", "onedrive:/Pictures"). An unknown name counts as no default: opening it reports the error. */
export async function concurrencyFor(o: { from: string; to: string; concurrency?: number }): Promise<ConcurrencyChoice> {
  const [source, destination] = await Promise.all([loadProvider(splitSpec(o.from).name), loadProvider(splitSpec(o.to).name)]);
  return chooseConcurrency(o.concurrency, source, destination);
}
