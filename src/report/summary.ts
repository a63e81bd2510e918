// What a state store says, in the terms of a report: outcomes, reasons grouped with what to do,
// albums, runs and timing. Everything is computed with aggregate queries or one streaming pass,
// so a 100,000-item state summarises in well under a second and memory stays flat.

import type { DB } from '../../state/db.ts';
import { getMeta } from '../../state/db.ts';
import { IN_LIBRARY_SQL, OUTCOMES, NEEDS_ATTENTION, outcomeOf, reasonGroup } from './outcomes.ts';
import type { Outcome } from './outcomes.ts';
import { datesSummary, type DatesSummary } from './dates.ts';

export interface Tally {
  items: number;
  bytes: number;
}

export interface AttentionGroup {
  key: string;
  title: string;
  todo: string;
  items: number;
  bytes: number;
  /** Item ids of the first few, for thumbnails and examples. */
  examples: number[];
}

export interface AlbumTally {
  album: string;
  total: Tally;
  byOutcome: Record<Outcome, number>;
}

export interface RunInfo {
  id: number;
  command: string;
  started_at: string;
  ended_at: string | null;
  outcome: string | null;
  exit_code: number | null;
}

export interface Summary {
  generated_at: string;
  source: string | null;
  destination: string | null;
  total: Tally;
  outcomes: Record<Outcome, Tally>;
  deleteSourceAsked: boolean;
  deletions: number;
  attention: AttentionGroup[];
  /** Why items are still at the source, one line per reason, summing to every item not deleted. */
  staysAtSource: Array<{ why: string; todo: string; items: number; bytes: number }>;
  albums: AlbumTally[];
  runs: RunInfo[];
  firstStarted: string | null;
  lastActivity: string | null;
  /** Bytes per second over the time runs were active, or null before the first transfer. */
  rate: number | null;
  listingComplete: boolean;
  /** Capture dates: where they came from, which were written in, which are left to the upload. */
  dates: DatesSummary;
}

const EXAMPLES = 8;
const emptyTally = (): Tally => ({ items: 0, bytes: 0 });

// An item's size is what was read where known, else what the source declared.
const SIZE = 'coalesce(bytes_read, size, 0)';

export function summarize(db: DB): Summary {
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, emptyTally()])) as Record<Outcome, Tally>;
  const total = emptyTally();
  for (const r of db.prepare(`SELECT state, ${IN_LIBRARY_SQL} AS lib, count(*) AS n, sum(${SIZE}) AS b FROM items GROUP BY state, lib`).all() as Array<{
    state: string;
    lib: number;
    n: number;
    b: number | null;
  }>) {
    const t = outcomes[r.lib ? 'in-library' : outcomeOf(r.state)];
    t.items += r.n;
    t.bytes += r.b ?? 0;
    total.items += r.n;
    total.bytes += r.b ?? 0;
  }

  const runs = db.prepare('SELECT id, command, started_at, ended_at, outcome, exit_code, options FROM runs ORDER BY id').all() as Array<
    RunInfo & { options: string }
  >;
  const last = runs[runs.length - 1];
  let deleteSourceAsked = false;
  try {
    deleteSourceAsked = !!last && JSON.parse(last.options).deleteSource === true;
  } catch {
    // an unreadable options column only loses the hint
  }
  const deletions = (db.prepare('SELECT count(*) AS n FROM deletions').get() as { n: number }).n;

  const groups = new Map<string, AttentionGroup>();
  const stmt = db.prepare(
    `SELECT id, state, coalesce(reason, last_error) AS why, reason_kind AS kind, ${SIZE} AS b FROM items WHERE state IN ('failed','rejected','uploaded') OR ${IN_LIBRARY_SQL} ORDER BY id`,
  );
  for (const r of stmt.iterate() as IterableIterator<{ id: number; state: string; why: string | null; kind: string | null; b: number }>) {
    const outcome = outcomeOf(r.state, r.kind);
    const g = reasonGroup(outcome, r.why, r.kind);
    const key = `${outcome === 'rejected' ? 'rejected' : 'retry'}:${g.key}`;
    let a = groups.get(key);
    if (!a) groups.set(key, (a = { key, title: g.title, todo: g.todo, items: 0, bytes: 0, examples: [] }));
    a.items++;
    a.bytes += r.b;
    if (a.examples.length < EXAMPLES) a.examples.push(r.id);
  }
  const attention = [...groups.values()].sort((x, y) => y.items - x.items);

  const stays: Summary['staysAtSource'] = [];
  const kept = { items: outcomes.verified.items + outcomes.duplicate.items, bytes: outcomes.verified.bytes + outcomes.duplicate.bytes };
  if (kept.items) {
    stays.push(
      deleteSourceAsked
        ? {
            why: 'Verified, but not deleted: the evidence is weaker than --delete-evidence allows, or the deletion is still to come',
            todo: 'Run again with --delete-source; see the evidence column for each item.',
            ...kept,
          }
        : {
            why: 'Moved and verified; deletion at the source was not asked for',
            todo: 'Nothing to do. Run again with --delete-source to free the source.',
            ...kept,
          },
    );
  }
  for (const a of attention) stays.push({ why: a.title, todo: a.todo, items: a.items, bytes: a.bytes });
  if (outcomes['not-started'].items) stays.push({ why: 'Not moved yet', todo: 'Run again: the migration resumes with these.', ...outcomes['not-started'] });

  const albumMap = new Map<string, AlbumTally>();
  for (const r of db
    .prepare(
      `SELECT coalesce(album_name, '') AS album, state, ${IN_LIBRARY_SQL} AS lib, count(*) AS n, sum(${SIZE}) AS b FROM items GROUP BY album, state, lib`,
    )
    .all() as Array<{ album: string; state: string; lib: number; n: number; b: number | null }>) {
    let a = albumMap.get(r.album);
    if (!a)
      albumMap.set(
        r.album,
        (a = { album: r.album, total: emptyTally(), byOutcome: Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number> }),
      );
    a.total.items += r.n;
    a.total.bytes += r.b ?? 0;
    a.byOutcome[r.lib ? 'in-library' : outcomeOf(r.state)] += r.n;
  }
  const albums = [...albumMap.values()].sort((x, y) => x.album.localeCompare(y.album));

  const activeMs = runs.reduce((ms, r) => ms + Math.max(0, (r.ended_at ? Date.parse(r.ended_at) : Date.now()) - Date.parse(r.started_at)), 0);
  const moved = outcomes.verified.bytes + outcomes.deleted.bytes + outcomes.awaiting.bytes;
  const lastActivity = (db.prepare('SELECT max(updated_at) AS t FROM items').get() as { t: string | null }).t;

  return {
    generated_at: new Date().toISOString(),
    source: getMeta(db, 'source_identity') ?? null,
    destination: getMeta(db, 'destination_identity') ?? null,
    total,
    outcomes,
    deleteSourceAsked,
    deletions,
    attention,
    staysAtSource: stays,
    albums,
    runs: runs.map(({ options: _o, ...r }) => r),
    firstStarted: runs[0]?.started_at ?? null,
    lastActivity,
    rate: activeMs > 0 && moved > 0 ? moved / (activeMs / 1000) : null,
    listingComplete: getMeta(db, 'list_state') === 'complete',
    dates: datesSummary(db),
  };
}

export { NEEDS_ATTENTION };
