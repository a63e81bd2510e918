// Queue mode (issue 19) against a real PostgreSQL started here from the machine's server
// binaries (as the tests start it), with the Xiaomi emulator at 50 ms a request so that the work
// waits on the network and not on the two cores:
// - items/s with 1, 2 and 4 worker processes on the same batch: goal ≥ 0.8 of linear per worker;
// - time from a worker's SIGKILL (with its children: a machine gone) to its account running on
//   another worker, at the default lease: goal ≤ 2 min;
// - `batch run --queue` as one worker against today's single-machine `batch run`, same manifest,
//   same accounts at once: goal wall ratio ≤ 1.1.
// BENCH_QUEUE_ACCOUNTS and BENCH_QUEUE_ITEMS scale it (BENCH_QUICK halves them).

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchRow, BenchSuite } from './types.ts';
import { measure } from './util.ts';
import { startEmulator } from '../providers/xiaomi/test-support.ts';
import startPostgres from '../test/setup/postgres.ts';
import { sql } from '../test/queue-kit.ts';
import { DEFAULT_LEASE_SECONDS } from '../src/commands/worker.ts';

const CLI = new URL('../bin/gallery-bridge.js', import.meta.url).pathname;
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `gb-bench-queue-${p}-`));
const LATENCY_MS = 50;

async function freshDb(server: string): Promise<string> {
  const name = `bench_${crypto.randomBytes(5).toString('hex')}`;
  await sql(server, `CREATE DATABASE ${name}`);
  const u = new URL(server);
  u.pathname = `/${name}`;
  return u.toString();
}

function manifest(dir: string, accounts: number): string {
  const file = path.join(dir, 'accounts.csv');
  fs.writeFileSync(
    file,
    ['account,source,destination', ...Array.from({ length: accounts }, (_, i) => `acct-${i},xiaomi,folder:${path.join(dir, 'out', String(i))}`)].join('\n') +
      '\n',
  );
  return file;
}

const run = (args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => resolve({ code, err }));
  });

/** Loads the manifest, then times `workers` worker processes from their start until all leave with nothing left. */
async function workersWall(server: string, env: NodeJS.ProcessEnv, accounts: number, workers: number, slots: number): Promise<number> {
  const dir = tmp(`w${workers}`);
  const url = await freshDb(server);
  const load = await run(
    [
      'batch',
      'run',
      manifest(dir, accounts),
      '--queue',
      url,
      '--no-work',
      '--accounts-at-once',
      String(workers * slots),
      '--per-provider',
      `xiaomi=${workers * slots}`,
      '--concurrency',
      '2',
    ],
    env,
  );
  if (load.code !== 0) throw new Error(`load exited ${load.code}: ${load.err.slice(-300)}`);
  const start = performance.now();
  const codes = await Promise.all(
    Array.from({ length: workers }, (_, i) =>
      run(['worker', '--queue', url, '--name', `w${i}`, '--slots', String(slots), '--state', path.join(dir, `w${i}`)], env),
    ),
  );
  const wall = performance.now() - start;
  const bad = codes.find((c) => c.code !== 0);
  if (bad) throw new Error(`a worker exited ${bad.code}: ${bad.err.slice(-300)}`);
  const [row] = await sql<{ n: string }>(url, `SELECT count(*) AS n FROM gallery_bridge.accounts WHERE status = 'done'`);
  if (Number(row!.n) !== accounts) throw new Error(`${row!.n} of ${accounts} accounts done`);
  return wall;
}

/** Seconds from SIGKILL of the worker holding an account (its whole process group) to another worker holding it. */
async function takeoverSeconds(server: string, env: NodeJS.ProcessEnv, items: number): Promise<number> {
  const dir = tmp('takeover');
  const url = await freshDb(server);
  const load = await run(['batch', 'run', manifest(dir, 1), '--queue', url, '--no-work', '--concurrency', '2'], env);
  if (load.code !== 0) throw new Error(`load exited ${load.code}: ${load.err.slice(-300)}`);
  const spawnWorker = (name: string) =>
    spawn(process.execPath, [CLI, 'worker', '--queue', url, '--name', name, '--slots', '1', '--follow', '--state', path.join(dir, name)], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
      detached: true,
    });
  const holder = async () =>
    (await sql<{ worker: string }>(url, `SELECT worker FROM gallery_bridge.leases WHERE released_at IS NULL AND expires_at > now()`))[0]?.worker;
  const a = spawnWorker('first');
  const b = spawnWorker('second');
  try {
    const deadline = Date.now() + 120_000;
    while (!(await holder())) {
      if (Date.now() > deadline) throw new Error('no worker took the account');
      await new Promise((r) => setTimeout(r, 100));
    }
    const victim = (await holder()) === 'first' ? a : b;
    const other = victim === a ? 'second' : 'first';
    const killed = performance.now();
    process.kill(-victim.pid!, 'SIGKILL');
    while ((await holder()) !== other) {
      if (performance.now() - killed > 300_000) throw new Error(`the account did not move in 5 min (${items} items)`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return (performance.now() - killed) / 1000;
  } finally {
    for (const c of [a, b]) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

export const suite: BenchSuite = async () => {
  const quick = process.env.BENCH_QUICK === '1';
  const accounts = Number(process.env.BENCH_QUEUE_ACCOUNTS ?? (quick ? 8 : 16));
  const items = Number(process.env.BENCH_QUEUE_ITEMS ?? (quick ? 15 : 30));
  const rows: BenchRow[] = [];
  const stopPostgres = await startPostgres();
  const server = process.env.GALLERY_BRIDGE_TEST_PG_URL!;
  const emu = await startEmulator(tmp('xiaomi'), { synthetic: items, latencyMs: LATENCY_MS });
  try {
    const env = { ...emu.env, GALLERY_BRIDGE_HOME: tmp('home'), XIAOMI_MAX_RPS: '0', XIAOMI_DELETE_PAUSE_MS: '0' };
    const total = accounts * items;
    const rate: Record<number, number> = {};
    for (const n of [1, 2, 4]) {
      const wall = await workersWall(server, env, accounts, n, 1);
      rate[n] = total / (wall / 1000);
      const ratio = rate[n]! / (n * rate[1]!);
      rows.push({
        name: `${n} worker${n > 1 ? 's' : ''} (1 slot each), ${accounts} accounts × ${items} items, ${LATENCY_MS} ms a request`,
        value: rate[n]!,
        unit: 'items/s',
        ...(n > 1
          ? { peer: { name: `${n} × the 1-worker rate`, value: n * rate[1]!, unit: 'items/s' }, ratio, goal: '≥ 0.8 of linear', met: ratio >= 0.8 }
          : {}),
      });
    }

    const moved = await takeoverSeconds(server, env, items);
    rows.push({
      name: `SIGKILL of a worker (and its children) to its account on another worker, --lease-seconds ${DEFAULT_LEASE_SECONDS} (the default)`,
      value: moved,
      unit: 's',
      goal: '≤ 120 s',
      met: moved <= 120,
    });

    const dir = tmp('single');
    const m = manifest(dir, accounts);
    const single = await measure(
      process.execPath,
      [CLI, 'batch', 'run', m, '--state', path.join(dir, 'batch'), '--accounts-at-once', '2', '--per-provider', 'xiaomi=2', '--concurrency', '2'],
      { env },
    );
    if (single.code !== 0) throw new Error(`single-machine batch exited ${single.code}: ${single.stderr.slice(-300)}`);
    const qdir = tmp('queued');
    const url = await freshDb(server);
    const queued = await measure(
      process.execPath,
      [
        CLI,
        'batch',
        'run',
        manifest(qdir, accounts),
        '--queue',
        url,
        '--state',
        path.join(qdir, 'worker'),
        '--accounts-at-once',
        '2',
        '--per-provider',
        'xiaomi=2',
        '--concurrency',
        '2',
      ],
      { env },
    );
    if (queued.code !== 0) throw new Error(`queue-mode batch exited ${queued.code}: ${queued.stderr.slice(-300)}`);
    const r = queued.wallMs / single.wallMs;
    rows.push({
      name: `batch run --queue as one worker, ${accounts} accounts × ${items} items, 2 at once`,
      value: queued.wallMs / 1000,
      unit: 's',
      peer: { name: 'batch run on one machine (no database), same manifest', value: single.wallMs / 1000, unit: 's' },
      ratio: r,
      goal: '≤ 1.1',
      met: r <= 1.1,
    });
  } finally {
    await emu.close();
    stopPostgres();
  }
  return rows;
};
