// Issue 19's proof: a batch of 30 accounts spread over worker processes through a real
// PostgreSQL, with every emulator's faults on. During the run one worker is SIGKILLed while it
// uploads (its migrate children are left orphaned, as after a crash of the worker process alone),
// another is SIGSTOPped (with its children: a paused machine) past its lease and SIGCONTed once
// its accounts were finished elsewhere, and a fourth joins partway.
//
// Everything is checked from the emulators' own data and the disk, not from the tool's state:
// every item at its destination exactly once, every item gone from a source has its bytes at the
// destination and its deletion's proof in PostgreSQL, the paused worker changed nothing for the accounts it lost,
// the Google emulator's own request count stayed within the batch's budget, and every account
// finished.

import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCredentials } from '../src/lib/credentials.ts';
import { stateProgress } from '../src/batch/view.ts';
import { readEmulatorState } from '../providers/xiaomi/test-support.ts';
import { startOneDriveEmulator } from '../providers/onedrive/emulator/server.ts';
import { startGoogleEmulator } from './google-photos-emulator.ts';
import { runCli, tlsArgs, tmpDir } from './helpers.ts';
import { sha1, sha1Counts, visibleFilesUnder, writeDistinctPhotos } from './helpers/photo-files.ts';
import { startXiaomiProcess } from './helpers/xiaomi-process.ts';
import { freshDatabase } from './pg.ts';
import { accountStatuses, liveLeases, sql, startWorker, until } from './queue-kit.ts';
import type { WorkerProc } from './queue-kit.ts';

const G_TOKEN = 'dist-test-google-token-0123456789';
const OD_TOKEN = 'dist-test-onedrive-token-0123456789';
const QUEUE_KEY = 'dist-test-queue-key-0123456789abcdef';
const LEASE = 6;
const BUDGET = 400;
const PER_ACCOUNT = 5;
const XIAOMI_ITEMS = 40;

const children: ChildProcess[] = [];
const workers: WorkerProc[] = [];
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const w of workers) {
    w.signalGroup('SIGCONT');
    w.signalGroup('SIGKILL');
  }
  for (const c of children) c.kill('SIGKILL');
  for (const c of closers) await c().catch(() => undefined);
});

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

async function startXiaomi(data: string, flags: string[]): Promise<Record<string, string>> {
  const xiaomi = await startXiaomiProcess(['--data', data, '--synthetic', String(XIAOMI_ITEMS), ...flags]);
  children.push(xiaomi.child);
  return xiaomi.env;
}

interface Account {
  name: string;
  kind: 'google' | 'onedrive' | 'folder' | 'xiaomi';
  del: boolean;
  src: string;
  /** sha1 -> file name, of the source as it was before the batch. */
  original: Map<string, string>;
  /** sha1 -> sha256 of the same bytes (a folder source's files; a run hashes SHA-1 only where it needs it). */
  sha256: Map<string, string>;
}

/** What the outside world holds for an account: its source files and its destination's copies. */
type Outside = { source: string[]; dest: string[] };

describe('queue mode: 3 workers, 30 accounts, kill, pause, join', () => {
  it('moves every item exactly once, deletes only with proof, keeps the Google budget, and fences the paused worker', async () => {
    const t = tmpDir('gb-dist-');
    const db = await freshDatabase('dist');
    closers.push(db.drop);
    const home = path.join(t, 'home');

    const google = await startGoogleEmulator(
      G_TOKEN,
      ['--fault-5xx', '0.03', '--fault-429', '0.02', '--latency-ms', '40', '--random-seed', '19'],
      'gb-dist-gp-',
    );
    closers.push(google.close);
    const odData = path.join(t, 'onedrive');
    const od = await startOneDriveEmulator([
      '--port',
      '0',
      '--data',
      odData,
      '--accept-token',
      OD_TOKEN,
      ...tlsArgs(),
      '--fault-5xx',
      '0.03',
      '--latency-ms',
      '40',
      '--random-seed',
      '23',
    ]);
    closers.push(od.close);
    const xData = path.join(t, 'xiaomi');
    const xenv = await startXiaomi(xData, ['--latency-ms', '40', '--fault-5xx', '0.02', '--random-seed', '29']);
    const { credentialsFromText } = await import('../providers/xiaomi/session.ts');
    writeCredentials(home, 'xiaomi', 'x1', { ...credentialsFromText(xenv.XIAOMI_COOKIE!), savedAt: new Date().toISOString() });

    // 30 accounts: 1 Xiaomi, 9 folder -> Google Photos, 10 folder -> OneDrive, 10 folder -> folder.
    const accounts: Account[] = [];
    const rows = ['account,source,destination,source_account,delete_source'];
    const xmanifest = () =>
      JSON.parse(fs.readFileSync(path.join(xData, '.emulator', 'xiaomi-manifest.json'), 'utf8')) as Array<{ id: string; sha1: string; fileName: string }>;
    accounts.push({ name: 'xiaomi-1', kind: 'xiaomi', del: true, src: '', original: new Map(xmanifest().map((m) => [m.sha1, m.fileName])), sha256: new Map() });
    rows.push(`xiaomi-1,xiaomi,folder:${t}/dst/xiaomi-1,x1,yes`);
    const add = async (prefix: string, kind: Account['kind'], n: number, base: number, dest: (name: string) => string) => {
      for (let i = 1; i <= n; i++) {
        const name = `${prefix}-${String(i).padStart(2, '0')}`;
        const src = path.join(t, 'src', name);
        await writeDistinctPhotos(src, base + i, PER_ACCOUNT);
        const del = i % 2 === 0;
        const files = visibleFilesUnder(src).map((f) => ({ name: path.basename(f), bytes: fs.readFileSync(f) }));
        accounts.push({
          name,
          kind,
          del,
          src,
          original: new Map(files.map((f) => [sha1(f.bytes), f.name])),
          sha256: new Map(files.map((f) => [sha1(f.bytes), sha256(f.bytes)])),
        });
        rows.push(`${name},folder:${src},${dest(name)},,${del ? 'yes' : 'no'}`);
      }
    };
    await add('google', 'google', 9, 100, () => 'google-photos');
    await add('onedrive', 'onedrive', 10, 200, (n) => `onedrive:me:/Pictures/${n}`);
    await add('folder', 'folder', 10, 300, (n) => `folder:${t}/dst/${n}`);
    expect(accounts).toHaveLength(30);
    const manifest = path.join(t, 'accounts.csv');
    fs.writeFileSync(manifest, rows.join('\n') + '\n');

    const destOf = (a: Account): string => (a.kind === 'onedrive' ? path.join(odData, 'me', 'Pictures', a.name) : path.join(t, 'dst', a.name));
    const outside = async (a: Account): Promise<Outside> => {
      const source =
        a.kind === 'xiaomi'
          ? Object.keys(readDeleted(xData)).sort()
          : visibleFilesUnder(a.src)
              .map((f) => `${path.basename(f)}:${sha1(fs.readFileSync(f))}`)
              .sort();
      const dest =
        a.kind === 'google'
          ? (await google.state()).mediaItems
              .filter((m) => [...a.original.values()].includes(m.filename))
              .map((m) => `${m.id}:${m.sha1}`)
              .sort()
          : visibleFilesUnder(destOf(a))
              .map((f) => `${path.relative(destOf(a), f)}:${sha1(fs.readFileSync(f))}`)
              .sort();
      return { source, dest };
    };

    const toolEnv = {
      GALLERY_BRIDGE_QUEUE_KEY: QUEUE_KEY,
      XIAOMI_BASE_URL: xenv.XIAOMI_BASE_URL!,
      GOOGLE_PHOTOS_BASE_URL: google.env.GOOGLE_PHOTOS_BASE_URL!,
      GOOGLE_ACCESS_TOKEN: G_TOKEN,
      GRAPH_BASE_URL: od.env.GRAPH_BASE_URL!,
      NODE_EXTRA_CA_CERTS: od.env.NODE_EXTRA_CA_CERTS!,
      ONEDRIVE_ACCESS_TOKEN: OD_TOKEN,
      GALLERY_BRIDGE_BACKOFF_SCALE: '0.01',
    };
    const load = await runCli(
      [
        'batch',
        'run',
        manifest,
        '--queue',
        db.url,
        '--no-work',
        '--lease-seconds',
        String(LEASE),
        '--accounts-at-once',
        '8',
        '--per-provider',
        'google-photos=3',
        '--google-daily-budget',
        String(BUDGET),
        '--concurrency',
        '2',
        '--retries',
        '4',
      ],
      { env: { ...toolEnv, GALLERY_BRIDGE_HOME: home } },
    );
    expect(load.code, load.stderr).toBe(0);
    expect(load.stderr).toMatch(/30 accounts loaded/);

    const worker = (name: string) => {
      const w = startWorker({ url: db.url, name, dir: path.join(t, 'workers', name), env: toolEnv, slots: 3 });
      workers.push(w);
      return w;
    };
    const [w1, w2, w3] = [worker('w1'), worker('w2'), worker('w3')];
    const log = () => workers.map((w) => `--- ${w.name}\n${w.lines.slice(-25).join('\n')}`).join('\n');
    const sessions = async () =>
      (
        await sql<{ s: string }>(
          db.url,
          `SELECT concat_ws(' | ', application_name, state, wait_event_type, wait_event, left(query, 120)) AS s FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
        )
      )
        .map((r) => r.s)
        .join('\n');

    // A worker is killed while an account of its is part-way through its items: whichever of the
    // three is seen there first (waiting for one named worker lost that race on a loaded machine,
    // when the others held every account for a while).
    let killedSlug = '';
    let killedWorker: (typeof workers)[number] | undefined;
    await until(
      'a worker to be part-way through an account',
      async () => {
        for (const [slug, l] of await liveLeases(db.url)) {
          const w = [w1, w2, w3].find((x) => x.name === l.worker);
          if (!w) continue;
          const p = stateProgress(path.join(w.dir, 'accounts', slug, 'state.db'));
          if (p.doneItems >= 1 && p.doneItems < p.items) {
            killedSlug = slug;
            killedWorker = w;
            return true;
          }
        }
        return false;
      },
      120_000,
      50,
    );
    const killed = killedWorker!;
    const killedHeld = [...(await liveLeases(db.url))].filter(([, l]) => l.worker === killed.name).map(([s]) => s);
    killed.child.kill('SIGKILL');
    expect(await killed.exited).toMatchObject({ signal: 'SIGKILL' });
    // A fourth worker joins partway.
    const w4 = worker('w4');

    // A worker is paused (with its children) while it holds accounts, until others took them and
    // finished them: whichever of the others holds one first.
    let pausedWorker: (typeof workers)[number] | undefined;
    await until(
      'another worker to hold an account',
      async () => {
        const holders = new Set([...(await liveLeases(db.url)).values()].map((l) => l.worker));
        pausedWorker = [w1, w2, w3, w4].find((w) => w !== killed && holders.has(w.name));
        return pausedWorker !== undefined;
      },
      120_000,
      50,
    );
    const paused = pausedWorker!;
    paused.signalGroup('SIGSTOP');
    // What it holds once paused: every lease of it not released (a release in flight is either committed or not).
    await new Promise((r) => setTimeout(r, 300));
    const pausedLost = new Map(
      (
        await sql<{ slug: string; epoch: string }>(db.url, `SELECT slug, epoch FROM gallery_bridge.leases WHERE worker = $1 AND released_at IS NULL`, [
          paused.name,
        ])
      ).map((r) => [r.slug, Number(r.epoch)]),
    );
    expect(pausedLost.size).toBeGreaterThan(0);
    const finishedElsewhere = async () => {
      const rows = await sql<{ slug: string; status: string; worker: string; epoch: string; released: boolean }>(
        db.url,
        `SELECT a.slug, a.status, l.worker, l.epoch, l.released_at IS NOT NULL AS released FROM gallery_bridge.accounts a JOIN gallery_bridge.leases l USING (slug) WHERE a.slug = ANY($1)`,
        [[...pausedLost.keys()]],
      );
      return (
        rows.length === pausedLost.size &&
        rows.every((r) => r.status === 'done' && r.released && r.worker !== paused.name && Number(r.epoch) > pausedLost.get(r.slug)!)
      );
    };
    await until(
      `${paused.name}'s accounts (${[...pausedLost.keys()].join(', ')}) to be taken over and finished by other workers`,
      finishedElsewhere,
      240_000,
      500,
    ).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${log()}\n--- sessions\n${await sessions()}`);
    });
    const lostAccounts = accounts.filter((a) => pausedLost.has(slugOf(a.name)));
    const before = await Promise.all(lostAccounts.map(outside));
    paused.signalGroup('SIGCONT');
    // The paused worker finds its leases gone; its children, resumed mid-item, must not commit or delete.
    await until(`${paused.name} to notice it lost its leases`, () => paused.lines.some((l) => /lost its lease/.test(l)), 60_000).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${paused.lines.join('\n')}\n--- sessions\n${await sessions()}`);
    });
    await new Promise((r) => setTimeout(r, 3 * LEASE * 1000));
    expect(await Promise.all(lostAccounts.map(outside))).toEqual(before);

    // Everyone finishes, and the workers leave when nothing is left.
    await until('every account done', async () => [...(await accountStatuses(db.url)).values()].every((s) => s === 'done'), 300_000, 1000).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${JSON.stringify([...(await accountStatuses(db.url))])}\n${log()}\n--- sessions\n${await sessions()}`);
    });
    for (const w of [w1, w2, w3, w4].filter((x) => x !== killed)) expect(await w.exited, log()).toMatchObject({ code: 0 });

    // --- From the outside ---
    const gstate = await google.state();
    const xdeleted = readDeleted(xData);
    for (const a of accounts) {
      const want = new Map([...a.original.keys()].map((k) => [k, 1]));
      if (a.kind === 'google') {
        // Google stores a copy with the capture date written in: one item per photo, by its name.
        for (const name of a.original.values()) expect([a.name, name, gstate.mediaItems.filter((m) => m.filename === name).length]).toEqual([a.name, name, 1]);
      } else {
        expect([a.name, sha1Counts(destOf(a))]).toEqual([a.name, want]);
      }
      // Gone from the source only where the row says delete, and only what is at the destination.
      const left =
        a.kind === 'xiaomi'
          ? new Set(
              xmanifest()
                .filter((m) => !xdeleted[m.id])
                .map((m) => m.sha1),
            )
          : new Set(visibleFilesUnder(a.src).map((f) => sha1(fs.readFileSync(f))));
      const gone = [...a.original.keys()].filter((h) => !left.has(h));
      if (!a.del) expect([a.name, gone]).toEqual([a.name, []]);
      else expect([a.name, gone.length]).toEqual([a.name, a.original.size]);
      // Each deletion has its proof in PostgreSQL, written before the source was asked: the
      // bytes' SHA-1 and the evidence it relied on, whatever became of the worker's disk.
      if (gone.length) {
        const proven = await deletionRows(db.url, slugOf(a.name));
        for (const h of gone)
          expect([a.name, a.original.get(h), proven.get(h) ?? proven.get(a.sha256.get(h) ?? '')]).toEqual([
            a.name,
            a.original.get(h),
            expect.stringMatching(/^(bytes|pixels|received)$/),
          ]);
      }
    }
    expect(gstate.mediaItems).toHaveLength(9 * PER_ACCOUNT);
    // The Google budget: the emulator's own count of the requests it admitted today.
    const googleUsed = Object.values(gstate.quota.used).reduce((x, y) => x + y, 0);
    expect(googleUsed).toBeGreaterThan(0);
    expect(googleUsed).toBeLessThanOrEqual(BUDGET);
    // Xiaomi never deleted an item twice, and deleted only items that are at the destination.
    const xdst = sha1Counts(destOf(accounts[0]!));
    for (const id of Object.keys(xdeleted)) expect(xdst.get(xmanifest().find((m) => m.id === id)!.sha1)).toBe(1);

    // The admin sees the takeovers: the killed and the paused worker's accounts, each with its time and reason.
    const status = JSON.parse((await runCli(['batch', 'status', '--queue', db.url, '--json'])).stdout) as {
      queue: {
        takeovers: Array<{ oldWorker: string; reason: string }>;
        workers: Array<{ name: string; state: string }>;
        deletions: Array<{ account: string; deleted: number; unconfirmed: number }>;
      };
    };
    const from = new Set(status.queue.takeovers.map((x) => x.oldWorker));
    expect(from.has(killed.name) && from.has(paused.name), JSON.stringify(status.queue.takeovers)).toBe(true);
    expect(killedHeld).toContain(killedSlug);
    expect(status.queue.workers.find((w) => w.name === killed.name)!.state).toBe('silent');
    // And the deletions recorded per account: exactly the accounts whose rows said delete.
    const shown = new Map(status.queue.deletions.map((d) => [d.account, d.deleted + d.unconfirmed]));
    for (const a of accounts) expect([a.name, (shown.get(a.name) ?? 0) >= (a.del ? a.original.size : 0), shown.has(a.name)]).toEqual([a.name, true, a.del]);
  }, 900_000);
});

function slugOf(account: string): string {
  return account;
}

function readDeleted(xData: string): Record<string, unknown> {
  return readEmulatorState(xData).deleted;
}

/** SHA-1 and SHA-256 -> evidence level of every deletion the queue database records for the account (intents included). */
async function deletionRows(url: string, slug: string): Promise<Map<string, string>> {
  const rows = await sql<{ sha1: string | null; sha256: string; evidence: string }>(
    url,
    `SELECT sha1, sha256, evidence FROM gallery_bridge.deletions WHERE slug = $1`,
    [slug],
  );
  const out = new Map<string, string>();
  for (const r of rows) {
    out.set(r.sha256, r.evidence);
    if (r.sha1) out.set(r.sha1, r.evidence);
  }
  return out;
}
