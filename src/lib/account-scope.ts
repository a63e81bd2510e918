// What a module keeps for the account a process is running, forgotten when that account ends.
// A process normally runs one account and exits; a batch's warm worker (src/batch/account-worker.ts)
// runs many, in turn or several at once, and no secret, pacer or other cache of one may reach
// the next. A cache that only speeds things up (a pacer) is forgotten when no account runs in the
// process any more; what one account must keep from the others (its secrets) is held per account
// with accountLocal(), and dropped when that account ends.

import { AsyncLocalStorage } from 'node:async_hooks';

const forgetters = new Set<() => void>();

/** Registers a module's reset, called when a warm worker has no account running any more. */
export function forgetAfterAccount(forget: () => void): void {
  forgetters.add(forget);
}

/** Ends the accounts: every registered module forgets what it kept for them. */
export function endAccountScope(): void {
  for (const f of forgetters) f();
}

type Scope = Map<object, unknown>;
const current = new AsyncLocalStorage<Scope>();
const live = new Set<Scope>();
/** Outside any account scope (a process of its own, one account): the process's own values. */
const processScope: Scope = new Map();

/** Runs one account of a warm worker: what it keeps through accountLocal() is its own, and dropped when it ends. */
export async function inAccountScope<T>(run: () => Promise<T>): Promise<T> {
  const scope: Scope = new Map();
  live.add(scope);
  try {
    return await current.run(scope, run);
  } finally {
    live.delete(scope);
  }
}

/** A value per running account (made on first use), and the process's own outside any account. */
export function accountLocal<T>(make: () => T): { get(): T; all(): T[]; forgetProcess(): void } {
  const key = {};
  return {
    get() {
      const scope = current.getStore() ?? processScope;
      let v = scope.get(key) as T | undefined;
      if (v === undefined) scope.set(key, (v = make()));
      return v;
    },
    all() {
      const out: T[] = [];
      for (const s of [processScope, ...live]) if (s.has(key)) out.push(s.get(key) as T);
      return out;
    },
    forgetProcess() {
      processScope.delete(key);
    },
  };
}
