// What the first bytes of an item say about it: its real format (by content, not by name),
// its capture time, place and camera. The engine settles the capture time here, in the order of
// src/media/capture-time.ts: the file's own EXIF (or a video container's mvhd), else the date
// the source declares, else a date in the file name, else a folder file's modification time.

import type { ItemFacts, MediaKind, SourceItem } from '../../providers/types.ts';
import { sniffMedia } from '../media/sniff.ts';
import { imageFacts } from '../media/metadata.ts';
import { resolveCaptureTime, type EmbeddedTime } from '../media/capture-time.ts';
import { systemZone } from '../media/zone.ts';
import { readMvhdAt } from '../media/mvhd.ts';
import type { ItemFactsRecord } from '../../state/items.ts';

export const HEAD_BYTES = 1024 * 1024;

export interface Probe {
  facts: ItemFacts;
  record: ItemFactsRecord;
  /** Short format name by content (jpeg, png, mp4, ...), or null. */
  format: string | null;
}

/** The capture time of an item from everything known about it (the file's own date first). */
export function settleCaptureTime(item: SourceItem, embedded: EmbeddedTime | null, zone: string) {
  return resolveCaptureTime({
    embedded,
    declared: item.declaredCaptureTime ?? null,
    declaredLabel: item.declaredCaptureTimeLabel ?? null,
    fileName: item.name,
    fileModified: item.fileModifiedTime ?? null,
    zone,
  });
}

/**
 * @param readAt random access to the item's bytes, when the source offers it cheaply; used to
 *               find a video's moov box at the end of the file before the upload starts.
 */
export async function probeFacts(
  item: SourceItem,
  head: Buffer,
  containerTime: string | null,
  readAt: ((offset: number, length: number) => Promise<Buffer>) | null,
  zone: string = systemZone(),
): Promise<Probe> {
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
  let embedded: EmbeddedTime | null = null;

  if (kind === 'image') {
    const { meta: m, wall } = await imageFacts(head);
    exifTime = m.captureTime;
    gps = m.gps ? JSON.stringify(m.gps) : null;
    camera = m.camera;
    width = m.width;
    height = m.height;
    if (wall) embedded = { kind: 'exif', ...wall };
  } else if (kind === 'video') {
    let t = containerTime;
    if (!t && readAt && item.size) t = await readMvhdAt(readAt, item.size).catch(() => null);
    exifTime = t;
    if (t) embedded = { kind: 'container', iso: t };
  }

  const r = settleCaptureTime(item, embedded, zone);
  return {
    facts: { captureTime: r.time, captureTimeSource: r.source, captureTimeDetail: r.detail, mimeType, kind, width, height },
    record: {
      mimeType,
      exifTime,
      captureTime: r.time,
      captureSource: r.source,
      captureDetail: r.detail,
      captureOffsetFrom: r.offsetFrom,
      gps,
      camera,
      width,
      height,
    },
    format: sniffed.format,
  };
}
