// Provider options read typed: each CliOption declares its parser (and the environment variable
// that stands in for it), and readOption() hands the provider the parsed value, so a bad value is
// refused with the same one line whichever provider reads it.

import { StopRunError, type CliOption, type ProviderContext } from './types.ts';

/** Declares an option with its value's type, for readOption() to give back. */
export const option = <T>(o: CliOption<T>): CliOption<T> => o;

/** The key commander stores an option under: its long flag in camelCase ("--onedrive-max-wait" -> "onedriveMaxWait"). */
export function optionKey(o: Pick<CliOption, 'flags'>): string {
  return longName(o).replace(/-([a-z0-9])/gi, (_, c: string) => c.toUpperCase());
}

/** The long flag without its dashes ("onedrive-max-wait"). */
const longName = (o: Pick<CliOption, 'flags'>): string => /--([a-z0-9-]+)/i.exec(o.flags)?.[1] ?? o.flags;

/** The option's value from the command line, else from its environment variable, parsed; undefined when neither gives one. */
export function readOption<T>(ctx: Pick<ProviderContext, 'options' | 'env'>, o: CliOption<T>): T | undefined {
  const raw = fromCommandLine(ctx.options, o) ?? (o.env ? ctx.env[o.env] : undefined);
  if (raw === undefined || raw === null || raw === '') return undefined;
  return o.parse ? o.parse(String(raw)) : (raw as T);
}

/** As commander stored it (camelCase, or dashed when a caller built the options by hand), else from the raw arguments. */
function fromCommandLine(options: Record<string, unknown>, o: CliOption): unknown {
  const key = optionKey(o);
  const dashed = longName(o);
  const direct = options[key] ?? options[dashed];
  if (direct !== undefined) return direct;
  // `auth NAME` passes the flags it does not know as raw arguments.
  const args = options.args;
  if (!Array.isArray(args)) return undefined;
  const takesValue = /<[^>]+>/.test(o.flags);
  for (let i = 0; i < args.length; i++) {
    const a = String(args[i]);
    if (a === `--${dashed}`) {
      const next = i + 1 < args.length && !String(args[i + 1]).startsWith('--') ? String(args[i + 1]) : undefined;
      return takesValue ? next : (next ?? true);
    }
    if (a.startsWith(`--${dashed}=`)) return a.slice(dashed.length + 3);
  }
  return undefined;
}

/** A number >= 0 ("0" often means: no limit). */
export function nonNegativeNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new StopRunError('config', `expected a non-negative number, got "${text}"`);
  return n;
}

/** The run's own options a provider may shape itself by, typed: read here once instead of from the bag in each provider. */
export interface RunOptions {
  /** --layout: folders by album (default) or by date. */
  layout: 'album' | 'date';
  /** --concurrency as the run chose it; undefined outside a run or when not passed on. */
  concurrency: number | undefined;
  /** --until: when the run must end by, or null. */
  until: Date | null;
}

export function runOptions(ctx: Pick<ProviderContext, 'options'>): RunOptions {
  const o = ctx.options;
  const absent = o.concurrency === undefined || o.concurrency === null || o.concurrency === '';
  return {
    layout: o.layout === 'date' ? 'date' : 'album',
    concurrency: absent ? undefined : nonNegativeNumber(String(o.concurrency)),
    until: o.until instanceof Date ? o.until : null,
  };
}
