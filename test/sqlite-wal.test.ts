// Processes that open one new SQLite file at the same instant: the Google quota file every run on
// a machine shares. Each must open it (no "database is locked"), and every count must land.

import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { tmpDir } from './helpers.ts';

const QUOTA = path.resolve('providers/google-photos/quota.ts');
const PROCESSES = 10;
const ROUNDS = 8;

/** One process: waits for the shared instant, opens the quota file, counts one request. */
function opener(home: string, at: number): Promise<{ code: number | null; out: string }> {
  const script = `
    import { QuotaCounter } from ${JSON.stringify(QUOTA)};
    while (Date.now() < ${at}) {}
    const q = new QuotaCounter(${JSON.stringify(home)}, 'client');
    q.count(1);
    q.close();`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: path.resolve('.') });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('a SQLite file opened by several processes at once', () => {
  it('opens for every one of them in WAL mode, and keeps every count', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const home = tmpDir();
      // Past every child's start-up (tsx included), so they open the file within the same few ms.
      const at = Date.now() + 1500;
      const results = await Promise.all(Array.from({ length: PROCESSES }, () => opener(home, at)));
      for (const r of results) expect(r, r.out).toMatchObject({ code: 0 });
      const db = new Database(path.join(home, 'google-photos', 'quota.sqlite'), { readonly: true });
      try {
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
        expect(db.prepare('SELECT sum(requests) AS n FROM usage').get()).toEqual({ n: PROCESSES });
      } finally {
        db.close();
      }
    }
  }, 120_000);
});
