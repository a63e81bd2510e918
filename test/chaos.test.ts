// A short, fixed-seed run of the chaos suite (scripts/chaos): complete migrations with
// --delete-source, SIGKILLed at random moments and resumed, every emulator fault at random
// rates, the source changing between and during runs. The checks are made from the outside
// (the emulators' data, the files on disk): nothing lost, nothing twice, no deletion without
// the bytes at the destination and its record in the state. `npm run chaos` is the long run.

import { describe, expect, it } from 'vitest';
import { formatTable, runChaos } from '../scripts/chaos/suite.ts';

describe('chaos (short run, seed 20261129)', () => {
  it('kills, faults and a changing source: zero violations', async () => {
    const seed = 20261129;
    const results = await runChaos({ rounds: 2, seed, items: 6, kills: 3, pairs: ['folder>onedrive', 'xiaomi>google-photos'] });
    const table = formatTable(results, seed);
    const violations = results.flatMap((r) => r.violations.map((v) => `round ${r.config.round}: ${v}`));
    expect(violations, table).toEqual([]);
    // The run proved something: it killed runs, changed the source and moved items.
    expect(results.reduce((a, r) => a + r.kills, 0), table).toBeGreaterThan(0);
    expect(results.reduce((a, r) => a + Object.values(r.changes).reduce((x, y) => x + y, 0), 0), table).toBeGreaterThan(0);
    expect(results.every((r) => r.moved > 0), table).toBe(true);
    expect(results.every((r) => r.finished), table).toBe(true);
  }, 300_000);
});
