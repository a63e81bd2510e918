// Hostile local files: a state file that is corrupt, cut short, someone else's database or from
// a newer gallery-bridge. Each stops the run with a one-line reason and exit 2 before anything
// is read or deleted, and the file is left exactly as it was (a newer tool's file must not be
// converted, a damaged one must stay available for recovery).

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openBatch } from '../src/batch/store.ts';
import { makeSource, runCli, tmpDir, treeHashes } from './helpers.ts';

function setup() {
  const t = tmpDir('gb-hostile-state-');
  const src = path.join(t, 'src');
  makeSource(src, { Camera: ['f6t.jpg', 'noexif.jpg'] });
  const args = (state: string) => ['migrate', '--from', `folder:${src}`, '--to', `folder:${path.join(t, 'dst')}`, '--state', state, '--delete-source'];
  return { t, src, args, pristine: treeHashes(src) };
}

async function expectRefused(s: ReturnType<typeof setup>, state: string, pattern: RegExp): Promise<void> {
  const before = fs.readFileSync(state);
  const dstBefore = treeHashes(path.join(s.t, 'dst'));
  const run = await runCli(s.args(state));
  expect(run.code, run.stderr + run.stdout).toBe(2);
  const lines = run.stderr.trim().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(lines[0]).toContain(state);
  expect(fs.readFileSync(state).equals(before), 'the state file was changed').toBe(true);
  expect(fs.existsSync(`${state}-wal`)).toBe(false);
  expect(treeHashes(s.src)).toEqual(s.pristine);
  expect(treeHashes(path.join(s.t, 'dst'))).toEqual(dstBefore);
  // The read-only commands refuse it the same way.
  for (const cmd of [
    ['status', '--state', state],
    ['report', '--state', state, '--out', path.join(s.t, 'r.json')],
  ]) {
    const r = await runCli(cmd);
    expect(r.code, `${cmd[0]}: ${r.stderr}${r.stdout}`).toBe(2);
    expect(r.stderr).toMatch(pattern);
  }
  expect(fs.readFileSync(state).equals(before)).toBe(true);
}

describe('hostile state files', () => {
  it('random bytes', async () => {
    const s = setup();
    const state = path.join(s.t, 'state.db');
    fs.writeFileSync(state, Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919) % 251)), { mode: 0o600 });
    await expectRefused(s, state, /damaged or not a gallery-bridge state file/);
  });

  it('a real state file cut short', async () => {
    const s = setup();
    const state = path.join(s.t, 'state.db');
    const first = await runCli(s.args(state).filter((a) => a !== '--delete-source'));
    expect(first.code, first.stderr).toBe(0);
    // Checkpointed into the main file, then cut in the middle of its pages.
    const db = new Database(state);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
    db.close();
    const size = fs.statSync(state).size;
    expect(size).toBeGreaterThan(8192);
    fs.truncateSync(state, 4096 + 100);
    await expectRefused(s, state, /damaged or not a gallery-bridge state file|malformed/);
  });

  it('an SQLite database that is not ours', async () => {
    const s = setup();
    const state = path.join(s.t, 'photos.sqlite');
    const db = new Database(state);
    db.exec("CREATE TABLE albums (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO albums(name) VALUES ('Holidays')");
    db.close();
    fs.chmodSync(state, 0o600);
    await expectRefused(s, state, /not a gallery-bridge state file/);
  });

  it("a batch's own store (DIR/batch.db): named as such, with the commands that read it", async () => {
    const s = setup();
    const dir = path.join(s.t, 'batch');
    openBatch(dir).close();
    const state = path.join(dir, 'batch.db');
    await expectRefused(
      s,
      state,
      /is gallery-bridge's batch store.*`gallery-bridge batch status --state .*`gallery-bridge serve --state .*accounts\/NAME\/state\.db/,
    );
  });

  it('a state file from a newer gallery-bridge', async () => {
    const s = setup();
    const state = path.join(s.t, 'state.db');
    const first = await runCli(s.args(state).filter((a) => a !== '--delete-source'));
    expect(first.code, first.stderr).toBe(0);
    const db = new Database(state);
    const v = db.pragma('user_version', { simple: true }) as number;
    db.pragma(`user_version = ${v + 5}`);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
    db.close();
    await expectRefused(s, state, new RegExp(`schema v${v + 5}, newer than this gallery-bridge.*upgrade`));
  });
});
