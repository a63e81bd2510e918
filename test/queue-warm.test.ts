// Queue mode runs a worker's accounts in warm processes (src/batch/pool.ts) with each account's
// lease handed over as values: one process serves every account of a one-slot worker, and each
// deletion is fenced and recorded under its own account's lease, never the one before it.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';
import { watchAccountWorkers } from './helpers/account-workers.ts';
import { freshDatabase } from './pg.ts';
import { accountStatuses, sql, startWorker } from './queue-kit.ts';

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
});
