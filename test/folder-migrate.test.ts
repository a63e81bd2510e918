// Folder to folder through the real CLI: bytes compared on disk, state read from SQLite.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FIXTURES, SAMPLE_MEDIA, makeSource, runCli, sha256File, tmpDir, treeHashes } from './helpers.ts';

function states(db: string): Record<string, string> {
  const d = new Database(db, { readonly: true });
  try {
    return Object.fromEntries(
      (d.prepare('SELECT source_id, state FROM items').all() as Array<{ source_id: string; state: string }>).map((r) => [r.source_id, r.state]),
    );
  } finally {
    d.close();
  }
}

describe('folder to folder', () => {
  it('migrates every sample file byte for byte, corrupt ones included, and a rerun uploads nothing twice', async () => {
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { Camera: SAMPLE_MEDIA.slice(0, 9), Screenshots: SAMPLE_MEDIA.slice(9) });
    const before = treeHashes(src);
    const db = path.join(t, 'state.db');

    const r1 = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db]);
    expect(r1.stderr).toContain('done:');
    expect(r1.code).toBe(0);
    expect(treeHashes(dst)).toEqual(before);
    expect(treeHashes(src)).toEqual(before); // nothing deleted without --delete-source
    expect(fs.statSync(db).mode & 0o777).toBe(0o600);
    expect(new Set(Object.values(states(db)))).toEqual(new Set(['verified']));

    // A second run changes nothing at the destination and re-verifies nothing.
    const mtimes = [...treeHashes(dst).keys()].map((f) => fs.statSync(path.join(dst, f)).mtimeMs);
    const r2 = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db, '--json']);
    expect(r2.code).toBe(0);
    const summary = JSON.parse(r2.stdout.trim().split('\n').pop()!);
    expect(summary.type).toBe('summary');
    expect(summary.counts.verified.items).toBe(SAMPLE_MEDIA.length);
    expect([...treeHashes(dst).keys()].map((f) => fs.statSync(path.join(dst, f)).mtimeMs)).toEqual(mtimes);
  });

  it('deletes at the source only what is verified, and logs every deletion', async () => {
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { Album: ['canon-dslr.jpg', 'img_1771.jpg', 'VID_20230514_101112.mp4'] });
    const before = treeHashes(src);
    const db = path.join(t, 'state.db');
    const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db, '--delete-source']);
    expect(r.code).toBe(0);
    expect(treeHashes(src).size).toBe(0);
    expect(treeHashes(dst)).toEqual(before);
    const d = new Database(db, { readonly: true });
    const log = d.prepare('SELECT source_id, evidence_level FROM deletions ORDER BY source_id').all();
    d.close();
    expect(log).toEqual([
      { source_id: 'Album/VID_20230514_101112.mp4', evidence_level: 'bytes' },
      { source_id: 'Album/canon-dslr.jpg', evidence_level: 'bytes' },
      { source_id: 'Album/img_1771.jpg', evidence_level: 'bytes' },
    ]);
  });

  it('a later run with --delete-source deletes items verified by earlier runs', async () => {
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { A: ['f6t.jpg', 'noexif.jpg'] });
    const db = path.join(t, 'state.db');
    expect((await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db])).code).toBe(0);
    expect(treeHashes(src).size).toBe(2);
    expect((await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db, '--delete-source'])).code).toBe(0);
    expect(treeHashes(src).size).toBe(0);
    expect(new Set(Object.values(states(db)))).toEqual(new Set(['source-deleted']));
  });

  it('lays out by capture date, keeps two different files of one name apart and counts the same bytes once', async () => {
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    fs.mkdirSync(path.join(src, 'A'), { recursive: true });
    fs.mkdirSync(path.join(src, 'B'), { recursive: true });
    fs.mkdirSync(path.join(src, 'C'), { recursive: true });
    // Same name, different bytes, same month: the second gets " (2)".
    fs.copyFileSync(path.join(FIXTURES, 'IMG_20180725_163423.jpg'), path.join(src, 'A', 'IMG.jpg'));
    const altered = fs.readFileSync(path.join(FIXTURES, 'IMG_20180725_163423.jpg'));
    altered[altered.length - 3]! ^= 0xff;
    fs.writeFileSync(path.join(src, 'B', 'IMG.jpg'), altered);
    // Same name, same bytes: one file at the destination, the other a duplicate.
    fs.copyFileSync(path.join(FIXTURES, 'IMG_20180725_163423.jpg'), path.join(src, 'C', 'IMG.jpg'));
    fs.copyFileSync(path.join(FIXTURES, 'VID_20211224_183000.mov'), path.join(src, 'A', 'clip.mov'));
    fs.copyFileSync(path.join(FIXTURES, 'noexif.jpg'), path.join(src, 'A', 'plain.jpg'));
    // No date in the file or its name: the file's own time is the last resort.
    fs.utimesSync(path.join(src, 'A', 'plain.jpg'), new Date('2017-03-04T12:00:00Z'), new Date('2017-03-04T12:00:00Z'));
    const db = path.join(t, 'state.db');
    const r = await runCli([
      'migrate',
      '--from',
      `folder:${src}`,
      '--to',
      `folder:${dst}`,
      '--state',
      db,
      '--layout',
      'date',
      '--concurrency',
      '1',
      '--timezone',
      'UTC',
    ]);
    expect(r.code).toBe(0);
    const out = treeHashes(dst);
    expect([...out.keys()].sort()).toEqual(['2017/03/plain.jpg', '2018/07/IMG (2).jpg', '2018/07/IMG.jpg', '2021/12/clip.mov']);
    expect(out.get('2018/07/IMG.jpg')).toBe(sha256File(path.join(src, 'A', 'IMG.jpg')));
    expect(out.get('2018/07/IMG (2).jpg')).toBe(sha256File(path.join(src, 'B', 'IMG.jpg')));
    const s = states(db);
    expect(s['C/IMG.jpg']).toBe('skipped');
    expect(s['A/IMG.jpg']).toBe('verified');
  });

  it('gives bad input a one-line reason and goes on with the rest', async () => {
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { 'Ünïcode album': ['truncated.jpg', 'not-a-photo.jpg', 'broken1.jpg'] });
    fs.writeFileSync(path.join(src, 'Ünïcode album', 'empty.jpg'), '');
    fs.writeFileSync(path.join(src, 'Ünïcode album', 'a..b weird name .jpg'), 'x');
    fs.writeFileSync(path.join(src, '.DS_Store'), 'hidden');
    const db = path.join(t, 'state.db');
    const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db]);
    expect(r.code).toBe(0);
    const out = treeHashes(dst);
    const expected = treeHashes(src);
    expected.delete('.DS_Store');
    expect(out).toEqual(expected);

    // A state file is tied to its source.
    const other = path.join(t, 'other');
    fs.mkdirSync(other);
    const r2 = await runCli(['migrate', '--from', `folder:${other}`, '--to', `folder:${dst}`, '--state', db]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/belongs to another source/);

    // A destination that cannot be a folder stops the run with a usage/configuration exit.
    const file = path.join(t, 'a-file');
    fs.writeFileSync(file, 'x');
    const r3 = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${file}/sub`, '--state', path.join(t, 's3.db')]);
    expect(r3.code).toBe(2);
    expect(r3.stderr.trim().split('\n').pop()).toMatch(/not writable|not a folder/);
  });

  it('status, report and hash read what the run recorded', async () => {
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { A: ['f6t.jpg', 'cookiezen.jpg'] });
    const db = path.join(t, 'state.db');
    expect((await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db])).code).toBe(0);

    const st = await runCli(['status', '--state', db, '--json']);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout);
    expect(status.counts.verified).toEqual({
      items: 2,
      bytes: fs.statSync(path.join(src, 'A/f6t.jpg')).size + fs.statSync(path.join(src, 'A/cookiezen.jpg')).size,
    });

    for (const ext of ['json', 'csv', 'html']) {
      const out = path.join(t, `report.${ext}`);
      expect((await runCli(['report', '--state', db, '--out', out])).code).toBe(0);
      const text = fs.readFileSync(out, 'utf8');
      // The HTML page is for people (names, outcomes); the hashes are in the CSV and JSON rows.
      expect(text).toContain(ext === 'html' ? 'f6t.jpg' : sha256File(path.join(src, 'A/f6t.jpg')));
      expect(text).not.toMatch(/\.part|upload_session/);
    }
    const rep = JSON.parse(fs.readFileSync(path.join(t, 'report.json'), 'utf8'));
    expect(rep.items).toHaveLength(2);
    expect(rep.items[0].evidence_level).toBe('bytes');

    const h = await runCli(['hash', '--json', path.join(FIXTURES, 'f6t.jpg')]);
    expect(h.code).toBe(0);
    const hj = JSON.parse(h.stdout);
    expect(hj.sha256).toBe(sha256File(path.join(FIXTURES, 'f6t.jpg')));
    expect(hj.quickxor).toMatch(/^[A-Za-z0-9+/]{27}=$/);

    const bad = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--delete-evidence', 'vibes']);
    expect(bad.code).toBe(2);
  });
});

describe('stopping cleanly', () => {
  it('SIGTERM checkpoints and exits 143, --until exits 4, and a rerun finishes the job', async () => {
    const { spawn } = await import('node:child_process');
    const { CLI } = await import('./helpers.ts');
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    fs.mkdirSync(path.join(src, 'A'), { recursive: true });
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, 'A', `f${i}.bin`), Buffer.alloc(400_000, i));
    const db = path.join(t, 'state.db');
    const args = ['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db, '--concurrency', '1', '--json'];
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
      let sent = false;
      child.stdout.on('data', (d: Buffer) => {
        if (!sent && d.toString().includes('"type":"item"')) {
          sent = true;
          child.kill('SIGTERM');
        }
      });
      child.on('close', (c) => resolve(c));
    });
    expect(code).toBe(143);
    const partial = treeHashes(dst);
    expect(partial.size).toBeLessThan(40);

    const until = await runCli([...args.slice(0, -1), '--until', new Date(Date.now() - 1000).toISOString()]);
    expect(until.code).toBe(4);
    expect(until.stderr).toMatch(/--until/);

    const done = await runCli(args);
    expect(done.code).toBe(0);
    expect(treeHashes(dst)).toEqual(treeHashes(src));
  });
});

describe('plan', () => {
  it('counts what a run would move, flags undated items, writes nothing, and sees what is done', async () => {
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeSource(src, { A: ['IMG_20180725_163423.jpg', 'noexif.jpg', 'VID_20230514_101112.mp4', 'not-a-photo.jpg'] });
    const bytes = [...treeHashes(src).keys()].reduce((a, f) => a + fs.statSync(path.join(src, f)).size, 0);
    const db = path.join(t, 'state.db');
    const p1 = await runCli(['plan', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db, '--json']);
    expect(p1.code).toBe(0);
    const plan = JSON.parse(p1.stdout);
    expect(plan.listed).toEqual({ items: 4, bytes });
    expect(plan.toMove).toEqual({ items: 4, bytes });
    expect(plan.done.items).toBe(0);
    expect(plan.undated.items).toBe(2);
    expect(plan.undated.examples.sort()).toEqual(['A/noexif.jpg', 'A/not-a-photo.jpg']);
    expect(plan.capacity.fits).toBe(true);
    expect(fs.existsSync(db)).toBe(false);
    expect(fs.existsSync(dst)).toBe(false);

    const dry = await runCli(['migrate', '--dry-run', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/to move: +4 items/);
    expect(fs.existsSync(dst)).toBe(false);

    expect((await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db])).code).toBe(0);
    const p2 = JSON.parse((await runCli(['plan', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', db, '--json', '--delete-source'])).stdout);
    expect(p2.done.items).toBe(4);
    expect(p2.toMove.items).toBe(0);
    expect(p2.toDelete).toBe(4);
  });
});
