import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Spill {
  file: string;
  fd: number;
  dispose(): void;
}

/** A private temporary file (0600) that disappears when disposed. */
export function spillFile(): Spill {
  const file = path.join(os.tmpdir(), `gallery-bridge-gp-${process.pid}-${crypto.randomBytes(8).toString('hex')}`);
  const spill: Spill = {
    file,
    fd: fs.openSync(file, 'wx', 0o600),
    dispose() {
      if (spill.fd >= 0) fs.closeSync(spill.fd);
      spill.fd = -1;
      fs.rmSync(file, { force: true });
    },
  };
  return spill;
}
