// Time zones for capture times: the offset a zone had at an instant, a wall clock read in a zone,
// and the two written forms (ISO 8601 with offset, EXIF's "YYYY:MM:DD HH:MM:SS" + "+02:00").
// A zone is an IANA name ("Europe/Prague"), "UTC", or a fixed offset ("+02:00").

import type { WallTime } from './filename-date.ts';

let knownZone: { tz: string | undefined; zone: string } | null = null;

/**
 * The machine's zone, the default for --timezone. Asked once per TZ: building an
 * Intl.DateTimeFormat to read it cost ~20 us an item in a run without --timezone.
 */
export function systemZone(): string {
  const tz = process.env.TZ;
  if (knownZone?.tz !== tz || !knownZone) knownZone = { tz, zone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC' };
  return knownZone.zone;
}

const FIXED = /^([+-])(\d{2}):?(\d{2})$/;

/** A clear one-line reason when `zone` is not a zone, else null. */
export function zoneProblem(zone: string): string | null {
  if (FIXED.test(zone)) return null;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return null;
  } catch {
    return `--timezone ${JSON.stringify(zone)} is not a time zone: give an IANA name such as Europe/Prague, UTC, or an offset such as +02:00`;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const offsetNames = new Map<string, Intl.DateTimeFormat>();
/** "GMT", "GMT+02:00", "GMT-03:30", "GMT+00:57:44" (a local mean time) at the end of a longOffset format. */
const LONG_OFFSET = /GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/**
 * Minutes east of UTC that `zone` had at `ms`. Read from the zone's own offset name (one format
 * call, no parts: a third of the CPU of reading its wall clock, which the transfer of every
 * photo without an offset in its EXIF did twice); the wall clock is the way when that name is
 * not in the expected form. Both round an offset in seconds (a local mean time) the same way.
 */
export function offsetAt(zone: string, ms: number): number {
  const fixed = FIXED.exec(zone);
  if (fixed) return (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3]));
  let named = offsetNames.get(zone);
  if (!named) {
    named = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
    offsetNames.set(zone, named);
  }
  const m = LONG_OFFSET.exec(named.format(ms));
  if (m) {
    if (!m[1]) return 0;
    const seconds = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4] ?? 0));
    return Math.round(seconds / 60);
  }
  return offsetFromWallClock(zone, ms);
}

/** offsetAt() from the wall clock `zone` shows at `ms`. */
function offsetFromWallClock(zone: string, ms: number): number {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const asUtc = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour! % 24, parts.minute!, parts.second!);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000);
}

/** The instant a wall clock in `zone` shows. In a gap (spring forward) the later offset is used. */
export function wallToInstant(zone: string, w: WallTime): { ms: number; offset: number } {
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  // Two rounds settle it: the offset at the guess, then at the corrected instant.
  let offset = offsetAt(zone, asUtc);
  offset = offsetAt(zone, asUtc - offset * 60_000);
  return { ms: asUtc - offset * 60_000, offset };
}

export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const a = Math.abs(minutes);
  return `${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

export function parseOffset(value: string | null | undefined): number | null {
  if (!value) return null;
  if (value === 'Z') return 0;
  const m = FIXED.exec(value.replace(/\0/g, '').trim());
  if (!m) return null;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (minutes > 14 * 60) return null;
  return m[1] === '-' ? -minutes : minutes;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function wallAt(ms: number, offset: number): WallTime {
  const d = new Date(ms + offset * 60_000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

/** 2019-07-01T10:11:12+02:00 */
export function isoWithOffset(ms: number, offset: number): string {
  const w = wallAt(ms, offset);
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}${formatOffset(offset)}`;
}

/** EXIF's DateTimeOriginal and OffsetTimeOriginal for an instant shown at `offset`. */
export function exifDateTime(ms: number, offset: number): { dateTime: string; offset: string } {
  const w = wallAt(ms, offset);
  return { dateTime: `${pad(w.year, 4)}:${pad(w.month)}:${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`, offset: formatOffset(offset) };
}

/** The offset written in an ISO 8601 string ("+02:00", "Z" -> 0), or null when it has none. */
export function offsetOfIso(iso: string): number | null {
  const m = /(Z|[+-]\d{2}:?\d{2})$/.exec(iso.trim());
  return m ? parseOffset(m[1]) : null;
}
