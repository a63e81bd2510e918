// `worker --queue URL` and `batch run MANIFEST --queue URL`: a batch spread over many machines
// through PostgreSQL (see src/queue/ and docs/batches-distributed.md).

import { printable } from '../lib/log.ts';
import { reason } from '../lib/redact.ts';
import type { AccountRow } from '../batch/manifest.ts';
import type { Limits } from '../batch/schedule.ts';

export interface WorkerOpts {
  queue: string;
  slots: number;
  name?: string;
  follow: boolean;
  state: string;
  leaseSeconds?: number;
  json: boolean;
}

export interface QueuedRunOpts {
  queue: string;
  work: boolean;
  state: string;
  name?: string;
  slots?: number;
  leaseSeconds?: number;
  deadline?: Date;
  limits: Limits;
  deleteSource: boolean;
  googleDailyBudget: number;
  assumedRate: number;
  passThrough: string[];
  failStreak: number;
  json: boolean;
}

/** Without --lease-seconds: a dead worker's accounts move again within about 75 s (lease, one renewal round, pg-boss's retry delay, one poll). */
export const DEFAULT_LEASE_SECONDS = 60;

const sayer = (json: boolean) => (line: string) =>
  json
    ? process.stdout.write(JSON.stringify({ type: 'log', message: line, at: new Date().toISOString() }) + '\n')
    : process.stderr.write(printable(line, true) + '\n');

function stopOnSignals(): AbortController {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller;
}

function failed(err: unknown): number {
  process.stderr.write(printable(`error: ${reason(err)}`) + '\n');
  return 2;
}

export async function workerCommand(o: WorkerOpts): Promise<number> {
  const { runWorker, defaultWorkerName } = await import('../queue/worker.ts');
  const { queueKey } = await import('../queue/secrets.ts');
  const controller = stopOnSignals();
  try {
    return await runWorker({
      url: o.queue,
      name: o.name ?? defaultWorkerName(),
      slots: o.slots,
      follow: o.follow,
      dir: o.state,
      leaseSeconds: o.leaseSeconds,
      key: queueKey(),
      say: sayer(o.json),
      json: o.json,
      signal: controller.signal,
    });
  } catch (err) {
    return failed(err);
  }
}

/** Loads the manifest into the queue database, then (unless --no-work) works as one worker. */
export async function batchRunQueued(manifestFile: string, rows: AccountRow[], o: QueuedRunOpts): Promise<number> {
  const { openQueue, getMeta } = await import('../queue/db.ts');
  const { startBoss } = await import('../queue/boss.ts');
  const { loadBatch } = await import('../queue/load.ts');
  const { queueKey } = await import('../queue/secrets.ts');
  const say = sayer(o.json);
  const leaseSeconds = o.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  try {
    const key = queueKey();
    const q = await openQueue(o.queue, { migrate: true });
    try {
      const boss = await startBoss(o.queue);
      try {
        const settings = {
          deadline: o.deadline?.toISOString() ?? null,
          limits: o.limits,
          deleteSource: o.deleteSource,
          googleDailyBudget: o.googleDailyBudget,
          leaseSeconds,
          passThrough: o.passThrough,
          failStreak: o.failStreak,
          assumedRate: o.assumedRate,
        };
        const r = await loadBatch(q, boss, { manifestFile, rows, settings, key });
        if (r.problems.length) {
          for (const p of r.problems) say(`error: ${p}`);
          return 2;
        }
        for (const n of JSON.parse((await getMeta(q, 'notes')) ?? '[]') as string[]) say(n);
        say(
          `queue: ${r.accounts} accounts loaded (${r.done} done, ${r.queued} newly queued), ${r.credentials} credential file(s) stored sealed; lease ${leaseSeconds} s, ${o.limits.accountsAtOnce} accounts at once across all workers`,
        );
      } finally {
        await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
      }
    } finally {
      await q.end().catch(() => undefined);
    }
  } catch (err) {
    return failed(err);
  }
  if (!o.work) return 0;
  const code = await workerCommand({
    queue: o.queue,
    slots: o.slots ?? o.limits.accountsAtOnce,
    name: o.name,
    follow: false,
    state: o.state,
    leaseSeconds: o.leaseSeconds,
    json: o.json,
  });
  if (code !== 0) return code;
  return reportQueued(o.queue, o.state, say);
}

/** The whole batch's reports from the queue database, written into DIR as a single-machine batch has them. */
async function reportQueued(url: string, dir: string, say: (line: string) => void): Promise<number> {
  const { openQueue } = await import('../queue/db.ts');
  const { writeQueueReports } = await import('../queue/reports.ts');
  try {
    const q = await openQueue(url, { migrate: false });
    try {
      const st = (await q.query(`SELECT status, count(*)::int AS n FROM gallery_bridge.accounts WHERE status <> 'removed' GROUP BY status`)).rows as Array<{
        status: string;
        n: number;
      }>;
      const file = await writeQueueReports(q, dir);
      const all = st.reduce((n, r) => n + r.n, 0);
      const done = st.find((r) => r.status === 'done')?.n ?? 0;
      say(
        `batch: ${done} of ${all} accounts done${
          done < all
            ? ` (${st
                .filter((r) => r.status !== 'done')
                .map((r) => `${r.n} ${r.status}`)
                .join(', ')})`
            : ''
        }. Report: ${file}`,
      );
      return done < all ? 1 : 0;
    } finally {
      await q.end().catch(() => undefined);
    }
  } catch (err) {
    return failed(err);
  }
}

/** `batch check --queue`: the counts go to the queue database for the deadline plan. */
export async function recordQueuedEstimates(
  url: string,
  checks: Array<{ row: { account: string }; items: number | null; bytes: number | null }>,
): Promise<boolean> {
  const { openQueue } = await import('../queue/db.ts');
  const { recordEstimates } = await import('../queue/load.ts');
  try {
    const q = await openQueue(url, { migrate: true });
    try {
      await recordEstimates(
        q,
        checks.map((c) => ({ account: c.row.account, items: c.items, bytes: c.bytes })),
      );
      return true;
    } finally {
      await q.end().catch(() => undefined);
    }
  } catch (err) {
    failed(err);
    return false;
  }
}
