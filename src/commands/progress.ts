// A progress bar with rate and ETA on a terminal; plain log lines otherwise; JSON lines with --json.

import { createRequire } from 'node:module';
import type cliProgressTypes from 'cli-progress';
import type { Logger } from '../../providers/types.ts';
import type { RunEvent } from '../engine/run.ts';
import { redact } from '../lib/redact.ts';
import { printable } from '../lib/log.ts';
import { flushLines, processOutput, queueLines } from '../lib/lines.ts';
import type { Output } from '../lib/lines.ts';

export class Progress {
  private bar: cliProgressTypes.SingleBar | null = null;
  private total = 0;
  private done = 0;

  constructor(private readonly o: { json: boolean; log: Logger & { infoLater?(message: string): void }; out?: Output }) {
    if (!o.json && process.stderr.isTTY) {
      // Loaded only for a terminal's bar: 10 ms of every start, which a pipe or --json never uses.
      const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof cliProgressTypes;
      this.bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: '{bar} {value}/{total} items | {rate} items/s | ETA {eta_formatted} | {last}', hideCursor: true, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(0, 0, { rate: '0.0', last: '' });
    }
  }

  private started = Date.now();

  event(e: RunEvent): void {
    if (this.o.json) {
      queueLines(
        (this.o.out ?? processOutput).stdout,
        JSON.stringify({ ...e, detail: 'detail' in e && e.detail ? redact(e.detail) : undefined, at: new Date().toISOString() }) + '\n',
      );
      return;
    }
    if (e.type === 'listed') {
      this.total = e.total;
      this.bar?.setTotal(e.total);
      if (!this.bar) this.o.log.info(`listed ${e.total} items (${e.added} new)`);
      return;
    }
    if (e.type === 'log') {
      if (this.bar) this.bar.update(this.done, { last: e.message.slice(0, 60) });
      else if (e.halt) return;
      else if (e.level === 'warn') this.o.log.warn(e.message);
      else this.o.log.info(e.message);
      return;
    }
    if (e.type === 'item') {
      if (e.state === 'verified' || e.state === 'skipped' || e.state === 'rejected') this.done++;
      if (e.state === 'source-deleted' && this.bar) return;
      if (this.bar) {
        const rate = this.done / Math.max(0.001, (Date.now() - this.started) / 1000);
        this.bar.update(this.done, { rate: rate.toFixed(1), last: printable(`${e.state} ${e.name}`).slice(0, 60) });
      } else {
        const line = `${e.state.padEnd(12)} ${printable(e.name)}${e.detail ? ` (${e.detail})` : ''}`;
        if (this.o.log.infoLater) this.o.log.infoLater(line);
        else this.o.log.info(line);
      }
    }
  }

  stop(): void {
    flushLines();
    this.bar?.stop();
    this.bar = null;
  }
}
