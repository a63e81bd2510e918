// Stage 1, list: pages from the source into the state store, each page and the cursor after it
// in one transaction. It runs beside the transfers, so a large library starts moving at once.

import { StopRunError } from '../../providers/types.ts';
import { getMeta, setMeta } from '../../state/db.ts';
import { reason } from '../lib/redact.ts';
import type { RunContext } from './context.ts';

/** Why a run stops on an empty listing, and the way on when it is meant. */
export function emptySourceMessage(identity: string): string {
  return `the source ${identity} lists no items, while the state knows items there: is the card mounted? Nothing was changed. If they were deleted there on purpose, run again with --source-may-be-empty`;
}

export interface Listing {
  /** Settles when the listing ended, one way or another (never rejects). */
  readonly done: Promise<void>;
  /**
   * Settles once the first page is recorded (or the listing ended without one). Nothing at the
   * source is opened or deleted before: a source that lists nothing where the state knows items
   * is not trusted (an unmounted card), and the run stops first.
   */
  readonly firstPage: Promise<void>;
  readonly finished: boolean;
  /** Why the listing stopped early, or null. */
  readonly error: unknown;
  /** What the source said may be left behind (ListPage.warnings): each is logged, and the run ends with exit 1. */
  readonly warnings: string[];
}

/** Starts listing; `onPage` is told of every recorded page and of the end. */
export function startListing(ctx: RunContext, onPage: () => void): Listing {
  let firstPage: () => void = () => {};
  const state = {
    finished: false,
    error: null as unknown,
    warnings: [] as string[],
    done: Promise.resolve(),
    firstPage: new Promise<void>((r) => (firstPage = r)),
  };
  state.done = listAll(
    ctx,
    () => {
      firstPage();
      onPage();
    },
    state.warnings,
  )
    .catch((err) => {
      state.error = err;
      if (err instanceof StopRunError) ctx.halt(err.kind, reason(err));
      else ctx.log('warn', `listing stopped: ${reason(err)}; the items listed so far are migrated and the next run continues the listing`);
    })
    .finally(() => {
      state.finished = true;
      firstPage();
      onPage();
    });
  return state;
}

async function listAll(ctx: RunContext, onPage: () => void, warnings: string[]): Promise<void> {
  const { db, items, source } = ctx;
  // A finished listing starts over on the next run, so new items are found (incremental reruns).
  let cursor = getMeta(db, 'list_state') === 'listing' ? (getMeta(db, 'list_cursor') ?? null) : null;
  setMeta(db, 'list_state', 'listing');
  let total = 0;
  let first = true;
  for (;;) {
    if (ctx.signal.aborted) return;
    const page = await source.listItems(cursor, ctx.signal);
    const next = page.cursor;
    for (const w of page.warnings ?? []) {
      warnings.push(w);
      ctx.log('warn', w);
    }
    if (first && cursor === null && next === null && page.items.length === 0 && items.knowsItemsAtSource()) {
      if (!ctx.opts.sourceMayBeEmpty) throw new StopRunError('config', emptySourceMessage(source.identity));
      // Taken at its word: each item still to move is found gone when it is opened, as one
      // missing from a longer listing is. Nothing is deleted for it.
      ctx.log(
        'warn',
        `the source ${source.identity} lists no items while the state knows items there; --source-may-be-empty: going on, they count as gone from the source`,
      );
    }
    first = false;
    const added = items.recordPage(
      page.items.map((i) => ({
        sourceId: i.id,
        name: i.name,
        albumId: i.albumId,
        albumName: i.albumName,
        size: i.size,
        kind: i.kind,
        declaredSha1: i.sha1 ? i.sha1.toLowerCase() : null,
        declaredTime: i.declaredCaptureTime ?? null,
        json: JSON.stringify(i),
        version: i.version ?? null,
      })),
      () => {
        if (next === null) {
          setMeta(db, 'list_state', 'complete');
          setMeta(db, 'list_cursor', null);
        } else setMeta(db, 'list_cursor', next);
      },
      ctx.runId,
    );
    total += page.items.length;
    ctx.emit({ type: 'listed', total, added });
    onPage();
    if (next === null) return;
    cursor = next;
  }
}
