// Secrets must never reach a log line, a report, the state database or an error message.
// Every message that leaves the tool passes through redact(): it masks bearer tokens, cookie
// values, token-like query parameters and whole pre-authenticated URLs.

import { accountLocal, forgetAfterAccount } from './account-scope.ts';

const PATTERNS: Array<[RegExp, string]> = [
  [/(authorization\s*[:=]\s*)(bearer\s+)?[^\s,;"']+/gi, '$1$2[redacted]'],
  [/\bbearer\s+[A-Za-z0-9._~+/=-]+/gi, 'Bearer [redacted]'],
  [
    /\b(serviceToken|passToken|userId|cUserId|access_token|refresh_token|id_token|client_secret|code|tempauth|token|sig|signature|upload_id|meta|X-Goog-Upload-URL)=([^&\s;"']+)/gi,
    '$1=[redacted]',
  ],
  [
    /("(?:access_token|refresh_token|id_token|client_secret|serviceToken|passToken|uploadUrl|upload_url|sessionUrl|cookie)"\s*:\s*")([^"]*)(")/gi,
    '$1[redacted]$3',
  ],
];

const PATTERN_NEEDS = /[:=]/;

/**
 * Registered literal secrets (tokens read from files or the environment) are masked wherever they
 * appear. Held per account: a warm worker running several accounts masks every running account's,
 * and drops an account's when it ends.
 */
const literals = accountLocal(() => new Set<string>());

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 6) literals.get().add(value);
}

/** Secrets that live as long as one request (a download's signed meta), counted by holder. */
const passing = new Map<string, number>();

// A warm batch worker's next account must not carry this one's cookies and tokens in memory.
forgetAfterAccount(() => {
  literals.forgetProcess();
  passing.clear();
});

/**
 * Masks `value` until the returned function is called. For a secret made per item: kept for
 * good, each would make the list (and every redact() call) grow with the library.
 */
export function registerPassingSecret(value: string): () => void {
  if (value.length < 6) return () => undefined;
  passing.set(value, (passing.get(value) ?? 0) + 1);
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    const n = (passing.get(value) ?? 1) - 1;
    if (n > 0) passing.set(value, n);
    else passing.delete(value);
  };
}

export function redact(text: string): string {
  let out = text;
  for (const set of literals.all()) for (const s of set) if (out.includes(s)) out = out.split(s).join('[redacted]');
  for (const s of passing.keys()) if (out.includes(s)) out = out.split(s).join('[redacted]');
  // Every pattern below needs a ':' or '=' (a header, a parameter, a JSON field, a URL) or the
  // word bearer: a line with none of them (a run's progress lines) skips the five scans.
  if (!PATTERN_NEEDS.test(out) && !/bearer/i.test(out)) return out;
  for (const [re, rep] of PATTERNS) out = out.replace(re, rep);
  // Upload URLs carry temporary credentials in their path or query: show only scheme and host.
  out = out.replace(/\bhttps?:\/\/[^\s"'<>]*(?:upload|tempauth|session)[^\s"'<>]*/gi, (url) => {
    try {
      const u = new URL(url);
      return `${u.protocol}//${u.host}/[upload-url redacted]`;
    } catch {
      return '[url redacted]';
    }
  });
  return out;
}

/** One line, no secrets: what goes into status, reports and the state database as an error reason. */
export function reason(err: unknown): string {
  const msg = err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err);
  return redact(String(msg ?? 'unknown error'))
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 500);
}
