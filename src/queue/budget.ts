// One Google budget for every worker: a row per project (OAuth client) and Pacific-time day.
// A process reserves requests in blocks with one conditional UPDATE (it wins or changes nothing,
// so concurrent reservers never push `used` past `cap`), spends them one request at a time, and
// gives back what it did not use when it ends. Google's daily-quota 429 marks the day spent for
// all. A process killed while holding a block loses at most that block for the day.

import type pg from 'pg';
import { StopRunError } from '../../providers/types.ts';
import type { RequestBudget } from '../lib/request-budget.ts';
import { nextPacificMidnight, pacificDay } from '../batch/schedule.ts';
import type { Queue } from './db.ts';
import { SCHEMA } from './schema.ts';

type Db = Queue | pg.Client;

/** Grants up to `n` requests of the day's budget (fewer when less is left, 0 when none). */
export async function reserve(q: Db, project: string, day: string, cap: number, n: number): Promise<number> {
  await q.query(`INSERT INTO ${SCHEMA}.google_budget (project, day, cap) VALUES ($1, $2, $3) ON CONFLICT (project, day) DO NOTHING`, [project, day, cap]);
  const r = await q.query(
    `UPDATE ${SCHEMA}.google_budget b SET used = b.used + LEAST($3::int, b.cap - b.used)
     FROM (SELECT used AS before FROM ${SCHEMA}.google_budget WHERE project = $1 AND day = $2 FOR UPDATE) o
     WHERE b.project = $1 AND b.day = $2 AND NOT b.spent AND b.used < b.cap
     RETURNING b.used - o.before AS granted`,
    [project, day, n],
  );
  return r.rows.length ? Number(r.rows[0].granted) : 0;
}

export async function giveBack(q: Db, project: string, day: string, n: number): Promise<void> {
  if (n <= 0) return;
  await q.query(`UPDATE ${SCHEMA}.google_budget SET used = GREATEST(0, used - $3) WHERE project = $1 AND day = $2 AND NOT spent`, [project, day, n]);
}

export async function markSpent(q: Db, project: string, day: string, cap: number): Promise<void> {
  await q.query(
    `INSERT INTO ${SCHEMA}.google_budget (project, day, cap, spent, spent_at) VALUES ($1, $2, $3, true, now())
     ON CONFLICT (project, day) DO UPDATE SET spent = true, spent_at = COALESCE(${SCHEMA}.google_budget.spent_at, now())`,
    [project, day, cap],
  );
}

/** What a project has used today, for status views and the batch's plan. */
export async function budgetToday(
  q: Db,
  project: string | null = null,
): Promise<Array<{ project: string; day: string; cap: number; used: number; spent: boolean }>> {
  const r = await q.query(`SELECT project, day, cap, used, spent FROM ${SCHEMA}.google_budget WHERE day = $1 AND ($2::text IS NULL OR project = $2)`, [
    pacificDay(),
    project,
  ]);
  return r.rows.map((x) => ({ project: x.project, day: x.day, cap: Number(x.cap), used: Number(x.used), spent: x.spent }));
}

/** The request gate a migrate child installs in queue mode: blocks from the shared row, one request at a time. */
export class SharedBudget implements RequestBudget {
  private readonly held = new Map<string, { day: string; left: number }>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly q: Db,
    private readonly cap: number,
    private readonly block = 20,
  ) {}

  take(project: string): Promise<void> {
    // One reservation at a time: concurrent requests share the block just reserved.
    const next = this.chain.then(() => this.takeOne(project));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async takeOne(project: string): Promise<void> {
    const day = pacificDay();
    let h = this.held.get(project);
    if (h && h.day !== day) {
      // A new Pacific day: yesterday's unused block goes back to yesterday's row.
      await giveBack(this.q, project, h.day, h.left);
      h = undefined;
    }
    if (!h || h.left <= 0) {
      const granted = await reserve(this.q, project, day, this.cap, this.block);
      h = { day, left: granted };
      this.held.set(project, h);
      if (granted <= 0) {
        throw new StopRunError(
          'quota',
          `the batch's Google budget for today (${this.cap} requests for the project, shared by every worker) is spent: the account continues after ${nextPacificMidnight().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
        );
      }
    }
    h.left--;
  }

  async spent(project: string): Promise<void> {
    const day = pacificDay();
    this.held.set(project, { day, left: 0 });
    await markSpent(this.q, project, day, this.cap);
  }

  /** Gives back every request reserved and not used. */
  async release(): Promise<void> {
    await this.chain;
    for (const [project, h] of this.held) await giveBack(this.q, project, h.day, h.left).catch(() => undefined);
    this.held.clear();
  }
}
