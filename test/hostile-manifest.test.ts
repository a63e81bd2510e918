// A batch manifest with hostile rows: account names that try to leave the batch folder (../,
// absolute paths), control characters and NUL, a 1,000-character name; and rows that cannot be
// read. Bad syntax stops the batch before anything moves (exit 2, one line per row); odd names
// run under safe folder names inside the batch folder, and nothing reaches the terminal raw.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';

const RAW = /\u001b\[31m|\u0000|\u0007/;

function files(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String);
}

describe('a hostile batch manifest', () => {
  it('rows that cannot be read stop the batch before anything moves, each named with its line', async () => {
    const t = tmpDir('gb-hostile-m-');
    const src = path.join(t, 'src');
    fs.mkdirSync(path.join(src, 'A'), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'A', 'f6t.jpg'));
    const manifest = path.join(t, 'm.csv');
    fs.writeFileSync(
      manifest,
      [
        'account,source,destination,delete_source',
        `good,folder:${src},folder:${path.join(t, 'dst')},yes`,
        `short,folder:${src}`,
        `extra,folder:${src},folder:${path.join(t, 'dst2')},maybe,,,,,,`,
        `bell\u0007,dropbox:x,folder:${path.join(t, 'dst3')},no`,
        '',
      ].join('\n'),
    );
    const r = await runCli(['batch', 'run', manifest, '--state', path.join(t, 'batch')]);
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n');
    for (const n of [3, 4, 5])
      expect(
        lines.some((l) => l.includes(`m.csv:${n}:`)),
        `line ${n} not named:\n${r.stderr}`,
      ).toBe(true);
    expect(r.stderr + r.stdout).not.toMatch(RAW);
    expect(files(src)).toContain(path.join('A', 'f6t.jpg'));
    expect(fs.existsSync(path.join(t, 'dst'))).toBe(false);
  });

  it('account names with ../, /, control characters, NUL and 1,000 characters stay inside the batch folder', async () => {
    const t = tmpDir('gb-hostile-m-');
    const names = ['../../evil', '/abs/evil', 'ctl\u001b[31mred\u0007', 'nul\u0000x', 'L'.repeat(1000)];
    const rows = names.map((n, i) => {
      const src = path.join(t, `src${i}`);
      fs.mkdirSync(path.join(src, 'A'), { recursive: true });
      fs.copyFileSync(path.join(FIXTURES, 'f6t.jpg'), path.join(src, 'A', 'f6t.jpg'));
      return `"${n}",folder:${src},folder:${path.join(t, `dst${i}`)},yes`;
    });
    const manifest = path.join(t, 'm.csv');
    fs.writeFileSync(manifest, ['account,source,destination,delete_source', ...rows, ''].join('\n'));
    const batch = path.join(t, 'batch');
    const r = await runCli(['batch', 'run', manifest, '--state', batch], { timeoutMs: 200_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).not.toMatch(RAW);
    // Each account moved its photo to its own destination; nothing else appeared beside them.
    for (let i = 0; i < names.length; i++) {
      expect(fs.readFileSync(path.join(t, `dst${i}`, 'A', 'f6t.jpg')).equals(fs.readFileSync(path.join(FIXTURES, 'f6t.jpg')))).toBe(true);
      expect(fs.existsSync(path.join(t, `src${i}`, 'A', 'f6t.jpg'))).toBe(false);
    }
    const top = fs.readdirSync(t).sort();
    expect(top).toEqual(['batch', 'm.csv', ...names.flatMap((_, i) => [`dst${i}`, `src${i}`])].sort());
    expect(fs.existsSync(path.join(path.dirname(t), 'evil'))).toBe(false);
    expect(fs.existsSync('/abs')).toBe(false);
    // Account folders are single safe path components under batch/accounts.
    for (const d of fs.readdirSync(path.join(batch, 'accounts'))) {
      expect(d).toMatch(/^[A-Za-z0-9._-]+$/);
      expect(Buffer.byteLength(d)).toBeLessThan(255);
    }
    const status = await runCli(['batch', 'status', '--state', batch]);
    expect(status.code).toBe(0);
    expect(status.stdout + status.stderr).not.toMatch(RAW);
  });
});
