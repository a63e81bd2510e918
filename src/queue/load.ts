// `batch run --queue`: loads the manifest into the queue database (accounts, the batch's
// settings, sealed credentials) and queues one pg-boss job per account that is not done, in the
// order today's batch runs them (priority, then with --deadline shortest first).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type PgBoss from 'pg-boss';
import type { AccountRow } from '../batch/manifest.ts';
import { kindOf, nextPacificMidnight, orderJobs, pacificDay, planSchedule } from '../batch/schedule.ts';
import type { Job } from '../batch/schedule.ts';
import { defaultHome } from '../lib/credentials.ts';
import { ensureQueue, queueFor, sendAccount } from './boss.ts';
import type { Queue } from './db.ts';
import { QueueError, getMeta, setMeta } from './db.ts';
import type { Limits } from './lease.ts';
import { inTransaction } from './lease.ts';
import { BOSS_SCHEMA, QUEUE_PREFIX, SCHEMA } from './schema.ts';
import { checkKey, credentialFiles, uploadCredentials } from './secrets.ts';

/** The batch's options every worker follows, as `batch run --queue` was given them. */
export interface QueueSettings {
  deadline: string | null;
  limits: Limits;
  deleteSource: boolean;
  googleDailyBudget: number;
  leaseSeconds: number;
  passThrough: string[];
  failStreak: number;
  assumedRate: number;
}

export async function readSettings(q: Queue): Promise<QueueSettings> {
  const raw = await getMeta(q, 'settings');
  if (!raw) throw new QueueError('the queue database holds no batch yet: load one with `gallery-bridge batch run MANIFEST.csv --queue URL`');
  return JSON.parse(raw) as QueueSettings;
}

/** The provider accounts whose credentials an account's run reads. */
export function credentialPairs(a: {
  source: string;
  destination: string;
  source_account: string;
  destination_account: string;
}): Array<{ provider: string; account: string }> {
  const out: Array<{ provider: string; account: string }> = [];
  if (kindOf(a.source) !== 'folder') out.push({ provider: kindOf(a.source), account: a.source_account });
  if (kindOf(a.destination) !== 'folder') out.push({ provider: kindOf(a.destination), account: a.destination_account });
  return out;
}

/**
 * Brings the accounts table in line with the manifest, as the single-machine batch does: an
 * account keeps its state across loads, a changed source or destination is refused (its state
 * belongs to the old pair), accounts gone from the manifest are marked removed, never deleted.
 */
export async function syncQueueAccounts(q: Queue, rows: AccountRow[]): Promise<string[]> {
  return inTransaction(q, async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('gallery_bridge.load'))`);
    const old = new Map(
      (await c.query(`SELECT account, source, destination FROM ${SCHEMA}.accounts`)).rows.map((r) => [
        r.account as string,
        r as { source: string; destination: string },
      ]),
    );
    const problems: string[] = [];
    for (const r of rows) {
      const o = old.get(r.account);
      if (o && (o.source !== r.source || o.destination !== r.destination)) {
        problems.push(
          `line ${r.line}: account "${r.account}" was ${o.source} -> ${o.destination} in this batch; its state belongs to that pair (use a new account name or another queue database)`,
        );
      }
    }
    if (problems.length) return problems;
    for (const r of rows) {
      await c.query(
        `INSERT INTO ${SCHEMA}.accounts (slug, account, line, source, destination, source_account, destination_account, delete_source, delete_evidence, priority)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (account) DO UPDATE SET line = excluded.line, source_account = excluded.source_account, destination_account = excluded.destination_account,
           delete_source = excluded.delete_source, delete_evidence = excluded.delete_evidence, priority = excluded.priority,
           status = CASE WHEN ${SCHEMA}.accounts.status IN ('removed', 'paused', 'waiting-quota') THEN 'waiting' ELSE ${SCHEMA}.accounts.status END`,
        [r.slug, r.account, r.line, r.source, r.destination, r.sourceAccount, r.destinationAccount, r.deleteSource, r.deleteEvidence, r.priority],
      );
    }
    await c.query(`UPDATE ${SCHEMA}.accounts SET status = 'removed', reason = 'no longer in the manifest' WHERE NOT (account = ANY($1::text[]))`, [
      rows.map((r) => r.account),
    ]);
    return [];
  });
}

export interface LoadResult {
  problems: string[];
  queued: number;
  accounts: number;
  done: number;
  credentials: number;
}

export async function loadBatch(
  q: Queue,
  boss: PgBoss,
  o: { manifestFile: string; rows: AccountRow[]; settings: QueueSettings; key: Buffer | null; home?: string },
): Promise<LoadResult> {
  const home = o.home ?? defaultHome();
  const files = credentialFiles(
    home,
    o.rows.flatMap((r) =>
      credentialPairs({ source: r.source, destination: r.destination, source_account: r.sourceAccount, destination_account: r.destinationAccount }),
    ),
  );
  if (files.length && !o.key) {
    return {
      problems: [
        `${files.length} credential file(s) under ${path.join(home, 'credentials')} are needed by the accounts: give GALLERY_BRIDGE_QUEUE_KEY (or GALLERY_BRIDGE_QUEUE_KEY_FILE) so they are stored sealed for the workers`,
      ],
      queued: 0,
      accounts: 0,
      done: 0,
      credentials: 0,
    };
  }
  if (o.key) await checkKey(q, o.key);
  // Nothing is written before every check passed: a refused load leaves the batch as it was.
  const problems = await syncQueueAccounts(q, o.rows);
  if (problems.length) return { problems, queued: 0, accounts: 0, done: 0, credentials: 0 };
  await setMeta(q, 'settings', JSON.stringify(o.settings));
  await setMeta(
    q,
    'manifest',
    JSON.stringify({
      path: path.resolve(o.manifestFile),
      sha256: crypto.createHash('sha256').update(fs.readFileSync(o.manifestFile)).digest('hex'),
      loaded_at: new Date().toISOString(),
    }),
  );
  const credentials = o.key ? await uploadCredentials(q, o.key, home, files) : 0;
  await applyEstimates(q);

  const all = (await q.query(`SELECT * FROM ${SCHEMA}.accounts WHERE status <> 'removed'`)).rows as Array<Record<string, unknown>>;
  const todo = all.filter((a) => a.status !== 'done');
  const jobs: Job[] = todo.map((a) => {
    const items = a.items === null ? null : Number(a.items);
    const known = items !== null;
    return {
      slug: a.slug as string,
      account: a.account as string,
      priority: a.priority as number,
      line: a.line as number,
      providers: [...new Set([kindOf(a.source as string), kindOf(a.destination as string)])],
      remainingItems: known ? items - Number(a.done_items ?? 0) : a.est_items === null ? null : Number(a.est_items),
      remainingBytes: known ? Number(a.bytes ?? 0) - Number(a.done_bytes ?? 0) : a.est_bytes === null ? null : Number(a.est_bytes),
      rate: o.settings.assumedRate,
      google: kindOf(a.destination as string) === 'google-photos',
    };
  });
  const ordered = orderJobs(jobs, o.settings.deadline ? new Date(o.settings.deadline) : null);
  await writePlan(q, ordered, o.settings, all.length);
  let queued = 0;
  // pg-boss takes the highest priority first: the first account in the order gets the highest.
  const bySlug = new Map(todo.map((a) => [a.slug as string, queueFor(a.source as string, a.destination as string)]));
  for (const name of new Set(bySlug.values())) await ensureQueue(boss, name);
  // An account with a job still queued, retrying or running gets no second one: pg-boss would
  // hold the second back behind the first, and every job after it in its queue with it.
  const pending = new Set(
    (
      await q.query(`SELECT DISTINCT singleton_key FROM ${BOSS_SCHEMA}.job WHERE name LIKE $1 AND state IN ('created', 'retry', 'active')`, [
        `${QUEUE_PREFIX}%`,
      ])
    ).rows.map((r) => r.singleton_key as string),
  );
  for (let i = 0; i < ordered.length; i++) {
    const slug = ordered[i]!.slug;
    if (!pending.has(slug) && (await sendAccount(boss, bySlug.get(slug)!, slug, ordered.length - i))) queued++;
  }
  return { problems: [], queued, accounts: all.length, done: all.length - todo.length, credentials };
}

/** The deadline plan of today's batch, over all workers' slots: planned finish per account and the notes a status shows. */
async function writePlan(q: Queue, ordered: Job[], settings: QueueSettings, accounts: number): Promise<void> {
  const deadline = settings.deadline ? new Date(settings.deadline) : null;
  const usedToday = (
    await q.query(`SELECT coalesce(max(CASE WHEN spent THEN cap ELSE used END), 0) AS used FROM ${SCHEMA}.google_budget WHERE day = $1`, [pacificDay()])
  ).rows[0].used as number;
  const google = {
    perDay: settings.googleDailyBudget,
    remainingToday: Math.max(0, settings.googleDailyBudget - Number(usedToday)),
    nextReset: nextPacificMidnight(),
  };
  const plan = planSchedule(ordered, settings.limits, google, new Date(), deadline);
  for (const p of plan) {
    await q.query(`UPDATE ${SCHEMA}.accounts SET planned_finish = $2, makes_deadline = $3 WHERE slug = $1`, [p.slug, p.finish, p.makesDeadline]);
  }
  const notes = [
    `${accounts} accounts: ${accounts - ordered.length} done, ${ordered.length} to run, ${settings.limits.accountsAtOnce} at once across all workers.`,
  ];
  if (ordered.some((j) => j.google))
    notes.push(
      `Google budget: ${google.remainingToday} of ${google.perDay} requests left today (resets ${google.nextReset.toISOString().slice(0, 16).replace('T', ' ')} UTC), shared by every worker.`,
    );
  if (deadline) {
    const miss = plan.filter((p) => p.makesDeadline === false);
    const unknown = plan.filter((p) => p.makesDeadline === null);
    notes.push(
      `Deadline ${deadline.toISOString().slice(0, 16).replace('T', ' ')} UTC: ${plan.length - miss.length - unknown.length} of ${plan.length} accounts finish in time at the assumed rates and budgets.`,
    );
    if (miss.length)
      notes.push(
        `The deadline cannot be met for ${miss.length} account${miss.length > 1 ? 's' : ''}: ${miss.map((p) => ordered.find((j) => j.slug === p.slug)!.account).join(', ')}. They run last, so that the others finish.`,
      );
    if (unknown.length)
      notes.push(`${unknown.length} account${unknown.length > 1 ? 's have' : ' has'} never been counted (run batch check first for a complete plan).`);
  }
  await setMeta(q, 'notes', JSON.stringify(notes));
}

/**
 * `batch check --queue`: the counts feed the deadline plan, as `batch check --state` does on one
 * machine. Kept in meta so that a check before the first load counts too; statuses are untouched.
 */
export async function recordEstimates(q: Queue, counts: Array<{ account: string; items: number | null; bytes: number | null }>): Promise<void> {
  const est = JSON.parse((await getMeta(q, 'estimates')) ?? '{}') as Record<string, { items: number; bytes: number }>;
  for (const c of counts) if (c.items !== null) est[c.account] = { items: c.items, bytes: c.bytes ?? 0 };
  await setMeta(q, 'estimates', JSON.stringify(est));
  await applyEstimates(q);
}

async function applyEstimates(q: Queue): Promise<void> {
  const est = JSON.parse((await getMeta(q, 'estimates')) ?? '{}') as Record<string, { items: number; bytes: number }>;
  for (const [account, e] of Object.entries(est))
    await q.query(`UPDATE ${SCHEMA}.accounts SET est_items = $2, est_bytes = $3 WHERE account = $1`, [account, e.items, e.bytes]);
}
