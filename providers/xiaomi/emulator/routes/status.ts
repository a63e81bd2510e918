// The account's status endpoints: the keep-alive that renews the session, and the quota.

import { PATHS } from '../../protocol.ts';
import type { EmulatorContext } from '../context.ts';
import type { Exchange } from '../exchange.ts';
import type { Route } from './route.ts';

function keepAlive(ctx: EmulatorContext, x: Exchange): void {
  ctx.count('keepAlive');
  // The session is renewed: a fresh serviceToken comes back in Set-Cookie.
  const token = ctx.sessions.issueToken();
  x.ok({ type: x.query.get('type'), inactiveTime: Number(x.query.get('inactiveTime') ?? 10) }, { 'Set-Cookie': [`serviceToken=${token}; Path=/; HttpOnly`] });
}

function quota(ctx: EmulatorContext, x: Exchange): void {
  // Items in the recycle bin still take space: deletion is soft.
  let used = 0;
  for (const it of ctx.library.byId.values()) used += it.size;
  x.ok({
    totalQuota: 5 * 1024 ** 3,
    used,
    usedDetail: { GalleryImage: { size: used, text: 'Gallery' }, Recorder: { size: 0 }, AppList: { size: 0 } },
    levelInfo: 'normal',
  });
}

export const statusRoutes: Route[] = [
  { method: 'GET', path: PATHS.keepAlive, session: true, handle: keepAlive },
  { method: 'GET', path: PATHS.quota, session: true, handle: quota },
];
