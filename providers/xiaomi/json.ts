// Parsing Xiaomi's answers without losing digits. Gallery ids such as 24886749771271584 are
// written as bare JSON numbers and exceed Number.MAX_SAFE_INTEGER, so JSON.parse would round
// them. Every integer literal of 16 or more digits is quoted before parsing (string literals
// are matched first and left alone), so those ids arrive as exact strings.

const TOKEN = /"(?:[^"\\]|\\.)*"|-?\d{16,}(?![\d.eE])/g;

export function parseJsonKeepingBigInts(text: string): unknown {
  return JSON.parse(text.replace(TOKEN, (m) => (m.charCodeAt(0) === 34 /* " */ ? m : `"${m}"`)));
}

/** An id as a string, whether it came as a (safe) number or a string. */
export function idString(value: unknown): string | null {
  if (typeof value === 'string') return value.trim() || null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'bigint') return value.toString();
  return null;
}

/**
 * The object inside a JSONP answer such as `dl_img_cb({"url":..,"meta":..});`. The callback's
 * name varies (dl_img_cb, dl_img_cb_<ts>_0) and so may whitespace, a trailing semicolon or a
 * try/catch wrapper, so this does not cut at a fixed prefix: it takes the first balanced {...}
 * that parses as a JSON object.
 */
export function parseJsonp(text: string): Record<string, unknown> {
  const t = text.trim();
  // Each "{" in turn, cut at its matching "}" (string-aware), until one parses to an object.
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
