import crypto from 'node:crypto';

export const nowIso = (t = Date.now()) => new Date(t).toISOString();
export const rid = (bytes = 12) => crypto.randomBytes(bytes).toString('hex');
export const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
