// exifr, loaded when the first image is read rather than as the CLI starts: its bundle took
// 10-20 ms of every start (status and --help included), before a run's first request went out.
// Callers load it outside their guard for bad EXIF: a library that failed to load must stop the
// run, not read as photos without dates.

import type Exifr from 'exifr';

let loading: Promise<typeof Exifr> | null = null;

export function loadExifr(): Promise<typeof Exifr> {
  loading ??= import('exifr').then((m) => m.default);
  return loading;
}
