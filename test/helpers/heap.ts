// The heap as a memory test measures it: after full collections, so only what is still reachable
// counts. Importing this module exposes V8's gc() to the test process.

import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of heap in use once two full collections have run. */
export function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
