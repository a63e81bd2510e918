// Plain file descriptors for the per-file hot path of local copies. fs/promises wraps every call
// in a FileHandle and a promise and sends even a close or a stat through the libuv pool: a
// folder-to-folder run made ~18 pool round trips a photo, and on two cores the hand-offs (futex
// waits, main-thread dispatch) cost more than the work. Data moves (read, write, fsync) still go
// through the pool, since they may wait on the disk; opens and the metadata calls on an open
// descriptor (fstat, futimes, close) are made directly: they are microseconds and never wait
// on the data.

import fs from 'node:fs';

/**
 * Opens directly too: a path lookup that takes microseconds, where the pool's hand-off took
 * 30 us of the run's thread by itself (a worker woken, a context switch on two cores). On a
 * hung network mount an awaited open would stall the item all the same.
 */
export function openFd(file: string, flags: string, mode?: number): Promise<number> {
  try {
    return Promise.resolve(fs.openSync(file, flags, mode));
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Creates a file through the libuv pool. A create, unlike an open, changes the folder: on ext4 it
 * waits while a journal commit is under way (a group's syncfs), and done directly that wait held
 * the run's one thread (a fifth of its time in a folder copy's profile).
 */
export function createFd(file: string, flags: string, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function readFd(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * Reads from the start into `buf` until `size` bytes (or more, had the file grown), the end of the
 * file, or a full buffer. A read may return less than asked (a network file system, a signal):
 * hashing what one read returned would call a good copy different.
 */
export async function readFdUpTo(fd: number, buf: Buffer, size: number): Promise<number> {
  let n = 0;
  do {
    const got = await readFd(fd, buf, n, buf.length - n, n);
    if (got === 0) break;
    n += got;
  } while (n < size && n < buf.length);
  return n;
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
