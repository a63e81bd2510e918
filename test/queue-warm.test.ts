// Queue mode runs a worker's accounts in warm processes (src/batch/pool.ts) with each account's
// lease handed over as values: one process serves every account of a one-slot worker, and each
// deletion is fenced and recorded under its own account's lease, never the one before it.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';
import { accountWorkersOf, watchAccountWorkers } from './helpers/account-workers.ts';
import { freshDatabase } from './pg.ts';
import { accountStatuses, sql, startWorker, until } from './queue-kit.ts';

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase('gbqwarm');
});
afterAll(async () => {
  await db?.drop();
});

const PHOTOS = ['canon-dslr.jpg', 'cookiezen.jpg', 'img_1771.jpg'];

describe('queue mode with warm worker processes', () => {
  it('one process runs the four accounts of a one-slot worker, each deletion under its own account', async () => {
    const t = tmpDir('gb-queue-warm-');
    const rows = ['account,source,destination,delete_source'];
    for (let i = 0; i < 4; i++) {
      const src = path.join(t, 'src', `a${i}`, 'Camera');
      fs.mkdirSync(src, { recursive: true });
      for (const f of PHOTOS) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, `a${i}-${f}`));
      rows.push(`a${i},folder:${path.join(t, 'src', `a${i}`)},folder:${path.join(t, 'dst', `a${i}`)},yes`);
    }
    fs.writeFileSync(path.join(t, 'm.csv'), `${rows.join('\n')}\n`);
    const env = { GALLERY_BRIDGE_HOME: path.join(t, 'home') };
    const load = await runCli(['batch', 'run', path.join(t, 'm.csv'), '--queue', db.url, '--no-work'], { env });
    expect(load.code, load.stderr).toBe(0);

    const w = startWorker({ url: db.url, name: 'w1', dir: path.join(t, 'w1'), env, slots: 1 });
    const workers = watchAccountWorkers(w.child.pid!);
    const end = await w.exited;
    workers.stop();
    expect(end.code, w.lines.join('\n')).toBe(0);

    const statuses = await accountStatuses(db.url);
    for (let i = 0; i < 4; i++) {
      expect([`a${i}`, statuses.get(`a${i}`)]).toEqual([`a${i}`, 'done']);
      const dst = fs.readdirSync(path.join(t, 'dst', `a${i}`), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      expect(dst.map((e) => e.name).sort()).toEqual(PHOTOS.map((f) => `a${i}-${f}`).sort());
      expect(fs.readdirSync(path.join(t, 'src', `a${i}`, 'Camera'))).toEqual([]);
    }
    // Every deletion is recorded under the account whose file it was, by this worker.
    const dels = await sql<{ slug: string; name: string; worker: string }>(db.url, 'SELECT slug, name, worker FROM gallery_bridge.deletions ORDER BY id');
    expect(dels.length).toBe(12);
    for (const d of dels) {
      expect(d.name.startsWith(`${d.slug}-`), `${d.slug}: ${d.name}`).toBe(true);
      expect(d.worker).toBe('w1');
    }
    expect(workers.seen.size).toBe(1);
  }, 240_000);

  it("starts each slot's warm process as it starts, and a worker refused at joining leaves none behind", async () => {
    const t = tmpDir('gb-queue-prestart-');
    const src = path.join(t, 'src', 'Camera');
    fs.mkdirSync(src, { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, PHOTOS[0]!), path.join(src, PHOTOS[0]!));
    fs.writeFileSync(path.join(t, 'm.csv'), `account,source,destination\nonly,folder:${path.join(t, 'src')},folder:${path.join(t, 'dst')}\n`);
    const env = { GALLERY_BRIDGE_HOME: path.join(t, 'home') };
    const load = await runCli(['batch', 'run', path.join(t, 'm.csv'), '--queue', db.url, '--no-work'], { env });
    expect(load.code, load.stderr).toBe(0);

    const w = startWorker({ url: db.url, name: 'pre', dir: path.join(t, 'pre'), env, slots: 2, follow: true });
    try {
      await until('the one account done', async () => (await accountStatuses(db.url)).get('only') === 'done');
      // One account for two slots: the second process is there only because it started with the worker.
      expect(accountWorkersOf(w.child.pid!).length).toBe(2);

      const refused = startWorker({ url: db.url, name: 'pre', dir: path.join(t, 'refused'), env, slots: 2 });
      const started = watchAccountWorkers(refused.child.pid!);
      const end = await refused.exited;
      started.stop();
      expect(end.code, refused.lines.join('\n')).toBe(2);
      expect(refused.lines.join('\n')).toContain('already running');
      expect(started.seen.size).toBe(2);
      await until('its warm processes gone', () => [...started.seen].every((pid) => !alive(pid)), 10_000, 50);
    } finally {
      w.signalGroup('SIGTERM');
      await w.exited;
    }
  }, 240_000);
});

/** Running (not gone, not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
}
