// Unique media for the chaos rounds: every content the suite ever writes is new random noise,
// so "the same bytes twice at the destination" can only be the tool's doing. JPEGs, because
// Google Photos accepts nothing else we can generate cheaply; some are large enough to need
// several upload fragments and to be killed mid-transfer.

import crypto from 'node:crypto';
import sharp from 'sharp';

export type Random = () => number;

export const sha1 = (b: Buffer): string => crypto.createHash('sha1').update(b).digest('hex');

/** A valid JPEG of random noise: a few KB, or (one in `bigEvery`) about 1-3 MB. */
export async function noiseJpeg(rand: Random, bigEvery = 6): Promise<Buffer> {
  const big = rand() < 1 / bigEvery;
  const width = big ? 900 + Math.floor(rand() * 500) : 16 + Math.floor(rand() * 240);
  const height = big ? 700 + Math.floor(rand() * 400) : 16 + Math.floor(rand() * 240);
  const pixels = noise(rand, width * height * 3);
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: big ? 92 : 80 })
    .toBuffer();
}

/** SHA-1 of the decoded pixels: what Google Photos must keep when it (or the tool) rewrites metadata. */
export async function pixelHash(bytes: Buffer): Promise<string | null> {
  try {
    return sha1(await sharp(bytes).raw().toBuffer());
  } catch {
    return null;
  }
}

/** Bytes from the seeded stream, so a seed repeats the same contents. */
function noise(rand: Random, n: number): Buffer {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(rand() * 4294967296);
  return Buffer.from(words.buffer, 0, n);
}

export function pick<T>(rand: Random, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}
