// The batch manifest: a CSV file with one account per row. Parsing says every problem at once,
// one line each with its row number, so an admin fixes the file in one pass.

import fs from 'node:fs';
import crypto from 'node:crypto';
import type { EvidenceLevel } from '../../providers/types.ts';
import { EVIDENCE_ORDER } from '../../providers/types.ts';

export const REQUIRED_COLUMNS = ['account', 'source', 'destination'] as const;
export const OPTIONAL_COLUMNS = ['source_account', 'destination_account', 'delete_source', 'delete_evidence', 'priority'] as const;

export interface AccountRow {
  /** 1-based line number in the file (the header is line 1). */
  line: number;
  account: string;
  /** Directory-safe, unique name for the account's state and reports. */
  slug: string;
  source: string;
  destination: string;
  sourceAccount: string;
  destinationAccount: string;
  /** null: the batch's --delete-source decides. */
  deleteSource: boolean | null;
  deleteEvidence: EvidenceLevel | null;
  /** Higher runs first. */
  priority: number;
}

export interface ManifestProblem {
  line: number;
  account: string | null;
  problem: string;
  todo: string;
}

export interface Manifest {
  rows: AccountRow[];
  problems: ManifestProblem[];
}

/** RFC 4180 fields: quotes, doubled quotes, commas and newlines inside quotes, CRLF. */
export function parseCsv(text: string): Array<{ line: number; fields: string[] }> {
  const out: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  const endRow = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0]!.trim() === '')) out.push({ line: rowLine, fields });
    fields = [];
    field = '';
  };
  const s = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field.trim() === '') {
      field = '';
      quoted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else field += c;
  }
  if (field !== '' || fields.length) endRow();
  return out;
}

const SOURCES = ['xiaomi', 'folder'];
const DESTINATIONS = ['google-photos', 'onedrive', 'folder'];

function kindOf(spec: string): string {
  const i = spec.indexOf(':');
  return i < 0 ? spec : spec.slice(0, i);
}

export function checkSource(spec: string): string | null {
  const kind = kindOf(spec);
  if (!SOURCES.includes(kind)) return `source "${spec}" is not one of: xiaomi, folder:PATH`;
  if (kind === 'folder' && !spec.slice(7).trim()) return 'source folder: needs a path, as in folder:/photos/alice';
  return null;
}

export function checkDestination(spec: string): string | null {
  const kind = kindOf(spec);
  if (!DESTINATIONS.includes(kind)) return `destination "${spec}" is not one of: google-photos, onedrive:USER:PATH, folder:PATH`;
  if (kind === 'folder' && !spec.slice(7).trim()) return 'destination folder: needs a path, as in folder:/backup/alice';
  if (kind === 'onedrive' && !/^onedrive:[^:/][^:]*:.+/.test(spec))
    return `destination "${spec}" must name the user and the path: onedrive:USER:PATH (app-only credentials write to each user's drive)`;
  return null;
}

function bool(v: string): boolean | null | 'bad' {
  const t = v.trim().toLowerCase();
  if (t === '') return null;
  if (['yes', 'true', '1', 'y'].includes(t)) return true;
  if (['no', 'false', '0', 'n'].includes(t)) return false;
  return 'bad';
}

export function slugFor(account: string, taken: Set<string>): string {
  let base =
    account
      .normalize('NFKD')
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^[._]+/, '')
      .slice(0, 60) || 'account';
  if (base !== account || taken.has(base.toLowerCase())) base = `${base}-${crypto.createHash('sha256').update(account).digest('hex').slice(0, 8)}`;
  taken.add(base.toLowerCase());
  return base;
}

export function parseManifest(text: string): Manifest {
  const records = parseCsv(text);
  const problems: ManifestProblem[] = [];
  const rows: AccountRow[] = [];
  if (!records.length)
    return { rows, problems: [{ line: 1, account: null, problem: 'the manifest is empty', todo: 'Start with the header line: account,source,destination' }] };
  const header = records[0]!.fields.map((h) => h.trim().toLowerCase());
  const known = new Set<string>([...REQUIRED_COLUMNS, ...OPTIONAL_COLUMNS]);
  for (const h of header)
    if (!known.has(h)) problems.push({ line: 1, account: null, problem: `unknown column "${h}"`, todo: `Use only: ${[...known].join(', ')}` });
  const missing = REQUIRED_COLUMNS.filter((c) => !header.includes(c));
  if (missing.length) {
    problems.push({
      line: 1,
      account: null,
      problem: `missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
      todo: 'The header must name at least: account,source,destination',
    });
    return { rows, problems };
  }
  const col = (fields: string[], name: string) => (header.includes(name) ? (fields[header.indexOf(name)] ?? '').trim() : '');
  const seen = new Map<string, number>();
  const slugs = new Set<string>();
  for (const { line, fields } of records.slice(1)) {
    const account = col(fields, 'account');
    const problem = (p: string, todo: string) => problems.push({ line, account: account || null, problem: p, todo });
    if (fields.length > header.length) problem(`${fields.length} fields, but the header has ${header.length}`, 'Quote fields that hold commas: "a, b"');
    if (!account) {
      problem('no account name', 'Give every row a unique account name');
      continue;
    }
    if (seen.has(account.toLowerCase())) {
      problem(`account "${account}" is already on line ${seen.get(account.toLowerCase())}`, 'Each account appears once; give the second one another name');
      continue;
    }
    seen.set(account.toLowerCase(), line);
    const source = col(fields, 'source');
    const destination = col(fields, 'destination');
    let ok = true;
    const bad = (p: string, todo: string) => {
      ok = false;
      problem(p, todo);
    };
    const sp = source ? checkSource(source) : 'no source';
    if (sp) bad(sp, 'Write xiaomi (with a stored sign-in) or folder:PATH');
    const dp = destination ? checkDestination(destination) : 'no destination';
    if (dp) bad(dp, 'Write google-photos, onedrive:USER:PATH or folder:PATH');
    const del = bool(col(fields, 'delete_source'));
    if (del === 'bad') bad(`delete_source "${col(fields, 'delete_source')}" is not yes or no`, 'Write yes, no, or leave it empty to follow --delete-source');
    const ev = col(fields, 'delete_evidence');
    if (ev && !EVIDENCE_ORDER.includes(ev as EvidenceLevel))
      bad(`delete_evidence "${ev}" is not one of ${EVIDENCE_ORDER.join(', ')}`, 'Leave it empty for the default (pixels)');
    const pr = col(fields, 'priority');
    if (pr && !/^-?\d+$/.test(pr)) bad(`priority "${pr}" is not a whole number`, 'Higher numbers run first; leave it empty for 0');
    if (!ok) continue;
    rows.push({
      line,
      account,
      slug: slugFor(account, slugs),
      source,
      destination,
      sourceAccount: col(fields, 'source_account') || 'default',
      destinationAccount: col(fields, 'destination_account') || 'default',
      deleteSource: del === 'bad' ? null : del,
      deleteEvidence: (ev || null) as EvidenceLevel | null,
      priority: pr ? Number(pr) : 0,
    });
  }
  if (records.length === 1) problems.push({ line: 1, account: null, problem: 'the manifest has a header but no accounts', todo: 'Add one line per account' });
  return { rows, problems };
}

export function readManifest(file: string): Manifest {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return {
      rows: [],
      problems: [
        {
          line: 0,
          account: null,
          problem: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          todo: 'Give the path of the manifest CSV',
        },
      ],
    };
  }
  return parseManifest(text);
}
