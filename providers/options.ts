// Provider options read typed: each CliOption declares its parser (and the environment variable
// that stands in for it), and readOption() hands the provider the parsed value, so a bad value is
// refused with the same one line whichever provider reads it.

import { StopRunError, type CliOption, type ProviderContext } from './types.ts';

/** Declares an option with its value's type, for readOption() to give back. */
export const option = <T>(o: CliOption<T>): CliOption<T> => o;

/** The key commander stores an option under: its long flag in camelCase ("--onedrive-max-wait" -> "onedriveMaxWait"). */
export function optionKey(o: Pick<CliOption, 'flags'>): string {
  const long = /--([a-z0-9-]+)/i.exec(o.flags)?.[1] ?? o.flags;
  return long.replace(/-([a-z0-9])/gi, (_, c: string) => c.toUpperCase());
}

/** The option's value from the command line, else from its environment variable, parsed; undefined when neither gives one. */
export function readOption<T>(ctx: Pick<ProviderContext, 'options' | 'env'>, o: CliOption<T>): T | undefined {
  const raw = ctx.options[optionKey(o)] ?? (o.env ? ctx.env[o.env] : undefined);
  if (raw === undefined || raw === null || raw === '') return undefined;
  return o.parse ? o.parse(String(raw)) : (raw as T);
}

/** A number >= 0 ("0" often means: no limit). */
export function nonNegativeNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new StopRunError('config', `expected a non-negative number, got "${text}"`);
  return n;
}
