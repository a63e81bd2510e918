// What OneDrive says about a stored file, and whether it proves the streamed bytes (the `bytes`
// evidence described at the top of destination.ts).

import type { Hashes } from '../types.ts';

export interface DriveItem {
  id: string;
  name: string;
  size?: number;
  folder?: unknown;
  file?: { hashes?: { quickXorHash?: string; sha1Hash?: string; sha256Hash?: string } };
}

/**
 * Does OneDrive hold exactly these bytes in this file? Returns the evidence line, or null
 * (different bytes), or 'no-hash' (OneDrive has not computed it yet).
 */
export function sameBytes(found: DriveItem, hashes: Pick<Hashes, 'quickXor' | 'size'> & Partial<Hashes>, where: string): string | null | 'no-hash' {
  if (found.folder || !found.file) return null;
  if (found.size !== hashes.size) return null;
  const h = found.file.hashes ?? {};
  if (!h.quickXorHash) return 'no-hash';
  if (h.quickXorHash !== hashes.quickXor) return null;
  const also: string[] = [];
  if (h.sha256Hash && hashes.sha256) {
    if (h.sha256Hash.toLowerCase() !== hashes.sha256.toLowerCase()) return null;
    also.push('SHA-256');
  }
  if (h.sha1Hash && hashes.sha1) {
    if (h.sha1Hash.toLowerCase() !== hashes.sha1.toLowerCase()) return null;
    also.push('SHA-1');
  }
  return `OneDrive reports size ${found.size} and QuickXorHash ${h.quickXorHash}${also.length ? ` and the same ${also.join(' and ')}` : ''} for ${where}, equal to what was computed while streaming the source`;
}
