// Credential files: one per provider account under GALLERY_BRIDGE_HOME, mode 0600, written
// atomically so a crash never leaves half a token file. Their contents are registered as
// secrets so that no log line can echo them.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerSecret } from './redact.ts';

export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.GALLERY_BRIDGE_HOME || path.join(os.homedir(), '.config', 'gallery-bridge');
}

export function credentialPath(home: string, provider: string, account: string, suffix = 'json'): string {
  if (!/^[A-Za-z0-9._-]+$/.test(account)) throw new Error(`account name "${account}" may use only letters, digits, dot, dash and underscore`);
  return path.join(home, 'credentials', provider, `${account}.${suffix}`);
}

/** Writes a file with mode 0600 via temp file + rename; parent folders are 0700. */
export function writePrivateFile(file: string, contents: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, contents);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

function collectSecrets(value: unknown): void {
  if (typeof value === 'string') registerSecret(value);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) collectSecrets(v);
}

export function readCredentials<T>(home: string, provider: string, account: string): T | null {
  const file = credentialPath(home, provider, account);
  if (!fs.existsSync(file)) return null;
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  collectSecrets(data);
  return data;
}

export function writeCredentials(home: string, provider: string, account: string, data: unknown): string {
  const file = credentialPath(home, provider, account);
  collectSecrets(data);
  writePrivateFile(file, JSON.stringify(data, null, 2));
  return file;
}
