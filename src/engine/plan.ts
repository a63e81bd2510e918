// What a run would do, before anything moves: it lists the source (writing nothing), compares
// with the state store, and asks the destination what room and request budget it has.

import type { Destination, PlanNote, Source, SourceItem } from '../../providers/types.ts';
import type { DB } from '../../state/db.ts';
import { sniffMedia } from '../media/sniff.ts';
import { imageMetadata } from '../media/metadata.ts';
import { readMvhdAt } from '../media/mvhd.ts';
import type { ItemState } from '../../state/items.ts';

export interface PlanOptions {
  deleteSource: boolean;
  /** Throughput assumed for the estimate, bytes per second. */
  assumedRate: number;
  deadline: Date | null;
  /** How many undeclared-date items to open and probe for an embedded date (local sources). */
  probeLimit: number;
}

export interface Plan {
  source: string;
  destination: string;
  listed: { items: number; bytes: number };
  done: { items: number; bytes: number };
  toMove: { items: number; bytes: number };
  awaitingVerification: number;
  toDelete: number;
  undated: { items: number; probed: boolean; examples: string[] };
  capacity: { remainingBytes: number | null; fits: boolean | null };
  quota: null | { perDay: number; remainingToday: number; requestsNeeded: number; days: number; deadline: string | null; makesDeadline: boolean | null };
  estimatedSeconds: number;
  notes: PlanNote[];
}

const DONE: ItemState[] = ['verified', 'source-deleted', 'skipped'];

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function hasEmbeddedDate(source: Source, item: SourceItem): Promise<boolean> {
  const headLen = Math.min(item.size ?? 0, 256 * 1024);
  if (headLen === 0) return false;
  const head = await readAll(await source.open(item, { offset: 0, length: headLen }));
  const kind = sniffMedia(head, item.name).kind;
  if (kind === 'image') return !!(await imageMetadata(head)).captureTime;
  if (kind === 'video') {
    const t = await readMvhdAt(async (o, l) => readAll(await source.open(item, { offset: o, length: l })), item.size!);
    return !!t;
  }
  return false;
}

export async function computePlan(db: DB | null, source: Source, destination: Destination, opts: PlanOptions): Promise<Plan> {
  const stateOf = db ? db.prepare('SELECT state FROM items WHERE source_id = ?') : null;
  const plan: Plan = {
    source: source.identity,
    destination: destination.identity,
    listed: { items: 0, bytes: 0 },
    done: { items: 0, bytes: 0 },
    toMove: { items: 0, bytes: 0 },
    awaitingVerification: 0,
    toDelete: 0,
    undated: { items: 0, probed: source.randomAccess, examples: [] },
    capacity: { remainingBytes: null, fits: null },
    quota: null,
    estimatedSeconds: 0,
    notes: [],
  };
  let probes = 0;
  for (let cursor: string | null = null; ; ) {
    const page = await source.listItems(cursor);
    for (const w of page.warnings ?? []) plan.notes.push({ message: w });
    for (const item of page.items) {
      const size = item.size ?? 0;
      plan.listed.items++;
      plan.listed.bytes += size;
      const state = (stateOf?.get(item.id) as { state: ItemState } | undefined)?.state;
      if (state && DONE.includes(state)) {
        plan.done.items++;
        plan.done.bytes += size;
        if (opts.deleteSource && state !== 'source-deleted') plan.toDelete++;
        continue;
      }
      if (state === 'rejected') continue;
      if (state === 'uploaded') {
        plan.awaitingVerification++;
        continue;
      }
      plan.toMove.items++;
      plan.toMove.bytes += size;
      if (opts.deleteSource) plan.toDelete++;
      if (!item.declaredCaptureTime) {
        let dated = false;
        if (source.randomAccess && probes < opts.probeLimit) {
          probes++;
          dated = await hasEmbeddedDate(source, item).catch(() => false);
        }
        if (!dated) {
          plan.undated.items++;
          if (plan.undated.examples.length < 10) plan.undated.examples.push(item.id);
        }
      }
    }
    if (page.cursor === null) break;
    cursor = page.cursor;
  }
  if (probes >= opts.probeLimit) plan.notes.push({ message: `only the first ${opts.probeLimit} items without a declared date were opened to look for an embedded one` });

  plan.notes.push(...((await source.planNotes?.()) ?? []));
  const cap = await destination.capacity?.();
  if (cap) {
    plan.capacity.remainingBytes = cap.remainingBytes;
    plan.capacity.fits = cap.remainingBytes === null ? null : cap.remainingBytes >= plan.toMove.bytes;
    plan.notes.push(...(cap.notes ?? []));
    if (cap.requestBudget) {
      const b = cap.requestBudget;
      const needed = Math.ceil(plan.toMove.items * b.requestsPerItem);
      const afterToday = Math.max(0, needed - b.remainingToday);
      const days = needed === 0 ? 0 : afterToday === 0 ? 1 : 1 + Math.ceil(afterToday / b.perDay);
      let makes: boolean | null = null;
      if (opts.deadline) {
        const daysLeft = Math.max(0, Math.ceil((opts.deadline.getTime() - Date.now()) / 86_400_000));
        makes = days <= daysLeft;
      }
      plan.quota = { perDay: b.perDay, remainingToday: b.remainingToday, requestsNeeded: needed, days, deadline: opts.deadline?.toISOString() ?? null, makesDeadline: makes };
    }
  }
  plan.estimatedSeconds = Math.ceil(plan.toMove.bytes / opts.assumedRate + plan.toMove.items * 0.05);
  return plan;
}
