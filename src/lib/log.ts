// Log lines go to stderr (stdout is for --json and KEY=VALUE output), always through redact().

import type { Logger } from '../../providers/types.ts';
import { redact } from './redact.ts';
import { flushLines, processOutput, queueLines } from './lines.ts';
import type { LineSink, Output } from './lines.ts';

/**
 * A Logger that can also hold an info line to the end of this turn of the event loop
 * (src/lib/lines.ts): a run's line an item, written with the others of its turn in one write.
 */
export interface RunLogger extends Logger {
  infoLater(message: string): void;
}

/**
 * A line safe for a terminal: control characters from hostile names (escape sequences, bells,
 * carriage returns, NUL) are shown as \uXXXX instead of acting on the screen or splitting lines.
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(/\p{Cc}/gu, (c) => (keepNewlines && (c === '\n' || c === '\t') ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** `out`: where the lines go (a batch's warm worker gives each account its own). */
export function makeLogger(opts: { json: boolean; verbose: boolean; quiet?: boolean; out?: Output }): RunLogger {
  const out = opts.out ?? processOutput;
  const line = (level: string, message: string): [LineSink, string] => {
    const text = redact(message);
    if (opts.json) return [out.stdout, JSON.stringify({ type: 'log', level, message: text, at: new Date().toISOString() }) + '\n'];
    return [out.stderr, `${level === 'info' ? '' : level + ': '}${printable(text, true)}\n`];
  };
  const write = (level: string, message: string) => {
    const [stream, text] = line(level, message);
    // Progress lines queued before this one go first.
    flushLines();
    stream.write(text);
  };
  return {
    info: (m) => !opts.quiet && write('info', m),
    warn: (m) => write('warn', m),
    debug: (m) => opts.verbose && write('debug', m),
    // A line an item, each its own write(2) to stderr, was 3-7% of a OneDrive run's thread.
    infoLater: (m) => !opts.quiet && queueLines(...line('info', m)),
  };
}
