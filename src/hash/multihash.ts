// SHA-1 (Google/Xiaomi), SHA-256 (our own record) and QuickXorHash (OneDrive) in one pass, so an
// item's bytes are read once no matter which destination checks which hash.

import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import type { Hashes } from '../../providers/types.ts';
import { QuickXorHash } from './quickxor.ts';

// Large enough that per-chunk overhead vanishes, small enough that memory stays flat per file.
const READ_CHUNK = 1 << 20;

class Hashers {
  private readonly sha1: Hash = createHash('sha1');
  private readonly sha256: Hash = createHash('sha256');
  private readonly qx = new QuickXorHash();
  size = 0;

  update(chunk: Uint8Array): void {
    this.sha1.update(chunk);
    this.sha256.update(chunk);
    this.qx.update(chunk);
    this.size += chunk.length;
  }

  /** node:crypto hashes can be finalised once only, so callers cache the result. */
  finish(): Hashes {
    return {
      sha1: this.sha1.digest('hex'),
      sha256: this.sha256.digest('hex'),
      quickXor: this.qx.digestBase64(),
      size: this.size,
    };
  }
}

/**
 * A pass-through stream that hashes what flows through it. Pipe the source through it on the
 * way to the destination; `digest()` is valid once the stream has ended.
 */
export class MultiHasher extends Transform {
  private readonly hashers = new Hashers();
  private result: Hashes | null = null;

  /** Bytes seen so far (valid at any time, unlike digest()). */
  get bytes(): number {
    return this.hashers.size;
  }

  override _transform(chunk: unknown, encoding: BufferEncoding, callback: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Uint8Array);
    this.hashers.update(buf);
    callback(null, buf);
  }

  override _flush(callback: TransformCallback): void {
    this.result = this.hashers.finish();
    callback();
  }

  digest(): Hashes {
    if (!this.result) throw new Error('MultiHasher.digest() called before the stream ended');
    return { ...this.result };
  }
}

/**
 * Read a file front to back, handing each chunk to `onChunk` synchronously. Two fixed buffers
 * alternate: the kernel fills one (on the libuv pool) while we hash the other, so disk and CPU
 * overlap, and memory stays at two chunks whatever the file size. The chunk is only valid
 * during the call.
 */
export async function readFileChunks(path: string, onChunk: (chunk: Buffer) => void, chunkSize = READ_CHUNK): Promise<number> {
  const fh = await open(path, 'r');
  try {
    let bufs = [Buffer.allocUnsafeSlow(chunkSize), Buffer.allocUnsafeSlow(chunkSize)] as const;
    let position = 0;
    let pending = fh.read(bufs[0], 0, chunkSize, position);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const current = bufs[0];
      position += bytesRead;
      pending = fh.read(bufs[1], 0, chunkSize, position);
      try {
        onChunk(current.subarray(0, bytesRead));
      } catch (err) {
        // Let the read in flight land before the handle is closed under it.
        await pending.catch(() => undefined);
        throw err;
      }
      bufs = [bufs[1], bufs[0]];
    }
    return position;
  } finally {
    await fh.close();
  }
}

export async function hashFile(path: string): Promise<Hashes> {
  // Not through MultiHasher: nothing downstream wants the bytes, so skip the stream machinery.
  const hashers = new Hashers();
  await readFileChunks(path, (chunk) => hashers.update(chunk));
  return hashers.finish();
}

export function hashBuffer(buf: Uint8Array): Hashes {
  const hashers = new Hashers();
  hashers.update(buf);
  return hashers.finish();
}
