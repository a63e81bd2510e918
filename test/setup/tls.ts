// vitest globalSetup: one test CA and server certificate for every emulator that speaks HTTPS.
// Node reads NODE_EXTRA_CA_CERTS only when a process starts, so it is set here, before the
// test workers (and the CLI children they spawn) are forked; they inherit it.
// GALLERY_BRIDGE_TEST_TLS names the files as JSON {ca, cert, key} for emulators' --tls-* flags.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureTlsFiles } from '../../providers/onedrive/emulator/tls.ts';

export default async function setup(): Promise<() => void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-tls-'));
  const files = await ensureTlsFiles(dir);
  process.env.NODE_EXTRA_CA_CERTS = files.ca;
  process.env.GALLERY_BRIDGE_TEST_TLS = JSON.stringify(files);
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
