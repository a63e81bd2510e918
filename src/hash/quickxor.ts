// OneDrive's QuickXorHash: a 160-bit state where stream byte i is XORed in at bit offset
// (i * 11) mod 160, then the 64-bit little-endian stream length is XORed into bytes 12..19.
//
// Why this is fast: 160 * 11 is a multiple of 160, so bytes at positions i and i + 160 land on
// the same bit offset. XOR is linear, so we can first fold the whole stream by position into a
// 160-byte accumulator (plain word-wide XOR, no shifting), and only when a digest is asked for
// shift each of the 160 accumulated bytes into place. The per-byte cost becomes a fraction of a
// 32-bit XOR instead of a shift-and-XOR of a multi-word value.

const WIDTH_BYTES = 20; // 160 bits
const BLOCK = 160; // bytes after which bit offsets repeat
const BLOCK_WORDS = BLOCK / 4;
// Misaligned chunks are copied here in slices so the fast path still reads aligned 32-bit words;
// a multiple of BLOCK keeps the copy boundaries on block boundaries.
const SCRATCH_BYTES = BLOCK * 512;

// Every index below stays inside its typed array by construction of the loops: the `!`s only say
// so to tsc (noUncheckedIndexedAccess) and cost nothing in the hot loop.

// Allocated on first need; shared because update() is synchronous.
let scratch: { bytes: Uint8Array; words: Uint32Array } | null = null;

/**
 * XOR `blocks` whole 160-byte blocks of `v` (starting at word `start`) into `acc`.
 * Column order with register accumulators: V8 keeps the ten running values in registers,
 * which measured several times faster than updating acc[] per word.
 */
function foldBlocks(acc: Uint32Array, v: Uint32Array, start: number, blocks: number): void {
  const end = start + blocks * BLOCK_WORDS;
  for (let j = 0; j < BLOCK_WORDS; j += 10) {
    let a0 = 0,
      a1 = 0,
      a2 = 0,
      a3 = 0,
      a4 = 0,
      a5 = 0,
      a6 = 0,
      a7 = 0,
      a8 = 0,
      a9 = 0;
    for (let p = start + j; p < end; p += BLOCK_WORDS) {
      a0 ^= v[p]!;
      a1 ^= v[p + 1]!;
      a2 ^= v[p + 2]!;
      a3 ^= v[p + 3]!;
      a4 ^= v[p + 4]!;
      a5 ^= v[p + 5]!;
      a6 ^= v[p + 6]!;
      a7 ^= v[p + 7]!;
      a8 ^= v[p + 8]!;
      a9 ^= v[p + 9]!;
    }
    acc[j]! ^= a0;
    acc[j + 1]! ^= a1;
    acc[j + 2]! ^= a2;
    acc[j + 3]! ^= a3;
    acc[j + 4]! ^= a4;
    acc[j + 5]! ^= a5;
    acc[j + 6]! ^= a6;
    acc[j + 7]! ^= a7;
    acc[j + 8]! ^= a8;
    acc[j + 9]! ^= a9;
  }
}

export class QuickXorHash {
  // Both views share one buffer, so the word-wide XOR and the byte-wise XOR agree on which
  // accumulator byte is which regardless of platform endianness.
  private readonly acc32 = new Uint32Array(BLOCK_WORDS);
  private readonly acc = new Uint8Array(this.acc32.buffer);
  /** Stream position modulo 160: where the next byte goes in the accumulator. */
  private phase = 0;
  /** Total bytes seen; a double is exact up to 2^53, far beyond any file we will meet. */
  private length = 0;

  update(buf: Uint8Array): this {
    const n = buf.length;
    if (n === 0) return this;
    this.length += n;
    const acc = this.acc;
    let i = 0;
    let phase = this.phase;

    // Bring the stream to a block boundary one byte at a time.
    if (phase !== 0) {
      const head = Math.min(n, BLOCK - phase);
      for (let k = 0; k < head; k++) acc[phase + k]! ^= buf[k]!;
      i = head;
      phase = (phase + head) % BLOCK;
      if (i === n) {
        this.phase = phase;
        return this;
      }
    }

    const blocks = Math.floor((n - i) / BLOCK);
    if (blocks > 0) {
      const addr = buf.byteOffset + i;
      if ((addr & 3) === 0) {
        const v = new Uint32Array(buf.buffer, addr, blocks * BLOCK_WORDS);
        foldBlocks(this.acc32, v, 0, blocks);
      } else {
        // Typed-array views need 4-aligned offsets; copying a slice costs far less than
        // folding byte by byte.
        if (!scratch) {
          const words = new Uint32Array(SCRATCH_BYTES / 4);
          scratch = { bytes: new Uint8Array(words.buffer), words };
        }
        let left = blocks * BLOCK;
        let p = i;
        while (left > 0) {
          const take = Math.min(left, SCRATCH_BYTES);
          scratch.bytes.set(buf.subarray(p, p + take));
          foldBlocks(this.acc32, scratch.words, 0, take / BLOCK);
          p += take;
          left -= take;
        }
      }
      i += blocks * BLOCK;
    }

    // Tail shorter than a block: phase is 0 here.
    for (let k = 0; i + k < n; k++) acc[k]! ^= buf[i + k]!;
    this.phase = (n - i) % BLOCK;
    return this;
  }

  /** The 20-byte hash of everything fed so far. Does not end the hash: update() may continue. */
  digest(): Buffer {
    const out = Buffer.alloc(WIDTH_BYTES);
    const acc = this.acc;
    for (let k = 0; k < BLOCK; k++) {
      const b = acc[k]!;
      if (b === 0) continue;
      const bit = (k * 11) % 160;
      const byte = bit >> 3;
      const shift = bit & 7;
      out[byte]! ^= (b << shift) & 0xff;
      // The byte straddles two state bytes, the second possibly wrapping to byte 0.
      if (shift !== 0) out[(byte + 1) % WIDTH_BYTES]! ^= b >> (8 - shift);
    }
    let len = this.length;
    for (let k = 0; k < 8; k++) {
      out[WIDTH_BYTES - 8 + k]! ^= len % 256;
      len = Math.floor(len / 256);
    }
    return out;
  }

  digestBase64(): string {
    return this.digest().toString('base64');
  }
}

/** QuickXorHash of a whole buffer, base64 as OneDrive reports it. */
export function quickXorBase64(buf: Uint8Array): string {
  return new QuickXorHash().update(buf).digestBase64();
}
