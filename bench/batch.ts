// Batch runs: the overhead of running many accounts (a state store, a listing and a sign-in
// each, in warm worker processes; for context, also a process each as before) against the same
// items moved as one account, side by side in one run over the Xiaomi emulator; the batch
// process's peak memory; and the HTML report for 100,000 items against the CSV report of the
// same items. BENCH_BATCH_ACCOUNTS and BENCH_BATCH_ITEMS scale it down.

import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import type { BenchRow, BenchSuite } from './types.ts';
import { measure } from './util.ts';
import { startEmulator } from '../providers/xiaomi/test-support.ts';
import { openState } from '../state/db.ts';
import { Items } from '../state/items.ts';
import { startRun } from '../src/engine/runs.ts';
import { poolShape } from '../src/batch/runner.ts';

const CLI = new URL('../bin/gallery-bridge.js', import.meta.url).pathname;
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `gb-bench-batch-${p}-`));

/** A state store with n items as a finished migration leaves them, some needing attention. */
function bigState(file: string, n: number): void {
  const db = openState(file);
  const items = new Items(db);
  const run = startRun(db, {
    command: 'migrate',
    sourceSpec: 'xiaomi',
    destinationSpec: 'google-photos',
    deleteSource: false,
    deleteEvidence: 'pixels',
    concurrency: 4,
  });
  for (let from = 0; from < n; from += 1000) {
    items.recordPage(
      Array.from({ length: Math.min(1000, n - from) }, (_, i) => ({
        sourceId: String(from + i),
        name: `IMG_2024${String(from + i).padStart(6, '0')}.jpg`,
        albumId: `a${(from + i) % 40}`,
        albumName: `Album ${(from + i) % 40}`,
        size: 1_500_000 + ((from + i) % 997) * 1000,
        kind: 'image',
        declaredSha1: null,
        declaredTime: null,
        json: '{}',
      })),
      () => undefined,
      run,
    );
  }
  db.exec(`UPDATE items SET state = 'verified', evidence_level = 'pixels', sha256 = printf('%064x', id), capture_time = '2024-05-01T10:00:00Z' WHERE id % 100 < 90;
    UPDATE items SET state = 'failed', last_error = 'HTTP 503 Service Unavailable' WHERE id % 100 BETWEEN 90 AND 94;
    UPDATE items SET state = 'rejected', reason = 'unsupported format: not a photo or video' WHERE id % 100 BETWEEN 95 AND 97;`);
  db.close();
}

export const suite: BenchSuite = async () => {
  const accounts = Number(process.env.BENCH_BATCH_ACCOUNTS ?? 100);
  const perAccount = Number(process.env.BENCH_BATCH_ITEMS ?? 200);
  const rows: BenchRow[] = [];
  const t = tmp('run');
  const home = path.join(t, 'home');

  // The same items both ways: one account of accounts×perAccount items, and accounts of perAccount each.
  const big = await startEmulator(path.join(t, 'big-data'), { synthetic: accounts * perAccount });
  const small = await startEmulator(path.join(t, 'small-data'), { synthetic: perAccount });
  try {
    const common = { GALLERY_BRIDGE_HOME: home, XIAOMI_MAX_RPS: '0', XIAOMI_DELETE_PAUSE_MS: '0' };
    const one = await measure(
      process.execPath,
      [CLI, 'migrate', '--from', 'xiaomi', '--to', `folder:${path.join(t, 'one')}`, '--state', path.join(t, 'one.db'), '--concurrency', '16'],
      { env: { ...common, ...big.env } },
    );
    if (one.code !== 0) throw new Error(`single account run exited ${one.code}: ${one.stderr.slice(-300)}`);
    const manifest = path.join(t, 'accounts.csv');
    fs.writeFileSync(
      manifest,
      ['account,source,destination', ...Array.from({ length: accounts }, (_, i) => `acct-${i},xiaomi,folder:${path.join(t, 'many', String(i))}`)].join('\n') +
        '\n',
    );
    const runBatch = async (name: string, env: Record<string, string> = {}) => {
      const b = await measure(
        process.execPath,
        [CLI, 'batch', 'run', manifest, '--state', path.join(t, name), '--accounts-at-once', '8', '--per-provider', 'xiaomi=8', '--concurrency', '2'],
        { env: { ...common, ...small.env, ...env } },
      );
      if (b.code !== 0) throw new Error(`batch exited ${b.code}: ${b.stderr.slice(-300)}`);
      fs.rmSync(path.join(t, 'many'), { recursive: true, force: true });
      return b;
    };
    const batch = await runBatch('batch');
    // The way batches ran before warm workers, for context: a migrate process per account.
    const perProcess = await runBatch('batch-per-process', { GALLERY_BRIDGE_BATCH_PROCESS_PER_ACCOUNT: '1' });
    const shape = poolShape(8);
    const peer = { name: `one account, ${accounts * perAccount} items, concurrency 16`, value: one.wallMs / 1000, unit: 's' };
    const ratio = batch.wallMs / one.wallMs;
    rows.push({
      name: `batch of ${accounts} accounts × ${perAccount} small items (8 at once × 2, in ${shape.processes} warm worker processes × ${shape.accountsPerProcess})`,
      value: batch.wallMs / 1000,
      unit: 's',
      peer,
      ratio,
      goal: '≤ 1.2',
      met: ratio <= 1.2,
    });
    rows.push({
      name: 'CPU (user + sys) of that batch, its workers included',
      value: batch.cpuMs / 1000,
      unit: 's',
      peer: { name: 'the one account', value: one.cpuMs / 1000, unit: 's' },
      ratio: batch.cpuMs / one.cpuMs,
    });
    rows.push({
      name: 'context: the same batch with a migrate process per account (as before warm workers)',
      value: perProcess.wallMs / 1000,
      unit: 's',
      peer,
      ratio: perProcess.wallMs / one.wallMs,
    });
    rows.push({
      name: 'context: its CPU (user + sys), children included',
      value: perProcess.cpuMs / 1000,
      unit: 's',
      peer: { name: 'the one account', value: one.cpuMs / 1000, unit: 's' },
      ratio: perProcess.cpuMs / one.cpuMs,
    });
    rows.push({ name: 'peak RSS of the batch process', value: batch.peakRss / 1e6, unit: 'MB', goal: '< 300 MB', met: batch.peakRss < 300e6 });
  } finally {
    await big.close();
    await small.close();
  }

  const N = 100_000;
  const r = tmp('report');
  bigState(path.join(r, 'state.db'), N);
  const html = await measure(process.execPath, [CLI, 'report', '--state', path.join(r, 'state.db'), '--out', path.join(r, 'r.html')]);
  const csv = await measure(process.execPath, [CLI, 'report', '--state', path.join(r, 'state.db'), '--out', path.join(r, 'r.csv')]);
  if (html.code !== 0 || csv.code !== 0) throw new Error(`report exited ${html.code}/${csv.code}`);
  const size = fs.statSync(path.join(r, 'r.html')).size;
  rows.push({
    name: `HTML report, ${N.toLocaleString('en-US')} items (whole command)`,
    value: html.wallMs / 1000,
    unit: 's',
    peer: { name: 'CSV report of the same items', value: csv.wallMs / 1000, unit: 's' },
    ratio: html.wallMs / csv.wallMs,
    goal: '< 5 s',
    met: html.wallMs < 5000,
  });
  rows.push({ name: `HTML report size, ${N.toLocaleString('en-US')} items`, value: size / 1e6, unit: 'MB', goal: '< 20 MB', met: size < 20e6 });
  return rows;
};
