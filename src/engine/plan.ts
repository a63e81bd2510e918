// What a run would do, before anything moves: it lists the source (writing nothing), compares
// with the state store, and asks the destination what room and request budget it has.

import type { Destination, PlanNote, Source, SourceItem } from '../../providers/types.ts';
import type { DB } from '../../state/db.ts';
import { sniffMedia } from '../media/sniff.ts';
import { imageMetadata } from '../media/metadata.ts';
import { readMvhdAt } from '../media/mvhd.ts';
import type { ItemState } from '../../state/items.ts';
import { Items } from '../../state/items.ts';
import { emptySourceMessage } from './list.ts';
import { datingUnsupported } from '../media/dated-copy.ts';
import { systemZone } from '../media/zone.ts';
import { datesByFile, decideDating } from './dating.ts';
import { settleCaptureTime } from './facts.ts';
import { refuseOverlap } from './overlap.ts';

export interface PlanOptions {
  deleteSource: boolean;
  /** Throughput assumed for the estimate, bytes per second. */
  assumedRate: number;
  deadline: Date | null;
  /** How many undeclared-date items to open and probe for an embedded date (local sources). */
  probeLimit: number;
  /** --timezone, for dates read from file names. */
  timeZone?: string;
  /** --source-may-be-empty: an empty listing is taken at its word (see RunOptions). */
  sourceMayBeEmpty?: boolean;
}

/** Where the items' capture dates will come from, and which will be dated by their upload. */
export interface DatesPlan {
  /** Items opened to look for a date of their own (random-access sources only). */
  opened: number;
  /** Of those, carrying their own date. */
  inFile: number;
  /** Items without a date of their own (opened and found none, or not openable cheaply), by where their date will come from. */
  noDateInFile: { total: number; from: Record<string, number> };
  /** Items whose date will be written into the uploaded copy. */
  dateAdded: number;
  /** Items the destination will date by their upload, by reason. */
  datedByUpload: { items: number; why: Record<string, number> };
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
  dates: DatesPlan;
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

async function embeddedDate(source: Source, item: SourceItem): Promise<{ dated: boolean; format: string | null }> {
  const headLen = Math.min(item.size ?? 0, 256 * 1024);
  if (headLen === 0) return { dated: false, format: null };
  const head = await readAll(await source.open(item, { offset: 0, length: headLen }));
  const { kind, format } = sniffMedia(head, item.name);
  if (kind === 'image') return { dated: !!(await imageMetadata(head)).captureTime, format };
  if (kind === 'video') {
    const t = await readMvhdAt(async (o, l) => readAll(await source.open(item, { offset: o, length: l })), item.size!);
    return { dated: !!t, format };
  }
  return { dated: false, format };
}

/** The format a name or declared type suggests, for items not opened (the run decides by content). */
function formatByName(item: SourceItem): string | null {
  const ext = item.name.slice(item.name.lastIndexOf('.') + 1).toLowerCase();
  const mime = (item.mimeType ?? '').toLowerCase();
  if (['jpg', 'jpeg', 'jpe'].includes(ext) || mime === 'image/jpeg') return 'jpeg';
  if (['mp4', 'mov', 'm4v', '3gp', '3g2'].includes(ext)) return ext;
  if (mime === 'video/mp4') return 'mp4';
  if (mime === 'video/quicktime') return 'mov';
  return ext || null;
}

function planDate(dates: DatesPlan, destination: Destination, item: SourceItem, format: string | null, zone: string): void {
  const r = settleCaptureTime(item, null, zone);
  dates.noDateInFile.total++;
  const from = r.source === 'none' ? 'nowhere' : r.detail;
  dates.noDateInFile.from[from] = (dates.noDateInFile.from[from] ?? 0) + 1;
  // The run decides the same way on the bytes; here the format is judged by name, the file unopened.
  const dating = decideDating(destination, { present: r.source !== 'none', own: false }, () => datingUnsupported(format, datesByFile(destination)));
  if (dating.how === 'write') dates.dateAdded++;
  if (dating.how === 'upload') {
    dates.datedByUpload.items++;
    dates.datedByUpload.why[dating.why] = (dates.datedByUpload.why[dating.why] ?? 0) + 1;
  }
}

export async function computePlan(db: DB | null, source: Source, destination: Destination, opts: PlanOptions): Promise<Plan> {
  refuseOverlap(source, destination);
  const stateItems = db ? new Items(db) : null;
  const inLibrary = { items: 0, bytes: 0 };
  const plan: Plan = {
    source: source.identity,
    destination: destination.identity,
    listed: { items: 0, bytes: 0 },
    done: { items: 0, bytes: 0 },
    toMove: { items: 0, bytes: 0 },
    awaitingVerification: 0,
    toDelete: 0,
    undated: { items: 0, probed: source.randomAccess, examples: [] },
    dates: { opened: 0, inFile: 0, noDateInFile: { total: 0, from: {} }, dateAdded: 0, datedByUpload: { items: 0, why: {} } },
    capacity: { remainingBytes: null, fits: null },
    quota: null,
    estimatedSeconds: 0,
    notes: [],
  };
  let probes = 0;
  const zone = opts.timeZone ?? systemZone();
  for (let cursor: string | null = null; ; ) {
    const page = await source.listItems(cursor);
    for (const w of page.warnings ?? []) plan.notes.push({ message: w });
    for (const item of page.items) {
      const size = item.size ?? 0;
      plan.listed.items++;
      plan.listed.bytes += size;
      const known = stateItems?.listedAs(item.id);
      // Other bytes under a known id (an edit in place, a reused name) are a new item to move.
      const sameVersion = !known?.source_version || !item.version || known.source_version === item.version;
      const state = sameVersion ? known?.state : undefined;
      if (sameVersion && known?.inLibrary) {
        // Never sent again: the destination already held it from another app.
        inLibrary.items++;
        inLibrary.bytes += size;
        continue;
      }
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
      let dated = false;
      let format = formatByName(item);
      if (source.randomAccess && probes < opts.probeLimit) {
        probes++;
        plan.dates.opened++;
        const e = await embeddedDate(source, item).catch(() => ({ dated: false, format }));
        dated = e.dated;
        format = e.format ?? format;
        if (dated) plan.dates.inFile++;
      }
      if (!dated) planDate(plan.dates, destination, item, format, zone);
      if (!item.declaredCaptureTime && !dated) {
        plan.undated.items++;
        if (plan.undated.examples.length < 10) plan.undated.examples.push(item.id);
      }
    }
    if (page.cursor === null) break;
    cursor = page.cursor;
  }
  if (plan.listed.items === 0 && stateItems?.knowsItemsAtSource()) {
    plan.notes.push({
      message: opts.sourceMayBeEmpty
        ? 'the source lists no items while the state knows items there: with --source-may-be-empty the run goes on, and those still to move count as gone from the source'
        : `${emptySourceMessage(source.identity).replace('Nothing was changed. ', '')} (migrate stops with exit 2)`,
    });
  }
  if (inLibrary.items) {
    plan.notes.push({
      message: `${inLibrary.items} items are already in your library from another app (found by earlier runs) and are not sent again; they stay at the source: delete them there yourself once you have checked, or run with \`--delete-evidence received\` to accept the destination's word`,
      items: inLibrary.items,
      bytes: inLibrary.bytes,
    });
  }
  if (probes >= opts.probeLimit)
    plan.notes.push({ message: `only the first ${opts.probeLimit} items without a declared date were opened to look for an embedded one` });

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
      plan.quota = {
        perDay: b.perDay,
        remainingToday: b.remainingToday,
        requestsNeeded: needed,
        days,
        deadline: opts.deadline?.toISOString() ?? null,
        makesDeadline: makes,
      };
    }
  }
  plan.estimatedSeconds = Math.ceil(plan.toMove.bytes / opts.assumedRate + plan.toMove.items * 0.05);
  return plan;
}
