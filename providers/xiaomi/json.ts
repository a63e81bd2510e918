// Parsing Xiaomi's answers without losing digits. Gallery ids such as 24886749771271584 are
// written as bare JSON numbers and exceed Number.MAX_SAFE_INTEGER, so JSON.parse would round
// them. The same listings carry ordinary decimals (GPS coordinates in geoInfo/exifInfo such as
// -0.12780555555555556, EXIF exposure values) that must stay numbers.
//
// Integer literals beyond 2^53 become strings before JSON.parse sees them; every other number
// (any decimal, however many digits, any exponent) is left to JSON.parse. This is the rule
// lossless-json's parseNumber applied (an integer literal that is not a safe integer), at the
// speed of the built-in parser: lossless-json's parser in JavaScript was the largest part of the
// listing's own CPU in its profile (about a fifth of it went with the change).

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** Digits, sign, point and exponent: the characters of a JSON number token. */
const inNumber = (c: number): boolean => isDigit(c) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69;

/**
 * The text with every integer literal that is not a safe integer put in quotes. One pass, string
 * literals skipped; outside strings a digit or minus can only start a number token in JSON, so
 * nothing else is touched. Text that is not JSON comes out as it went in, for JSON.parse to refuse.
 */
function quoteBigIntegers(text: string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (isDigit(c) || c === 45) {
      let j = i + 1;
      while (j < text.length && inNumber(text.charCodeAt(j))) j++;
      // 15 digits or fewer are always safe.
      if (j - i >= 16) {
        const literal = text.slice(i, j);
        if (/^-?\d+$/.test(literal) && !Number.isSafeInteger(Number.parseInt(literal, 10))) {
          out += `${text.slice(last, i)}"${literal}"`;
          last = j;
        }
      }
      i = j - 1;
    }
  }
  return last === 0 ? text : out + text.slice(last);
}

export function parseJsonKeepingBigInts(text: string): unknown {
  return JSON.parse(quoteBigIntegers(text));
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
