// Credential files: one per provider account under GALLERY_BRIDGE_HOME, mode 0600, written
// atomically so a crash never leaves half a token file. Their contents are registered as
// secrets so that no log line can echo them.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerSecret } from './redact.ts';
import { StopRunError } from '../../providers/types.ts';

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

/**
 * Refuses a credential file that others can read (or write): whoever can read it holds the
 * account. Says how to fix it; the run does not start (exit 2).
 */
export function assertPrivateFile(file: string): void {
  if (process.platform === 'win32') return;
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
    throw new StopRunError('config', `credential file ${file} is readable by others (mode ${mode}): run \`chmod 600 ${file}\` and start again`);
  }
}

/** Reads a credential file, refusing it when others can read it. */
export function readPrivateFile(file: string): string {
  assertPrivateFile(file);
  return fs.readFileSync(file, 'utf8');
}

export function readCredentials<T>(home: string, provider: string, account: string): T | null {
  const file = credentialPath(home, provider, account);
  if (!fs.existsSync(file)) return null;
  let data: T;
  try {
    data = JSON.parse(readPrivateFile(file)) as T;
  } catch (err) {
    if (err instanceof StopRunError) throw err;
    throw new StopRunError(
      'credentials',
      `credential file ${file} is not readable JSON (${(err as Error).name}); sign in again with \`gallery-bridge auth ${provider}\``,
    );
  }
  collectSecrets(data);
  return data;
}

export function writeCredentials(home: string, provider: string, account: string, data: unknown): string {
  const file = credentialPath(home, provider, account);
  collectSecrets(data);
  writePrivateFile(file, JSON.stringify(data, null, 2));
  return file;
}
