// What a module keeps for the account a process is running, forgotten when that account ends.
// A process normally runs one account and exits; a batch's warm worker (src/batch/account-worker.ts)
// runs many in turn, and no secret, pacer or other cache of one may reach the next.

const forgetters = new Set<() => void>();

/** Registers a module's reset, called after every account a warm worker runs. */
export function forgetAfterAccount(forget: () => void): void {
  forgetters.add(forget);
}

/** Ends the account: every registered module forgets what it kept for it. */
export function endAccountScope(): void {
  for (const f of forgetters) f();
}
