// `batch run`, `batch check` and `batch status`: many accounts from one CSV manifest.

import { printable } from '../lib/log.ts';
import { registerSecret } from '../lib/redact.ts';
import fs from 'node:fs';
import path from 'node:path';
import { readManifest } from '../batch/manifest.ts';
import { runBatch } from '../batch/runner.ts';
import { checkBatch, writeCheckReports } from '../batch/check.ts';
import { openBatch, setAccount, syncAccounts, listAccounts } from '../batch/store.ts';
import { batchView } from '../batch/view.ts';
import type { BatchView } from '../batch/view.ts';
import { holderText } from '../report/batch.ts';
import { bytes, duration, rate } from '../report/human.ts';

export interface BatchCommonOpts {
  state: string;
  json: boolean;
}

export interface BatchRunOpts extends BatchCommonOpts {
  deadline?: Date;
  accountsAtOnce: number;
  perProvider?: string;
  deleteSource: boolean;
  googleDailyBudget?: string;
  assumeRate: string;
  concurrency?: number;
  retries?: number;
  verifyWait?: number;
  failStreak: number;
  /** Warm worker processes the accounts at once are spread over (default: the machine's cores). */
  workerProcesses?: number;
  /** Queue mode: the PostgreSQL URL; the manifest is loaded there and any number of workers run it. */
  queue?: string;
  /** --no-work: with --queue, only load the manifest. */
  work: boolean;
  slots?: number;
  name?: string;
  leaseSeconds?: number;
}

const say = (json: boolean) => (line: string) =>
  json
    ? process.stdout.write(JSON.stringify({ type: 'log', message: line, at: new Date().toISOString() }) + '\n')
    : process.stderr.write(printable(line, true) + '\n');

/** "google-photos=2,xiaomi=4" -> { 'google-photos': 2, xiaomi: 4 }, over sensible defaults. */
export function parsePerProvider(v: string | undefined): Record<string, number> {
  // Google's per-project limits are shared by every account; a user's OneDrive and a Xiaomi account are not.
  const out: Record<string, number> = { 'google-photos': 4, onedrive: 8, xiaomi: 8 };
  for (const part of (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z-]+)=(\d+)$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new Error(`--per-provider takes NAME=N pairs separated by commas, as in google-photos=2,xiaomi=4 (got "${part}")`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

function googleBudget(v: string | undefined): number {
  const n = Number(v ?? process.env.GOOGLE_PHOTOS_DAILY_QUOTA ?? 10000);
  return Number.isFinite(n) && n >= 0 ? n : 10000;
}

function passThrough(o: { concurrency?: number; retries?: number; verifyWait?: number }): string[] {
  return [
    ...(o.concurrency ? ['--concurrency', String(o.concurrency)] : []),
    ...(o.retries ? ['--retries', String(o.retries)] : []),
    ...(o.verifyWait ? ['--verify-wait', String(o.verifyWait)] : []),
  ];
}

export async function batchRunCommand(manifestFile: string, o: BatchRunOpts): Promise<number> {
  const m = readManifest(manifestFile);
  if (m.problems.length) {
    for (const p of m.problems) process.stderr.write(printable(`error: ${manifestFile}:${p.line}: ${p.problem}. ${p.todo}`) + '\n');
    process.stderr.write(`run \`gallery-bridge batch check ${manifestFile}\` for the full check report\n`);
    return 2;
  }
  let perProvider: Record<string, number>;
  try {
    perProvider = parsePerProvider(o.perProvider);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 2;
  }
  if (o.queue) {
    const { batchRunQueued } = await import('./worker.ts');
    return batchRunQueued(manifestFile, m.rows, {
      queue: o.queue,
      work: o.work,
      state: o.state,
      name: o.name,
      slots: o.slots,
      leaseSeconds: o.leaseSeconds,
      deadline: o.deadline,
      limits: { accountsAtOnce: o.accountsAtOnce, perProvider },
      deleteSource: o.deleteSource,
      googleDailyBudget: googleBudget(o.googleDailyBudget),
      assumedRate: Number(o.assumeRate) * 1e6,
      passThrough: passThrough(o),
      failStreak: o.failStreak,
      json: o.json,
    });
  }
  if (!o.work) {
    process.stderr.write('error: --no-work only means something with --queue (it loads the manifest into the queue database without working on it)\n');
    return 2;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return runBatch({
    dir: o.state,
    manifestFile,
    rows: m.rows,
    deadline: o.deadline ?? null,
    limits: { accountsAtOnce: o.accountsAtOnce, perProvider },
    deleteSource: o.deleteSource,
    googleDailyBudget: googleBudget(o.googleDailyBudget),
    assumedRate: Number(o.assumeRate) * 1e6,
    passThrough: passThrough(o),
    failStreak: o.failStreak,
    workerProcesses: o.workerProcesses,
    say: say(o.json),
    json: o.json,
    signal: controller.signal,
  });
}

export async function batchCheckCommand(
  manifestFile: string,
  o: BatchCommonOpts & { out?: string; accountsAtOnce: number; googleDailyBudget?: string; queue?: string },
): Promise<number> {
  const m = readManifest(manifestFile);
  const stateDir = fs.existsSync(path.join(o.state, 'batch.db')) || o.out === undefined ? o.state : null;
  const result = await checkBatch(m.rows, m.problems, {
    stateDir,
    parallel: o.accountsAtOnce,
    passThrough: [],
    googleDailyBudget: googleBudget(o.googleDailyBudget),
    say: say(o.json),
  });
  // The counts feed the batch's deadline plan.
  if (stateDir) {
    const db = openBatch(stateDir);
    try {
      syncAccounts(db, m.rows);
      for (const c of result.checks) {
        const slug = listAccounts(db).find((a) => a.account === c.row.account)?.slug;
        if (slug && c.items !== null) setAccount(db, slug, { est_items: c.items, est_bytes: c.bytes });
      }
    } finally {
      db.close();
    }
  }
  if (o.queue) {
    const { recordQueuedEstimates } = await import('./worker.ts');
    if (!(await recordQueuedEstimates(o.queue, result.checks))) return 2;
  }
  const base = o.out ?? path.join(o.state, 'check');
  const files = writeCheckReports(result, base, manifestFile);
  const errors = result.problems.filter((p) => p.severity === 'error');
  if (o.json)
    process.stdout.write(
      JSON.stringify({
        type: 'check',
        ok: errors.length === 0,
        problems: result.problems,
        accounts: result.checks.map((c) => ({
          account: c.row.account,
          ok: c.ok,
          items: c.items,
          bytes: c.bytes,
          to_move_items: c.toMoveItems,
          to_move_bytes: c.toMoveBytes,
          free_bytes: c.freeBytes,
        })),
        reports: files,
      }) + '\n',
    );
  else {
    for (const p of result.problems)
      process.stderr.write(printable(`${p.severity}: ${p.line ? `line ${p.line}: ` : ''}${p.account ? `${p.account}: ` : ''}${p.problem}. ${p.todo}`) + '\n');
    process.stderr.write(
      `check: ${result.checks.filter((c) => c.ok).length} of ${result.checks.length + (m.problems.length ? 0 : 0)} accounts can run; ${errors.length} problem(s) to fix. Reports: ${files.html}, ${files.csv}\n`,
    );
  }
  return errors.length ? 1 : 0;
}

export async function batchStatusCommand(o: BatchCommonOpts & { queue?: string }): Promise<number> {
  let v: BatchView;
  if (o.queue !== undefined) {
    const got = await readQueueView(o.queue);
    if (typeof got === 'string') {
      process.stderr.write(printable(`error: ${got}`) + '\n');
      return 2;
    }
    v = got;
  } else {
    if (!fs.existsSync(path.join(o.state, 'batch.db'))) {
      process.stderr.write(`error: no batch at ${o.state} (give --state DIR, the directory batch run used, or --queue URL)\n`);
      return 2;
    }
    v = batchView(o.state);
  }
  if (o.json) {
    process.stdout.write(JSON.stringify({ type: 'batch-status', ...v }) + '\n');
    return 0;
  }
  process.stdout.write(
    statusLines(v)
      .map((l) => printable(l))
      .join('\n') + '\n',
  );
  return 0;
}

/** The queue database's view, or the one-line reason it cannot be read. */
async function readQueueView(url: string): Promise<BatchView | string> {
  const { openQueue } = await import('../queue/db.ts');
  const { queueBatchView } = await import('../queue/view.ts');
  const { passwordOf } = await import('./serve.ts');
  registerSecret(passwordOf(url));
  let q;
  try {
    q = await openQueue(url, { migrate: false, max: 2 });
  } catch (err) {
    return (err as Error).message;
  }
  try {
    return await queueBatchView(q, url);
  } finally {
    await q.end();
  }
}

function statusLines(v: BatchView): string[] {
  const lines = [
    `batch ${v.dir}${v.running ? ' (running)' : ''}: ${v.totals.byStatus.done ?? 0} of ${v.totals.accounts} accounts done; ${v.totals.doneItems} of ${v.totals.items} items verified (${bytes(v.totals.doneBytes)} of ${bytes(v.totals.bytes)})`,
  ];
  const w = Math.max(7, ...v.accounts.map((a) => a.account.length));
  const hw = v.queue ? Math.max(6, ...v.accounts.map((a) => holderText(a).length)) : 0;
  const worker = (s: string) => (v.queue ? ` ${s.padEnd(hw)}` : '');
  lines.push(
    `${'account'.padEnd(w)}  ${'state'.padEnd(13)} ${'done/items'.padStart(13)} ${'size'.padStart(17)} ${'rate'.padStart(10)} ${'ETA'.padStart(10)}${worker('worker')}  last error / reason`,
  );
  for (const a of v.accounts) {
    lines.push(
      `${a.account.padEnd(w)}  ${a.status.padEnd(13)} ${`${a.doneItems}/${a.items}`.padStart(13)} ${`${bytes(a.doneBytes)}/${bytes(a.bytes)}`.padStart(17)} ${rate(a.rate).padStart(10)} ${(a.status === 'done' ? '—' : duration(a.eta)).padStart(10)}${worker(holderText(a))}  ${a.reason ?? a.lastError ?? ''}`,
    );
  }
  if (v.queue) {
    const q = v.queue;
    lines.push(
      `workers (${q.workers.filter((x) => x.state === 'alive').length} alive of ${q.workers.length}; lease ${q.leaseSeconds === null ? 'default' : `${q.leaseSeconds} s`}):`,
    );
    for (const x of q.workers)
      lines.push(
        `  ${x.name} on ${x.host} pid ${x.pid}: ${x.state}, last heartbeat ${x.heartbeatAt} (${duration(x.heartbeatAge)} ago), ${x.slots} slot(s)${x.accounts.length ? `, holds ${x.accounts.join(', ')}` : ''}`,
      );
    lines.push(`takeovers: ${q.takeovers.length || 'none'}`);
    for (const t of q.takeovers)
      lines.push(`  ${t.at} ${t.account}: ${t.oldWorker} (epoch ${t.oldEpoch}) -> ${t.newWorker} (epoch ${t.newEpoch}): ${t.reason}`);
    lines.push(`deletions at the source, each recorded with its proof before it was made: ${q.deletions.length ? '' : 'none'}`);
    for (const d of q.deletions)
      lines.push(`  ${d.account}: ${d.deleted} deleted${d.unconfirmed ? `, ${d.unconfirmed} begun by a worker that stopped before the answer` : ''}`);
  }
  for (const n of v.notes) lines.push(`note: ${n}`);
  return lines;
}
