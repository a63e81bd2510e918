// Names coming from a source are data, not paths: one path component each, never "." or "..",
// never a separator, never a control character. The mapping is documented in the README.

export function safeComponent(name: string, fallback = 'unnamed'): string {
  // eslint-disable-next-line no-control-regex
  let out = name
    .normalize('NFC')
    .replace(/[\u0000-\u001f/\\]/g, '_')
    .trim();
  if (out === '') out = fallback;
  if (out === '.' || out === '..') out = out.replace(/\./g, '_');
  // Keep within common filesystem limits (255 bytes) without cutting a UTF-8 sequence.
  while (Buffer.byteLength(out) > 240) out = out.slice(0, -1);
  return out;
}

/** "IMG.jpg" -> "IMG (2).jpg": the name a second, different file of the same name gets. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}
