// `gallery-bridge emulator onedrive ...`: the OneDrive emulator's own flags (the common ones are
// parsed by src/emulator/kit.ts).

import { parseEmulatorArgs } from '../../../src/emulator/kit.ts';
import { TEMPAUTH_LIFETIME_S, type OneDriveEmulatorOptions } from './options.ts';

export function parseOneDriveEmulatorArgs(args: string[]): OneDriveEmulatorOptions {
  const { common, extra } = parseEmulatorArgs(args, {
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-ca': { type: 'string' },
    'accept-token': { type: 'string', multiple: true },
    'quota-bytes': { type: 'string', default: '0' },
    'retry-after': { type: 'string', default: '1' },
    'hash-delay-ms': { type: 'string', default: '0' },
    'tempauth-ttl': { type: 'string', default: String(TEMPAUTH_LIFETIME_S) },
    'token-ttl': { type: 'string', default: '0' },
    'device-approve-ms': { type: 'string', default: '0' },
    'client-secret': { type: 'string' },
    'request-log': { type: 'boolean', default: false },
    flavor: { type: 'string', default: 'personal' },
    upn: { type: 'string', default: 'emulated.user@contoso.onmicrosoft.com' },
    hashes: { type: 'string', default: '' },
  });
  const flavor = extra.flavor;
  if (flavor !== 'personal' && flavor !== 'business') throw new Error('--flavor must be personal or business');
  const extraHashes = String(extra.hashes ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (const h of extraHashes) if (h !== 'sha1' && h !== 'sha256') throw new Error('--hashes takes sha1 and/or sha256');
  const num = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  return {
    common,
    tlsCert: extra['tls-cert'],
    tlsKey: extra['tls-key'],
    tlsCa: extra['tls-ca'],
    acceptTokens: (extra['accept-token'] as string[] | undefined) ?? [],
    quotaBytes: num('quota-bytes', extra['quota-bytes']),
    retryAfterS: num('retry-after', extra['retry-after']),
    hashDelayMs: num('hash-delay-ms', extra['hash-delay-ms']),
    tempauthTtlS: num('tempauth-ttl', extra['tempauth-ttl']),
    tokenTtlS: num('token-ttl', extra['token-ttl']),
    deviceApproveMs: num('device-approve-ms', extra['device-approve-ms']),
    clientSecret: extra['client-secret'],
    requestLog: Boolean(extra['request-log']),
    flavor,
    upn: String(extra.upn),
    extraHashes: extraHashes as Array<'sha1' | 'sha256'>,
  };
}

export const ONEDRIVE_EMULATOR_HELP = `OneDrive emulator flags (besides the common ones):
  --tls-cert FILE --tls-key FILE [--tls-ca FILE]  serve this certificate (else one is generated under DATA/.emulator/tls)
  --accept-token TOKEN   accept this bearer token as a signed-in user (repeatable)
  --quota-bytes N        drive size; uploads beyond it answer 507
  --retry-after SEC      Retry-After on 429/503 (default 1)
  --hash-delay-ms N      driveItems show no quickXorHash until N ms after creation
  --tempauth-ttl SEC     lifetime of the credential in upload URLs (default 86400)
  --token-ttl SEC        lifetime of issued access tokens (default --session-ttl or 3600)
  --device-approve-ms N  device-code sign-ins approve themselves after N ms (default 0)
  --client-secret S      require this secret for the client-credentials flow
  --request-log          write DATA/.emulator/requests.log (one JSON line per request)
  --flavor personal|business  which OneDrive to behave as (default personal); see the provider README
  --upn NAME             business: the signed-in user's UPN, naming the site personal/<upn>/Documents
  --hashes sha1,sha256   personal: report sha1Hash and/or sha256Hash besides quickXorHash`;
