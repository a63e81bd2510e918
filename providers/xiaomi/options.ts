// Xiaomi's command-line options, read typed through readOption().

import { option } from '../options.ts';

const text = (t: string): string => t;

export const XIAOMI_OPTIONS = {
  includePrivate: option<boolean>({
    flags: '--include-private',
    description: 'xiaomi: also move the private album (albumId 1000), skipped by default',
    defaultValue: false,
  }),
  cookie: option<boolean>({
    flags: '--cookie',
    description: 'xiaomi (auth): sign in with cookies (userId and passToken, asked for, input hidden) instead of by QR code',
    defaultValue: false,
  }),
  cookieFile: option({
    flags: '--cookie-file <file>',
    description: 'xiaomi: read the cookie string (or userId=/passToken= lines) from this file',
    env: 'XIAOMI_COOKIE_FILE',
    parse: text,
  }),
  // Added to XIAOMI_DOWNLOAD_HOSTS, not instead of it: no `env` here.
  downloadHosts: option({
    flags: '--xiaomi-download-hosts <hosts>',
    description: 'xiaomi: extra hosts (comma-separated, ".suffix" allowed) that may receive cookies in the sign-in chain; downloads carry no cookie',
    parse: text,
  }),
};
