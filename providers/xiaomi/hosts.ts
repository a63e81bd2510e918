// Where cookies may go. The sign-in chain hands back URLs (the account service's login page,
// the STS hop); they are followed with cookies only when their host is one Xiaomi serves from.
// Anything else is refused before a byte is sent. The download hops carry no cookie at all
// (client.ts), so they need no allow-list.

/** Host suffixes Xiaomi's gallery, account and download services live under. */
export const DEFAULT_XIAOMI_HOSTS = ['mi.com', 'xiaomi.com', 'xiaomi.net', 'mi-img.com'];

export class HostPolicy {
  private readonly suffixes: string[];
  private readonly exact: Set<string>;

  /**
   * @param baseUrl the API base (XIAOMI_BASE_URL): its host (with port) is always allowed
   * @param extra entries from XIAOMI_DOWNLOAD_HOSTS / --xiaomi-download-hosts (named when downloads
   *   carried cookies; now they widen the sign-in chain's list): "host", "host:port" or ".suffix"
   */
  constructor(
    readonly baseUrl: URL,
    extra: string[] = [],
  ) {
    this.suffixes = [...DEFAULT_XIAOMI_HOSTS];
    this.exact = new Set([baseUrl.host.toLowerCase()]);
    for (const raw of extra) {
      const e = raw.trim().toLowerCase();
      if (!e) continue;
      if (e.startsWith('*.') || e.startsWith('.')) this.suffixes.push(e.replace(/^\*?\./, ''));
      else this.exact.add(e);
    }
  }

  /** Null when cookies may be sent to this URL, else a one-line reason. */
  refusal(url: URL): string | null {
    const host = url.host.toLowerCase();
    const hostname = url.hostname.toLowerCase();
    const exact = this.exact.has(host) || this.exact.has(hostname);
    if (exact) {
      // An explicitly allowed host may be plain http only when it is the API base itself (the emulator).
      if (url.protocol === 'https:' || (url.protocol === 'http:' && host === this.baseUrl.host.toLowerCase() && this.baseUrl.protocol === 'http:')) return null;
      return `refusing to send Xiaomi cookies to ${url.protocol}//${host}: not https`;
    }
    const suffix = this.suffixes.some((s) => hostname === s || hostname.endsWith(`.${s}`));
    if (suffix && url.protocol === 'https:') return null;
    if (suffix) return `refusing to send Xiaomi cookies to ${url.protocol}//${host}: not https`;
    return `refusing to send Xiaomi cookies to ${host}: not a Xiaomi host on the allow-list (add it with XIAOMI_DOWNLOAD_HOSTS if it really is Xiaomi's)`;
  }
}

export function parseHostList(value: string | undefined | null): string[] {
  return (value ?? '').split(/[\s,]+/).filter(Boolean);
}
