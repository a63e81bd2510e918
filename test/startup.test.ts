// The CLI runs compiled JavaScript when dist/ matches the sources, and the TypeScript sources
// (through tsx) when dist/ is missing or stale: an edited checkout never runs old code.
// Checked on a scratch project holding the real bin and build script.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { build } from '../scripts/build.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-startup-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function project(): string {
  const dir = fs.mkdtempSync(path.join(scratch, 'p-'));
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.mkdirSync(path.join(dir, 'src', 'lib'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'state'));
  fs.copyFileSync(path.join(ROOT, 'bin', 'gallery-bridge.js'), path.join(dir, 'bin', 'gallery-bridge.js'));
  fs.copyFileSync(path.join(ROOT, 'scripts', 'build.mjs'), path.join(dir, 'scripts', 'build.mjs'));
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  fs.writeFileSync(path.join(dir, 'src', 'lib', 'word.ts'), "export const word: string = 'one';\n");
  fs.writeFileSync(
    path.join(dir, 'src', 'cli.ts'),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: this string is the source of a module that uses a template
    "import { word } from './lib/word.ts';\nconsole.log(`${word} ${import.meta.url.split('/').slice(-2).join('/')}`);\n",
  );
  return dir;
}

const run = (dir: string) => {
  const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'gallery-bridge.js')], {
    encoding: 'utf8',
    env: { ...process.env, GALLERY_BRIDGE_FROM_SOURCE: '' },
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
};

describe('start-up: compiled when fresh, sources when not', () => {
  it('runs the sources without a build, dist/ after one, and the sources again once one changes', async () => {
    const dir = project();
    expect(run(dir)).toBe('one src/cli.ts');
    await build(dir);
    expect(fs.existsSync(path.join(dir, 'dist', 'cli.js'))).toBe(true);
    expect(run(dir)).toBe('one dist/cli.js');

    // An edit (same size, so only the time differs) makes dist/ stale.
    const later = new Date(Date.now() + 5000);
    fs.writeFileSync(path.join(dir, 'src', 'lib', 'word.ts'), "export const word: string = 'two';\n");
    fs.utimesSync(path.join(dir, 'src', 'lib', 'word.ts'), later, later);
    expect(run(dir)).toBe('two src/cli.ts');

    await build(dir);
    expect(run(dir)).toBe('two dist/cli.js');
    // A new source file makes it stale too.
    fs.writeFileSync(path.join(dir, 'state', 'extra.ts'), 'export {};\n');
    expect(run(dir)).toBe('two src/cli.ts');
  });

  it('a build that fails leaves the previous dist/ or none, never half of one', async () => {
    const dir = project();
    fs.writeFileSync(path.join(dir, 'src', 'cli.ts'), 'this is not typescript (\n');
    await expect(build(dir)).rejects.toThrow();
    expect(fs.existsSync(path.join(dir, 'dist'))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('dist'))).toEqual([]);
  });
});
