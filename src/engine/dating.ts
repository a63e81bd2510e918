// How an item's capture date reaches the destination: the one decision behind both `plan`
// (which predicts it from names and declared dates) and the run (which makes it on the bytes).

import type { Destination } from '../../providers/types.ts';

export type Dating =
  /** The file carries its own date: nothing to do. */
  | { how: 'own' }
  /** The date is written into the uploaded copy. */
  | { how: 'write' }
  /** The destination takes the date from the facts handed over; `notInFile` says why it is not written in too. */
  | { how: 'metadata'; notInFile: string | null }
  /** The destination will date the item by its upload, for this reason. */
  | { how: 'upload'; why: string; keepBytes: boolean }
  /** No date anywhere, and the destination does not date by upload either. */
  | { how: 'none' };

export const NO_DATE = 'no date in the file, the source or the name';
export const KEEP_BYTES = 'the file has no date and --keep-bytes keeps it that way';

/** True when the destination reads an item's date only from inside the file (else dates it by the upload). */
export function datesByFile(destination: Pick<Destination, 'dating'>): boolean {
  return destination.dating === 'file' || destination.dating === 'upload';
}

/** True when the destination has the capture date written into the uploaded copy where it can. */
export function writesDatedCopies(destination: Pick<Destination, 'dating'>): boolean {
  return destination.dating === 'file' || destination.dating === 'metadata-and-file';
}

/**
 * @param time the capture time settled on, and whether it is the file's own
 * @param unwritable asked only when the date would be written in: why it cannot be (the format, the file's layout), or null
 */
export function decideDating(destination: Pick<Destination, 'dating'>, time: { present: boolean; own: boolean }, unwritable: () => string | null): Dating {
  const byFile = datesByFile(destination);
  const writeIn = writesDatedCopies(destination);
  if (time.present && time.own) return { how: 'own' };
  if (!time.present) return byFile ? { how: 'upload', why: NO_DATE, keepBytes: false } : { how: 'none' };
  if (!writeIn) return byFile ? { how: 'upload', why: KEEP_BYTES, keepBytes: true } : { how: 'metadata', notInFile: null };
  const skip = unwritable();
  if (skip === null) return { how: 'write' };
  return byFile ? { how: 'upload', why: skip, keepBytes: false } : { how: 'metadata', notInFile: skip };
}

/** The one line a report shows for the decision (null when the date travels in the file). */
export function datingNote(d: Dating, time: string | null, from: string): string | null {
  switch (d.how) {
    case 'own':
    case 'write':
      return null;
    case 'none':
      return 'no capture date anywhere';
    case 'upload':
      return `will be dated by upload: ${d.why}${d.keepBytes ? ` (${from} says ${time})` : ''}`;
    case 'metadata':
      return `dated ${time} from ${from} in the destination's metadata${d.notInFile ? `; not in the file: ${d.notInFile}` : ''}`;
  }
}
