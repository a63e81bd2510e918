// `migrate` and `plan`: open the state and the providers, hand them to the engine, show
// progress, and turn the result into an exit code.

import { setImmediate } from 'node:timers/promises';
import { systemZone } from '../media/zone.ts';
import type { Destination, EvidenceLevel, Source } from '../../providers/types.ts';
import type { ChildHooks } from '../queue/child.ts';
import { openState } from '../../state/db.ts';
import { lockState } from '../../state/lock.ts';
import type { StateLock } from '../../state/lock.ts';
import type { DB } from '../../state/db.ts';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import { runMigration } from '../engine/run.ts';
import type { RunEvent } from '../engine/run.ts';
import { computePlan, type Plan } from '../engine/plan.ts';
import { makeLogger } from '../lib/log.ts';
import { processOutput } from '../lib/lines.ts';
import type { Output } from '../lib/lines.ts';
import { openDestination, openSource } from './providers.ts';
import { datesLines, datesSummary } from '../report/dates.ts';
import { IN_LIBRARY_SQL } from '../report/outcomes.ts';
import { Progress } from './progress.ts';
import { MIGRATIONS } from '../../state/migrations.ts';
import { concurrencyFor } from './concurrency.ts';

export interface MigrateOpts {
  from: string;
  to: string;
  state: string;
  deleteSource: boolean;
  deleteEvidence: EvidenceLevel;
  /** --concurrency; absent: the providers' default (see ./concurrency.ts). */
  concurrency?: number;
  retries: number;
  until?: Date;
  layout: string;
  account: string;
  report?: string;
  verifyWait: number;
  json: boolean;
  verbose: boolean;
  timezone?: string;
  deadline?: Date;
  assumeRate?: string;
  sourceMayBeEmpty: boolean;
  [k: string]: unknown;
}

/** How a batch's warm worker runs one of its accounts: its own output, and its own stop (as SIGTERM would). */
export interface AccountRun {
  out: Output;
  stop: AbortSignal;
}

/** `env`: where queue mode's lease is read (a batch's warm worker passes each account's own). */
export async function migrateCommand(given: MigrateOpts, env: NodeJS.ProcessEnv = process.env, account?: AccountRun): Promise<number> {
  const out = account?.out ?? processOutput;
  const log = makeLogger({ json: given.json, verbose: given.verbose, out });
  // Settled before the providers are built: some size their batches by it (OneDrive's commits).
  const concurrency = await concurrencyFor(given);
  const o = { ...given, concurrency: concurrency.value };
  // The lock comes before the state is opened: a new state's schema is created by one run only.
  const lock: StateLock = lockState(o.state);
  let db: ReturnType<typeof openState>;
  try {
    db = openState(o.state);
  } catch (err) {
    lock.release();
    throw err;
  }
  const tookOverFrom = lock.claim(db);
  if (tookOverFrom)
    log.info(`the state was last held by process ${tookOverFrom.pid} (since ${tookOverFrom.since}), which ended without letting go (killed?); taking it over`);
  const controller = new AbortController();
  let signalExit = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalExit) process.exit(signalExit); // a second Ctrl-C: the state is already consistent
    signalExit = sig === 'SIGTERM' ? 143 : 130;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A stop of this account alone (its worker runs others): as a first SIGTERM, never a second one's exit.
  const onStop = () => {
    if (signalExit) return;
    signalExit = 143;
    controller.abort();
  };
  account?.stop.addEventListener('abort', onStop, { once: true });
  if (account?.stop.aborted) onStop();
  // Everything this run opened is closed and let go however it ends: a batch's warm worker runs
  // the next account in the same process.
  let queue: ChildHooks | null = null;
  let source: Source | null = null;
  let destination: Destination | null = null;
  let progress: Progress | null = null;
  try {
    // Queue mode (a worker started this process for one account): the lease fence and the shared Google budget.
    queue = env.GALLERY_BRIDGE_QUEUE_URL ? await (await import('../queue/child.ts')).childHooks(env, fenced) : null;
    // Providers end their own waits (throttling pauses) on the same signal.
    source = await openSource(db, o.from, o, log, controller.signal);
    destination = await openDestination(db, o.to, o, log, controller.signal);
    // A turn of the event loop before the run's own start (its record, the zone data that loads):
    // the requests a provider asked for as it opened (OneDrive's drive facts, its root's lookups)
    // go out now, and their round trip overlaps that work.
    await setImmediate();
    progress = new Progress({ json: o.json, log, out });
    return await migrateOpened(db, source, destination, progress, o, concurrency.line, controller.signal, queue, () => signalExit, out);
  } finally {
    progress?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    account?.stop.removeEventListener('abort', onStop);
    await source?.close?.();
    await destination?.close?.();
    await queue?.close();
    lock.release();
    db.close();
  }
}

async function migrateOpened(
  db: DB,
  source: Source,
  destination: Destination,
  progress: Progress,
  o: MigrateOpts & { concurrency: number },
  concurrencyLine: string,
  signal: AbortSignal,
  queue: ChildHooks | null,
  signalExit: () => number,
  out: Output,
): Promise<number> {
  const log = makeLogger({ json: o.json, verbose: o.verbose, out });
  // Said once the run has passed its checks: a refused run's reason stays its only line.
  let started = false;
  const result = await runMigration(db, source, destination, {
    deleteSource: o.deleteSource,
    deleteEvidence: o.deleteEvidence,
    concurrency: o.concurrency,
    until: o.until ?? null,
    maxAttempts: o.retries,
    verifyWaitMs: o.verifyWait * 1000,
    sourceMayBeEmpty: o.sourceMayBeEmpty,
    timeZone: o.timezone,
    command: 'migrate',
    sourceSpec: o.from,
    destinationSpec: o.to,
    signal,
    fence: queue?.fence,
    beforeDelete: queue?.beforeDelete,
    onEvent: (e: RunEvent) => {
      if (!started) log.info(concurrencyLine);
      started = true;
      progress.event(e);
    },
  });
  progress.stop();
  if (o.report) {
    // The open source makes the thumbnails of the items that need attention.
    // Loaded only when asked for: the report's thumbnails load an image library.
    const { writeReport } = await import('../report/report.ts');
    const r = await writeReport(db, o.report, { open: async (row) => source.open(JSON.parse(row.item_json)) });
    log.info(`report (${r.format}, ${r.rows} items): ${o.report}`);
  }
  const c = result.counts;
  const summary = {
    type: 'summary',
    run: result.runId,
    exit_code: signalExit() || result.exitCode,
    stopped: result.stopped,
    message: result.message,
    deleted_this_run: result.deleted,
    counts: c,
    report: o.report ?? null,
  };
  if (o.json) out.stdout.write(JSON.stringify(summary) + '\n');
  else {
    // Skipped items the library held from another app are no duplicates within the source: they stay there.
    const inLibrary = (db.prepare(`SELECT count(*) AS n FROM items WHERE ${IN_LIBRARY_SQL}`).get() as { n: number }).n;
    const library = inLibrary ? `${inLibrary} already in your library from another app (kept at the source), ` : '';
    log.info(
      `done: ${c.verified.items} verified, ${c['source-deleted'].items} deleted at source (${result.deleted} this run), ${c.skipped.items - inLibrary} duplicates, ${library}` +
        `${c.failed.items} failed, ${c.rejected.items} rejected, ${c.uploaded.items} awaiting verification, ${c.discovered.items + c.transferring.items} not yet moved`,
    );
    for (const line of datesLines(datesSummary(db))) log.info(line);
    if (c.failed.items + c.rejected.items > 0) log.info(`see why with: gallery-bridge status --state ${o.state}`);
    // Last, where a person looks: progress held the halt's own line back (a bar showed it cut short).
    if (result.stopped) log.warn(result.message ?? `stopped (${result.stopped})`);
  }
  return signalExit() || result.exitCode;
}

/** Another worker holds the account now: stop at once, touching nothing more (its state in the queue is the truth). */
function fenced(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(75);
}

function planDatesLines(d: Plan['dates'], zone: string | undefined): string[] {
  const head = d.opened
    ? `${d.inFile} of ${d.opened} opened items carry their own; ${d.noDateInFile.total} have none`
    : `${d.noDateInFile.total} items not opened ahead (the source is not read twice); where one has no date of its own, it comes from`;
  const lines = [`  capture dates (times without an offset read in ${zone ?? systemZone()}): ${head}`];
  for (const [from, n] of Object.entries(d.noDateInFile.from)) lines.push(`    ${n} dated from ${from}`);
  if (d.dateAdded) lines.push(`    ${d.dateAdded} will get the date written into the uploaded file`);
  for (const [why, n] of Object.entries(d.datedByUpload.why)) lines.push(`    ${n} will be dated by upload: ${why}`);
  return lines;
}

export async function planCommand(given: MigrateOpts): Promise<number> {
  const log = makeLogger({ json: given.json, verbose: given.verbose });
  const concurrency = await concurrencyFor(given);
  const o = { ...given, concurrency: concurrency.value };
  // Planning writes nothing: an existing state is read, a missing one stands in as an empty scratch DB.
  let db: DB;
  if (fs.existsSync(o.state)) db = openState(o.state);
  else {
    db = new Database(':memory:');
    for (const m of MIGRATIONS) db.exec(m);
  }
  const source = await openSource(db, o.from, o, log);
  const destination = await openDestination(db, o.to, o, log);
  try {
    const plan = await computePlan(fs.existsSync(o.state) ? db : null, source, destination, {
      deleteSource: o.deleteSource,
      assumedRate: Number(o.assumeRate ?? 10) * 1e6,
      deadline: o.deadline ?? null,
      probeLimit: 20_000,
      timeZone: o.timezone,
      sourceMayBeEmpty: o.sourceMayBeEmpty,
    });
    if (o.json) {
      process.stdout.write(JSON.stringify({ type: 'plan', ...plan, concurrency: { value: concurrency.value, from: concurrency.from } }) + '\n');
      return 0;
    }
    const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
    const lines = [
      `plan: ${plan.source} -> ${plan.destination}`,
      `  listed:            ${plan.listed.items} items, ${mb(plan.listed.bytes)}`,
      `  already done:      ${plan.done.items} items, ${mb(plan.done.bytes)}`,
      `  to move:           ${plan.toMove.items} items, ${mb(plan.toMove.bytes)}`,
      plan.awaitingVerification ? `  awaiting verification: ${plan.awaitingVerification}` : '',
      o.deleteSource ? `  to delete at the source once verified: up to ${plan.toDelete}` : '  source items are kept (no --delete-source)',
      `  without a capture date: ${plan.undated.items}${plan.undated.items ? ' (they will be dated by upload time where the destination cannot set a date)' : ''}`,
      ...planDatesLines(plan.dates, o.timezone),
      plan.capacity.remainingBytes !== null
        ? `  room at the destination: ${mb(plan.capacity.remainingBytes)} free, ${plan.capacity.fits ? 'fits' : 'DOES NOT FIT'}`
        : '  room at the destination: unknown',
      plan.quota
        ? `  request quota: ${plan.quota.requestsNeeded} requests needed, ${plan.quota.remainingToday} left today of ${plan.quota.perDay}/day: ${plan.quota.days} day(s)` +
          (plan.quota.deadline ? `, ${plan.quota.makesDeadline ? 'makes' : 'MISSES'} the deadline ${plan.quota.deadline.slice(0, 10)}` : '')
        : '',
      `  estimated time:    ${Math.ceil(plan.estimatedSeconds / 60)} min at ${o.assumeRate ?? 10} MB/s`,
      `  ${concurrency.line}`,
      ...plan.notes.map((n) => `  note: ${n.message}`),
    ].filter(Boolean);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  } finally {
    await source.close?.();
    await destination.close?.();
    db.close();
  }
}
