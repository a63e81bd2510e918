// Workers as real processes against a real PostgreSQL and the Google Photos emulator (checked
// from the emulator's own data): a SIGKILLed worker's accounts are taken over once its lease
// expires and finish with every item there exactly once; two workers at once never spend more
// of the day's Google budget than the batch was given, as the emulator counts it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Queue } from '../src/queue/db.ts';
import { openQueue } from '../src/queue/db.ts';
import { SCHEMA } from '../src/queue/schema.ts';
import { startGoogleEmulator } from './google-photos-emulator.ts';
import { CLI, makeSource, runCli, tmpDir, treeHashes } from './helpers.ts';
import { freshDatabase } from './pg.ts';
import fs from 'node:fs';

const TOKEN = 'queue-core-google-token-0123456789';
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startWorker(args: string[], env: Record<string, string>, detached = false): { child: ChildProcess; exit: Promise<number | null>; out: () => string } {
  const child = spawn(process.execPath, [CLI, 'worker', ...args], {
    env: { ...process.env, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(detached ? -child.pid! : child.pid!, 'SIGKILL');
  });
  return { child, exit, out: () => out };
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function setup(prefix: string, accounts: Record<string, string[]>, emuArgs: string[]) {
  const db = await freshDatabase(prefix);
  cleanup.push(db.drop);
  const q: Queue = await openQueue(db.url, { migrate: true });
  cleanup.push(() => q.end());
  const emu = await startGoogleEmulator(TOKEN, emuArgs, `gbq-${prefix}-`);
  cleanup.push(emu.close);
  const t = tmpDir(`gbq-${prefix}-`);
  const lines = ['account,source,destination'];
  const sources: string[] = [];
  for (const [a, files] of Object.entries(accounts)) {
    const src = path.join(t, 'src', a);
    makeSource(src, { [a]: files });
    for (const f of treeHashes(src).keys()) sources.push(path.basename(f));
    lines.push(`${a},folder:${src},google-photos`);
  }
  const manifest = path.join(t, 'manifest.csv');
  fs.writeFileSync(manifest, lines.join('\n') + '\n');
  const env = { GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!, GOOGLE_ACCESS_TOKEN: TOKEN, GALLERY_BRIDGE_HOME: path.join(t, 'home') };
  return { db, q, emu, t, manifest, env, sources };
}

describe('queue workers', () => {
  it("moves a SIGKILLed worker's accounts to another worker after the lease, records the takeover, and every item lands exactly once", async () => {
    const s = await setup(
      'gbqtake',
      {
        g1: ['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg', 'f6t.jpg'],
        g2: ['IMG_20180725_163423.jpg', 'cookiezen.jpg', 'issue-exifr-47.jpeg', 'png_with_exif_and_gps.png'],
      },
      ['--latency-ms', '250'],
    );
    const load = await runCli(['batch', 'run', s.manifest, '--queue', s.db.url, '--no-work', '--lease-seconds', '3', '--concurrency', '1'], { env: s.env });
    expect(load.code).toBe(0);

    const a = startWorker(['--queue', s.db.url, '--name', 'wa', '--slots', '2', '--state', path.join(s.t, 'wa')], s.env, true);
    // Both accounts held by wa, and its uploads under way: then the machine dies.
    await until('wa to hold both accounts and upload', async () => {
      const held = (await s.q.query(`SELECT count(*) AS n FROM ${SCHEMA}.leases WHERE worker = 'wa' AND released_at IS NULL`)).rows[0].n;
      return Number(held) === 2 && (await s.emu.state()).mediaItems.length >= 1;
    });
    process.kill(-a.child.pid!, 'SIGKILL');
    const killedAt = Date.now();
    await a.exit;
    const mid = (await s.q.query(`SELECT count(*) AS n FROM ${SCHEMA}.accounts WHERE status = 'done'`)).rows[0].n;
    expect(Number(mid)).toBe(0);

    const b = startWorker(['--queue', s.db.url, '--name', 'wb', '--slots', '2', '--state', path.join(s.t, 'wb')], s.env);
    expect(await b.exit).toBe(0);

    const takeovers = (await s.q.query(`SELECT slug, old_worker, new_worker, old_epoch, new_epoch, reason, at FROM ${SCHEMA}.takeovers ORDER BY slug`)).rows;
    expect(takeovers.map((r) => [r.slug, r.old_worker, r.new_worker, Number(r.old_epoch), Number(r.new_epoch)])).toEqual([
      ['g1', 'wa', 'wb', 1, 2],
      ['g2', 'wa', 'wb', 1, 2],
    ]);
    for (const r of takeovers) expect(r.reason).toMatch(/lease of wa expired/);
    // Moving again within the lease, one upkeep round, pg-boss's retry delay and a poll.
    for (const r of takeovers) expect((r.at as Date).getTime() - killedAt).toBeLessThan(30_000);
    const accounts = (await s.q.query(`SELECT slug, status FROM ${SCHEMA}.accounts ORDER BY slug`)).rows;
    expect(accounts).toEqual([
      { slug: 'g1', status: 'done' },
      { slug: 'g2', status: 'done' },
    ]);
    // From the emulator's own store: each source file once, nothing else (by name: an upload
    // may carry a capture date written into the file, so its bytes differ from the source's).
    const stored = (await s.emu.state()).mediaItems.filter((m) => m.owner === 'this-app').map((m) => m.filename);
    expect(stored.sort()).toEqual([...s.sources].sort());
  }, 180_000);

  it("keeps two workers within the batch's Google budget, as the emulator counts, and leaves the rest waiting for the next day", async () => {
    const s = await setup(
      'gbqbudget2',
      {
        b1: ['canon-dslr.jpg', 'img_1771.jpg', 'noexif.jpg'],
        b2: ['f6t.jpg', 'cookiezen.jpg', 'IMG_20180725_163423.jpg'],
        b3: ['issue-exifr-47.jpeg', 'png_with_exif_and_gps.png'],
      },
      [],
    );
    const budget = 7;
    const load = await runCli(['batch', 'run', s.manifest, '--queue', s.db.url, '--no-work', '--google-daily-budget', String(budget), '--concurrency', '1'], {
      env: s.env,
    });
    expect(load.code).toBe(0);
    const w1 = startWorker(['--queue', s.db.url, '--name', 'w1', '--slots', '2', '--state', path.join(s.t, 'w1')], s.env);
    const w2 = startWorker(['--queue', s.db.url, '--name', 'w2', '--slots', '2', '--state', path.join(s.t, 'w2')], s.env);
    expect([await w1.exit, await w2.exit]).toEqual([0, 0]);

    const emu = await s.emu.state();
    const counted = Object.values(emu.quota.used).reduce((a, b) => a + b, 0);
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeLessThanOrEqual(budget);
    const row = (await s.q.query(`SELECT used, cap FROM ${SCHEMA}.google_budget`)).rows;
    expect(row).toHaveLength(1);
    expect(Number(row[0].used)).toBeLessThanOrEqual(budget);
    const statuses = (await s.q.query(`SELECT status FROM ${SCHEMA}.accounts`)).rows.map((r) => r.status as string);
    expect(statuses).toContain('waiting-quota');
    for (const st of statuses) expect(['done', 'waiting-quota']).toContain(st);
  }, 180_000);

  it("starts another provider's account while one provider is at its limit across workers, and leaves the waiting account's job alone", async () => {
    const s = await setup('gbqlimit', { g: ['canon-dslr.jpg', 'img_1771.jpg'] }, []);
    const fsrc = path.join(s.t, 'src', 'f');
    makeSource(fsrc, { f: ['noexif.jpg', 'f6t.jpg'] });
    fs.appendFileSync(s.manifest, `f,folder:${fsrc},folder:${path.join(s.t, 'dst', 'f')}\n`);
    const load = await runCli(['batch', 'run', s.manifest, '--queue', s.db.url, '--no-work', '--per-provider', 'google-photos=1'], { env: s.env });
    expect(load.code).toBe(0);
    // Another machine runs the batch's one Google account allowed at once, for 6 more seconds.
    await s.q.query(
      `INSERT INTO ${SCHEMA}.accounts (slug, account, line, source, destination, source_account, destination_account, status) VALUES ('ghost', 'ghost', 99, 'folder:/nowhere', 'google-photos', 'default', 'default', 'removed')`,
    );
    const ghostUntil = (
      await s.q.query(
        `INSERT INTO ${SCHEMA}.leases (slug, epoch, worker, expires_at) VALUES ('ghost', 1, 'elsewhere', now() + interval '6 seconds') RETURNING expires_at`,
      )
    ).rows[0].expires_at as Date;

    const w = startWorker(['--queue', s.db.url, '--name', 'w', '--slots', '2', '--state', path.join(s.t, 'w')], s.env);
    expect(await w.exit).toBe(0);
    const leases = new Map((await s.q.query(`SELECT slug, acquired_at FROM ${SCHEMA}.leases`)).rows.map((r) => [r.slug as string, r.acquired_at as Date]));
    // g comes first in the manifest, yet f ran while Google was full, and g only once there was room.
    expect(leases.get('f')!.getTime()).toBeLessThan(ghostUntil.getTime());
    expect(leases.get('g')!.getTime()).toBeGreaterThanOrEqual(ghostUntil.getTime());
    expect((await s.q.query(`SELECT slug, status FROM ${SCHEMA}.accounts WHERE slug IN ('f', 'g') ORDER BY slug`)).rows).toEqual([
      { slug: 'f', status: 'done' },
      { slug: 'g', status: 'done' },
    ]);
    // Waiting for room took no job out of the queue and put none back: g's queue saw one job.
    const jobs = (await s.q.query(`SELECT count(*) AS n FROM gallery_bridge_boss.job WHERE data->>'slug' = 'g'`)).rows[0].n;
    expect(Number(jobs)).toBe(1);
    expect(fs.readdirSync(path.join(s.t, 'dst', 'f', 'f')).sort()).toEqual(['f6t.jpg', 'noexif.jpg']);
  }, 120_000);
});
