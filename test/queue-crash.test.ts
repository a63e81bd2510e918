// A migrate child that crashes (here it SIGKILLs itself right after its second commit, through
// the engine's fault point) is not an admin's problem to solve the first time: the account goes
// back to the queue, as a dead worker's account does, and continues. Only an account whose run
// keeps crashing is paused, after a bounded number of tries, with the reason.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CRASH_RETRIES } from '../src/queue/crash.ts';
import { runCli, sha256File, tmpDir } from './helpers.ts';
import { freshDatabase } from './pg.ts';
import { sql } from './queue-kit.ts';

const drops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const d of drops) await d();
});

function files(dir: string, n: number): void {
  fs.mkdirSync(path.join(dir, 'Camera'), { recursive: true });
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, 'Camera', `IMG_${i}.jpg`), crypto.randomBytes(2000 + i));
}

describe('queue: a crashed migrate child', () => {
  it('sends the account back to the queue to finish, and pauses one that keeps crashing after a bounded number of tries', async () => {
    const db = await freshDatabase('crash');
    drops.push(db.drop);
    const t = tmpDir('gb-qcrash-');
    files(path.join(t, 'few'), 3);
    files(path.join(t, 'many'), 40);
    fs.writeFileSync(
      path.join(t, 'm.csv'),
      `account,source,destination\nfew,folder:${t}/few,folder:${t}/dst-few\nmany,folder:${t}/many,folder:${t}/dst-many\n`,
    );
    const load = await runCli(['batch', 'run', path.join(t, 'm.csv'), '--queue', db.url, '--no-work']);
    expect(load.code, load.stderr).toBe(0);

    const w = await runCli(['worker', '--queue', db.url, '--name', 'w1', '--state', path.join(t, 'w'), '--slots', '2'], {
      env: { GALLERY_BRIDGE_FAULT_KILL_AFTER_UPLOADED: '2' },
      timeoutMs: 150_000,
    });
    const said = w.stdout + w.stderr;
    const rows = await sql<{ slug: string; status: string; reason: string | null }>(
      db.url,
      `SELECT slug, status, reason FROM gallery_bridge.accounts ORDER BY slug`,
    );
    const bySlug = Object.fromEntries(rows.map((r) => [r.slug, r]));

    // Its first run was killed after two commits; the next one finished it.
    expect(said).toMatch(/few: waiting — its run was killed by SIGKILL; it goes back to the queue/);
    expect(bySlug.few!.status, said).toBe('done');
    for (let i = 0; i < 3; i++) {
      const f = path.join('Camera', `IMG_${i}.jpg`);
      expect(sha256File(path.join(t, 'dst-few', f))).toBe(sha256File(path.join(t, 'few', f)));
    }

    // Killed on every try: paused after the last one, saying so.
    expect(bySlug.many!.status, said).toBe('paused');
    expect(bySlug.many!.reason).toBe(`its run was killed by SIGKILL, on its try ${CRASH_RETRIES + 1} of ${CRASH_RETRIES + 1}: paused`);
    // One lease epoch a try.
    const epoch = (await sql<{ epoch: string }>(db.url, `SELECT epoch FROM gallery_bridge.leases WHERE slug = 'many'`))[0]!.epoch;
    expect(Number(epoch)).toBe(CRASH_RETRIES + 1);
  }, 180_000);
});
