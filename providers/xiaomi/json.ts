// Parsing Xiaomi's answers without losing digits. Gallery ids such as 24886749771271584 are
// written as bare JSON numbers and exceed Number.MAX_SAFE_INTEGER, so JSON.parse would round
// them. The same listings carry ordinary decimals (GPS coordinates in geoInfo/exifInfo such as
// -0.12780555555555556, EXIF exposure values) that must stay numbers.
//
// lossless-json hands every number literal to parseNumber as its exact source text, so the
// decision is made on the literal itself: an integer beyond 2^53 becomes a string, every other
// number (any decimal, however many digits, any exponent) goes through Number as JSON.parse would.

import { isInteger, isSafeNumber, parse } from 'lossless-json';

function parseNumber(literal: string): unknown {
  return isInteger(literal) && !isSafeNumber(literal) ? literal : Number(literal);
}

export function parseJsonKeepingBigInts(text: string): unknown {
  return parse(text, null, parseNumber);
}

/** An id as a string, whether it came as a (safe) number or a string. */
export function idString(value: unknown): string | null {
  if (typeof value === 'string') return /^\d{1,30}$/.test(value.trim()) ? value.trim() : null;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  if (typeof value === 'bigint') return value.toString();
  return null;
}

/**
 * The object inside the download step's JSONP answer. The service answers exactly
 * `dl_img_cb({"url":..,"meta":..})` when /gallery/storage is called without `callBack`
 * (diredocks/MiCloudAlbumDownloader and QSMX816/xiaomi2icloud check startswith('dl_img_cb(')
 * and endswith(')')); with `callBack=NAME` the function may be NAME (CLOUDERHEM/MiCloud cuts at
 * the first "{" and drops the last character; sunhanaix/SyncXiaomiCloud takes what is between
 * the first "(" and the last ")"). Coooolfan/XiaomiAlbumSyncer reads from the first "(" on. So
 * this reads what lies between the first "(" and the last ")", whatever the name, and falls back
 * to the first balanced {...} that parses as an object.
 */
export function parseJsonp(text: string): Record<string, unknown> {
  const t = text.trim();
  const open = t.indexOf('(');
  const close = t.lastIndexOf(')');
  if (open > 0 && close > open && /^[\w$.]+$/.test(t.slice(0, open).trim())) {
    try {
      const v = parseJsonKeepingBigInts(t.slice(open + 1, close));
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // fall through to the brace search
    }
  }
  for (let start = t.indexOf('{'); start >= 0; start = t.indexOf('{', start + 1)) {
    const end = matchingBrace(t, start);
    if (end < 0) continue;
    try {
      const v = parseJsonKeepingBigInts(t.slice(start, end + 1));
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // try the next "{"
    }
  }
  throw new Error(`the download step answered something that is not JSONP (${t.length} bytes, starting "${t.slice(0, 24).replace(/[^\x20-\x7e]/g, '?')}")`);
}

/** Index of the "}" closing the "{" at `start`, skipping string literals; -1 when unbalanced. */
function matchingBrace(t: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < t.length; i++) {
    const c = t[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}
