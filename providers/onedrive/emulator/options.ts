// What the OneDrive emulator can be started with (args.ts parses the flags), and the protocol
// limits it enforces, from the Graph documentation.

import type { CommonFlags } from '../../../src/emulator/kit.ts';

// ---- Protocol constants (from the Graph documentation) ----
export const FRAGMENT_MULTIPLE = 327_680; // 320 KiB
export const FRAGMENT_MAX = 60 * 1024 * 1024; // fragments must be under 60 MiB
export const SIMPLE_PUT_MAX = 250 * 1024 * 1024;
export const MAX_PATH = 400;
export const DEFAULT_SESSION_TTL_S = 15 * 60; // Business: about 15 minutes of inactivity
export const TEMPAUTH_LIFETIME_S = 24 * 3600;
export const RESERVED_CHARS = /[/\\*<>?:|"\x00-\x1f]/;
export const RESERVED_NAMES = /^(con|prn|aux|nul|com[0-9]|lpt[0-9]|\.lock|desktop\.ini)(\..*)?$/i;

export type Flavor = 'personal' | 'business';

export interface OneDriveEmulatorOptions {
  common: CommonFlags;
  /**
   * personal: OneDrive for home (onedrive.live.com). business: OneDrive for work or school, a
   * SharePoint personal site behind Graph. They differ where the docs and issue threads say so:
   * - fail at session creation: Business answers 409 nameAlreadyExists when the session is
   *   created (microsoft-graph-docs#19010); Personal only at the last fragment (onedrive-api-docs#55).
   * - a second session for a path with one still open: Business answers 409 nameAlreadyExists
   *   "A file with the same name is currently being uploaded" whatever the conflict behaviour
   *   (onedrive-api-docs#747, microsoft-graph-docs-contrib#412); Personal hands out a new URL.
   * - the 400-character limit: Business counts the whole decoded path, the site and library
   *   included (personal/<upn>/Documents/...); Personal counts the path in the drive.
   * - driveType, webUrl, and item.fileSize/description (Personal only, per the reference).
   * Names are case-insensitive in both.
   */
  flavor: Flavor;
  /** Business: the signed-in user's UPN, which names the personal site (personal/<upn with _>/Documents). */
  upn: string;
  /** Personal: hashes besides quickXorHash the driveItem reports (sha1Hash, sha256Hash). */
  extraHashes: Array<'sha1' | 'sha256'>;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  acceptTokens: string[];
  /** Total bytes per drive; 0 = 1 TiB. Uploads beyond it answer 507. */
  quotaBytes: number;
  retryAfterS: number;
  /** The driveItem carries no hashes until this long after the file is created. */
  hashDelayMs: number;
  /** Lifetime of the tempauth credential in upload URLs (24 h at Microsoft). */
  tempauthTtlS: number;
  /** Lifetime of issued access tokens. */
  tokenTtlS: number;
  /** Device-code sign-ins approve themselves this long after the code was issued. */
  deviceApproveMs: number;
  /** When set, the client-credentials flow requires this secret. */
  clientSecret?: string;
  /** Write a JSON line per request to DATA/.emulator/requests.log. */
  requestLog: boolean;
}
