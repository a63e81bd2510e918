// What a batch shows for an account, read from its state store: an item found already in the
// destination's library (from another app) is not a duplicate within the source, nor safely
// moved; it stays at the source and needs a person's look.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AccountView, BatchView } from '../src/batch/view.ts';
import { stateProgress, totalsOf } from '../src/batch/view.ts';
import { batchBody } from '../src/report/batch.ts';
import { openState } from '../state/db.ts';
import { tmpDir } from './helpers.ts';

function seed(file: string): void {
  const db = openState(file);
  const ins = db.prepare(
    `INSERT INTO items (source_id, name, size, kind, item_json, state, reason, reason_kind, bytes_read, updated_at) VALUES (?, ?, 1000, 'image', '{}', ?, ?, ?, 1000, '2026-01-01')`,
  );
  ins.run('a', 'a.jpg', 'verified', null, null);
  ins.run('b', 'b.jpg', 'skipped', 'same bytes as item 1', 'duplicate-of-item');
  ins.run('c', 'c.jpg', 'skipped', 'already at the destination', 'same-bytes-at-destination');
  for (const id of ['d', 'e', 'f']) ins.run(id, `${id}.jpg`, 'skipped', 'already in your library from another app', 'in-library-from-another-app');
  db.close();
}

describe('batch view of an account', () => {
  it('counts items already in the library from another app apart from duplicates, as needing attention', () => {
    const file = path.join(tmpDir(), 'account.db');
    seed(file);
    const p = stateProgress(file);
    expect(p.outcomes.duplicate.items).toBe(2);
    expect(p.outcomes['in-library'].items).toBe(3);
    expect(p.items).toBe(6);
    expect(p.doneItems).toBe(3);
    expect(p.attentionItems).toBe(3);

    const account: AccountView = {
      ...p,
      account: 'ana',
      slug: 'ana',
      source: 'xiaomi',
      destination: 'google-photos',
      status: 'done',
      reason: null,
      todo: null,
      priority: 0,
      runs: 1,
      startedAt: null,
      endedAt: null,
      plannedFinish: null,
      makesDeadline: null,
    };
    const view: BatchView = {
      generatedAt: '2026-01-01T00:00:00Z',
      dir: '/batch',
      manifest: null,
      deadline: null,
      startedAt: null,
      running: false,
      accounts: [account],
      totals: totalsOf([account]),
      notes: [],
    };
    const page = batchBody(view, new Map(), { live: false, linkReports: false });
    expect(page).toContain('3 of 6 items');
    expect(page).toContain('3 need attention');
    expect(page).toContain('skipped: already at the destination: 2 ');
    expect(page).toContain('already in your library from another app (stays at the source): 3 ');
  });
});
