// The emulator's own QuickXorHash, written from the published description (onedrive-api-docs,
// quickxorhash.md): a 160-bit state; input byte i is XORed in at bit offset (i * 11) mod 160,
// wrapping round; the int64 length, little-endian, is XORed into the last 8 of the 20 bytes;
// the result is base64. It deliberately shares no code with src/hash/quickxor.ts, so a test can
// hold one against the other.
//
// XOR is linear, so instead of shifting every byte into place we first XOR together all bytes
// that land at the same offset (byte positions equal mod 160) and place the 160 sums at the end.

const WIDTH = 160;

export class EmulatorQuickXor {
  private readonly acc = new Uint8Array(WIDTH);
  private length = 0;

  update(data: Uint8Array): this {
    const acc = this.acc;
    let pos = this.length % WIDTH;
    const n = data.length;
    let i = 0;
    // Finish the current 160-byte lap, then run whole laps, then the tail.
    while (i < n && pos !== 0) {
      acc[pos]! ^= data[i]!;
      i++;
      pos = (pos + 1) % WIDTH;
    }
    const laps = Math.floor((n - i) / WIDTH);
    for (let l = 0; l < laps; l++) {
      const base = i + l * WIDTH;
      for (let k = 0; k < WIDTH; k++) acc[k]! ^= data[base + k]!;
    }
    i += laps * WIDTH;
    pos = 0;
    while (i < n) {
      acc[pos]! ^= data[i]!;
      i++;
      pos++;
    }
    this.length += n;
    return this;
  }

  digest(): Buffer {
    const out = Buffer.alloc(20);
    for (let p = 0; p < WIDTH; p++) {
      const v = this.acc[p]!;
      if (!v) continue;
      const bit = (p * 11) % WIDTH;
      const byte = bit >> 3;
      const shift = bit & 7;
      out[byte] = out[byte]! ^ ((v << shift) & 0xff);
      if (shift) out[(byte + 1) % 20] = out[(byte + 1) % 20]! ^ (v >> (8 - shift));
    }
    let len = BigInt(this.length);
    for (let k = 0; k < 8; k++) {
      out[12 + k] = out[12 + k]! ^ Number(len & 0xffn);
      len >>= 8n;
    }
    return out;
  }

  digestBase64(): string {
    return this.digest().toString('base64');
  }
}

export function emulatorQuickXor(data: Uint8Array): string {
  return new EmulatorQuickXor().update(data).digestBase64();
}
