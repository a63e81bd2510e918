// Output lines gathered for one turn of the event loop. A --json run printed three lines an item
// (its bytes, uploaded, verified), each its own stream write and write(2); gathered, one write a
// turn carries all the lines of the items that moved in it. Anything written to the stream
// without going through here must flushLines() first, so the order stays as written.

const pending: Array<{ stream: NodeJS.WritableStream; text: string }> = [];
let scheduled = false;

/** Queues `text` (whole lines) for `stream`; written at the end of this turn of the event loop. */
export function queueLines(stream: NodeJS.WritableStream, text: string): void {
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
