// What an account's `migrate` process does in queue mode. The worker that holds the account
// passes the lease (queue URL, account, epoch, worker) in the environment; this process checks it
// against PostgreSQL itself right before every commit and deletion, because a paused worker's
// children keep running. Losing the lease ends the process at once: the account's state in the
// queue database is the truth, and the new holder starts from there.

import pg from 'pg';
import { RetryableError } from '../../providers/types.ts';
import { installRequestBudget } from '../lib/request-budget.ts';
import { SharedBudget } from './budget.ts';
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
  fence: () => Promise<void>;
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
  const client = new pg.Client({ connectionString: url, application_name: `gallery-bridge migrate ${lease.slug}` });
  client.on('error', () => undefined);
  await client.connect();
  const budget = new SharedBudget(client, Number(env[QUEUE_ENV.googleCap] ?? 10000));
  installRequestBudget(budget);
  // One check at a time on the one connection; a check never waits behind a slow one for long.
  let chain: Promise<unknown> = Promise.resolve();
  const check = async (): Promise<void> => {
    for (;;) {
      const asked = performance.now();
      let held: boolean;
      try {
        held = await leaseHeld(client, lease, margin);
      } catch (err) {
        throw new RetryableError(`cannot reach the queue database to confirm this worker still holds the account (${(err as Error).message}); nothing was committed or deleted`);
      }
      if (!held) onLost(`the lease on account ${lease.slug} (epoch ${lease.epoch}) is no longer this worker's: another worker took the account over; stopping without committing or deleting anything more`);
      // An answer that took long may be older than it looks: this process may have been paused
      // (SIGSTOP) while it waited, and the account taken over meanwhile. Only a fresh yes counts.
      if (performance.now() - asked < (margin * 1000) / 2) return;
    }
  };
  // A worker killed alone leaves this process behind: without it nobody renews the lease, so
  // stop now rather than at the next commit (a restarted worker may run the account again).
  const parent = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid !== parent) onLost(`the worker that started this run (process ${parent}) is gone; stopping without committing or deleting anything more`);
  }, 1000);
  orphaned.unref();
  return {
    fence: () => {
      const next = chain.then(check);
      chain = next.catch(() => undefined);
      return next;
    },
    close: async () => {
      clearInterval(orphaned);
      installRequestBudget(null);
      await budget.release().catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}
