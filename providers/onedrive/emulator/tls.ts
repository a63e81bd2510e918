// A test certificate authority and a server certificate for the emulator's two host names
// (localhost for the API and sign-in, 127.0.0.1 for upload URLs). Node trusts the CA through
// NODE_EXTRA_CA_CERTS, which it reads only when a process starts.

import fs from 'node:fs';
import path from 'node:path';
import selfsigned from 'selfsigned';

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** Writes ca.pem, cert.pem and key.pem into dir (reusing them when all three exist). */
export async function ensureTlsFiles(dir: string): Promise<TlsFiles> {
  const files: TlsFiles = { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
  if (fs.existsSync(files.ca) && fs.existsSync(files.cert) && fs.existsSync(files.key)) return files;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const notBeforeDate = new Date(Date.now() - 86_400_000);
  const notAfterDate = new Date(Date.now() + 5 * 365 * 86_400_000);
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'gallery-bridge test CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  fs.writeFileSync(files.ca, ca.cert);
  fs.writeFileSync(files.cert, leaf.cert);
  fs.writeFileSync(files.key, leaf.private, { mode: 0o600 });
  return files;
}
