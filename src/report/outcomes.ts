// Every item falls in exactly one outcome a person understands, and every reason an item stays
// at the source falls in a group that says what to do about it.

import type { ItemState, ReasonKind } from '../../state/items.ts';

export type Outcome = 'verified' | 'deleted' | 'duplicate' | 'in-library' | 'rejected' | 'failed' | 'awaiting' | 'not-started';

export const OUTCOMES: readonly Outcome[] = ['verified', 'deleted', 'duplicate', 'in-library', 'rejected', 'failed', 'awaiting', 'not-started'];

/** SQL: the item is skipped because the destination's library held it from another app. */
export const IN_LIBRARY_SQL = `(state = 'skipped' AND reason_kind IS 'in-library-from-another-app')`;

export const OUTCOME_LABEL: Record<Outcome, string> = {
  verified: 'moved and verified',
  deleted: 'moved, verified and deleted at the source',
  duplicate: 'skipped: already at the destination',
  'in-library': 'already in your library from another app (stays at the source)',
  rejected: 'rejected (stays at the source)',
  failed: 'failed (will be tried again)',
  awaiting: 'moved, waiting for verification',
  'not-started': 'not moved yet',
};

export function outcomeOf(state: ItemState | string, kind?: ReasonKind | string | null): Outcome {
  if (state === 'skipped' && kind === 'in-library-from-another-app') return 'in-library';
  switch (state) {
    case 'verified':
      return 'verified';
    case 'source-deleted':
      return 'deleted';
    case 'skipped':
      return 'duplicate';
    case 'rejected':
      return 'rejected';
    case 'failed':
      return 'failed';
    case 'uploaded':
      return 'awaiting';
    default:
      return 'not-started';
  }
}

/** Items a person should look at: they are not safely at the destination. */
export const NEEDS_ATTENTION: readonly Outcome[] = ['in-library', 'rejected', 'failed', 'awaiting'];

export interface ReasonGroup {
  key: string;
  title: string;
  todo: string;
}

const GONE: ReasonGroup = {
  key: 'gone',
  title: 'Gone from the source',
  todo: 'Nothing to do: it was deleted at the source by someone else before it could be moved.',
};

// A failure's words, and those of a refusal whose kind says only who refused, are grouped by
// what they say: the service's own words are all there is.
const GROUPS: Array<{ test: RegExp; group: ReasonGroup }> = [
  {
    test: /credential|token|sign[- ]?in|unauthori[sz]ed|\b401\b|expired|forbidden|\b403\b/i,
    group: {
      key: 'credentials',
      title: 'Sign-in expired or refused',
      todo: 'Sign in again (gallery-bridge auth PROVIDER --account NAME), then run again: the items resume.',
    },
  },
  {
    test: /full|no space|ENOSPC|storage|insufficient|quota.*(byte|space)/i,
    group: { key: 'full', title: 'Destination full', todo: 'Free space or buy storage at the destination, then run again.' },
  },
  {
    test: /quota|rate limit|\b429\b|too many requests/i,
    group: { key: 'quota', title: 'Service quota spent', todo: 'Run again after the quota resets (Google: midnight Pacific time); nothing is lost.' },
  },
  { test: /no longer exists|not found at the source|vanished/i, group: GONE },
  {
    test: /too large|too big|exceeds|larger than/i,
    group: {
      key: 'too-large',
      title: 'Too large for the destination',
      todo: 'Move it by hand, or choose a destination without that limit (a folder or OneDrive).',
    },
  },
  {
    test: /unsupported|not supported|not a photo|cannot be decoded|format|not an image|invalid media/i,
    group: {
      key: 'format',
      title: 'Format the destination does not take',
      todo: 'It stays at the source. Copy it to a folder destination, or convert it and add it by hand.',
    },
  },
  {
    test: /changed since it was listed|changed or vanished|modified while/i,
    group: { key: 'changed', title: 'Changed while being read', todo: 'Run again: it is listed and moved afresh.' },
  },
  {
    test: /verification failed|mismatch|differ|declared sha|sha-?1/i,
    group: {
      key: 'mismatch',
      title: 'Bytes did not match',
      todo: 'Run again: the item is uploaded again and checked. If it repeats, the source copy may be damaged.',
    },
  },
  {
    test: /not verified yet|processing|pending/i,
    group: { key: 'pending', title: 'Destination still processing', todo: 'Run again later: the check is repeated and nothing is uploaded twice.' },
  },
  {
    test: /interrupted|stopped|signal|until/i,
    group: { key: 'interrupted', title: 'Interrupted', todo: 'Run again: in-flight work resumes where it stopped.' },
  },
  {
    test: /permission|EACCES|EPERM|not readable/i,
    group: { key: 'permission', title: 'Not readable at the source', todo: 'Fix the file permissions at the source, then run again.' },
  },
  {
    test: /timeout|timed out|ECONNRESET|ECONNREFUSED|socket|network|\b5\d\d\b|unavailable|server error/i,
    group: { key: 'network', title: 'Network or service errors', todo: 'Usually passing: run again. If it repeats, check the service status.' },
  },
];

const OTHER_FAILED: ReasonGroup = { key: 'other', title: 'Other errors', todo: 'Run again; if the same item fails again, read its error below.' };
const OTHER_REJECTED: ReasonGroup = {
  key: 'other-rejected',
  title: 'Refused by the destination',
  todo: 'It stays at the source; read the reason below and move it by hand if you need it.',
};
const AWAITING: ReasonGroup = {
  key: 'pending',
  title: 'Destination still processing',
  todo: 'Run again later: the check is repeated and nothing is uploaded twice.',
};

const IN_LIBRARY: ReasonGroup = {
  key: 'in-library',
  title: 'Already in your library from another app',
  todo: "Not sent again. Check that the destination has it, then delete it at the source yourself, or run with --delete-evidence received to accept the destination's word where it gave one.",
};

const DATED_COPY: ReasonGroup = {
  key: 'dated-copy',
  title: 'Not uploaded: writing the date changed more than the date',
  todo:
    'Nothing was uploaded and the file at the source is untouched: the copy with its capture date written in differed from the source by more than the date, so it was not sent. ' +
    'To move the file as it is, run again with --keep-bytes (Google Photos: it is dated by its upload) or without --embed-dates (OneDrive: the date goes in its metadata); that run sends these items unchanged.',
};

export function reasonGroup(outcome: Outcome, why: string | null, kind: ReasonKind | string | null = null): ReasonGroup {
  if (outcome === 'awaiting') return AWAITING;
  if (outcome === 'in-library') return IN_LIBRARY;
  if (outcome === 'rejected' && kind === 'gone-from-source') return GONE;
  if (outcome === 'rejected' && kind === 'dated-copy-differs') return DATED_COPY;
  const text = why ?? '';
  for (const g of GROUPS) if (g.test.test(text)) return g.group;
  return outcome === 'rejected' ? OTHER_REJECTED : OTHER_FAILED;
}
