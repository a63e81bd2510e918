// Reading one album or one gallery entry of a Xiaomi listing, field by field. Xiaomi documents
// none of these fields, so each is checked on its own: a field that makes no sense is dropped
// with a one-line note and the item still moves (its bytes and SHA-1 are what matter); only an
// entry without a usable id cannot be moved at all. Nothing here throws.

import type { MediaKind, SourceItem } from '../types.ts';
import { idString } from './json.ts';
import { ALBUM_PRIVATE } from './protocol.ts';

export interface Album {
  albumId: string;
  name: string;
  /** Items the album list says the album holds, or null when it does not say. */
  mediaCount: number | null;
}

/** Capture times outside these years are not milliseconds (microseconds, seconds, garbage). */
const EARLIEST_MS = Date.UTC(1900, 0, 1);
const LATEST_MS = Date.UTC(2100, 0, 1);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A short, printable rendering of a bad value for a one-line note. */
function shown(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'missing' : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  s = s.replace(/[^\x20-\x7e]/g, '?');
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

export function readAlbum(raw: unknown): { album: Album } | { problem: string } {
  if (!isRecord(raw)) return { problem: `an album entry is not an object (${shown(raw)})` };
  const albumId = idString(raw.albumId);
  if (!albumId) return { problem: `an album entry has no usable albumId (${shown(raw.albumId)}); its items cannot be listed` };
  const name = typeof raw.name === 'string' && raw.name.trim() ? raw.name : `album ${albumId}`;
  const count = typeof raw.mediaCount === 'string' && /^\d+$/.test(raw.mediaCount) ? Number(raw.mediaCount) : raw.mediaCount;
  const mediaCount = typeof count === 'number' && Number.isSafeInteger(count) && count >= 0 ? count : null;
  return { album: { albumId, name, mediaCount } };
}

/** A time in ms, or null with the reason when the field holds something else. Absent is fine. */
function readTime(v: unknown, field: string): { ms: number | null; note?: string } {
  if (v === undefined || v === null || v === '' || v === 0) return { ms: null };
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) return { ms: null, note: `${field} ${shown(v)} is not a number` };
  if (n < EARLIEST_MS || n >= LATEST_MS) {
    const guess = n >= LATEST_MS * 100 ? ' (microseconds or nanoseconds instead of milliseconds?)' : '';
    return { ms: null, note: `${field} ${shown(v)} is not a time in milliseconds between 1900 and 2100${guess}` };
  }
  return { ms: Math.trunc(n) };
}

function isJsonObjectText(text: string): boolean {
  const t = text.trim();
  if (!t.startsWith('{')) return false;
  try {
    return isRecord(JSON.parse(t));
  } catch {
    return false;
  }
}

function kindOf(type: string | null, mime: string | null): MediaKind {
  const t = (type ?? '').toLowerCase();
  if (t === 'image' || mime?.startsWith('image/')) return 'image';
  if (t === 'video' || mime?.startsWith('video/')) return 'video';
  return 'other';
}

export interface ReadItem {
  /** The item, or null when the entry cannot be moved (no usable id). */
  item: SourceItem | null;
  /** One line per field that was dropped (the item still moves), or why the entry cannot. */
  notes: string[];
}

/** One entry of `data.galleries`: the SourceItem and what was wrong with it. */
export function readItem(raw: unknown, album: Album): ReadItem {
  const where = `album "${album.name}" (${album.albumId})`;
  if (!isRecord(raw)) return { item: null, notes: [`${where}: an entry is not an object (${shown(raw)}); it cannot be moved`] };
  const id = idString(raw.id);
  const fileName = typeof raw.fileName === 'string' && raw.fileName.trim() ? raw.fileName : null;
  const title = typeof raw.title === 'string' && raw.title.trim() ? raw.title : null;
  if (!id) return { item: null, notes: [`${where}: the entry ${shown(fileName ?? title)} has no usable id (${shown(raw.id)}); it cannot be moved`] };

  const notes: string[] = [];
  const note = (what: string) => notes.push(`${where}: item ${id} (${shown(fileName ?? title ?? id)}): ${what}`);
  const mimeType = typeof raw.mimeType === 'string' && /^[\w.+-]+\/[\w.+-]+$/.test(raw.mimeType) ? raw.mimeType.toLowerCase() : null;
  if (raw.mimeType !== undefined && raw.mimeType !== null && raw.mimeType !== '' && !mimeType)
    note(`mimeType ${shown(raw.mimeType)} is not a MIME type; ignored`);
  const type = typeof raw.type === 'string' ? raw.type : null;

  let sha1: string | null = null;
  if (typeof raw.sha1 === 'string' && /^[0-9a-f]{40}$/i.test(raw.sha1)) sha1 = raw.sha1.toLowerCase();
  else note(`sha1 ${shown(raw.sha1)} is not a SHA-1; the item moves but its download cannot be proven, so it is never deleted at Xiaomi`);

  const sizeValue = typeof raw.size === 'string' && /^\d+$/.test(raw.size) ? Number(raw.size) : raw.size;
  const size = typeof sizeValue === 'number' && Number.isSafeInteger(sizeValue) && sizeValue >= 0 ? sizeValue : null;
  if (size === null) note(`size ${shown(raw.size)} is not a byte count; the download is checked by its SHA-1 alone`);

  const taken = readTime(raw.dateTaken, 'dateTaken');
  if (taken.note) note(`${taken.note}; the file's own date is used`);
  const modified = readTime(raw.dateModified, 'dateModified');
  const created = readTime(raw.createTime, 'createTime');
  for (const t of [modified, created]) if (t.note) note(`${t.note}; ignored`);

  // In the change feed `description` holds a JSON object of the app's flags (isFavorite,
  // specialTypeFlags), per Coooolfan/XiaomiAlbumSyncer docs/plan/xiaomi-webapi-incremental-sync.md:
  // that is no caption, so only other text is taken as one.
  let description: string | null = null;
  if (typeof raw.description === 'string') description = raw.description.trim() && !isJsonObjectText(raw.description) ? raw.description : null;
  else if (raw.description !== undefined && raw.description !== null) note(`description ${shown(raw.description)} is not text; ignored`);

  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    item: {
      id,
      name: fileName ?? title ?? id,
      albumId: album.albumId,
      albumName: album.name,
      size,
      sha1,
      // Another SHA-1 under the same id is other bytes: a new version, migrated on its own.
      version: sha1,
      mimeType,
      kind: kindOf(type, mimeType),
      declaredCaptureTime: iso(taken.ms),
      declaredCaptureTimeLabel: "Xiaomi's dateTaken",
      // Reported so that nothing is dropped silently: no destination has a place for these.
      notCarried: [
        ...(raw.isFavorite === true ? ['favorite mark'] : []),
        ...(album.albumId === ALBUM_PRIVATE ? ["Xiaomi's private album flag (the item lands in an ordinary album)"] : []),
      ],
      modifiedTime: iso(modified.ms) ?? iso(created.ms),
      description,
      extra: {
        albumId: album.albumId,
        title,
        dateTaken: taken.ms,
        createTime: created.ms,
        isFavorite: raw.isFavorite === true,
        type,
      },
    },
    notes,
  };
}
