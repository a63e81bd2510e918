// The chaos suite: rounds over every source/destination pair, and the table that sums them up.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseOneDriveEmulatorArgs } from '../../providers/onedrive/emulator/server.ts';
import { runRound, type RoundResult } from './round.ts';
import type { DestKind } from './destinations.ts';
import { CHANGE_KINDS } from './sources.ts';

export interface ChaosOptions {
  rounds: number;
  /** Start at this round (to repeat one round of a seed: first = rounds = K). */
  first?: number;
  seed: number;
  items: number;
  kills: number;
  /** Only these pairs ("folder>onedrive", ...); all by default. */
  pairs?: string[];
  keep?: boolean;
  log?: (line: string) => void;
}

const SOURCES = ['folder', 'xiaomi'] as const;
const DESTS: DestKind[] = ['folder', 'onedrive', 'onedrive-business', 'google-photos'];

/** The OneDrive emulator's business flavor (--flavor business), where this version has it. */
async function hasBusinessFlavor(): Promise<boolean> {
  try {
    parseOneDriveEmulatorArgs(['--data', os.tmpdir(), '--flavor', 'business']);
    return true;
  } catch {
    return false;
  }
}

export async function allPairs(): Promise<string[]> {
  const business = await hasBusinessFlavor();
  return SOURCES.flatMap((s) => DESTS.filter((d) => business || d !== 'onedrive-business').map((d) => `${s}>${d}`));
}

export async function runChaos(o: ChaosOptions): Promise<RoundResult[]> {
  const pairs = o.pairs?.length ? o.pairs : await allPairs();
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-chaos-'));
  const results: RoundResult[] = [];
  try {
    for (let round = o.first ?? 1; round <= o.rounds; round++) {
      const [source, dest] = pairs[(round - 1 + o.seed) % pairs.length]!.split('>') as ['folder' | 'xiaomi', DestKind];
      const dir = path.join(base, `round-${round}`);
      o.log?.(`round ${round}: ${source} -> ${dest} (seed ${o.seed}) in ${dir}`);
      const r = await runRound({ round, seed: o.seed, source, dest, items: o.items, kills: o.kills, dir }, o.log);
      results.push(r);
      o.log?.(`round ${round}: ${r.violations.length} violations, ${r.kills} kills, ${r.runs} runs, ${r.seconds} s`);
      for (const v of r.violations) o.log?.(`  violation: ${v}`);
      if (r.violations.length) fs.writeFileSync(path.join(dir, 'violations.txt'), r.violations.join('\n') + '\n');
      if (!o.keep && r.violations.length === 0) fs.rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    if (!o.keep && results.every((r) => r.violations.length === 0)) fs.rmSync(base, { recursive: true, force: true });
  }
  return results;
}

const FAULT_KINDS = ['429', '5xx', 'drop', 'corrupt', 'expired-link'];

export function formatTable(results: RoundResult[], seed: number): string {
  const head = [
    'round',
    'source -> destination',
    'runs',
    'kills',
    ...FAULT_KINDS.map((k) => `f:${k}`),
    ...CHANGE_KINDS.map((k) => `c:${k}`),
    'moved',
    'at dest',
    'left',
    'done',
    'violations',
  ];
  const row = (r: RoundResult): string[] => [
    String(r.config.round),
    `${r.config.source} -> ${r.config.dest}`,
    String(r.runs),
    String(r.kills),
    ...FAULT_KINDS.map((k) => String(r.faults[k] ?? 0)),
    ...CHANGE_KINDS.map((k) => String(r.changes[k])),
    String(r.moved),
    String(r.atDestination),
    String(r.leftAtSource),
    r.finished ? 'yes' : `no (${r.lastExit})`,
    String(r.violations.length),
  ];
  const sum = (f: (r: RoundResult) => number) => String(results.reduce((a, r) => a + f(r), 0));
  const total = [
    'total',
    `seed ${seed}`,
    sum((r) => r.runs),
    sum((r) => r.kills),
    ...FAULT_KINDS.map((k) => sum((r) => r.faults[k] ?? 0)),
    ...CHANGE_KINDS.map((k) => sum((r) => r.changes[k])),
    sum((r) => r.moved),
    sum((r) => r.atDestination),
    sum((r) => r.leftAtSource),
    `${results.filter((r) => r.finished).length}/${results.length}`,
    sum((r) => r.violations.length),
  ];
  const rows = [head, ...results.map(row), total];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...results.map((r) => line(row(r))), line(total)].join('\n');
}
