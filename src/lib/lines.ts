// Output lines gathered for one turn of the event loop. A --json run printed three lines an item
// (its bytes, uploaded, verified), each its own stream write and write(2); gathered, one write a
// turn carries all the lines of the items that moved in it. Anything written to the stream
// without going through here must flushLines() first, so the order stays as written.

/** Where lines go: process.stdout/stderr, or one account's share of them in a batch's warm worker. */
export interface LineSink {
  write(text: string): unknown;
}

/** A command's two output streams. */
export interface Output {
  stdout: LineSink;
  stderr: LineSink;
}

export const processOutput: Output = { stdout: process.stdout, stderr: process.stderr };

const pending: Array<{ stream: LineSink; text: string }> = [];
let scheduled = false;

/** Queues `text` (whole lines) for `stream`; written at the end of this turn of the event loop. */
export function queueLines(stream: LineSink, text: string): void {
  pending.push({ stream, text });
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushLines);
  }
}

/** Writes what is queued now, in order, one write per run of lines for the same stream. */
export function flushLines(): void {
  scheduled = false;
  let i = 0;
  while (i < pending.length) {
    const { stream } = pending[i]!;
    let text = '';
    for (; i < pending.length && pending[i]!.stream === stream; i++) text += pending[i]!.text;
    stream.write(text);
  }
  pending.length = 0;
}

// process.exit() and the end of the run: nothing queued is left behind (stdout and stderr write
// synchronously to files and pipes, so an exit handler's write lands).
process.on('exit', flushLines);
