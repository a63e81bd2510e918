// The run's one AbortSignal must not collect a listener per item in flight: at --concurrency 32
// Node printed MaxListenersExceededWarning (each file read stream opened with the run's signal
// hangs one on it until it ends). Each wait now gets a signal of its own (src/lib/signals.ts).

import { describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { getEventListeners } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { SignalFanOut } from '../src/lib/signals.ts';
import { sourceWithOwnSignals } from '../src/engine/own-signals.ts';
import { FolderSource } from '../providers/folder/source.ts';
import type { SourceItem } from '../providers/types.ts';
import { runCli, seeded, tmpDir, treeHashes } from './helpers.ts';

/** `n` files of distinct random bytes (2..40 KB) in three albums. */
function makeFiles(dir: string, n: number): void {
  const rnd = seeded(12);
  for (let i = 0; i < n; i++) {
    const album = path.join(dir, `Album ${i % 3}`);
    fs.mkdirSync(album, { recursive: true });
    const size = 2000 + Math.floor(rnd() * 38_000);
    fs.writeFileSync(path.join(album, `IMG_${String(i).padStart(4, '0')}.jpg`), crypto.randomBytes(size));
  }
}

describe('abort listeners', () => {
  it('a fan-out keeps one listener on the shared signal, aborts every live child with it, and forgets released ones', async () => {
    const parent = new AbortController();
    const fan = new SignalFanOut(parent.signal);
    const children = Array.from({ length: 50 }, () => fan.child());
    for (const c of children) c.signal.addEventListener('abort', () => undefined);
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
    expect(fan.size).toBe(50);
    for (const c of children.slice(0, 20)) c.release();
    expect(fan.size).toBe(30);
    // run() releases when the wait settles, rejected or not.
    await expect(fan.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await fan.run(async (s) => s.aborted)).toBe(false);
    expect(fan.size).toBe(30);

    const reason = new Error('stop');
    parent.abort(reason);
    expect(children.slice(20).every((c) => c.signal.aborted && c.signal.reason === reason)).toBe(true);
    expect(children.slice(0, 20).some((c) => c.signal.aborted)).toBe(false);
    expect(fan.size).toBe(0);
    // After the stop, a new wait starts aborted.
    expect(fan.child().signal.aborted).toBe(true);
  });

  it('a child with another signal is aborted by either, with its reason, and lets go of the other at release', () => {
    const parent = new AbortController();
    const fan = new SignalFanOut(parent.signal);
    const items = Array.from({ length: 3 }, () => new AbortController());
    const children = items.map((i) => fan.childWith(i.signal));
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
    expect(items.every((i) => getEventListeners(i.signal, 'abort').length === 1)).toBe(true);

    const itemReason = new Error('item stopped');
    items[0]!.abort(itemReason);
    expect(children[0]!.signal.aborted && children[0]!.signal.reason === itemReason).toBe(true);
    expect(children[1]!.signal.aborted).toBe(false);

    children[2]!.release();
    expect(getEventListeners(items[2]!.signal, 'abort')).toHaveLength(0);
    expect(fan.size).toBe(2);

    const runReason = new Error('run stopped');
    parent.abort(runReason);
    expect(children[1]!.signal.aborted && children[1]!.signal.reason === runReason).toBe(true);
    expect(children[2]!.signal.aborted).toBe(false);
    // An item's signal aborted already: its child starts aborted with that reason.
    const gone = new AbortController();
    gone.abort(itemReason);
    expect(new SignalFanOut(new AbortController().signal).childWith(gone.signal).signal.reason).toBe(itemReason);
  });

  it("a folder source's reads hold a signal each only while their stream is open", async () => {
    const t = tmpDir();
    makeFiles(path.join(t, 'src'), 40);
    const source = new FolderSource(path.join(t, 'src'));
    const run = new AbortController();
    const fan = new SignalFanOut(run.signal);
    const wrapped = sourceWithOwnSignals(source, fan);
    const items: SourceItem[] = [];
    for (let cursor: string | null = null, first = true; first || cursor; first = false) {
      const page = await wrapped.listItems(cursor);
      items.push(...page.items);
      cursor = page.cursor;
    }
    expect(items).toHaveLength(40);
    const streams = await Promise.all(items.map((item) => wrapped.open(item, { signal: run.signal })));
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(1);
    expect(fan.size).toBe(40);
    // Half read to the end, half given up early (as the engine does when an upload fails).
    const sizes = await Promise.all(
      streams.map(async (s, i) => {
        if (i % 2) {
          s.destroy();
          return -1;
        }
        let n = 0;
        for await (const c of s) n += (c as Buffer).length;
        return n;
      }),
    );
    expect(sizes.filter((n, i) => i % 2 === 0 && n === items[i]!.size)).toHaveLength(20);
    await new Promise((r) => setImmediate(r));
    expect(fan.size).toBe(0);
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(1);
  });

  it('folder to folder at --concurrency 32 prints no MaxListenersExceededWarning and copies every byte', async () => {
    const t = tmpDir();
    const src = path.join(t, 'src');
    const dst = path.join(t, 'dst');
    makeFiles(src, 150);
    const before = treeHashes(src);
    const r = await runCli(['migrate', '--from', `folder:${src}`, '--to', `folder:${dst}`, '--state', path.join(t, 'state.db'), '--concurrency', '32']);
    expect(r.stderr).not.toContain('MaxListenersExceededWarning');
    expect(r.code).toBe(0);
    expect(before.size).toBe(150);
    expect(treeHashes(dst)).toEqual(before);
  });
});
