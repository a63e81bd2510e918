// The sign-in chain: /api/user/login names the account service's page, which (with a valid
// passToken and a web deviceId) redirects to the STS hop, which sets a fresh serviceToken.

import { PATHS } from '../../protocol.ts';
import type { EmulatorContext } from '../context.ts';
import type { Exchange } from '../exchange.ts';
import type { Route } from './route.ts';

function loginPage(ctx: EmulatorContext, x: Exchange): void {
  const followUp = x.query.get('followUp') ?? `${ctx.baseUrl}/`;
  x.ok({ loginUrl: `${ctx.loginUrl()}&followup=${encodeURIComponent(followUp)}` });
}

function serviceLogin(ctx: EmulatorContext, x: Exchange): void {
  ctx.count('serviceLogin');
  const { cookies } = x;
  const good = cookies.userId === ctx.userId && cookies.passToken === ctx.passToken && /^wb_[0-9a-f-]{36}$/i.test(cookies.deviceId ?? '');
  if (!good) return x.plain(200, { 'Content-Type': 'text/html' }, '<html><body>Sign in to your Xiaomi account</body></html>');
  const ticket = ctx.sessions.issueTicket();
  const followUp = x.query.get('followup') ?? `${ctx.baseUrl}/`;
  x.plain(302, { Location: `${ctx.baseUrl}/sts?d=${encodeURIComponent(cookies.deviceId!)}&ticket=${ticket}&followup=${encodeURIComponent(followUp)}` });
}

function sts(ctx: EmulatorContext, x: Exchange): void {
  if (!ctx.sessions.redeemTicket(x.query.get('ticket') ?? '')) return x.plain(403, { 'Content-Type': 'text/plain' }, 'invalid ticket');
  ctx.count('renewals');
  const token = ctx.sessions.issueToken();
  x.plain(302, {
    Location: x.query.get('followup') ?? `${ctx.baseUrl}/`,
    'Set-Cookie': [`serviceToken=${token}; Path=/; HttpOnly`, `userId=${ctx.userId}; Path=/`],
  });
}

export const loginRoutes: Route[] = [
  { method: 'GET', path: PATHS.login, handle: loginPage },
  { method: 'GET', path: '/pass/serviceLogin', handle: serviceLogin },
  { method: 'GET', path: '/sts', handle: sts },
];
