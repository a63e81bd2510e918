// The source and destination as a run calls them: every open() and upload() for an item gets an
// AbortSignal of its own, aborted with the run's. A provider may hang a listener on the signal it
// is given for as long as the call lasts (a file read stream does, so does an HTTP request);
// with the run's one signal handed to every item in flight, those piled up on it (more than 10
// at --concurrency 32 printed MaxListenersExceededWarning). Everything else passes through.

import { finished, type Readable } from 'node:stream';
import type { Destination, OpenOptions, Source, SourceItem, Staged, UploadInput } from '../../providers/types.ts';
import type { SignalFanOut } from '../lib/signals.ts';

/** `target` with some members replaced; the rest read from it (methods bound to it, absent ones stay absent). */
function overriding<T extends object>(target: T, overrides: Partial<T>): T {
  // A method's bound copy is kept while the target's method stays the same function: the engine
  // reads a dozen members of each an item, and a bind a read was garbage on every one.
  const bound = new Map<PropertyKey, { fn: (...a: unknown[]) => unknown; bound: unknown }>();
  return new Proxy(target, {
    get(t, key) {
      if (Object.hasOwn(overrides, key)) return overrides[key as keyof T];
      const v: unknown = Reflect.get(t, key, t);
      if (typeof v !== 'function') return v;
      const known = bound.get(key);
      if (known?.fn === v) return known.bound;
      const b = v.bind(t);
      bound.set(key, { fn: v as (...a: unknown[]) => unknown, bound: b });
      return b;
    },
  });
}

export function sourceWithOwnSignals(source: Source, fan: SignalFanOut): Source {
  const open = async (item: SourceItem, options?: OpenOptions): Promise<Readable> => {
    if (options?.signal !== fan.parent) return source.open(item, options);
    const { signal, release } = fan.child();
    try {
      const stream = await source.open(item, { ...options, signal });
      // Ended, failed or destroyed by the engine: the read holds its signal no longer.
      finished(stream, release);
      return stream;
    } catch (err) {
      release();
      throw err;
    }
  };
  return overriding(source, { open });
}

export function destinationWithOwnSignals(destination: Destination, fan: SignalFanOut): Destination {
  const upload = (input: UploadInput): Promise<Staged> =>
    input.signal === fan.parent ? fan.run((signal) => destination.upload({ ...input, signal })) : destination.upload(input);
  return overriding(destination, { upload });
}
