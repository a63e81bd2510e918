// What a file really is, from its first bytes. Cloud galleries hand back error pages, truncated
// downloads and mislabelled files under photo names; the name must never vouch for content.
// The extension only settles a choice the content leaves open (an ISO-BMFF file whose brands
// fit both MP4 and M4V, an ASF file that may be video or audio, a TIFF that is a camera RAW).

export interface Sniffed {
  mimeType: string;
  kind: 'image' | 'video' | 'other';
  /** Short format name (jpeg, heic, mp4, mov, ...), or null when the content is not recognised. */
  format: string | null;
}

const UNKNOWN: Sniffed = { mimeType: 'application/octet-stream', kind: 'other', format: null };

const image = (format: string, mimeType: string): Sniffed => ({ mimeType, kind: 'image', format });
const video = (format: string, mimeType: string): Sniffed => ({ mimeType, kind: 'video', format });

function ascii(head: Buffer, start: number, end: number): string {
  return head.length >= end ? head.toString('latin1', start, end) : '';
}

function extensionOf(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  return dot >= 0 ? fileName.slice(dot + 1).toLowerCase() : '';
}

// ---- ISO base media (ftyp) ----

type Family = 'avif' | 'heic' | 'heif' | 'cr3' | 'mov' | 'm4v' | '3gp' | '3g2' | 'mp4' | 'm4a';

const FAMILY_RESULT: Record<Family, Sniffed> = {
  avif: image('avif', 'image/avif'),
  heic: image('heic', 'image/heic'),
  heif: image('heif', 'image/heif'),
  cr3: image('cr3', 'image/x-canon-cr3'),
  mov: video('mov', 'video/quicktime'),
  m4v: video('m4v', 'video/x-m4v'),
  '3gp': video('3gp', 'video/3gpp'),
  '3g2': video('3g2', 'video/3gpp2'),
  mp4: video('mp4', 'video/mp4'),
  // Audio in the same container: recognised, but not something a photo library takes.
  m4a: { mimeType: 'audio/mp4', kind: 'other', format: 'm4a' },
};

/** Families that only say "some HEIF" or "some MP4": a more specific compatible brand wins. */
const GENERIC: ReadonlySet<Family> = new Set<Family>(['heif', 'mp4']);

const EXTENSION_FAMILY: Record<string, Family> = {
  avif: 'avif',
  avifs: 'avif',
  heic: 'heic',
  heics: 'heic',
  heif: 'heif',
  heifs: 'heif',
  hif: 'heif',
  cr3: 'cr3',
  mov: 'mov',
  qt: 'mov',
  m4v: 'm4v',
  '3gp': '3gp',
  '3gpp': '3gp',
  '3g2': '3g2',
  mp4: 'mp4',
  m4a: 'm4a',
  m4b: 'm4a',
};

function brandFamily(brand: string): Family | null {
  switch (brand) {
    case 'avif':
    case 'avis':
      return 'avif';
    case 'heic':
    case 'heix':
    case 'heim':
    case 'heis':
    case 'hevc':
    case 'hevx':
    case 'hevm':
    case 'hevs':
      return 'heic';
    case 'mif1':
    case 'msf1':
    case 'mif2':
    case 'miaf':
      return 'heif';
    case 'crx ':
      return 'cr3';
    case 'qt  ':
      return 'mov';
    case 'M4V ':
    case 'M4VH':
    case 'M4VP':
      return 'm4v';
    case 'M4A ':
    case 'M4B ':
    case 'M4P ':
      return 'm4a';
  }
  if (/^3g2[a-z]$/.test(brand)) return '3g2';
  if (/^3g[pgesr]\d$/.test(brand)) return '3gp';
  if (/^(isom|iso[2-9a-z]|mp41|mp42|mp71|avc1|dash|msdh|msix|MSNV|NDAS|NDSC|NDSH|NDSM|NDSP|NDSS|NDXC|NDXH|NDXM|NDXP|NDXS|f4v |XAVC|mmp4|mp4v)$/.test(brand)) {
    return 'mp4';
  }
  return null;
}

function sniffFtyp(head: Buffer, ext: string): Sniffed | null {
  if (head.length < 12 || ascii(head, 4, 8) !== 'ftyp') return null;
  const boxSize = head.readUInt32BE(0);
  if (boxSize < 12 && boxSize !== 0 && boxSize !== 1) return null;
  const brandsEnd = Math.min(head.length, boxSize >= 16 ? boxSize : 16);
  const families: Family[] = [];
  const add = (brand: string): void => {
    const f = brandFamily(brand);
    if (f && !families.includes(f)) families.push(f);
  };
  add(ascii(head, 8, 12));
  const majorFamily = families[0] ?? null;
  for (let p = 16; p + 4 <= brandsEnd; p += 4) add(ascii(head, p, p + 4));
  if (families.length === 0) return null;

  // The extension picks among the families the brands allow, never outside them.
  const byExt = EXTENSION_FAMILY[ext];
  if (byExt && families.includes(byExt)) return FAMILY_RESULT[byExt];

  let chosen: Family = majorFamily ?? families[0]!;
  if (GENERIC.has(chosen)) {
    // "mif1 ... heic" is an HEIC still; "mif1 ... avif" an AVIF. Stay in the same kind of media.
    const kind = FAMILY_RESULT[chosen].kind;
    const specific = families.find((f) => !GENERIC.has(f) && FAMILY_RESULT[f].kind === kind && f !== 'm4a');
    if (specific) chosen = specific;
  }
  return FAMILY_RESULT[chosen];
}

const MOOV_CHILDREN = new Set(['mvhd', 'trak', 'udta', 'meta', 'iods', 'cmov', 'rmra', 'clip', 'ctab', 'mvex', 'uuid', 'prfl', 'free', 'skip', 'wide']);
const TOP_LEVEL = new Set(['moov', 'mdat', 'wide', 'free', 'skip', 'pnot', 'PICT', 'uuid']);

/**
 * A QuickTime movie without ftyp (older cameras, metadata-only stubs) starts straight with an
 * atom. Four letters at offset 4 are easy to hit by accident in text, so the structure around
 * them has to agree too.
 */
function sniffBareQuickTime(head: Buffer): Sniffed | null {
  if (head.length < 8) return null;
  const type = ascii(head, 4, 8);
  const size = head.readUInt32BE(0);
  const printable = (at: number): boolean => head.subarray(at, at + 4).every((c) => c >= 0x20 && c <= 0x7e);
  const MOV = video('mov', 'video/quicktime');
  switch (type) {
    case 'moov': {
      // Its first child must be a moov child that fits inside it.
      if (head.length < 16 || (size !== 0 && size < 16)) return null;
      const childSize = head.readUInt32BE(8);
      if (!MOOV_CHILDREN.has(ascii(head, 12, 16)) || childSize < 8 || (size !== 0 && childSize > size - 8)) return null;
      return MOV;
    }
    case 'wide':
      // Always an 8-byte placeholder right before the mdat it may later extend.
      return size === 8 && head.length >= 16 && TOP_LEVEL.has(ascii(head, 12, 16)) ? MOV : null;
    case 'free':
    case 'skip':
    case 'pnot':
      if (size < 8) return null;
      if (head.length >= size + 8) return TOP_LEVEL.has(ascii(head, size + 4, size + 8)) ? MOV : null;
      return printable(0) ? null : MOV;
    case 'mdat':
      // Media data we cannot check; at least the size must not read as text.
      return size === 0 || size === 1 || (size >= 8 && !printable(0)) ? MOV : null;
    default:
      return null;
  }
}

// ---- Others ----

function sniffMatroska(head: Buffer): Sniffed | null {
  if (head.length < 4 || head.readUInt32BE(0) !== 0x1a45dfa3) return null;
  // The EBML header's DocType element (ID 0x4282) says which flavour; it sits in the first bytes.
  const limit = Math.min(head.length, 128);
  for (let p = 4; p + 3 < limit; p++) {
    if (head[p] === 0x42 && head[p + 1] === 0x82) {
      const len = head[p + 2]! & 0x7f; // one-byte EBML size (0x80 | n)
      const docType = head.toString('latin1', p + 3, Math.min(limit, p + 3 + len));
      if (docType.startsWith('webm')) return video('webm', 'video/webm');
      if (docType.startsWith('matroska')) return video('mkv', 'video/x-matroska');
      break;
    }
  }
  return video('mkv', 'video/x-matroska');
}

/** MPEG transport stream: a 0x47 sync byte every 188 bytes (192 with the M2TS timestamp prefix). */
function sniffTransportStream(head: Buffer): Sniffed | null {
  const syncs = (first: number, stride: number): boolean => {
    let seen = 0;
    for (let p = first; p < head.length && seen < 4; p += stride) {
      if (head[p] !== 0x47) return false;
      seen++;
    }
    // One 'G' proves nothing (text starts with it too); several at the packet stride do.
    return seen >= 3 || (seen >= 2 && head.length < first + 2 * stride + 1);
  };
  if (head.length >= 189 && syncs(0, 188)) return video('ts', 'video/mp2t');
  if (head.length >= 197 && syncs(4, 192)) return video('m2ts', 'video/mp2t');
  return null;
}

const ASF_GUID = Buffer.from('3026b2758e66cf11a6d900aa0062ce6c', 'hex');

function sniffTiff(head: Buffer, ext: string): Sniffed | null {
  const le = head.length >= 8 && head[0] === 0x49 && head[1] === 0x49 && head[2] === 0x2a && head[3] === 0x00;
  const be = head.length >= 8 && head[0] === 0x4d && head[1] === 0x4d && head[2] === 0x00 && head[3] === 0x2a;
  if (!le && !be) return null;
  if (le && ascii(head, 8, 10) === 'CR') return image('cr2', 'image/x-canon-cr2');
  // DNG, NEF and ARW are TIFF structures too; only the name tells them apart cheaply.
  if (ext === 'dng') return image('dng', 'image/x-adobe-dng');
  if (ext === 'nef') return image('nef', 'image/x-nikon-nef');
  if (ext === 'arw') return image('arw', 'image/x-sony-arw');
  return image('tiff', 'image/tiff');
}

function sniffBmp(head: Buffer): Sniffed | null {
  if (head.length < 18 || head[0] !== 0x42 || head[1] !== 0x4d) return null;
  // "BM" alone is two letters of text; the DIB header size must be one of the defined ones.
  const dib = head.readUInt32LE(14);
  if (![12, 16, 40, 52, 56, 64, 108, 124].includes(dib)) return null;
  return image('bmp', 'image/bmp');
}

function sniffIco(head: Buffer): Sniffed | null {
  if (head.length < 22 || head.readUInt32BE(0) !== 0x00000100) return null;
  const count = head.readUInt16LE(4);
  // First directory entry: reserved byte 0, colour planes 0 or 1.
  if (count === 0 || head[6 + 3] !== 0 || head.readUInt16LE(6 + 4) > 1) return null;
  return image('ico', 'image/x-icon');
}

export function sniffMedia(head: Buffer, fileName: string): Sniffed {
  const ext = extensionOf(fileName);
  const b = head;
  if (b.length < 2) return UNKNOWN;

  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return image('jpeg', 'image/jpeg');
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return image('png', 'image/png');
  const gif = ascii(b, 0, 6);
  if (gif === 'GIF87a' || gif === 'GIF89a') return image('gif', 'image/gif');
  if (ascii(b, 0, 4) === 'RIFF') {
    const form = ascii(b, 8, 12);
    if (form === 'WEBP') return image('webp', 'image/webp');
    if (form === 'AVI ') return video('avi', 'video/x-msvideo');
    return UNKNOWN;
  }
  const tiff = sniffTiff(b, ext);
  if (tiff) return tiff;
  const ftyp = sniffFtyp(b, ext);
  if (ftyp) return ftyp;
  if (b.length >= 16 && b.subarray(0, 16).equals(ASF_GUID)) {
    // Video or audio is in the stream properties deep inside; the name settles it cheaply.
    if (ext === 'wma') return { mimeType: 'audio/x-ms-wma', kind: 'other', format: 'wma' };
    if (ext === 'asf') return video('asf', 'video/x-ms-asf');
    return video('wmv', 'video/x-ms-wmv');
  }
  const mkv = sniffMatroska(b);
  if (mkv) return mkv;
  if (ascii(b, 0, 4) === 'FLV\x01') return video('flv', 'video/x-flv');
  if (b.length >= 4 && b.readUInt32BE(0) === 0x000001ba) return video('mpeg', 'video/mpeg');
  const ts = sniffTransportStream(b);
  if (ts) return ts;
  const bmp = sniffBmp(b);
  if (bmp) return bmp;
  const ico = sniffIco(b);
  if (ico) return ico;
  const qt = sniffBareQuickTime(b);
  if (qt) return qt;
  return UNKNOWN;
}
