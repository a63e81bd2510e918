// One chaos round: a source and a destination, every fault of their emulators at random rates,
// the migration SIGKILLed at random moments and resumed, the source changed between and during
// runs, then resumed until done. After every run and at the end the round checks, from the
// emulators' data and the files on disk, that nothing was lost, duplicated or deleted early.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { injectedFaults, seededRandom } from '../../src/emulator/kit.ts';
import { pick, pixelHash, type Random } from './content.ts';
import { CHANGE_KINDS, FolderWorld, XiaomiWorld, type ChangeKind, type SourceWorld } from './sources.ts';
import { FolderDest, GoogleDest, OneDriveDest, type DestKind, type DestWorld, type Stored } from './destinations.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'gallery-bridge.js');

export interface RoundConfig {
  round: number;
  seed: number;
  source: 'folder' | 'xiaomi';
  dest: DestKind;
  items: number;
  kills: number;
  dir: string;
}

export interface RoundResult {
  config: RoundConfig;
  runs: number;
  kills: number;
  faults: Record<string, number>;
  changes: Record<ChangeKind, number>;
  /** Contents the tool deleted at the source, each found at the destination. */
  moved: number;
  /** Contents at the destination. */
  atDestination: number;
  /** Contents still at the source at the end (rejected, weaker evidence, or never finished). */
  leftAtSource: number;
  finished: boolean;
  lastExit: number | null;
  /** The last lines the last run printed (why an unfinished round stopped). */
  lastTail: string;
  violations: string[];
  seconds: number;
}

interface FaultPlan {
  common: { fault429: number; fault5xx: number; faultDrop: number; faultCorrupt: number; latencyMs: number; sessionTtl: number; randomSeed: number };
  flags: string[];
}

/** Each fault switched on with probability 0.7 at a random rate up to its cap. */
function planFaults(rand: Random): FaultPlan {
  const rate = (cap: number) => (rand() < 0.7 ? Math.round(rand() * cap * 1000) / 1000 : 0);
  const common = {
    fault429: rate(0.08),
    fault5xx: rate(0.08),
    faultDrop: rate(0.06),
    faultCorrupt: rate(0.08),
    latencyMs: Math.floor(rand() * 4),
    sessionTtl: 0,
    randomSeed: Math.floor(rand() * 2 ** 31),
  };
  const flags = [
    '--fault-429',
    String(common.fault429),
    '--fault-5xx',
    String(common.fault5xx),
    '--fault-drop',
    String(common.faultDrop),
    '--fault-corrupt',
    String(common.faultCorrupt),
    '--latency-ms',
    String(common.latencyMs),
    '--random-seed',
    String(common.randomSeed),
  ];
  return { common, flags };
}

interface ToolRun {
  code: number | null;
  killed: boolean;
  ms: number;
  /** From its first output (start-up done) to its end. */
  workMs: number;
  /** Lines of output it printed (with --json, one a listed page or an item's step). */
  lines: number;
  tail: string;
}

/**
 * Runs `migrate` as its own process; with killAtLine, SIGKILLs it as that line of its output
 * arrives. A kill is placed by the run's progress, not by a time after its start: a time drawn
 * for a run of 2 s missed every run once runs got faster, and a round then killed nothing.
 */
function runTool(args: string[], env: Record<string, string>, killAtLine: number | null, timeoutMs = 180_000): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let firstOutput = 0;
    let lines = 0;
    let killed = false;
    const kill = () => {
      // Output can arrive after the process ended on its own: that run was not killed.
      if (killed || child.exitCode !== null || child.signalCode !== null) return;
      killed = true;
      child.kill('SIGKILL');
    };
    const hang = setTimeout(kill, timeoutMs);
    const onData = (d: Buffer) => {
      const text = String(d);
      out = (out + text).slice(-4000);
      if (!firstOutput) firstOutput = Date.now();
      for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
      if (killAtLine !== null && lines >= killAtLine) kill();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(hang);
      resolve({ code: killed ? null : code, killed, ms: Date.now() - started, workMs: Date.now() - (firstOutput || started), lines, tail: out });
    });
  });
}

async function makeSource(cfg: RoundConfig, rand: Random, faults: FaultPlan): Promise<SourceWorld> {
  if (cfg.source === 'folder') {
    const w = new FolderWorld(path.join(cfg.dir, 'source'));
    await w.seed(cfg.items, rand);
    return w;
  }
  const wrongSha1 = rand() < 0.3 ? Math.round(rand() * 0.1 * 1000) / 1000 : 0;
  const expired = rand() < 0.6 ? Math.round(rand() * 0.15 * 1000) / 1000 : 0;
  const w = new XiaomiWorld(path.join(cfg.dir, 'seed'), path.join(cfg.dir, 'xiaomi'), faults.common, { faultWrongSha1: wrongSha1, faultExpiredLink: expired });
  await w.seed(cfg.items, rand);
  return w;
}

async function makeDest(cfg: RoundConfig, rand: Random, faults: FaultPlan): Promise<DestWorld> {
  if (cfg.dest === 'folder') return new FolderDest(path.join(cfg.dir, 'destination'));
  if (cfg.dest === 'google-photos') {
    const d = new GoogleDest(path.join(cfg.dir, 'google'), [...faults.flags, '--video-processing-ms', '0']);
    await d.start();
    return d;
  }
  const d = new OneDriveDest(cfg.dest, path.join(cfg.dir, 'onedrive'), [
    ...faults.flags,
    '--hash-delay-ms',
    String(rand() < 0.5 ? 0 : 150),
    '--retry-after',
    '1',
  ]);
  await d.start();
  return d;
}

/** The checks, from the outside. `final` adds those that hold only once the run is done. */
async function check(
  src: SourceWorld,
  dst: DestWorld,
  stateFile: string,
  final: { report: ReportRow[] | null; finished: boolean } | null,
): Promise<{ violations: string[]; stored: Stored[]; atSource: Map<string, string> }> {
  const v: string[] = [];
  const atSource = src.reconcile();
  const stored = await dst.contents();
  // Google Photos may hold the picture with other metadata (a capture date written in, a
  // location dropped): there the rule's evidence is the decoded pixels.
  for (const s of stored) {
    if (!s.file || src.ledger.contents.has(s.hash)) continue;
    const px = await pixelHash(fs.readFileSync(s.file));
    const original = px ? src.ledger.pixels.get(px) : undefined;
    if (original) {
      s.hash = original;
      s.where += ' (same pixels)';
    }
  }
  const atDest = new Map<string, string[]>();
  for (const s of stored) atDest.set(s.hash, [...(atDest.get(s.hash) ?? []), s.where]);
  const sourceHashes = new Set(atSource.values());
  for (const [hash, e] of src.ledger.contents) {
    if (e.deletedByTool && !atDest.has(hash)) v.push(`deleted at the source but not at the destination: ${e.name} (${e.sourceId}, sha1 ${hash.slice(0, 12)})`);
    else if (!e.removedByPerson && !sourceHashes.has(hash) && !atDest.has(hash))
      v.push(`lost: ${e.name} (${e.sourceId}, sha1 ${hash.slice(0, 12)}) is neither at the source nor at the destination`);
  }
  for (const [hash, where] of atDest) {
    if (where.length > 1) v.push(`at the destination ${where.length} times: ${where.join(', ')}`);
    if (!src.ledger.contents.has(hash)) v.push(`at the destination but never at the source (torn or corrupt bytes): ${where.join(', ')}`);
  }
  for (const a of src.anomalies.splice(0)) v.push(`source: ${a}`);
  v.push(...recordedDeletions(src, stateFile, final !== null));
  if (final?.report) v.push(...reportAccounts(src, atSource, final.report, final.finished));
  return { violations: v, stored, atSource };
}

/**
 * Every deletion seen at the source had its verification on record first: the item's row holds
 * those very bytes' SHA-1 and its evidence. The deletion's own log row can only follow the
 * service's answer (a kill in between leaves it to the resumed run, which finds the item gone),
 * so it is required once the runs are over.
 */
function recordedDeletions(src: SourceWorld, stateFile: string, final: boolean): string[] {
  const deleted = [...src.ledger.contents].filter(([, e]) => e.deletedByTool);
  if (deleted.length === 0) return [];
  if (!fs.existsSync(stateFile)) return [`${deleted.length} items deleted at the source but there is no state file`];
  const db = new Database(stateFile, { readonly: true, fileMustExist: true });
  try {
    const items = db.prepare('SELECT source_id, sha1, sha256, state, evidence_level FROM items').all() as Array<{
      source_id: string;
      sha1: string | null;
      sha256: string | null;
      state: string;
      evidence_level: string | null;
    }>;
    const logged = new Set((db.prepare('SELECT source_id FROM deletions').all() as Array<{ source_id: string }>).map((r) => r.source_id));
    const out: string[] = [];
    for (const [hash, e] of deleted) {
      const row = items.find((r) => r.source_id === e.sourceId);
      if (!row) out.push(`deleted at the source but unknown to the state: ${e.name} (${e.sourceId})`);
      else if (
        !e.superseded &&
        ((row.sha1 !== hash && row.sha256 !== e.sha256) || !row.evidence_level || !['verified', 'skipped', 'source-deleted'].includes(row.state))
      ) {
        out.push(
          `deleted at the source without recorded verification of those bytes: ${e.name} (${e.sourceId}: state ${row.state}, evidence ${row.evidence_level}, sha256 ${row.sha256?.slice(0, 12)} vs ${e.sha256.slice(0, 12)})`,
        );
      }
      if (final && !logged.has(e.sourceId))
        out.push(`deleted at the source, but the deletions log has no row for it after the last run: ${e.name} (${e.sourceId})`);
    }
    return out;
  } finally {
    db.close();
  }
}

interface ReportRow {
  source_id: string;
  name: string;
  state: string;
  sha1: string | null;
}

function reportAccounts(src: SourceWorld, atSource: Map<string, string>, report: ReportRow[], finished: boolean): string[] {
  const out: string[] = [];
  const byId = new Map(report.map((r) => [r.source_id, r]));
  for (const id of atSource.keys()) {
    const r = byId.get(id);
    if (!r) out.push(`report: ${id} is at the source but not in the report`);
    else if (finished && (r.state === 'discovered' || r.state === 'transferring')) out.push(`report: ${id} still "${r.state}" after the run finished`);
  }
  for (const [, e] of src.ledger.contents) {
    if (!e.deletedByTool || e.superseded || atSource.has(e.sourceId)) continue;
    const r = byId.get(e.sourceId);
    if (r?.state !== 'source-deleted')
      out.push(`report: ${e.name} (${e.sourceId}) was deleted at the source but the report says ${r ? `"${r.state}"` : 'nothing'}`);
  }
  return out;
}

/** The last run left nothing in flight: what is not done was rejected or failed for a reason it gave. */
function nothingPending(stateFile: string): boolean {
  const db = new Database(stateFile, { readonly: true, fileMustExist: true });
  try {
    const n = db.prepare("SELECT count(*) AS n FROM items WHERE state IN ('discovered','transferring','uploaded','failed')").get() as { n: number };
    return n.n === 0;
  } finally {
    db.close();
  }
}

async function writeReport(stateFile: string, out: string, env: Record<string, string>): Promise<ReportRow[] | null> {
  const r = await runTool(['report', '--state', stateFile, '--out', out], env, null, 60_000);
  if (r.code !== 0 || !fs.existsSync(out)) return null;
  return (JSON.parse(fs.readFileSync(out, 'utf8')) as { items: ReportRow[] }).items;
}

export async function runRound(cfg: RoundConfig, log: (line: string) => void = () => undefined): Promise<RoundResult> {
  const started = Date.now();
  const rand = seededRandom((cfg.seed * 7919 + cfg.round * 104729) >>> 0);
  fs.mkdirSync(cfg.dir, { recursive: true });
  const faultsBefore = { ...injectedFaults };
  const faults = planFaults(rand);
  const src = await makeSource(cfg, rand, faults);
  const dst = await makeDest(cfg, rand, faults);
  const stateFile = path.join(cfg.dir, 'state.db');
  const env: Record<string, string> = { GALLERY_BRIDGE_HOME: path.join(cfg.dir, 'home'), GALLERY_BRIDGE_BACKOFF_SCALE: '0.01', ...src.env(), ...dst.env() };
  const args = [
    'migrate',
    '--from',
    src.spec,
    '--to',
    dst.spec,
    '--state',
    stateFile,
    '--delete-source',
    '--concurrency',
    '3',
    '--retries',
    '6',
    '--verify-wait',
    '20',
    '--json',
    ...(cfg.dest.startsWith('onedrive') ? ['--onedrive-chunk-size', '320KiB'] : []),
  ];
  const violations = new Set<string>();
  let runs = 0;
  let kills = 0;
  // How long a run works once started, and how many lines it prints: kills land anywhere in it.
  // Before any run has ended on its own, a kill lands within the first line an item (each item a
  // run finishes prints one), so the first attempts kill unless a run stops early, and they kill
  // early in the run; after one has, anywhere within as many lines as it printed.
  let typicalMs = 3000;
  let typicalLines = cfg.items;
  let lastExit: number | null = null;
  let lastTail = '';

  const changeSoon = (): Promise<void> => src.change(pick(rand, CHANGE_KINDS), rand);
  try {
    // Killed runs, the source changing between and during them.
    for (let k = 0; k < cfg.kills; k++) {
      if (rand() < 0.5) for (let n = 1 + Math.floor(rand() * 2); n > 0; n--) await changeSoon();
      const during = rand() < 0.5 ? Math.floor(rand() * typicalMs) : null;
      const duringChange =
        during === null ? Promise.resolve() : new Promise<void>((resolve) => setTimeout(() => void changeSoon().then(resolve, resolve), during));
      const r = await runTool(args, env, 1 + Math.floor(rand() * typicalLines));
      await duringChange;
      runs++;
      if (r.killed) kills++;
      else {
        lastExit = r.code;
        typicalMs = Math.max(500, r.workMs);
        typicalLines = Math.max(1, r.lines);
      }
      for (const x of (await check(src, dst, stateFile, null)).violations) violations.add(x);
      log(`  run ${runs}: ${r.killed ? 'killed' : `exit ${r.code}`} after ${r.ms} ms`);
    }
    // Then resumed until done: no more kills or changes; the faults stay on.
    let finished = false;
    let stalls = 0;
    let before = '';
    for (let n = 0; n < 10 && !finished; n++) {
      const r = await runTool(args, env, null);
      runs++;
      lastExit = r.code;
      lastTail = r.tail
        .split('\n')
        .filter((l) => !l.startsWith('{"type":"item"') && !l.startsWith('{"type":"bytes"'))
        .slice(-6)
        .join('\n');
      log(`  run ${runs}: exit ${r.code} after ${r.ms} ms`);
      if (r.code === 0 || (r.code === 1 && nothingPending(stateFile))) finished = true;
      else {
        const now = JSON.stringify([...src.reconcile()].sort());
        stalls = now === before ? stalls + 1 : 0;
        before = now;
        if (stalls >= 2) break;
      }
    }
    const report = await writeReport(stateFile, path.join(cfg.dir, 'report.json'), env);
    if (!report) violations.add('report: `gallery-bridge report` failed');
    const end = await check(src, dst, stateFile, { report, finished });
    for (const x of end.violations) violations.add(x);
    const faultsAfter: Record<string, number> = {};
    for (const [k, n] of Object.entries(injectedFaults)) if (n - (faultsBefore[k] ?? 0) > 0) faultsAfter[k] = n - (faultsBefore[k] ?? 0);
    if (src instanceof XiaomiWorld && src.expiredLinks() > 0) faultsAfter['expired-link'] = src.expiredLinks();
    const moved = [...src.ledger.contents.values()].filter((e) => e.deletedByTool).length;
    return {
      config: cfg,
      runs,
      kills,
      faults: faultsAfter,
      changes: { ...src.changes },
      moved,
      atDestination: new Set(end.stored.map((s) => s.hash)).size,
      leftAtSource: end.atSource.size,
      finished,
      lastExit,
      lastTail,
      violations: [...violations],
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    await src.close();
    await dst.close();
  }
}
