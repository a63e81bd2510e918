// Protocol constants of signing in to the Xiaomi account service by QR code, shared by the
// client (qr-login.ts) and the emulator (emulator-qr.ts): plain names and numbers only, no
// behaviour. Where each comes from is named beside it (../shared/reference/xiaomi-cloud-gallery.md,
// "signing in by QR code").

/**
 * What the account service puts before the JSON of every `_json=true` answer. Every public client
 * strips it: Do1e/mijia-api (`ret.text[11:]`), CikeyQi/mijia-plugin (`msg.data.slice(11)`),
 * PiotrMachowski/Xiaomi-cloud-tokens-extractor (`replace("&&&START&&&", "")`), wangbjun/xiaomi-disk
 * (`strings.TrimLeft`).
 */
export const JSON_PREFIX = '&&&START&&&';

export const QR_PATHS = {
  /** `?sid=…&_json=true` without a passToken answers the signed parameters (Do1e/mijia-api `_get_index`). */
  serviceLogin: '/pass/serviceLogin',
  /** Answers loginUrl, qr, lp, timeout (Do1e/mijia-api `QRlogin`, PiotrMachowski `login_step_1`). */
  loginUrl: '/longPolling/loginUrl',
} as const;

/** `code` of serviceLogin without a passToken: not an error here, it carries _sign, qs, callback (reference notes). */
export const CODE_NEEDS_LOGIN = 70016;

/**
 * Codes some public scripts read from the long poll while no phone has confirmed (reference
 * notes: "700 = waiting, 701 = scanned, 702 = expired"). Clients must not rely on them: every
 * answer without passToken and location means "not yet" (PiotrMachowski treats anything but
 * HTTP 200 as "poll again"; Do1e/mijia-api stops on a non-zero code).
 */
export const LP_WAITING = 700;
export const LP_SCANNED = 701;
export const LP_EXPIRED = 702;

/** Seconds a QR code lives when the answer does not say (the reference notes: `timeout: 300`). */
export const DEFAULT_QR_TIMEOUT_S = 300;
