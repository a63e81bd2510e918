// The default --concurrency comes from the providers (measured by bench/concurrency.ts): a run
// without the option uses its destination's, capped by its source's; the option always wins.
// Checked through the real CLI: the line the run prints and the options the run recorded in its
// state file (runs.options), and the bytes that arrived.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { chooseConcurrency, FALLBACK_CONCURRENCY } from '../src/commands/concurrency.ts';
import { loadProvider } from '../providers/index.ts';
import { makeSource, runCli, sha256File, tmpDir, treeHashes } from './helpers.ts';
import { oneDriveKit } from './onedrive-kit.ts';

const TOKEN = 'concurrency-token-0123456789abcdef';
const { emulator, cliEnv } = oneDriveKit(TOKEN);
const PHOTOS = ['canon-dslr.jpg', 'img_1771.jpg', 'cookiezen.jpg', 'f6t.jpg', 'noexif.jpg'];

/** The concurrency each run in the state file recorded, oldest first. */
function recorded(state: string): number[] {
  const db = new Database(state, { readonly: true });
  try {
    return (db.prepare('SELECT options FROM runs ORDER BY id').all() as Array<{ options: string }>).map(
      (r) => (JSON.parse(r.options) as { concurrency: number }).concurrency,
    );
  } finally {
    db.close();
  }
}

describe('default --concurrency per provider', () => {
  it("a run to OneDrive without --concurrency uses OneDrive's default, says so and records it; --concurrency N overrides it", async () => {
    const onedrive = (await loadProvider('onedrive'))!;
    const declared = onedrive.defaultConcurrency?.destination;
    expect(declared).toBeGreaterThan(FALLBACK_CONCURRENCY); // measured higher than the old fixed 4
    const t = tmpDir('gb-conc-');
    const src = path.join(t, 'src');
    makeSource(src, { Camera: PHOTOS });
    const pristine = treeHashes(src);
    const data = path.join(t, 'emu');
    const env = cliEnv(await emulator(data), path.join(t, 'home'));

    const state = path.join(t, 'default.db');
    const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', 'onedrive:/Default', '--state', state], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`concurrency ${declared} (onedrive's default as a destination; --concurrency N to change)`);
    expect(recorded(state)).toEqual([declared]);

    const explicit = path.join(t, 'explicit.db');
    const r2 = await runCli(['migrate', '--from', `folder:${src}`, '--to', 'onedrive:/Explicit', '--state', explicit, '--concurrency', '3'], { env });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toContain('concurrency 3 (--concurrency)');
    expect(recorded(explicit)).toEqual([3]);

    // Both runs delivered every byte.
    for (const root of ['Default', 'Explicit']) {
      for (const [rel, hash] of pristine) expect(sha256File(path.join(data, 'me', root, rel)), `${root}/${rel}`).toBe(hash);
    }
  });

  it('plan says which concurrency a run would use and why; --json carries it', async () => {
    const t = tmpDir('gb-conc-plan-');
    const src = path.join(t, 'src');
    makeSource(src, { Camera: PHOTOS.slice(0, 2) });
    const folder = (await loadProvider('folder'))!;
    const expected = chooseConcurrency(undefined, folder, folder);
    const base = ['plan', '--from', `folder:${src}`, '--to', `folder:${path.join(t, 'dst')}`, '--state', path.join(t, 's.db')];

    const plain = await runCli(base);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain(`  ${expected.line}\n`);
    expect(plain.stdout).toMatch(new RegExp(`concurrency ${expected.value} \\(.*--concurrency N to change\\)`));

    const json = await runCli([...base, '--json', '--concurrency', '7']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout.trim().split('\n').pop()!).concurrency).toEqual({ value: 7, from: 'option' });
    expect(fs.existsSync(path.join(t, 'dst'))).toBe(false); // plan moves nothing
  });

  it("a source that declares a default caps the destination's (Xiaomi into OneDrive or Google Photos); a folder source does not", async () => {
    const load = async (n: string) => (await loadProvider(n))!;
    const [xiaomi, folder, onedrive, google] = await Promise.all([load('xiaomi'), load('folder'), load('onedrive'), load('google-photos')]);
    const cap = xiaomi.defaultConcurrency!.source!;
    for (const dest of [onedrive, google]) {
      const d = dest.defaultConcurrency!.destination!;
      const c = chooseConcurrency(undefined, xiaomi, dest);
      expect(c.value).toBe(Math.min(cap, d));
      expect(c.from).toBe(cap < d ? 'source' : 'destination');
      expect(chooseConcurrency(undefined, folder, dest)).toMatchObject({ value: d, from: 'destination' });
      expect(chooseConcurrency(5, xiaomi, dest)).toMatchObject({ value: 5, from: 'option' });
    }
    expect(chooseConcurrency(undefined, xiaomi, onedrive).line).toBe(
      `concurrency ${cap} (xiaomi's default as a source, below onedrive's default as a destination, ${onedrive.defaultConcurrency!.destination}; --concurrency N to change)`,
    );
  });

  it('batch run passes --concurrency to each account only when given', async () => {
    const t = tmpDir('gb-conc-batch-');
    const folder = (await loadProvider('folder'))!;
    const fallback = chooseConcurrency(undefined, folder, folder).value;
    for (const a of ['anna', 'ben']) makeSource(path.join(t, 'src', a), { Camera: PHOTOS.slice(0, 2) });
    /** A manifest of both accounts into their own folders under dst-NAME. */
    const manifest = (name: string) => {
      const file = path.join(t, `${name}.csv`);
      fs.writeFileSync(
        file,
        ['account,source,destination', ...['anna', 'ben'].map((a) => `${a},folder:${t}/src/${a},folder:${t}/dst-${name}/${a}`)].join('\n') + '\n',
      );
      return file;
    };
    const states = (dir: string) => fs.readdirSync(path.join(dir, 'accounts')).map((a) => path.join(dir, 'accounts', a, 'state.db'));

    const plain = await runCli(['batch', 'run', manifest('b1'), '--state', path.join(t, 'b1')], { env: { GALLERY_BRIDGE_HOME: path.join(t, 'home') } });
    expect(plain.code, plain.stderr).toBe(0);
    expect(states(path.join(t, 'b1')).map(recorded)).toEqual([[fallback], [fallback]]);

    const given = await runCli(['batch', 'run', manifest('b2'), '--state', path.join(t, 'b2'), '--concurrency', '2'], {
      env: { GALLERY_BRIDGE_HOME: path.join(t, 'home') },
    });
    expect(given.code, given.stderr).toBe(0);
    expect(states(path.join(t, 'b2')).map(recorded)).toEqual([[2], [2]]);
  });
});
