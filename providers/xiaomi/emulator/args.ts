// `gallery-bridge emulator xiaomi ...`: the Xiaomi emulator's own flags (the common ones are
// parsed by src/emulator/kit.ts).

import fs from 'node:fs';
import { COMMON_FLAG_HELP, parseEmulatorArgs } from '../../../src/emulator/kit.ts';
import { EMULATOR_DEFAULTS, type XiaomiEmulatorOptions } from './options.ts';
import { QR_FLAG_HELP, QR_FLAGS, qrOptionsFromFlags } from './routes/qr.ts';
import { TRUST_FLAG_HELP, TRUST_FLAGS } from './routes/trust.ts';
import { startXiaomiEmulator, type XiaomiEmulator } from './server.ts';

export const EMULATOR_HELP = `gallery-bridge emulator xiaomi --seed DIR --data DIR [flags]

  --seed DIR                 folder to serve (read only): sub-folders are albums; Camera = 1,
                             Screenshots = 2, Private = 1000, files at the top go to Camera
  --synthetic N              add N generated items (album "Synthetic"), no files needed
  --user-id ID               the account's userId (default ${EMULATOR_DEFAULTS.userId})
  --pass-token T             the account's passToken (default ${EMULATOR_DEFAULTS.passToken})
  --service-token T          a serviceToken valid from start (default ${EMULATOR_DEFAULTS.serviceToken})
  --fault-wrong-sha1 RATE    share of items whose listing reports a wrong sha1 (stable per item)
  --fault-expired-link RATE  share of download-link requests answered as expired (403)
  --fault-delete RATE        share of delete requests answered 503 before anything is deleted
  --link-ttl SEC             lifetime of download links (default ${EMULATOR_DEFAULTS.linkTtlSeconds})
  --download-host HOST       host name put in download links (default 127.0.0.1)
  --file-host HOST           host name of the final POST url only (default: --download-host)
  --session-ttl SEC          lifetime of serviceTokens (0: never expire)
${QR_FLAG_HELP}
${TRUST_FLAG_HELP}

${COMMON_FLAG_HELP}`;

/** The emulator's options from its command-line flags; a bad flag throws one line. */
export function parseXiaomiEmulatorArgs(args: string[]): XiaomiEmulatorOptions {
  const { common, extra } = parseEmulatorArgs(args, {
    seed: { type: 'string' },
    synthetic: { type: 'string', default: '0' },
    'user-id': { type: 'string', default: EMULATOR_DEFAULTS.userId },
    'pass-token': { type: 'string', default: EMULATOR_DEFAULTS.passToken },
    'service-token': { type: 'string', default: EMULATOR_DEFAULTS.serviceToken },
    'fault-wrong-sha1': { type: 'string', default: '0' },
    'fault-expired-link': { type: 'string', default: '0' },
    'fault-delete': { type: 'string', default: '0' },
    'link-ttl': { type: 'string', default: String(EMULATOR_DEFAULTS.linkTtlSeconds) },
    'download-host': { type: 'string' },
    'file-host': { type: 'string' },
    ...QR_FLAGS,
    ...TRUST_FLAGS,
  });
  const rate = (name: string, v: string | undefined): number => {
    const n = Number(v ?? 0);
    if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`--${name} must be a number from 0 to 1, got ${String(v)}`);
    return n;
  };
  const synthetic = Number(extra.synthetic ?? 0);
  if (!Number.isInteger(synthetic) || synthetic < 0) throw new Error(`--synthetic must be a whole number, got ${String(extra.synthetic)}`);
  if (!extra.seed && synthetic === 0) throw new Error('--seed DIR (or --synthetic N) is required');
  if (extra.seed && !fs.statSync(extra.seed, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--seed ${extra.seed} is not a folder`);
  const linkTtl = Number(extra['link-ttl']);
  if (!Number.isFinite(linkTtl) || linkTtl <= 0) throw new Error('--link-ttl must be a positive number of seconds');
  const host = (name: string, v: string | undefined): string | undefined => {
    if (v !== undefined && !/^[A-Za-z0-9.-]+$/.test(v)) throw new Error(`--${name} must be a host name`);
    return v;
  };
  if (!/^\d{1,20}$/.test(String(extra['user-id']))) throw new Error('--user-id must be digits');
  return {
    common,
    seed: extra.seed,
    synthetic,
    userId: String(extra['user-id']),
    passToken: String(extra['pass-token']),
    serviceToken: String(extra['service-token']),
    faultWrongSha1: rate('fault-wrong-sha1', extra['fault-wrong-sha1']),
    faultExpiredLink: rate('fault-expired-link', extra['fault-expired-link']),
    faultDelete: rate('fault-delete', extra['fault-delete']),
    linkTtlSeconds: linkTtl,
    downloadHost: host('download-host', extra['download-host']),
    fileHost: host('file-host', extra['file-host']),
    qr: qrOptionsFromFlags(extra),
    galleryNeedsTrust: extra['gallery-needs-trust'] === true,
  };
}

/** `gallery-bridge emulator xiaomi ...`: parses the flags and starts the emulator. */
export async function runXiaomiEmulator(args: string[]): Promise<XiaomiEmulator> {
  return startXiaomiEmulator(parseXiaomiEmulatorArgs(args));
}
