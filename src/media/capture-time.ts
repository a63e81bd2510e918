// One capture time per item, from the best witness available:
//   1. the file's own date (EXIF DateTimeOriginal with OffsetTimeOriginal; the QuickTime/MP4 mvhd);
//   2. the date the source declares (Xiaomi's dateTaken);
//   3. a date in the file name (filename-date.ts);
//   4. the file's modification time, from a folder source, and only when nothing better exists.
// The result keeps its offset ("2019-07-01T10:11:12+02:00"): the file's own offset when it has
// one, else the offset of --timezone at that instant, so the wall clock the person saw is what
// the new gallery shows.

import { dateFromFileName, type WallTime } from './filename-date.ts';
import { isoWithOffset, offsetAt, offsetOfIso, wallToInstant } from './zone.ts';

export type CaptureSource = 'exif' | 'container' | 'declared' | 'filename' | 'mtime' | 'none';

export type EmbeddedTime =
  /** EXIF wall clock, with OffsetTimeOriginal when the file has it. */
  | { kind: 'exif'; wall: WallTime; offset: number | null }
  /** QuickTime/MP4 creation time: UTC by the format's definition. */
  | { kind: 'container'; iso: string };

export interface CaptureInputs {
  embedded: EmbeddedTime | null;
  /** ISO 8601 instant the source declares, and how to name it ("Xiaomi's dateTaken"). */
  declared: string | null;
  declaredLabel?: string | null;
  fileName: string;
  /** The file system's modification time (folder sources only). */
  fileModified: string | null;
  /** --timezone: IANA name or fixed offset. */
  zone: string;
  nowMs?: number;
}

export interface ResolvedCapture {
  /** ISO 8601 with offset, or null when nothing dates the item. */
  time: string | null;
  source: CaptureSource;
  /** Where the offset came from: the file (or source) itself, or --timezone. */
  offsetFrom: 'file' | 'timezone' | null;
  /** Says where the time came from, for evidence and reports ("Xiaomi's dateTaken"). */
  detail: string;
}

const NONE: ResolvedCapture = { time: null, source: 'none', offsetFrom: null, detail: 'no date anywhere' };

function instantResolved(ms: number, zone: string, source: CaptureSource, detail: string, ownOffset: number | null): ResolvedCapture {
  const offset = ownOffset ?? offsetAt(zone, ms);
  return { time: isoWithOffset(ms, offset), source, offsetFrom: ownOffset === null ? 'timezone' : 'file', detail };
}

function fromIso(iso: string | null): { ms: number; offset: number | null } | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return null;
  const off = offsetOfIso(iso);
  // "Z" from a listing means "an instant", not "taken in London": the zone decides the wall clock.
  return { ms, offset: off === 0 && /Z$/i.test(iso.trim()) ? null : off };
}

export function resolveCaptureTime(inp: CaptureInputs): ResolvedCapture {
  const e = inp.embedded;
  if (e?.kind === 'exif') {
    if (e.offset !== null) {
      const ms = Date.UTC(e.wall.year, e.wall.month - 1, e.wall.day, e.wall.hour, e.wall.minute, e.wall.second) - e.offset * 60_000;
      return { time: isoWithOffset(ms, e.offset), source: 'exif', offsetFrom: 'file', detail: 'the EXIF DateTimeOriginal and OffsetTimeOriginal' };
    }
    const { ms, offset } = wallToInstant(inp.zone, e.wall);
    return { time: isoWithOffset(ms, offset), source: 'exif', offsetFrom: 'timezone', detail: 'the EXIF DateTimeOriginal (no offset in the file)' };
  }
  if (e?.kind === 'container') {
    const t = fromIso(e.iso);
    if (t) return instantResolved(t.ms, inp.zone, 'container', "the video's creation time (mvhd)", null);
  }
  const declared = fromIso(inp.declared);
  if (declared) return instantResolved(declared.ms, inp.zone, 'declared', inp.declaredLabel || "the source's declared date", declared.offset);
  const named = dateFromFileName(inp.fileName, inp.nowMs);
  if (named) {
    const detail = `the file name (${named.pattern} pattern)`;
    if (named.clock === 'instant') return instantResolved(named.instantMs, inp.zone, 'filename', detail, null);
    const { ms, offset } = wallToInstant(inp.zone, named.wall);
    return { time: isoWithOffset(ms, offset), source: 'filename', offsetFrom: 'timezone', detail };
  }
  const mtime = fromIso(inp.fileModified);
  if (mtime) return instantResolved(mtime.ms, inp.zone, 'mtime', "the file's modification time (nothing better found)", null);
  return NONE;
}

/** True for sources whose time the file itself does not carry: the copy needs the date written in. */
export const isEmbeddedSource = (s: CaptureSource): boolean => s === 'exif' || s === 'container';
