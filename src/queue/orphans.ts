// Account jobs no lease backs. A worker killed after pg-boss handed it an account's job and
// before it took the account's lease leaves that job active with nobody on it: no lease expires,
// so the lease reaper never sees it, and pg-boss's own expiry (23 hours here) is far too late.
// Any worker's upkeep finds such a job once it has been active for a whole lease time (taking a
// lease takes milliseconds) and fails it, so pg-boss's retry hands the account to a worker.

import type { Queue } from './db.ts';
import { BOSS_SCHEMA, QUEUE_PREFIX, SCHEMA } from './schema.ts';

export async function orphanedJobs(q: Queue, leaseSeconds: number): Promise<Array<{ id: string; queue: string; slug: string }>> {
  const r = await q.query<{ id: string; queue: string; slug: string }>(
    `SELECT j.id::text AS id, j.name AS queue, j.singleton_key AS slug FROM ${BOSS_SCHEMA}.job j
      WHERE starts_with(j.name, $1) AND j.state = 'active' AND j.started_on < now() - make_interval(secs => $2)
        AND NOT EXISTS (SELECT 1 FROM ${SCHEMA}.leases l WHERE l.job_id = j.id::text)`,
    [QUEUE_PREFIX, leaseSeconds],
  );
  return r.rows;
}
