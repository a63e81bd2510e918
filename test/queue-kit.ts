// Queue-mode processes as the distributed tests, the chaos round and the bench start them: worker
// processes in their own process group (so a test can kill or pause a whole "machine": the
// worker and its account children), plain SQL on the queue database, and waiting on conditions.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import pg from 'pg';
import { CLI, ROOT } from './helpers.ts';

export interface WorkerProc {
  name: string;
  dir: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals the worker's whole process group (the worker and the migrate children it started). */
  signalGroup(sig: NodeJS.Signals): void;
}

export function startWorker(o: {
  url: string;
  name: string;
  dir: string;
  env: Record<string, string>;
  slots?: number;
  leaseSeconds?: number;
  follow?: boolean;
}): WorkerProc {
  const args = [
    CLI,
    'worker',
    '--queue',
    o.url,
    '--name',
    o.name,
    '--state',
    o.dir,
    '--slots',
    String(o.slots ?? 2),
    ...(o.leaseSeconds ? ['--lease-seconds', String(o.leaseSeconds)] : []),
    ...(o.follow ? ['--follow'] : []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) readline.createInterface({ input: s }).on('line', (l) => lines.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    name: o.name,
    dir: o.dir,
    child,
    lines,
    exited,
    signalGroup: (sig) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        // the group is gone already
      }
    },
  };
}

export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

export async function until(what: string, f: () => Promise<boolean> | boolean, ms = 180_000, every = 250): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await f()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Live leases by worker: slug -> worker. */
export async function liveLeases(url: string): Promise<Map<string, { worker: string; epoch: number }>> {
  const rows = await sql<{ slug: string; worker: string; epoch: string }>(
    url,
    `SELECT slug, worker, epoch FROM gallery_bridge.leases WHERE released_at IS NULL AND expires_at > now()`,
  );
  return new Map(rows.map((r) => [r.slug, { worker: r.worker, epoch: Number(r.epoch) }]));
}

export async function accountStatuses(url: string): Promise<Map<string, string>> {
  const rows = await sql<{ account: string; status: string }>(url, `SELECT account, status FROM gallery_bridge.accounts WHERE status <> 'removed'`);
  return new Map(rows.map((r) => [r.account, r.status]));
}
