// A batch runs its accounts in warm worker processes (src/batch/pool.ts): fewer processes than
// accounts, and still one account's end is its own. Checked from the outside: the processes the
// batch starts (/proc), the files at each destination, the batch's status, and a state file
// another process can take as soon as its account ended in a worker that lives on.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../providers/xiaomi/test-support.ts';
import type { XiaomiEmulator } from '../providers/xiaomi/emulator/server.ts';
import { CLI, runCli, tmpDir } from './helpers.ts';
import { accountWorkersOf, watchAccountWorkers } from './helpers/account-workers.ts';

const ITEMS = 30;
let emu: XiaomiEmulator;
let t: string;
beforeAll(async () => {
  t = tmpDir('gb-batch-warm-');
  // 40 ms a request: an account takes long enough to be caught part-way.
  emu = await startEmulator(path.join(t, 'xiaomi'), { synthetic: ITEMS, latencyMs: 40 });
});
afterAll(async () => {
  await emu?.close();
});

const env = () => ({ ...emu.env, GALLERY_BRIDGE_HOME: path.join(t, 'home'), XIAOMI_MAX_RPS: '0', XIAOMI_DELETE_PAUSE_MS: '0' });

function manifest(name: string, accounts: number, extra: string[] = []): string {
  const file = path.join(t, `${name}.csv`);
  const rows = ['account,source,destination,source_account'];
  for (let i = 0; i < accounts; i++) rows.push(`a${i},xiaomi,folder:${path.join(t, name, 'dst', `a${i}`)},`);
  fs.writeFileSync(file, [...rows, ...extra].join('\n') + '\n');
  return file;
}

function batchRun(file: string, dir: string, extra: string[] = []) {
  const child = spawn(process.execPath, [CLI, 'batch', 'run', file, '--state', dir, '--concurrency', '2', ...extra], {
    env: { ...process.env, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01', ...env() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const workers = watchAccountWorkers(child.pid!);
  const done = new Promise<{ code: number | null; stderr: string }>((res) =>
    child.on('close', (code) => {
      workers.stop();
      res({ code, stderr });
    }),
  );
  return { child, seen: workers.seen, done };
}

const filesIn = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length : 0);

async function statusOf(dir: string): Promise<Map<string, { status: string; reason: string | null; doneItems: number }>> {
  const r = await runCli(['batch', 'status', '--state', dir, '--json']);
  const v = JSON.parse(r.stdout) as { accounts: Array<{ account: string; status: string; reason: string | null; doneItems: number }> };
  return new Map(v.accounts.map((a) => [a.account, a]));
}

describe('batch run with warm worker processes', () => {
  it('runs 8 accounts in at most 3 processes, and an account stopped by its configuration is only that account', async () => {
    // a3's destination is under a file: its run stops with code 2 (configuration), and its worker is retired.
    const file = manifest('reuse', 8);
    const notADir = path.join(t, 'reuse', 'a-file');
    fs.mkdirSync(path.dirname(notADir), { recursive: true });
    fs.writeFileSync(notADir, '');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(`folder:${path.join(t, 'reuse', 'dst', 'a3')}`, `folder:${path.join(notADir, 'a3')}`));
    const dir = path.join(t, 'reuse', 'batch');
    const run = batchRun(file, dir, ['--accounts-at-once', '2']);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(1);
    const by = await statusOf(dir);
    for (const a of ['a0', 'a1', 'a2', 'a4', 'a5', 'a6', 'a7']) {
      expect([a, by.get(a)!.status]).toEqual([a, 'done']);
      expect([a, filesIn(path.join(t, 'reuse', 'dst', a))]).toEqual([a, ITEMS]);
    }
    expect(by.get('a3')).toMatchObject({ status: 'paused', reason: expect.stringMatching(/^configuration problem: the destination is not a folder/) });
    // Two at once, one retired after a3: three processes at most for eight accounts.
    expect(run.seen.size).toBeGreaterThanOrEqual(1);
    expect(run.seen.size).toBeLessThanOrEqual(3);
    expect(accountWorkersOf(run.child.pid!)).toEqual([]);
  }, 240_000);

  it('a worker killed part-way fails only its account; the others finish, and a rerun completes it without duplicates', async () => {
    const file = manifest('crash', 4);
    const dir = path.join(t, 'crash', 'batch');
    const run = batchRun(file, dir, ['--accounts-at-once', '2']);
    const a0State = path.join(dir, 'accounts', 'a0', 'state.db');
    // Kill the worker running a0 once a0 has moved a few items.
    let victim: number | null = null;
    for (let i = 0; i < 1200 && victim === null; i++) {
      await new Promise((res) => setTimeout(res, 50));
      if (filesIn(path.join(t, 'crash', 'dst', 'a0')) < 3) continue;
      for (const pid of accountWorkersOf(run.child.pid!)) {
        const fds = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
          try {
            return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
          } catch {
            return '';
          }
        });
        if (fds.includes(a0State)) victim = pid;
      }
    }
    expect(victim).not.toBeNull();
    process.kill(victim!, 'SIGKILL');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(1);
    const by = await statusOf(dir);
    expect(by.get('a0')!.status).not.toBe('done');
    for (const a of ['a1', 'a2', 'a3']) expect([a, by.get(a)!.status]).toEqual([a, 'done']);
    expect(filesIn(path.join(t, 'crash', 'dst', 'a0'))).toBeLessThan(ITEMS);

    const again = await batchRun(file, dir, ['--accounts-at-once', '2']).done;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/4 accounts: 3 done, 1 to run/);
    for (const a of ['a0', 'a1', 'a2', 'a3']) expect([a, filesIn(path.join(t, 'crash', 'dst', a))]).toEqual([a, ITEMS]);
  }, 240_000);

  it('SIGTERM stops the batch: running accounts wait, no worker is left, and a rerun finishes every account once', async () => {
    const file = manifest('term', 6);
    const dir = path.join(t, 'term', 'batch');
    const run = batchRun(file, dir, ['--accounts-at-once', '2']);
    // Once the second round of accounts is under way (the first workers were reused or replaced).
    for (let i = 0; i < 1200; i++) {
      await new Promise((res) => setTimeout(res, 50));
      if (filesIn(path.join(t, 'term', 'dst', 'a2')) + filesIn(path.join(t, 'term', 'dst', 'a3')) >= 2) break;
    }
    const live = accountWorkersOf(run.child.pid!);
    expect(live.length).toBeGreaterThan(0);
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    for (const pid of live) expect(fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')).toBe(false);
    const by = await statusOf(dir);
    expect([...by.values()].some((a) => a.status === 'waiting' && a.reason === 'interrupted')).toBe(true);
    expect([...by.values()].filter((a) => a.status === 'done').length).toBeLessThan(6);

    const again = await batchRun(file, dir, ['--accounts-at-once', '2']).done;
    expect(again.code, again.stderr).toBe(0);
    for (let i = 0; i < 6; i++) expect([i, filesIn(path.join(t, 'term', 'dst', `a${i}`))]).toEqual([i, ITEMS]);
  }, 240_000);

  it("a warm worker lets go of an account's state when the account ends: another process can run it at once", async () => {
    const worker = spawn(process.execPath, [CLI, 'batch', 'account-worker'], {
      env: { ...process.env, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01', ...env() },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let wake: () => void = () => undefined;
    readline.createInterface({ input: worker.stdout }).on('line', (l) => {
      lines.push(l);
      wake();
    });
    const exited = new Promise<number | null>((res) => worker.on('close', (code) => res(code)));
    const endOf = async (token: string) => {
      while (!lines.some((l) => l.startsWith(`${token} `))) await new Promise<void>((res) => (wake = res));
      return Number(lines.find((l) => l.startsWith(`${token} `))!.split(' ')[1]);
    };
    const job = (i: number, token: string) =>
      worker.stdin.write(
        `${JSON.stringify({ argv: ['--from', 'xiaomi', '--to', `folder:${path.join(t, 'lock', `d${i}`)}`, '--state', path.join(t, 'lock', `s${i}.db`), '--json'], end: token })}\n`,
      );
    job(0, 'end-0');
    expect(await endOf('end-0')).toBe(0);
    // The worker lives on; the state it ran is free for a process of its own.
    const other = await runCli(['migrate', '--from', 'xiaomi', '--to', `folder:${path.join(t, 'lock', 'd0')}`, '--state', path.join(t, 'lock', 's0.db')], {
      env: env(),
    });
    expect(other.code, other.stderr).toBe(0);
    expect(other.stderr).not.toMatch(/in use by another run|ended without letting go/);
    // Three more accounts, then a SIGTERM during the fourth: it stops as a process of its own
    // would (143), once, however many accounts the worker ran before.
    for (let i = 1; i <= 3; i++) {
      job(i, `end-${i}`);
      expect(await endOf(`end-${i}`)).toBe(0);
    }
    job(4, 'end-4');
    while (filesIn(path.join(t, 'lock', 'd4')) < 2) await new Promise((res) => setTimeout(res, 20));
    worker.kill('SIGTERM');
    expect(await endOf('end-4')).toBe(143);
    expect(await exited).toBe(143);
    for (let i = 0; i < 4; i++) expect([i, filesIn(path.join(t, 'lock', `d${i}`))]).toEqual([i, ITEMS]);
  }, 240_000);
});

/** The account state files each worker of `pid` has open now. */
function statesOpenBy(pid: number): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const w of accountWorkersOf(pid)) {
    try {
      const files = fs.readdirSync(`/proc/${w}/fd`).map((fd) => {
        try {
          return fs.readlinkSync(`/proc/${w}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      out.set(
        w,
        files.filter((f) => f.endsWith('/state.db')),
      );
    } catch {
      // gone
    }
  }
  return out;
}

describe('batch run with several accounts in each warm worker (--worker-processes)', () => {
  it('runs 4 accounts at once in one process; an account stopped by its configuration ends alone, the others finish', async () => {
    const file = manifest('shared', 7);
    const notADir = path.join(t, 'shared', 'a-file');
    fs.mkdirSync(path.dirname(notADir), { recursive: true });
    fs.writeFileSync(notADir, '');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(`folder:${path.join(t, 'shared', 'dst', 'a1')}`, `folder:${path.join(notADir, 'a1')}`));
    const dir = path.join(t, 'shared', 'batch');
    const run = batchRun(file, dir, ['--accounts-at-once', '4', '--worker-processes', '1']);
    let most = 0;
    const watch = setInterval(() => {
      for (const states of statesOpenBy(run.child.pid!).values()) most = Math.max(most, new Set(states).size);
    }, 25);
    const r = await run.done;
    clearInterval(watch);
    expect(r.code, r.stderr).toBe(1);
    const by = await statusOf(dir);
    for (const a of ['a0', 'a2', 'a3', 'a4', 'a5', 'a6']) {
      expect([a, by.get(a)!.status]).toEqual([a, 'done']);
      expect([a, filesIn(path.join(t, 'shared', 'dst', a))]).toEqual([a, ITEMS]);
    }
    expect(by.get('a1')).toMatchObject({ status: 'paused', reason: expect.stringMatching(/^configuration problem: the destination is not a folder/) });
    // Several accounts ran in one process at a time; a1's worker took no new account after it (one replacement at most).
    expect(most).toBeGreaterThanOrEqual(2);
    expect(run.seen.size).toBeLessThanOrEqual(2);
    expect(accountWorkersOf(run.child.pid!)).toEqual([]);
  }, 240_000);

  it('a worker killed under several accounts: each runs again in a process of its own and finishes, nothing twice', async () => {
    const file = manifest('shared-crash', 5);
    const dir = path.join(t, 'shared-crash', 'batch');
    const run = batchRun(file, dir, ['--accounts-at-once', '3', '--worker-processes', '1']);
    // Kill the worker once it holds three accounts and a0 has moved a few items.
    let victim: number | null = null;
    for (let i = 0; i < 1200 && victim === null; i++) {
      await new Promise((res) => setTimeout(res, 25));
      if (filesIn(path.join(t, 'shared-crash', 'dst', 'a0')) < 3) continue;
      for (const [pid, states] of statesOpenBy(run.child.pid!)) if (new Set(states).size >= 3) victim = pid;
    }
    expect(victim).not.toBeNull();
    process.kill(victim!, 'SIGKILL');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    const by = await statusOf(dir);
    for (let i = 0; i < 5; i++) {
      expect([i, by.get(`a${i}`)!.status]).toEqual([i, 'done']);
      expect([i, filesIn(path.join(t, 'shared-crash', 'dst', `a${i}`))]).toEqual([i, ITEMS]);
    }
    expect(accountWorkersOf(run.child.pid!)).toEqual([]);
  }, 240_000);
});
