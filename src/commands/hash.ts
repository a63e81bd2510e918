// `hash FILE...`: the three hashes the tool computes while migrating, for checking by hand.

import { hashFile } from '../hash/multihash.ts';
import { reason } from '../lib/redact.ts';

export async function hashCommand(files: string[], o: { json: boolean }): Promise<number> {
  let code = 0;
  for (const file of files) {
    try {
      const h = await hashFile(file);
      if (o.json) process.stdout.write(JSON.stringify({ file, size: h.size, sha1: h.sha1, sha256: h.sha256, quickxor: h.quickXor }) + '\n');
      else process.stdout.write(`${file}\n  size      ${h.size}\n  sha1      ${h.sha1}\n  sha256    ${h.sha256}\n  quickxor  ${h.quickXor}\n`);
    } catch (err) {
      process.stderr.write(`${file}: ${reason(err)}\n`);
      code = 1;
    }
  }
  return code;
}
