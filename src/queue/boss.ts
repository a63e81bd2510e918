// pg-boss, as queue mode uses it: queues whose jobs are accounts, one queue per pair of source and
// destination kinds (so a worker can skip a provider at its limit without taking its jobs). The `stately` policy keeps
// at most one job per account queued and one active (singleton's one-active rule, plus: loading
// the manifest again does not queue an account twice); its retries hand an account back when a
// run crashed or its worker's lease expired; priority carries the batch's order (--deadline).
// pg-boss's own expiry is set long: a dead worker is noticed by its lease, not by the job.

import PgBoss from 'pg-boss';
import { SESSION_OPTIONS } from './db.ts';
import { kindOf } from '../batch/schedule.ts';
import { BOSS_SCHEMA, QUEUE_PREFIX } from './schema.ts';

export interface AccountJob {
  slug: string;
  /** 'quota': queued for the next Pacific day; a worker without --follow does not wait for it. */
  wait?: 'quota';
}

export const JOB_OPTIONS = {
  retryLimit: 20,
  retryDelay: 5,
  retryBackoff: true,
  // pg-boss 10 allows less than 24 hours; an account running longer is simply fetched again and
  // its lease (still renewed) keeps the second fetch from touching it.
  expireInSeconds: 23 * 3600,
  // pg-boss archives a job still queued after its retention (14 days by default): a batch of
  // thousands of accounts can keep some queued longer than that, and they must not vanish.
  retentionDays: 365,
} as const;

export async function startBoss(url: string): Promise<PgBoss> {
  // pg-boss hands its options to pg.Pool as they are: `options` sets the same idle-in-transaction limit.
  const boss = new PgBoss({
    connectionString: url,
    schema: BOSS_SCHEMA,
    max: 3,
    application_name: 'gallery-bridge pg-boss',
    schedule: false,
    ...({ options: SESSION_OPTIONS } as object),
  });
  boss.on('error', () => undefined);
  await boss.start();
  return boss;
}

/** The queue of accounts moving from `source` to `destination` (specs or kinds). */
export const queueFor = (source: string, destination: string): string => `${QUEUE_PREFIX}${kindOf(source)}--${kindOf(destination)}`;

/** The provider kinds a queue's accounts use. */
export const providersOf = (queue: string): string[] => queue.slice(QUEUE_PREFIX.length).split('--');

const made = new Set<string>();

/** Creates the queue once (any machine may be first). */
export async function ensureQueue(boss: PgBoss, name: string): Promise<void> {
  if (made.has(name)) return;
  if (!(await boss.getQueue(name))) {
    try {
      await boss.createQueue(name, { name, policy: 'stately', ...JOB_OPTIONS });
    } catch (err) {
      // Another machine created it at the same moment.
      if (!(await boss.getQueue(name))) throw err;
    }
  }
  made.add(name);
}

/** Queues the account's job in `queue` (which must exist); null when one is queued already. */
export function sendAccount(
  boss: PgBoss,
  queue: string,
  slug: string,
  priority: number,
  startAfter?: Date | number,
  db?: PgBoss.Db,
  wait?: AccountJob['wait'],
): Promise<string | null> {
  return boss.send(queue, { slug, ...(wait ? { wait } : {}) } satisfies AccountJob, {
    singletonKey: slug,
    priority,
    ...JOB_OPTIONS,
    ...(startAfter !== undefined ? { startAfter } : {}),
    ...(db ? { db } : {}),
  });
}
