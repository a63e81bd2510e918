// A worker killed after pg-boss handed it an account's job and before it took the account's
// lease: the job stays active with no lease behind it. Another worker must find it and run the
// account, not wait for pg-boss's own expiry (23 hours).

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { queueFor, startBoss } from '../src/queue/boss.ts';
import { makeSource, runCli, sha256File, tmpDir } from './helpers.ts';
import { freshDatabase } from './pg.ts';
import { sql } from './queue-kit.ts';

const drops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const d of drops) await d();
});

describe('queue: a job whose worker died before taking the lease', () => {
  it('goes back to the queue after one lease time and the account finishes', async () => {
    const db = await freshDatabase('orphan');
    drops.push(db.drop);
    const t = tmpDir('gb-qorphan-');
    makeSource(path.join(t, 'src'), { Camera: ['img_1771.jpg', 'noexif.jpg'] });
    fs.writeFileSync(path.join(t, 'm.csv'), `account,source,destination\nanna,folder:${t}/src,folder:${t}/dst\n`);
    const load = await runCli(['batch', 'run', path.join(t, 'm.csv'), '--queue', db.url, '--no-work', '--lease-seconds', '3']);
    expect(load.code, load.stderr).toBe(0);

    // The "dead worker": it fetched the account's job and never got further.
    const boss = await startBoss(db.url);
    const [job] = await boss.fetch(queueFor('folder', 'folder'));
    await boss.stop({ graceful: false, wait: true });
    expect(job?.data).toEqual({ slug: 'anna' });

    const w = await runCli(['worker', '--queue', db.url, '--name', 'survivor', '--state', path.join(t, 'w')], { timeoutMs: 90_000 });
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toMatch(/anna was handed to a worker that stopped before taking it/);
    expect((await sql(db.url, `SELECT status FROM gallery_bridge.accounts WHERE slug = 'anna'`))[0]!.status).toBe('done');
    for (const f of ['img_1771.jpg', 'noexif.jpg']) expect(sha256File(path.join(t, 'dst', 'Camera', f))).toBe(sha256File(path.join(t, 'src', 'Camera', f)));
  });
});
