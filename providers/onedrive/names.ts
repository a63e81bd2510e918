// Names made valid for OneDrive, reversibly.
//
// OneDrive refuses `" * : < > ? / \ |`, control characters, leading or trailing spaces, a
// trailing dot, the reserved names (CON, PRN, AUX, NUL, COM0-9, LPT0-9, .lock, desktop.ini),
// names starting with `~$` and names containing `_vti_`; old Business tenants also refuse `#`
// and `%`. We replace each offending character by a look-alike, as rclone does:
//
//   "  *  :  <  >  ?  /  \  |  #  %   ->  ＂ ＊ ： ＜ ＞ ？ ／ ＼ ｜ ＃ ％   (full-width forms, U+FF01..)
//   control character U+0000..U+001F  ->  U+2400..U+241F (␀..␟)
//   leading or trailing space         ->  ␠ (U+2420)
//   trailing dot                      ->  ． (U+FF0E)
//   reserved name                     ->  its first character in full width (CON.jpg -> ＣON.jpg,
//                                         .lock -> ．lock, ~$x -> ~＄x, a_vti_b -> a＿vti_b)
//
// To stay reversible, a character in the original name that is itself one of these
// replacements (a real ＊, ␠ or full-width letter) is kept and prefixed with ‛ (U+201B), and
// a real ‛ is written ‛‛. decodeName() undoes all of it: decodeName(encodeName(x)) === x.
// Only the full-width forms listed above and the full-width Latin letters are escaped, so
// names in Chinese or Japanese with full-width brackets or digits （１） stay as they are.

const ESCAPE = '\u201b';
const SPACE_SUB = '\u2420';
const ALWAYS = new Set(['"', '*', ':', '<', '>', '?', '/', '\\', '|', '#', '%']);
const RESERVED_BASE = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;

const toWide = (c: string) => String.fromCharCode(c.charCodeAt(0) + 0xfee0);
const fromWide = (c: string) => String.fromCharCode(c.charCodeAt(0) - 0xfee0);

/** Characters that only appear in an encoded name as replacements. */
function isReplacement(c: string): boolean {
  const code = c.charCodeAt(0);
  if (code >= 0x2400 && code <= 0x2420) return true; // control pictures and ␠
  if (code < 0xff01 || code > 0xff5e) return false;
  const ascii = fromWide(c);
  return ALWAYS.has(ascii) || ascii === '.' || ascii === '$' || ascii === '_' || /[A-Za-z]/.test(ascii);
}

export function encodeName(name: string): string {
  const chars = [...name];
  const out: string[] = chars.map((c, i) => {
    const code = c.charCodeAt(0);
    if (c === ESCAPE || isReplacement(c)) return ESCAPE + c;
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (ALWAYS.has(c)) return toWide(c);
    if (c === ' ' && (i === 0 || i === chars.length - 1)) return SPACE_SUB;
    return c;
  });
  // Trailing spaces/dots: a run of them at the end (", ." endings) is mapped one by one from the end.
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] === ' ') out[i] = SPACE_SUB;
    else if (out[i] === '.') out[i] = toWide('.');
    else break;
  }
  for (let i = 0; i < out.length && out[i] === ' '; i++) out[i] = SPACE_SUB;
  let encoded = out.join('');
  // Reserved names: the first character becomes full width (a letter, '.', or the '$' of "~$").
  if (RESERVED_BASE.test(encoded) || /^(\.lock|desktop\.ini)$/i.test(encoded)) {
    encoded = toWide(encoded[0]!) + encoded.slice(1);
  }
  if (encoded.startsWith('~$')) encoded = `~${toWide('$')}${encoded.slice(2)}`;
  const vti = encoded.toLowerCase().indexOf('_vti_');
  if (vti >= 0) encoded = `${encoded.slice(0, vti)}${toWide('_')}${encoded.slice(vti + 1)}`;
  return encoded;
}

export function decodeName(encoded: string): string {
  const chars = [...encoded];
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === ESCAPE && i + 1 < chars.length) {
      out += chars[++i]!;
      continue;
    }
    const code = c.charCodeAt(0);
    if (code >= 0x2400 && code < 0x2420) out += String.fromCharCode(code - 0x2400);
    else if (c === SPACE_SUB) out += ' ';
    else if (isReplacement(c)) out += fromWide(c);
    else out += c;
  }
  return out;
}

/**
 * OneDrive limits the decoded path to under 400 characters. On Business the count is the whole
 * path, the SharePoint site and library included ("personal/alice_contoso_com/Documents/...");
 * the callers pass that prefix's length as `siteChars` (0 on Personal).
 */
export const MAX_PATH_CHARS = 399;

/** Room a folder name always leaves for the file names below it. */
export const MIN_FILE_NAME_ROOM = 80;

/**
 * Shortens a name so that `${site}${folder}/${name}` fits; keeps the extension and adds 8 hex
 * digits of the name's SHA-1 so two long names stay distinct. Not reversible from the name
 * alone: the destination logs the mapping. Returns the name unchanged when it fits.
 */
export function fitPath(folder: string, name: string, sha1hex: (s: string) => string, siteChars = 0): string {
  const room = MAX_PATH_CHARS - siteChars - folder.length - 1;
  if (name.length <= room) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
  const tag = `~${sha1hex(name).slice(0, 8)}`;
  const keep = room - ext.length - tag.length;
  if (keep < 1) throw new Error(`the folder path ${folder} leaves no room for a file name under OneDrive's 400-character limit`);
  let stem = [...name.slice(0, name.length - ext.length)].slice(0, keep).join('');
  while (stem.length > keep) stem = stem.slice(0, -1);
  return encodeName(decodeName(stem).trimEnd()) + tag + ext;
}

/**
 * Shortens a folder name (an album) below `parentChars` of path so that file names keep at least
 * MIN_FILE_NAME_ROOM characters: a long album must not turn its photos into rejections. Same
 * form as fitPath (a stem, "~" and 8 hex digits of the name's SHA-1), so it is stable across runs.
 */
export function fitFolderName(parentChars: number, name: string, sha1hex: (s: string) => string): string {
  const room = MAX_PATH_CHARS - parentChars - 1 - MIN_FILE_NAME_ROOM - 1;
  if (name.length <= room) return name;
  const tag = `~${sha1hex(name).slice(0, 8)}`;
  const keep = room - tag.length;
  if (keep < 1) throw new Error(`the destination root leaves no room for folders under OneDrive's 400-character path limit`);
  let stem = [...name].slice(0, keep).join('');
  while (stem.length > keep) stem = stem.slice(0, -1);
  return encodeName(decodeName(stem).trim()) + tag;
}

/** "IMG.jpg" -> "IMG (2).jpg": the name used when different bytes already hold the name. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}

/** Percent-encodes each segment of a drive path on its own ("/a b/c#d" -> "/a%20b/c%23d"). */
export function encodeDrivePath(p: string): string {
  return p
    .split('/')
    .filter(Boolean)
    .map((s) => encodeURIComponent(s))
    .map((s) => `/${s}`)
    .join('');
}
