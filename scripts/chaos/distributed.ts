// The chaos suite's distributed round (queue mode, issue 19): a batch of folder accounts with
// --delete-source spread over worker processes through a real PostgreSQL, every destination's
// faults at random rates, and at random moments a worker killed with its children (a machine
// gone), a worker killed alone (its children orphaned), or a worker paused past its lease and
// resumed; a fresh worker joins after each kill. At the end, from the emulators' data and the
// disk: every photo at its destination exactly once, nothing gone from a source that is not at
// its destination, the Google emulator's own count within the batch's budget, every account done.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { seededRandom } from '../../src/emulator/kit.ts';
import { startOneDriveEmulator } from '../../providers/onedrive/emulator/server.ts';
import { googlePhotosProvider } from '../../providers/google-photos/index.ts';
import { sha1, visibleFilesUnder } from '../../test/helpers/photo-files.ts';
import { freshDatabase } from '../../test/pg.ts';
import { sql } from '../../test/queue-kit.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'gallery-bridge.js');
const G_TOKEN = 'chaos-distributed-google-token-0123456789';
const OD_TOKEN = 'chaos-distributed-onedrive-token-0123456789';

export interface DistributedConfig {
  seed: number;
  accounts: number;
  items: number;
  workers: number;
  /** Disruptions: kills (with or without the children) and pauses past the lease. */
  kills: number;
  leaseSeconds: number;
  dir: string;
}

export interface DistributedResult {
  config: DistributedConfig;
  disruptions: Record<'kill-machine' | 'kill-worker' | 'pause', number>;
  workersStarted: number;
  takeovers: number;
  faults: Record<string, number>;
  moved: number;
  atDestination: number;
  googleRequests: number;
  googleBudget: number;
  finished: boolean;
  violations: string[];
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A database of its own on the test server (started here when the caller has none). */
async function database(): Promise<{ url: string; drop: () => Promise<void>; stop: () => void }> {
  let stop: () => void = () => undefined;
  if (!process.env.GALLERY_BRIDGE_TEST_PG_URL) stop = await (await import('../../test/setup/postgres.ts')).default();
  const { url, drop } = await freshDatabase('chaos');
  return { url, drop, stop };
}

interface Account {
  name: string;
  dest: 'folder' | 'onedrive' | 'google';
  src: string;
  /** sha1 -> file name of every photo the source held before the batch. */
  original: Map<string, string>;
}

async function makeAccount(dir: string, name: string, n: number, tint: number, dest: Account['dest']): Promise<Account> {
  const src = path.join(dir, 'src', name, 'Camera');
  fs.mkdirSync(src, { recursive: true });
  const original = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const img = await sharp({
      create: { width: 40, height: 30, channels: 3, background: { r: tint % 256, g: (i * 61 + tint) % 256, b: (tint * 7 + i * 13) % 256 } },
    })
      .jpeg({ quality: 90 })
      .toBuffer();
    const file = `IMG_${tint}_${i}.jpg`;
    fs.writeFileSync(path.join(src, file), img);
    original.set(sha1(img), file);
  }
  return { name, dest, src: path.dirname(src), original };
}

export async function runDistributedRound(c: DistributedConfig, log?: (line: string) => void): Promise<DistributedResult> {
  const started = Date.now();
  const rand = seededRandom(c.seed);
  const rate = (cap: number) => Math.round(rand() * cap * 1000) / 1000;
  const faults = { '5xx': rate(0.06), '429': rate(0.05), drop: rate(0.04) };
  const faultFlags = ['--fault-5xx', String(faults['5xx']), '--fault-429', String(faults['429']), '--fault-drop', String(faults.drop), '--latency-ms', '20'];
  const budget = c.accounts * c.items * 8;
  fs.mkdirSync(c.dir, { recursive: true });
  const violations: string[] = [];
  const disruptions = { 'kill-machine': 0, 'kill-worker': 0, pause: 0 };
  const procs: Array<{ name: string; child: ChildProcess; alive: boolean }> = [];
  const db = await database();
  const gData = path.join(c.dir, 'google');
  const google = await googlePhotosProvider.emulator!([
    '--port',
    '0',
    '--data',
    gData,
    '--accept-token',
    G_TOKEN,
    '--random-seed',
    String(c.seed),
    ...faultFlags,
  ]);
  const odData = path.join(c.dir, 'onedrive');
  const od = await startOneDriveEmulator(['--port', '0', '--data', odData, '--accept-token', OD_TOKEN, '--random-seed', String(c.seed + 1), ...faultFlags]);
  try {
    const kinds: Account['dest'][] = ['folder', 'onedrive', 'google'];
    const accounts: Account[] = [];
    for (let i = 0; i < c.accounts; i++) accounts.push(await makeAccount(c.dir, `acct-${i}`, c.items, (c.seed % 97) * 10 + i, kinds[i % 3]!));
    const destSpec = (a: Account) =>
      a.dest === 'folder' ? `folder:${path.join(c.dir, 'dst', a.name)}` : a.dest === 'onedrive' ? `onedrive:me:/Pictures/${a.name}` : 'google-photos';
    const manifest = path.join(c.dir, 'accounts.csv');
    fs.writeFileSync(
      manifest,
      ['account,source,destination,delete_source', ...accounts.map((a) => `${a.name},folder:${a.src},${destSpec(a)},yes`)].join('\n') + '\n',
    );
    const env = {
      ...process.env,
      GALLERY_BRIDGE_BACKOFF_SCALE: '0.01',
      GALLERY_BRIDGE_HOME: path.join(c.dir, 'home'),
      GOOGLE_PHOTOS_BASE_URL: google.env.GOOGLE_PHOTOS_BASE_URL!,
      GOOGLE_ACCESS_TOKEN: G_TOKEN,
      GRAPH_BASE_URL: od.env.GRAPH_BASE_URL!,
      NODE_EXTRA_CA_CERTS: od.env.NODE_EXTRA_CA_CERTS!,
      ONEDRIVE_ACCESS_TOKEN: OD_TOKEN,
    };
    const load = await new Promise<number | null>((resolve) => {
      const p = spawn(
        process.execPath,
        [
          CLI,
          'batch',
          'run',
          manifest,
          '--queue',
          db.url,
          '--no-work',
          '--lease-seconds',
          String(c.leaseSeconds),
          '--accounts-at-once',
          String(c.workers * 2),
          '--google-daily-budget',
          String(budget),
          '--retries',
          '4',
        ],
        { env, stdio: 'ignore' },
      );
      p.on('exit', resolve);
    });
    if (load !== 0) throw new Error(`loading the batch exited ${load}`);

    const startWorker = () => {
      const name = `w${procs.length + 1}`;
      const child = spawn(
        process.execPath,
        [CLI, 'worker', '--queue', db.url, '--name', name, '--slots', '2', '--follow', '--state', path.join(c.dir, 'workers', name)],
        { env, stdio: 'ignore', detached: true },
      );
      const p = { name, child, alive: true };
      child.on('exit', () => (p.alive = false));
      procs.push(p);
    };
    const group = (p: { child: ChildProcess }, sig: NodeJS.Signals) => {
      try {
        process.kill(-p.child.pid!, sig);
      } catch {
        // gone
      }
    };
    for (let i = 0; i < c.workers; i++) startWorker();
    const allDone = async () =>
      (await sql<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM gallery_bridge.accounts WHERE status <> 'done' AND status <> 'removed'`))[0]!.n === 0;

    // Each disruption hits a worker that holds an account at that moment, soon after one does:
    // waiting a fixed time let a fast machine finish the whole round before the disruptions came.
    // A pause runs beside the loop, so the next disruption does not wait for it to end.
    const holding = async () =>
      new Set(
        (await sql<{ worker: string }>(db.url, `SELECT worker FROM gallery_bridge.leases WHERE released_at IS NULL AND expires_at > now()`)).map(
          (r) => r.worker,
        ),
      );
    const pauses: Array<Promise<void>> = [];
    const paused = new Set<string>();
    let left = c.kills;
    const limit = Date.now() + 420_000;
    while (!(await allDone()) && Date.now() < limit) {
      await sleep(200 + rand() * 800);
      if (left <= 0) continue;
      const holders = await holding();
      const live = procs.filter((p) => p.alive && !paused.has(p.name) && holders.has(p.name));
      if (live.length === 0) continue;
      left--;
      const victim = live[Math.floor(rand() * live.length)]!;
      const what = (['kill-machine', 'kill-worker', 'pause'] as const)[Math.floor(rand() * 3)]!;
      disruptions[what]++;
      log?.(`distributed: ${what} ${victim.name}`);
      if (what === 'kill-machine') group(victim, 'SIGKILL');
      else if (what === 'kill-worker') victim.child.kill('SIGKILL');
      else {
        paused.add(victim.name);
        group(victim, 'SIGSTOP');
        pauses.push(
          sleep((c.leaseSeconds + 2 + rand() * c.leaseSeconds) * 1000).then(() => {
            group(victim, 'SIGCONT');
            paused.delete(victim.name);
          }),
        );
      }
      if (what !== 'pause') startWorker();
    }
    await Promise.all(pauses);
    // A worker resumed after the last account was done still finds nothing left and ends.
    const finished = await allDone();
    if (!finished) violations.push('not every account finished within 7 minutes');

    // From the outside.
    const gstate = (await (await fetch(`${google.env.GOOGLE_PHOTOS_BASE_URL}/__emulator/state`)).json()) as {
      quota: { used: Record<string, number> };
      mediaItems: Array<{ filename: string }>;
    };
    let moved = 0;
    let atDestination = 0;
    for (const a of accounts) {
      const left = new Set(visibleFilesUnder(a.src).map((f) => sha1(fs.readFileSync(f))));
      if (a.dest === 'google') {
        for (const name of a.original.values()) {
          const n = gstate.mediaItems.filter((m) => m.filename === name).length;
          if (n > 1) violations.push(`${a.name}: ${name} is in Google Photos ${n} times`);
          atDestination += Math.min(n, 1);
        }
        for (const [h, name] of a.original)
          if (!left.has(h) && gstate.mediaItems.every((m) => m.filename !== name))
            violations.push(`${a.name}: ${name} deleted at the source but not in Google Photos`);
      } else {
        const dst = a.dest === 'folder' ? path.join(c.dir, 'dst', a.name) : path.join(odData, 'me', 'Pictures', a.name);
        const counts = new Map<string, number>();
        for (const f of visibleFilesUnder(dst)) {
          const h = sha1(fs.readFileSync(f));
          counts.set(h, (counts.get(h) ?? 0) + 1);
          if (!a.original.has(h)) violations.push(`${a.name}: ${path.relative(dst, f)} at the destination is not a source photo`);
        }
        for (const [h, name] of a.original) {
          const n = counts.get(h) ?? 0;
          if (n > 1) violations.push(`${a.name}: ${name} is at the destination ${n} times`);
          if (!left.has(h) && n === 0) violations.push(`${a.name}: ${name} deleted at the source but not at the destination`);
          atDestination += Math.min(n, 1);
        }
      }
      moved += [...a.original.keys()].filter((h) => !left.has(h)).length;
      if (finished && left.size) violations.push(`${a.name}: ${left.size} photo(s) still at the source though the account is done with --delete-source`);
    }
    if (finished && atDestination !== c.accounts * c.items) violations.push(`${atDestination} of ${c.accounts * c.items} photos at their destinations`);
    const googleRequests = Object.values(gstate.quota.used).reduce((x, y) => x + y, 0);
    if (googleRequests > budget) violations.push(`Google answered ${googleRequests} requests, over the batch's budget of ${budget}`);
    const takeovers = (await sql<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM gallery_bridge.takeovers`))[0]!.n;
    return {
      config: c,
      disruptions,
      workersStarted: procs.length,
      takeovers,
      faults,
      moved,
      atDestination,
      googleRequests,
      googleBudget: budget,
      finished,
      violations,
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    for (const p of procs) {
      try {
        process.kill(-p.child.pid!, 'SIGCONT');
        process.kill(-p.child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await google.close();
    await od.close();
    await db.drop().catch(() => undefined);
    db.stop();
  }
}

export function formatDistributed(r: DistributedResult): string {
  const d = r.disruptions;
  return [
    '| seed | accounts × items | workers started | machine kills | worker kills | pauses | takeovers | f:5xx | f:429 | f:drop | moved | at dest | Google requests / budget | done | violations | s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    `| ${r.config.seed} | ${r.config.accounts} × ${r.config.items} | ${r.workersStarted} | ${d['kill-machine']} | ${d['kill-worker']} | ${d.pause} | ${r.takeovers} | ${r.faults['5xx']} | ${r.faults['429']} | ${r.faults.drop} | ${r.moved} | ${r.atDestination} | ${r.googleRequests} / ${r.googleBudget} | ${r.finished ? 'yes' : 'no'} | ${r.violations.length} | ${r.seconds} |`,
  ].join('\n');
}
