// Log lines go to stderr (stdout is for --json and KEY=VALUE output), always through redact().

import type { Logger } from '../../providers/types.ts';
import { redact } from './redact.ts';
import { flushLines } from './lines.ts';

/**
 * A line safe for a terminal: control characters from hostile names (escape sequences, bells,
 * carriage returns, NUL) are shown as \uXXXX instead of acting on the screen or splitting lines.
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(/\p{Cc}/gu, (c) => (keepNewlines && (c === '\n' || c === '\t') ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

export function makeLogger(opts: { json: boolean; verbose: boolean; quiet?: boolean }): Logger {
  const write = (level: string, message: string) => {
    const text = redact(message);
    // Progress lines queued before this one go first.
    flushLines();
    if (opts.json) process.stdout.write(JSON.stringify({ type: 'log', level, message: text, at: new Date().toISOString() }) + '\n');
    else process.stderr.write(`${level === 'info' ? '' : level + ': '}${printable(text, true)}\n`);
  };
  return {
    info: (m) => !opts.quiet && write('info', m),
    warn: (m) => write('warn', m),
    debug: (m) => opts.verbose && write('debug', m),
  };
}
