// Bad input and hostile destinations: files that change or vanish while read, a full disk and a
// read-only destination (real tmpfs mounts, skipped where the machine does not allow mounting).

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream';
import { FolderSource } from '../providers/folder/source.ts';
import { ItemGoneError, RetryableError } from '../providers/types.ts';
import { FIXTURES, makeSource, runCli, tmpDir, treeHashes } from './helpers.ts';

const mounts: string[] = [];
function tmpfs(sizeKb: number, readonly = false): string | null {
  const dir = tmpDir('gb-mnt-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k${readonly ? ',ro' : ''}`, 'tmpfs', dir], { stdio: 'ignore' });
    mounts.push(dir);
    return dir;
  } catch {
    return null;
  }
}
afterAll(() => {
  for (const m of mounts) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
});

async function drain(s: NodeJS.ReadableStream): Promise<number> {
  let n = 0;
  for await (const c of s) n += (c as Buffer).length;
  return n;
}

describe('folder source', () => {
  it('notices a file that changed since listing, one that changes while read, and one that vanished', async () => {
    const t = tmpDir();
    fs.mkdirSync(path.join(t, 'A'));
    fs.writeFileSync(path.join(t, 'A', 'a.jpg'), Buffer.alloc(10_000, 1));
    fs.writeFileSync(path.join(t, 'A', 'b.jpg'), Buffer.alloc(5_000_000, 2));
    fs.writeFileSync(path.join(t, 'A', 'c.jpg'), Buffer.alloc(10, 3));
    const src = new FolderSource(t);
    const { items } = await src.listItems(null);
    expect(items.map((i) => i.id)).toEqual(['A/a.jpg', 'A/b.jpg', 'A/c.jpg']);

    fs.appendFileSync(path.join(t, 'A', 'a.jpg'), 'more');
    await expect(src.open(items[0]!)).rejects.toThrow(RetryableError);

    const s = await src.open(items[1]!);
    s.once('data', () => fs.appendFileSync(path.join(t, 'A', 'b.jpg'), 'grown while read'));
    await expect(drain(s)).rejects.toThrow(/changed while it was being read/);

    fs.rmSync(path.join(t, 'A', 'c.jpg'));
    await expect(src.open(items[2]!)).rejects.toThrow(ItemGoneError);
  });
});

describe('folder source, iterated (as the engine reads it)', () => {
  it('gives the exact bytes of a file and of a range, notices a change, and closes its descriptor however iteration ends', async () => {
    const t = tmpDir();
    fs.mkdirSync(path.join(t, 'A'));
    const file = path.join(t, 'A', 'v.mp4');
    // Past three 1 MiB chunks: the next chunk is read while the last one is handled.
    const bytes = crypto.randomBytes(3 * 1024 * 1024 + 5);
    fs.writeFileSync(file, bytes);
    const src = new FolderSource(t);
    const item = (await src.listItems(null)).items[0]!;
    const openFds = () => fs.readdirSync('/proc/self/fd').length;
    const before = openFds();
    const collect = async (s: AsyncIterable<unknown>, each?: () => void) => {
      const parts: Buffer[] = [];
      for await (const c of s) {
        parts.push(c as Buffer);
        each?.();
      }
      return Buffer.concat(parts);
    };

    const whole = await src.open(item);
    const ended = new Promise((resolve) => finished(whole, resolve));
    expect((await collect(whole)).equals(bytes)).toBe(true);
    // Whoever waits on the stream sees it end, not close early.
    expect(await ended).toBeUndefined();
    expect((await collect(await src.open(item, { offset: 1_000_000, length: 2_000_000 }))).equals(bytes.subarray(1_000_000, 3_000_000))).toBe(true);
    // Stopped after the first chunk, with the next one being read.
    for await (const _ of await src.open(item)) break;
    expect(openFds()).toBe(before);

    const run = new AbortController();
    const aborted = collect(await src.open(item, { signal: run.signal }), () => run.abort(new Error('the run stopped')));
    await expect(aborted).rejects.toThrow('the run stopped');
    expect(openFds()).toBe(before);

    let grown = false;
    const growing = collect(await src.open(item), () => {
      if (!grown) fs.appendFileSync(file, 'grown while read');
      grown = true;
    });
    await expect(growing).rejects.toThrow(/changed while it was being read/);
    expect(openFds()).toBe(before);
  });
});

describe('hostile destinations', () => {
  it('a full disk stops the run with exit 5, deletes nothing unverified, and a rerun with room finishes', async () => {
    const mnt = tmpfs(3000);
    if (!mnt) return void console.warn('skipped: cannot mount tmpfs here');
    const t = tmpDir();
    const src = path.join(t, 'src');
    makeSource(src, { A: ['IMG_20180725_163423.jpg', 'canon-dslr.jpg', 'cookiezen.jpg'] });
    const before = treeHashes(src);
    const db = path.join(t, 's.db');
    const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${mnt}`, '--state', db, '--delete-source', '--concurrency', '1']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/full/);
    // Whatever left the source is at the destination, byte for byte.
    const left = treeHashes(src);
    const landed = treeHashes(mnt);
    for (const [rel, h] of before) if (!left.has(rel)) expect(landed.get(rel)).toBe(h);
    expect(left.size).toBeGreaterThan(0);
    // No temp file is left to eat the space.
    expect([...landed.keys()].filter((k) => k.includes('.part'))).toEqual([]);

    // Make room and run again: it resumes and finishes.
    execFileSync('mount', ['-o', 'remount,size=20m', mnt]);
    const again = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${mnt}`, '--state', db, '--delete-source']);
    expect(again.code).toBe(0);
    expect(treeHashes(src).size).toBe(0);
    expect(treeHashes(mnt)).toEqual(before);
  });

  it('a read-only destination stops the run with exit 2 and a one-line reason', async () => {
    const mnt = tmpfs(1000, true);
    if (!mnt) return void console.warn('skipped: cannot mount tmpfs here');
    const t = tmpDir();
    const src = path.join(t, 'src');
    makeSource(src, { A: ['f6t.jpg'] });
    const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${mnt}`, '--state', path.join(t, 's.db'), '--delete-source']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/not writable/);
    expect(fs.existsSync(path.join(src, 'A', 'f6t.jpg'))).toBe(true);
    expect(fs.existsSync(path.join(FIXTURES, 'f6t.jpg'))).toBe(true);
  });
});
