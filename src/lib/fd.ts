// Plain file descriptors for the per-file hot path of local copies. fs/promises wraps every call
// in a FileHandle and a promise and sends even a close or a stat through the libuv pool: a
// folder-to-folder run made ~18 pool round trips a photo, and on two cores the hand-offs (futex
// waits, main-thread dispatch) cost more than the work. Data moves (open, read, write, fsync)
// still go through the pool, since they may wait on the disk; metadata calls on a descriptor
// already open (fstat, futimes, close) are made directly: they are microseconds and never block
// on the data.

import fs from 'node:fs';

export function openFd(file: string, flags: string, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function readFd(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Writes all of `buf` (a write may take less than asked; the rest follows). */
export async function writeAllFd(fd: number, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    off += await new Promise<number>((resolve, reject) => fs.write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n))));
  }
}

export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Closes, ignoring a descriptor already closed: used on paths that are cleaning up after an error. */
export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Closed already.
  }
}
