// What an account's `migrate` process does in queue mode. The worker that holds the account
// passes the lease (queue URL, account, epoch, worker) in the environment; this process checks it
// against PostgreSQL itself right before every commit and deletion, because a paused worker's
// children keep running; before a deletion it also records the intent and proof there (see
// deletions.ts). Losing the lease ends the process at once: the account's state in the
// queue database is the truth, and the new holder starts from there.

import pg from 'pg';
import { RetryableError } from '../../providers/types.ts';
import { installRequestBudget } from '../lib/request-budget.ts';
import type { DeletionDone, DeletionIntent } from '../engine/context.ts';
import { SharedBudget } from './budget.ts';
import { SESSION_OPTIONS } from './db.ts';
import { markDeletionDone, recordDeletionIntent } from './deletions.ts';
import { leaseHeld } from './lease.ts';

export const QUEUE_ENV = {
  url: 'GALLERY_BRIDGE_QUEUE_URL',
  slug: 'GALLERY_BRIDGE_QUEUE_ACCOUNT',
  epoch: 'GALLERY_BRIDGE_QUEUE_EPOCH',
  worker: 'GALLERY_BRIDGE_QUEUE_WORKER',
  margin: 'GALLERY_BRIDGE_QUEUE_FENCE_MARGIN',
  googleCap: 'GALLERY_BRIDGE_QUEUE_GOOGLE_BUDGET',
} as const;

/** The exit code of a migrate that found its lease gone. */
export const EXIT_FENCED = 75;

export interface ChildHooks {
  /** Right before a destination commit. */
  fence: () => Promise<void>;
  /** Right before a source deletion: the intent and its proof in PostgreSQL, under the same fence. */
  beforeDelete: (intent: DeletionIntent) => Promise<DeletionDone>;
  close: () => Promise<void>;
}

export function queueEnv(o: { url: string; slug: string; epoch: number; worker: string; marginSeconds: number; googleBudget: number }): Record<string, string> {
  return {
    [QUEUE_ENV.url]: o.url,
    [QUEUE_ENV.slug]: o.slug,
    [QUEUE_ENV.epoch]: String(o.epoch),
    [QUEUE_ENV.worker]: o.worker,
    [QUEUE_ENV.margin]: String(o.marginSeconds),
    [QUEUE_ENV.googleCap]: String(o.googleBudget),
  };
}

/** null outside queue mode. */
export async function childHooks(env: NodeJS.ProcessEnv, onLost: (message: string) => never): Promise<ChildHooks | null> {
  const url = env[QUEUE_ENV.url];
  if (!url) return null;
  const lease = { slug: env[QUEUE_ENV.slug] ?? '', epoch: Number(env[QUEUE_ENV.epoch]), worker: env[QUEUE_ENV.worker] ?? '' };
  const margin = Number(env[QUEUE_ENV.margin] ?? 10);
  // The session limit matters here too: this process locks the lease row to record a deletion,
  // and paused in that transaction it must not block the takeover.
  const client = new pg.Client({ connectionString: url, application_name: `gallery-bridge migrate ${lease.slug}`, options: SESSION_OPTIONS });
  client.on('error', () => undefined);
  await client.connect();
  const budget = new SharedBudget(client, Number(env[QUEUE_ENV.googleCap] ?? 10000));
  installRequestBudget(budget);
  // One check at a time on the one connection; a check never waits behind a slow one for long.
  let chain: Promise<unknown> = Promise.resolve();
  const lost = (): never =>
    onLost(
      `the lease on account ${lease.slug} (epoch ${lease.epoch}) is no longer this worker's: another worker took the account over; stopping without committing or deleting anything more`,
    );
  const unreachable = (err: unknown) =>
    new RetryableError(
      `cannot reach the queue database to confirm this worker still holds the account (${(err as Error).message}); nothing was committed or deleted`,
    );
  // An answer that took long may be older than it looks: this process may have been paused
  // (SIGSTOP) while it waited, and the account taken over meanwhile. Only a fresh yes counts.
  const fresh = (asked: number) => performance.now() - asked < (margin * 1000) / 2;
  const check = async (): Promise<void> => {
    for (;;) {
      const asked = performance.now();
      let held: boolean;
      try {
        held = await leaseHeld(client, lease, margin);
      } catch (err) {
        throw unreachable(err);
      }
      if (!held) lost();
      if (fresh(asked)) return;
    }
  };
  const intend = async (intent: DeletionIntent): Promise<number> => {
    const asked = performance.now();
    let id: number | null;
    try {
      id = await recordDeletionIntent(client, lease, margin, intent);
    } catch (err) {
      throw unreachable(err);
    }
    if (id === null) return lost();
    // A slow yes: the intent stands (a row without done_at may or may not be followed by the
    // deletion), and the deletion waits for a fresh one.
    if (!fresh(asked)) await check();
    return id;
  };
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn);
    chain = next.catch(() => undefined);
    return next;
  };
  // A worker killed alone leaves this process behind: without it nobody renews the lease, so
  // stop now rather than at the next commit (a restarted worker may run the account again).
  const parent = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid !== parent) onLost(`the worker that started this run (process ${parent}) is gone; stopping without committing or deleting anything more`);
  }, 1000);
  orphaned.unref();
  return {
    fence: () => serially(check),
    beforeDelete: async (intent) => {
      const id = await serially(() => intend(intent));
      return (response) => serially(() => markDeletionDone(client, id, response));
    },
    close: async () => {
      clearInterval(orphaned);
      // The last deletions' done marks are still queued on the connection.
      await chain;
      installRequestBudget(null);
      await budget.release().catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}
