// `batch check`: every row is tried before anything moves. Each account's `plan` runs as its
// own child process (the same code that a run uses to sign in, list and ask the destination for
// room and quota, writing nothing), so the check proves what the run will meet. The result is a
// check report, one line per problem with what to do, and counts per account.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { redact } from '../lib/redact.ts';
import { bytes, count, esc, when } from '../report/human.ts';
import { CSS } from '../report/style.ts';
import type { AccountRow, ManifestProblem } from './manifest.ts';
import { CLI } from './runner.ts';
import { GOOGLE_REQUESTS_PER_ITEM, kindOf } from './schedule.ts';
import { accountStateFile } from './store.ts';

export interface CheckProblem extends ManifestProblem {
  severity: 'error' | 'warning';
}

export interface AccountCheck {
  row: AccountRow;
  ok: boolean;
  items: number | null;
  bytes: number | null;
  toMoveItems: number | null;
  toMoveBytes: number | null;
  freeBytes: number | null;
  googleRequests: number | null;
}

interface PlanJson {
  listed: { items: number; bytes: number };
  toMove: { items: number; bytes: number };
  capacity: { remainingBytes: number | null; fits: boolean | null };
  quota: null | { perDay: number; remainingToday: number; requestsNeeded: number; days: number };
  notes: Array<{ message: string }>;
}

function runPlan(row: AccountRow, stateFile: string, passThrough: string[]): Promise<{ code: number; plan: PlanJson | null; error: string | null }> {
  return new Promise((resolve) => {
    const args = [
      CLI,
      'plan',
      '--from',
      row.source,
      '--to',
      row.destination,
      '--state',
      stateFile,
      '--source-account',
      row.sourceAccount,
      '--destination-account',
      row.destinationAccount,
      '--json',
      ...passThrough,
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    child.on('close', (code) => {
      let plan: PlanJson | null = null;
      for (const line of out.split('\n')) {
        try {
          const j = JSON.parse(line);
          if (j.type === 'plan') plan = j;
        } catch {
          // not a JSON line
        }
      }
      const m = /error: (.*)/.exec(err) ?? /"level":"warn","message":"([^"]*)"/.exec(out);
      resolve({ code: code ?? 1, plan, error: m ? redact(m[1]!) : null });
    });
  });
}

/** The nearest existing folder of a path, and whether we may write there. */
function folderWritable(p: string): string | null {
  let d = path.resolve(p);
  while (!fs.existsSync(d)) d = path.dirname(d);
  if (!fs.statSync(d).isDirectory()) return `${d} is a file, not a folder`;
  try {
    fs.accessSync(d, fs.constants.W_OK);
    return null;
  } catch {
    return `${d} is not writable`;
  }
}

/** The command that signs in the side a refused plan names, with the row's account name filled in. */
function signInCommand(row: AccountRow, error: string | null): string {
  if (kindOf(row.source) === 'xiaomi' && /xiaomi/i.test(error ?? ''))
    return `gallery-bridge auth xiaomi --account ${row.sourceAccount} (it shows a QR code to scan with the Xiaomi app)`;
  return `gallery-bridge auth ${kindOf(row.destination)} --account ${row.destinationAccount}`;
}

export async function checkAccount(
  row: AccountRow,
  stateDir: string | null,
  passThrough: string[],
): Promise<{ check: AccountCheck; problems: CheckProblem[] }> {
  const problems: CheckProblem[] = [];
  const p = (severity: CheckProblem['severity'], problem: string, todo: string) =>
    problems.push({ severity, line: row.line, account: row.account, problem, todo });
  const check: AccountCheck = { row, ok: true, items: null, bytes: null, toMoveItems: null, toMoveBytes: null, freeBytes: null, googleRequests: null };
  if (kindOf(row.destination) === 'folder') {
    const w = folderWritable(row.destination.slice('folder:'.length));
    if (w) p('error', `destination not writable: ${w}`, 'Create the folder or fix its permissions.');
  }
  if (kindOf(row.source) === 'folder' && !fs.existsSync(row.source.slice('folder:'.length)))
    p('error', `source folder ${row.source.slice(7)} does not exist`, 'Fix the path in the manifest.');
  // An existing account state makes the counts say what is left; otherwise a path that does not exist keeps plan from writing.
  const existing = stateDir ? accountStateFile(stateDir, row.slug) : null;
  const stateFile = existing && fs.existsSync(existing) ? existing : path.join(os.tmpdir(), `gb-check-${process.pid}-${row.slug}`, 'none.db');
  const r = problems.length ? null : await runPlan(row, stateFile, passThrough);
  if (r) {
    if (r.code === 3) p('error', `credentials missing or refused: ${r.error ?? 'sign-in failed'}`, `Sign in: ${signInCommand(row, r.error)}.`);
    else if (r.code === 2) p('error', `cannot be set up: ${r.error ?? 'configuration problem'}`, 'Fix the row or the stored sign-in.');
    else if (r.code !== 0 || !r.plan)
      p(
        'error',
        `cannot reach the source or the destination: ${r.error ?? `plan exited ${r.code}`}`,
        'Check the network and that the service is up, then check again.',
      );
    if (r.plan) {
      const pl = r.plan;
      Object.assign(check, {
        items: pl.listed.items,
        bytes: pl.listed.bytes,
        toMoveItems: pl.toMove.items,
        toMoveBytes: pl.toMove.bytes,
        freeBytes: pl.capacity.remainingBytes,
      });
      if (pl.capacity.fits === false)
        p(
          'error',
          `destination full: ${bytes(pl.capacity.remainingBytes)} free, ${bytes(pl.toMove.bytes)} to move`,
          'Free space or buy storage at the destination, or split the account.',
        );
      if (kindOf(row.destination) === 'google-photos') check.googleRequests = Math.ceil(pl.toMove.items * GOOGLE_REQUESTS_PER_ITEM);
      if (pl.listed.items === 0) p('warning', 'the source holds no items', 'Check that this is the right account.');
    }
  }
  check.ok = !problems.some((x) => x.severity === 'error');
  return { check, problems };
}

export interface CheckResult {
  checks: AccountCheck[];
  problems: CheckProblem[];
}

export async function checkBatch(
  rows: AccountRow[],
  syntax: ManifestProblem[],
  o: { stateDir: string | null; parallel: number; passThrough: string[]; googleDailyBudget: number; say: (l: string) => void },
): Promise<CheckResult> {
  const problems: CheckProblem[] = syntax.map((s) => ({ ...s, severity: 'error' as const }));
  const checks: AccountCheck[] = [];
  let next = 0;
  const worker = async () => {
    while (next < rows.length) {
      const row = rows[next++]!;
      const r = await checkAccount(row, o.stateDir, o.passThrough);
      checks.push(r.check);
      problems.push(...r.problems);
      o.say(
        `${row.account}: ${r.check.ok ? 'ok' : 'CANNOT RUN'}${r.check.items !== null ? `, ${count(r.check.items, 'item')}, ${bytes(r.check.bytes)}` : ''}${r.problems.length ? ` — ${r.problems.map((x) => x.problem).join('; ')}` : ''}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.parallel, rows.length)) }, worker));
  checks.sort((a, b) => a.row.line - b.row.line);
  const googleNeed = checks.reduce((n, c) => n + (c.googleRequests ?? 0), 0);
  if (googleNeed > o.googleDailyBudget) {
    problems.push({
      severity: 'warning',
      line: 0,
      account: null,
      problem: `Google accounts need about ${googleNeed.toLocaleString('en-US')} requests; the project's budget is ${o.googleDailyBudget.toLocaleString('en-US')} a day, so they take ${Math.ceil(googleNeed / o.googleDailyBudget)} days`,
      todo: 'Give a --deadline to batch run to see which accounts finish in time, or ask Google for a higher quota.',
    });
  }
  problems.sort((a, b) => a.line - b.line);
  return { checks, problems };
}

export function writeCheckReports(result: CheckResult, outBase: string, manifest: string): { csv: string; html: string } {
  const csv = `${outBase}.csv`;
  const html = `${outBase}.html`;
  fs.mkdirSync(path.dirname(path.resolve(csv)), { recursive: true });
  fs.writeFileSync(
    csv,
    stringify([
      ['line', 'account', 'severity', 'problem', 'what_to_do'],
      ...result.problems.map((p) => [p.line, p.account ?? '', p.severity, p.problem, p.todo]),
    ]),
  );
  const errors = result.problems.filter((p) => p.severity === 'error').length;
  // Rows refused for their syntax never reach a check, but they are accounts that cannot run.
  const all = new Set([...result.checks.map((c) => c.row.account), ...result.problems.filter((p) => p.account && p.line > 1).map((p) => p.account!)]);
  const parts = [
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>gallery-bridge batch check</title><style>${CSS}</style></head><body><main><h1>Batch check</h1><p class="sub">${esc(manifest)} · ${esc(when(new Date().toISOString()))}</p>`,
    `<p class="lead">${result.checks.filter((c) => c.ok).length} of ${count(all.size, 'account')} can run. ${errors ? `${count(errors, 'problem')} must be fixed first.` : 'Nothing blocks the batch.'} In all: ${count(
      result.checks.reduce((n, c) => n + (c.items ?? 0), 0),
      'item',
    )}, ${bytes(result.checks.reduce((n, c) => n + (c.bytes ?? 0), 0))}.</p>`,
    '<h2>Problems</h2>',
    result.problems.length
      ? `<table><tr><th>Line</th><th>Account</th><th>Severity</th><th>Problem</th><th>What to do</th></tr>${result.problems.map((p) => `<tr><td>${p.line || ''}</td><td>${esc(p.account ?? '')}</td><td class="${p.severity === 'error' ? 'err' : ''}">${p.severity}</td><td>${esc(p.problem)}</td><td>${esc(p.todo)}</td></tr>`).join('')}</table>`
      : '<p>None.</p>',
    '<h2>Accounts</h2><table><tr><th>Account</th><th>Source → destination</th><th>Can run</th><th class="n">Items</th><th class="n">Size</th><th class="n">To move</th><th class="n">Free at destination</th></tr>',
    ...result.checks.map(
      (c) =>
        `<tr><td>${esc(c.row.account)}</td><td>${esc(c.row.source)} → ${esc(c.row.destination)}</td><td class="${c.ok ? '' : 'err'}">${c.ok ? 'yes' : 'no'}</td><td class="n">${c.items?.toLocaleString('en-US') ?? '—'}</td><td class="n">${bytes(c.bytes)}</td><td class="n">${c.toMoveItems?.toLocaleString('en-US') ?? '—'} · ${bytes(c.toMoveBytes)}</td><td class="n">${c.freeBytes === null ? 'unknown' : bytes(c.freeBytes)}</td></tr>`,
    ),
    '</table></main></body></html>\n',
  ];
  fs.writeFileSync(html, parts.join(''));
  return { csv, html };
}
