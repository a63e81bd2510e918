// A migrate child that crashed (killed by a signal such as an out-of-memory kill, or an error that
// escaped it before its summary) says nothing about the account: it goes back to the queue, as a
// dead worker's account does through its lease, and pg-boss's retry (with its back-off) hands it
// to a worker again. Only when it keeps crashing is it paused with the reason, for the admin.
// A run that ended on purpose is not a crash: it printed its summary, or exited with a stop code
// (2 to 5), the fence's 75, or after the interrupt this worker or the admin sent.

import type { ChildProcess } from 'node:child_process';
import type { AccountStatus } from '../batch/store.ts';
import { EXIT_FENCED } from './child.ts';

/** Hand-backs of one job (pg-boss's retry count, for any cause) after which a crash pauses the account. */
export const CRASH_RETRIES = 2;

const ON_PURPOSE = new Set([2, 3, 4, 5, EXIT_FENCED, 130, 143]);

/** Why the child crashed, or null when it ended on purpose. */
export function crashOf(child: Pick<ChildProcess, 'signalCode'>, code: number, summarized: boolean, lastWarn: string | null): string | null {
  const sig = child.signalCode;
  if (summarized || sig === 'SIGTERM' || sig === 'SIGINT') return null;
  if (sig) return `its run was killed by ${sig}`;
  if (ON_PURPOSE.has(code)) return null;
  return `its run crashed (exit ${code}${lastWarn ? `: ${lastWarn}` : ''})`;
}

/** What a crash makes of the account, given how many times its job was handed back already. */
export function afterCrash(crash: string, retryCount: number): { status: AccountStatus; reason: string; todo: string | null } {
  if (retryCount < CRASH_RETRIES)
    return { status: 'waiting', reason: `${crash}; it goes back to the queue (try ${retryCount + 1} of ${CRASH_RETRIES + 1})`, todo: null };
  return {
    status: 'paused',
    reason: `${crash}, on its try ${retryCount + 1} of ${CRASH_RETRIES + 1}: paused`,
    todo: "Read the account's last error and the worker's log, fix the cause, then load the batch again (batch run --queue): the account resumes where it stopped.",
  };
}
