// A short, fixed-seed run of the chaos suite (scripts/chaos): complete migrations with
// --delete-source, SIGKILLed at random moments and resumed, every emulator fault at random
// rates, the source changing between and during runs. The checks are made from the outside
// (the emulators' data, the files on disk): nothing lost, nothing twice, no deletion without
// the bytes at the destination and its record in the state. `npm run chaos` is the long run.

import { describe, expect, it } from 'vitest';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { formatDistributed, runDistributedRound } from '../scripts/chaos/distributed.ts';
import { formatTable, runChaos } from '../scripts/chaos/suite.ts';

describe('chaos (short run, seed 20261129)', () => {
  it('kills, faults and a changing source: zero violations', async () => {
    const seed = 20261129;
    const results = await runChaos({ rounds: 2, seed, items: 6, kills: 3, pairs: ['folder>onedrive', 'xiaomi>google-photos'] });
    const table = formatTable(results, seed);
    const violations = results.flatMap((r) => r.violations.map((v) => `round ${r.config.round}: ${v}`));
    expect(violations, table).toEqual([]);
    // The run proved something: it killed runs, changed the source and moved items.
    expect(
      results.reduce((a, r) => a + r.kills, 0),
      table,
    ).toBeGreaterThan(0);
    expect(
      results.reduce((a, r) => a + Object.values(r.changes).reduce((x, y) => x + y, 0), 0),
      table,
    ).toBeGreaterThan(0);
    expect(
      results.every((r) => r.moved > 0),
      table,
    ).toBe(true);
    expect(
      results.every((r) => r.finished),
      table,
    ).toBe(true);
  }, 300_000);
});

describe('chaos, distributed round (queue mode, seed 20261207)', () => {
  it('workers killed with and without their children and paused past their lease, faults on: zero violations', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-chaos-dist-'));
    const r = await runDistributedRound({ seed: 20261207, accounts: 9, items: 3, workers: 3, kills: 3, leaseSeconds: 5, dir });
    const table = formatDistributed(r);
    expect(r.violations, table).toEqual([]);
    // The round proved something: it disrupted workers, and photos moved and were deleted at the sources.
    expect(
      Object.values(r.disruptions).reduce((a, b) => a + b, 0),
      table,
    ).toBe(3);
    expect(r.finished, table).toBe(true);
    expect(r.moved, table).toBe(27);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 600_000);
});
