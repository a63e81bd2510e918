// pg-boss, as queue mode uses it: one queue whose jobs are accounts. Its `stately` policy keeps
// at most one job per account queued and one active (singleton's one-active rule, plus: loading
// the manifest again does not queue an account twice); its retries hand an account back when a
// run crashed or its worker's lease expired; priority carries the batch's order (--deadline).
// pg-boss's own expiry is set long: a dead worker is noticed by its lease, not by the job.

import PgBoss from 'pg-boss';
import { SESSION_OPTIONS } from './db.ts';
import { ACCOUNT_QUEUE, BOSS_SCHEMA } from './schema.ts';

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
} as const;

export async function startBoss(url: string): Promise<PgBoss> {
  // pg-boss hands its options to pg.Pool as they are: `options` sets the same idle-in-transaction limit.
  const boss = new PgBoss({ connectionString: url, schema: BOSS_SCHEMA, max: 3, application_name: 'gallery-bridge pg-boss', schedule: false, ...({ options: SESSION_OPTIONS } as object) });
  boss.on('error', () => undefined);
  await boss.start();
  if (!(await boss.getQueue(ACCOUNT_QUEUE))) {
    try {
      await boss.createQueue(ACCOUNT_QUEUE, { name: ACCOUNT_QUEUE, policy: 'stately', ...JOB_OPTIONS });
    } catch (err) {
      // Another machine created it at the same moment.
      if (!(await boss.getQueue(ACCOUNT_QUEUE))) throw err;
    }
  }
  return boss;
}

/** Queues the account's job (null when one is queued already). */
export function sendAccount(boss: PgBoss, slug: string, priority: number, startAfter?: Date | number, db?: PgBoss.Db, wait?: AccountJob['wait']): Promise<string | null> {
  return boss.send(ACCOUNT_QUEUE, { slug, ...(wait ? { wait } : {}) } satisfies AccountJob, { singletonKey: slug, priority, ...JOB_OPTIONS, ...(startAfter !== undefined ? { startAfter } : {}), ...(db ? { db } : {}) });
}
