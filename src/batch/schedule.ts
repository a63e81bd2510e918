// Who runs when. Accounts are ordered so that the most of them finish (higher priority first,
// then shortest remaining work first: finishing accounts beats starting all of them), the plan
// simulates that order against the slots, the per-provider limits and Google's daily request
// budget to say which accounts finish by the deadline, and the shared Google budget is split
// into shares: fair (max-min) without a deadline, in schedule order with one.

export interface Job {
  slug: string;
  account: string;
  priority: number;
  line: number;
  /** Providers the account uses (source kind and destination kind): each has its own limit. */
  providers: string[];
  /** null while the source has never been listed and no check counted it. */
  remainingItems: number | null;
  remainingBytes: number | null;
  /** Bytes per second expected for this account. */
  rate: number;
  /** True when the destination is Google Photos (it draws on the shared daily budget). */
  google: boolean;
}

/** Library API requests per item: one upload, plus its share of the 50-item create and verify batches. */
export const GOOGLE_REQUESTS_PER_ITEM = 1.1;
/** Time every account costs whatever its size: a process, a sign-in, a listing. */
export const ACCOUNT_OVERHEAD_S = 5;

export const kindOf = (spec: string): string => (spec.includes(':') ? spec.slice(0, spec.indexOf(':')) : spec);

export function secondsOf(j: Job): number {
  return ACCOUNT_OVERHEAD_S + (j.remainingBytes ?? 0) / Math.max(1, j.rate);
}

export function googleNeed(j: Job): number {
  return j.google ? Math.ceil((j.remainingItems ?? 0) * GOOGLE_REQUESTS_PER_ITEM) : 0;
}

/** Priority first; with a deadline, shortest first (unknown sizes last); otherwise manifest order. */
export function orderJobs(jobs: Job[], deadline: Date | null): Job[] {
  return [...jobs].sort((a, b) => {
    if (a.priority !== b.priority) return b.priority - a.priority;
    if (deadline) {
      const ua = a.remainingBytes === null ? 1 : 0;
      const ub = b.remainingBytes === null ? 1 : 0;
      if (ua !== ub) return ua - ub;
      const d = secondsOf(a) + googleNeed(a) - (secondsOf(b) + googleNeed(b));
      if (d !== 0) return d;
    }
    return a.line - b.line;
  });
}

export interface Limits {
  accountsAtOnce: number;
  perProvider: Record<string, number>;
}

export interface GoogleBudget {
  perDay: number;
  remainingToday: number;
  /** When the next day's budget becomes available (midnight Pacific). */
  nextReset: Date;
}

export interface PlannedJob {
  slug: string;
  start: Date;
  finish: Date | null;
  makesDeadline: boolean | null;
  /** Days of Google budget the account waits for beyond today. */
  waitsForBudgetDays: number;
}

/** Simulates the order on the slots and limits; Google's budget is spent in order, day by day. */
export function planSchedule(ordered: Job[], limits: Limits, google: GoogleBudget | null, now: Date, deadline: Date | null): PlannedJob[] {
  const slots: number[] = Array.from({ length: Math.max(1, limits.accountsAtOnce) }, () => now.getTime());
  const providerFree = new Map<string, number[]>();
  for (const [p, n] of Object.entries(limits.perProvider))
    providerFree.set(
      p,
      Array.from({ length: Math.max(1, n) }, () => now.getTime()),
    );
  let budgetUsed = 0;
  const out: PlannedJob[] = [];
  for (const j of ordered) {
    if (j.remainingBytes === null) {
      out.push({ slug: j.slug, start: now, finish: null, makesDeadline: null, waitsForBudgetDays: 0 });
      continue;
    }
    // The earliest time a global slot and a slot of each of its providers are free.
    slots.sort((a, b) => a - b);
    let start = slots[0]!;
    for (const p of j.providers) {
      const f = providerFree.get(p);
      if (f) {
        f.sort((a, b) => a - b);
        start = Math.max(start, f[0]!);
      }
    }
    let finish = start + secondsOf(j) * 1000;
    let waits = 0;
    if (google && j.google) {
      budgetUsed += googleNeed(j);
      if (budgetUsed > google.remainingToday) {
        waits = Math.ceil((budgetUsed - google.remainingToday) / Math.max(1, google.perDay));
        finish = Math.max(finish, google.nextReset.getTime() + (waits - 1) * 86_400_000 + 60_000);
      }
    }
    slots[0] = finish;
    for (const p of j.providers) {
      const f = providerFree.get(p);
      if (f) f[0] = finish;
    }
    out.push({
      slug: j.slug,
      start: new Date(start),
      finish: new Date(finish),
      makesDeadline: deadline ? finish <= deadline.getTime() : null,
      waitsForBudgetDays: waits,
    });
  }
  return out;
}

/**
 * Splits what is left of today's Google budget among the accounts that still need it.
 * Fair: max-min (no account gets more than it needs; what one leaves goes to the others).
 * In order (with a deadline): each account in schedule order takes what it needs, so the
 * accounts that can finish today do.
 */
export function googleShares(needs: Array<{ slug: string; need: number }>, budget: number, mode: 'fair' | 'in-order'): Map<string, number> {
  const out = new Map<string, number>();
  let left = Math.max(0, Math.floor(budget));
  if (mode === 'in-order') {
    for (const n of needs) {
      const s = Math.min(n.need, left);
      out.set(n.slug, s);
      left -= s;
    }
    return out;
  }
  let open = [...needs].sort((a, b) => a.need - b.need);
  while (open.length) {
    const fair = Math.floor(left / open.length);
    const small = open.filter((n) => n.need <= fair);
    if (!small.length) {
      for (const n of open) out.set(n.slug, fair);
      break;
    }
    for (const n of small) {
      out.set(n.slug, n.need);
      left -= n.need;
    }
    open = open.filter((n) => n.need > fair);
  }
  return out;
}

const PACIFIC = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Los_Angeles', year: 'numeric', month: '2-digit', day: '2-digit' });

/** The calendar date in Pacific time, when Google's daily quota resets. */
export function pacificDay(ms = Date.now()): string {
  return PACIFIC.format(ms);
}

/** The next instant the Pacific date changes (to the minute). */
export function nextPacificMidnight(now = Date.now()): Date {
  const today = pacificDay(now);
  let lo = now;
  let hi = now + 26 * 3_600_000;
  while (hi - lo > 60_000) {
    const mid = Math.floor((lo + hi) / 2);
    if (pacificDay(mid) === today) lo = mid;
    else hi = mid;
  }
  return new Date(hi);
}
