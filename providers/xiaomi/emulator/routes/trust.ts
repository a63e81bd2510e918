// The gallery's second check: before a new sign-in may read the gallery, Xiaomi asks once for a
// confirmation on a trusted device ("trust this device"); accounts with Advanced Data Protection
// get no such option and never pass. With --gallery-needs-trust the emulator plays an account
// whose sign-in has not been confirmed yet.
//
// KNOWN (public sources):
// - The check exists and is passed by opening the gallery in a browser and ticking "trust this
//   device": Coooolfan/XiaomiAlbumSyncer issue #27 ("相册服务二次验证是什么") and #38 (the
//   option appears only with Advanced Data Protection off; with it on, the code goes straight to
//   the phone and there is no option to trust).
// - What the gallery answers: in #38 the tool's log shows the sign-in chain succeeding just
//   before ("serviceToken 获取成功") and the very next /gallery/user/album/list failing with
//   HTTP 401 (XiaoMiApi.fetchAllAlbums -> throwIfNotSuccess). XiaomiAlbumSyncer's web UI then
//   says "make sure passToken and UserId are valid and the gallery's second check is done"
//   (web/src/components/AlbumPanel.vue); with Advanced Data Protection on it keeps reporting
//   "enter a correct userId and passToken" (#62): a refusal it cannot tell from bad credentials.
// - The account side works meanwhile: the sign-in chain hands out the serviceToken (#38).
// INFERRED (nothing public shows it):
// - The body of that 401. The public log keeps only the status, so the emulator gives exactly the
//   answer it gives an expired session (reference notes: HTTP 401 `{"R":401,...}`), no new format.
// - That every gallery path (listings, storage, delete, recycle bin) refuses alike, while the
//   status routes (quota, keep-alive) answer as usual.
// - The granularity: here the whole account is untrusted until the check is passed once.
//
// NOT PART OF THE REAL SERVICE: POST /_emulator/gallery/trust stands in for the person who opens
// the gallery in a browser and ticks "trust this device". The tool never calls it.

import type { EmulatorContext } from '../context.ts';
import type { Exchange } from '../exchange.ts';
import type { Route } from './route.ts';

/** True when a gallery route may answer this account's sessions. */
export function galleryTrusted(ctx: EmulatorContext): boolean {
  // The confirmation is kept with the counters in DATA, so it survives a restart as the real one does.
  return !ctx.opts.galleryNeedsTrust || (ctx.state.counters.deviceTrusted ?? 0) > 0;
}

/** The gallery's answer to a session whose sign-in has not passed the second check: the expired-session answer. */
export function untrusted(ctx: EmulatorContext, x: Exchange): void {
  ctx.count('untrustedRefused');
  ctx.unauthorized(x);
}

function trustDevice(ctx: EmulatorContext, x: Exchange): void {
  ctx.count('deviceTrusted');
  x.json(200, { ok: true, trusted: true });
}

export const trustRoutes: Route[] = [{ method: 'POST', path: '/_emulator/gallery/trust', handle: trustDevice }];

export const TRUST_FLAGS = { 'gallery-needs-trust': { type: 'boolean', default: false } } as const;

export const TRUST_FLAG_HELP = `  --gallery-needs-trust      the gallery refuses every session (HTTP 401, as for an expired one) until
                             the sign-in passed the second check; quota and sign-in work meanwhile
  (emulator only: POST /_emulator/gallery/trust stands in for ticking "trust this device")`;
