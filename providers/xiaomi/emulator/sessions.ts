// serviceTokens and the sign-in chain's one-time tickets. Tokens are kept in the store, so a
// session survives a restart of the emulator as it survives one of the service.

import crypto from 'node:crypto';
import type { EmulatorState } from './store.ts';

export class Sessions {
  private readonly tickets = new Map<string, number>();

  constructor(
    private readonly record: EmulatorState,
    private readonly userId: string,
    private readonly ttlMs: number,
  ) {}

  /** A token valid from now (for one session lifetime; 0: forever). */
  grant(token: string): void {
    this.record.set('tokens', token, this.ttlMs ? Date.now() + this.ttlMs : 0);
  }

  issueToken(): string {
    const t = `emu-st-${crypto.randomBytes(18).toString('base64url')}`;
    this.grant(t);
    // Forget long-expired tokens so the state file stays small.
    const now = Date.now();
    for (const [k, exp] of Object.entries(this.record.state.tokens)) if (exp && exp < now - 3600_000) this.record.remove('tokens', k);
    this.record.save();
    return t;
  }

  sessionOk(cookies: Record<string, string>): boolean {
    if (cookies.userId !== this.userId) return false;
    const t = cookies.serviceToken;
    const tokens = this.record.state.tokens;
    if (!t || !(t in tokens)) return false;
    const exp = tokens[t]!;
    return exp === 0 || exp > Date.now();
  }

  /** A one-time ticket for the STS hop, valid for a minute. */
  issueTicket(): string {
    const ticket = crypto.randomBytes(12).toString('hex');
    this.tickets.set(ticket, Date.now() + 60_000);
    return ticket;
  }

  /** True once per ticket, within its minute. */
  redeemTicket(ticket: string): boolean {
    const exp = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    return !!exp && exp >= Date.now();
  }
}
