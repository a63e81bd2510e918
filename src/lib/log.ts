// Log lines go to stderr (stdout is for --json and KEY=VALUE output), always through redact().

import type { Logger } from '../../providers/types.ts';
import { redact } from './redact.ts';

export function makeLogger(opts: { json: boolean; verbose: boolean; quiet?: boolean }): Logger {
  const write = (level: string, message: string) => {
    const text = redact(message);
    if (opts.json) process.stdout.write(JSON.stringify({ type: 'log', level, message: text, at: new Date().toISOString() }) + '\n');
    else process.stderr.write(`${level === 'info' ? '' : level + ': '}${text}\n`);
  };
  return {
    info: (m) => !opts.quiet && write('info', m),
    warn: (m) => write('warn', m),
    debug: (m) => opts.verbose && write('debug', m),
  };
}
