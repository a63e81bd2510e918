// What the first bytes of an item say about it: its real format (by content, not by name),
// its capture time, place and camera. The engine settles the capture time here: the file's own
// EXIF (or a video container's mvhd) wins over a date the source declares; both are kept.

import type { ItemFacts, MediaKind, SourceItem } from '../../providers/types.ts';
import { sniffMedia } from '../media/sniff.ts';
import { imageMetadata } from '../media/metadata.ts';
import { readMvhdAt } from '../media/mvhd.ts';
import type { ItemFactsRecord } from '../../state/items.ts';

export const HEAD_BYTES = 1024 * 1024;

export interface Probe {
  facts: ItemFacts;
  record: ItemFactsRecord;
}

/**
 * @param readAt random access to the item's bytes, when the source offers it cheaply; used to
 *               find a video's moov box at the end of the file before the upload starts.
 */
export async function probeFacts(item: SourceItem, head: Buffer, containerTime: string | null, readAt: ((offset: number, length: number) => Promise<Buffer>) | null): Promise<Probe> {
  const sniffed = sniffMedia(head, item.name);
  // Content decides what an item is: an HTML error page saved as .jpg is not an image,
  // whatever its name or the source's listing says.
  const kind: MediaKind = sniffed.kind;
  const mimeType = sniffed.kind !== 'other' ? sniffed.mimeType : 'application/octet-stream';

  let exifTime: string | null = null;
  let gps: string | null = null;
  let camera: string | null = null;
  let width: number | null = null;
  let height: number | null = null;
  let embedded: { time: string | null; source: 'exif' | 'container' } = { time: null, source: 'exif' };

  if (kind === 'image') {
    const m = await imageMetadata(head);
    exifTime = m.captureTime;
    gps = m.gps ? JSON.stringify(m.gps) : null;
    camera = m.camera;
    width = m.width;
    height = m.height;
    embedded = { time: exifTime, source: 'exif' };
  } else if (kind === 'video') {
    let t = containerTime;
    if (!t && readAt && item.size) t = await readMvhdAt(readAt, item.size).catch(() => null);
    exifTime = t;
    embedded = { time: t, source: 'container' };
  }

  const declared = item.declaredCaptureTime ?? null;
  const captureTime = embedded.time ?? declared;
  const captureTimeSource: ItemFacts['captureTimeSource'] = embedded.time ? embedded.source : declared ? 'declared' : 'none';
  return {
    facts: { captureTime, captureTimeSource, mimeType, kind, width, height },
    record: { mimeType, exifTime, captureTime, captureSource: captureTimeSource, gps, camera, width, height },
  };
}
