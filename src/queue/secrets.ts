// Credentials in the queue database: every worker can use every account's sign-in, and no
// table holds one in plain text. Each credential file is sealed with AES-256-GCM under a key the
// workers are given (GALLERY_BRIDGE_QUEUE_KEY, or GALLERY_BRIDGE_QUEUE_KEY_FILE with mode 0600);
// the provider and file name are the authenticated data, so a sealed row moved to another name
// does not open. A check value in meta lets a worker with the wrong key stop at once.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readPrivateFile, writePrivateFile } from '../lib/credentials.ts';
import { registerSecret } from '../lib/redact.ts';
import type { Queue } from './db.ts';
import { QueueError, getMeta, setMeta } from './db.ts';
import type { Lease } from './lease.ts';
import { underLease } from './lease.ts';
import { SCHEMA } from './schema.ts';

const CHECK = 'gallery-bridge queue key check';

/** The workers' key from the environment, or null when none is given. */
export function queueKey(env: NodeJS.ProcessEnv = process.env): Buffer | null {
  let material = env.GALLERY_BRIDGE_QUEUE_KEY;
  if (!material && env.GALLERY_BRIDGE_QUEUE_KEY_FILE) material = readPrivateFile(env.GALLERY_BRIDGE_QUEUE_KEY_FILE).trim();
  if (!material) return null;
  if (material.length < 16)
    throw new QueueError('GALLERY_BRIDGE_QUEUE_KEY is too short: give at least 16 characters (openssl rand -base64 32 makes a good one)');
  registerSecret(material);
  // A passphrase of any length becomes 32 bytes; scrypt makes guessing it from a stolen row slow.
  return crypto.scryptSync(material, 'gallery-bridge queue credentials', 32);
}

export function seal(key: Buffer, aad: string, plain: Buffer): Buffer {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

export function unseal(key: Buffer, aad: string, sealed: Buffer): Buffer {
  const d = crypto.createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([d.update(sealed.subarray(28)), d.final()]);
}

/** Records the key's check value on first use; refuses a key other than the one the batch was loaded with. */
export async function checkKey(q: Queue, key: Buffer): Promise<void> {
  const stored = await getMeta(q, 'key_check');
  if (stored === null) {
    await setMeta(q, 'key_check', seal(key, 'key-check', Buffer.from(CHECK)).toString('base64'));
    return;
  }
  try {
    unseal(key, 'key-check', Buffer.from(stored, 'base64'));
  } catch {
    throw new QueueError('GALLERY_BRIDGE_QUEUE_KEY is not the key this batch was loaded with: give every worker the same key');
  }
}

/** The credential files (relative to HOME/credentials) that belong to provider accounts. */
export function credentialFiles(home: string, pairs: Array<{ provider: string; account: string }>): Array<{ provider: string; file: string }> {
  const out: Array<{ provider: string; file: string }> = [];
  const seen = new Set<string>();
  for (const { provider, account } of pairs) {
    const dir = path.join(home, 'credentials', provider);
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith(`${account}.`) || f.includes('.tmp') || seen.has(`${provider}/${f}`)) continue;
      seen.add(`${provider}/${f}`);
      out.push({ provider, file: f });
    }
  }
  return out;
}

/** Seals and stores the given credential files; returns how many. */
export async function uploadCredentials(
  q: Queue | { query: Queue['query'] },
  key: Buffer,
  home: string,
  files: Array<{ provider: string; file: string }>,
): Promise<number> {
  for (const { provider, file } of files) {
    const plain = Buffer.from(readPrivateFile(path.join(home, 'credentials', provider, file)));
    await q.query(
      `INSERT INTO ${SCHEMA}.credentials (provider, file, sealed, updated_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (provider, file) DO UPDATE SET sealed = excluded.sealed, updated_at = now()`,
      [provider, file, seal(key, `${provider}/${file}`, plain)],
    );
  }
  return files.length;
}

/**
 * Writes the sealed credentials of the given provider accounts into HOME/credentials (0600),
 * for an account's migrate to read; returns a fingerprint per file to notice a refresh later.
 */
export async function materializeCredentials(
  q: Queue,
  key: Buffer | null,
  home: string,
  pairs: Array<{ provider: string; account: string }>,
): Promise<Map<string, string>> {
  const prints = new Map<string, string>();
  for (const { provider, account } of pairs) {
    const r = await q.query(`SELECT file, sealed FROM ${SCHEMA}.credentials WHERE provider = $1 AND starts_with(file, $2)`, [provider, `${account}.`]);
    for (const row of r.rows as Array<{ file: string; sealed: Buffer }>) {
      if (!key)
        throw new QueueError('this batch holds sealed credentials: give the worker the key (GALLERY_BRIDGE_QUEUE_KEY or GALLERY_BRIDGE_QUEUE_KEY_FILE)');
      let plain: Buffer;
      try {
        plain = unseal(key, `${provider}/${row.file}`, row.sealed);
      } catch {
        throw new QueueError(`the sealed credential ${provider}/${row.file} does not open with this key: give every worker the key the batch was loaded with`);
      }
      writePrivateFile(path.join(home, 'credentials', provider, row.file), plain.toString('utf8'));
      prints.set(`${provider}/${row.file}`, fingerprint(plain));
    }
  }
  return prints;
}

const fingerprint = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/**
 * Stores back the credential files an account's run changed (a refreshed token, a new session
 * cookie), under the lease, so the next worker starts from the newest sign-in.
 */
export async function saveRefreshedCredentials(
  q: Queue,
  key: Buffer | null,
  l: Lease,
  home: string,
  prints: Map<string, string>,
  pairs: Array<{ provider: string; account: string }>,
): Promise<void> {
  if (!key) return;
  const changed = credentialFiles(home, pairs).filter(({ provider, file }) => {
    const now = fingerprint(fs.readFileSync(path.join(home, 'credentials', provider, file)));
    if (prints.get(`${provider}/${file}`) === now) return false;
    prints.set(`${provider}/${file}`, now);
    return true;
  });
  if (!changed.length) return;
  await underLease(q, l, async (c) => {
    await uploadCredentials(c, key, home, changed);
  });
}
