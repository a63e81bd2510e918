// The Xiaomi emulator's own record (recycle bin, download counts, counters, tokens), kept in
// DATA/.emulator/ so it survives restarts and can be read from the outside by tests and the
// chaos harness. It is a snapshot (xiaomi-state.json) plus a journal of the changes made since
// (xiaomi-state.journal, one JSON line per change). Rewriting the whole snapshot at every change
// cost time in proportion to the library (a download count per item): a 100,000-item run spent
// its time there. Appending a line costs the same at any size, and every change is on disk
// before the emulator answers, as before.

import fs from 'node:fs';
import path from 'node:path';

export interface EmState {
  /** The recycle bin: Xiaomi's delete is soft. `tag` orders /gallery/deleted_v2, newest first. */
  deleted: Record<string, { at: string; fileName: string; albumId: string; sha1: string; deleteTime?: number; tag?: number }>;
  downloads: Record<string, number>;
  deleteLog: Array<{ at: string; id: string; code: number }>;
  tokens: Record<string, number>;
  counters: Record<string, number>;
}

type Section = 'deleted' | 'downloads' | 'tokens' | 'counters' | 'deleteLog';

/**
 * One change: [section, key, value] sets, [section, key] removes. deleteLog's key is the index,
 * so replaying a change twice (a journal kept beside the snapshot that already holds it) is harmless.
 */
type Change = [Section, string, unknown] | [Section, string];

const empty = (): EmState => ({ deleted: {}, downloads: {}, deleteLog: [], tokens: {}, counters: {} });

const files = (data: string) => {
  const dir = path.join(data, '.emulator');
  return { dir, snapshot: path.join(dir, 'xiaomi-state.json'), journal: path.join(dir, 'xiaomi-state.journal') };
};

function apply(state: EmState, [section, key, ...value]: Change): void {
  const target = state[section] as Record<string, unknown>;
  if (value.length === 0) delete target[key];
  else target[key] = value[0];
}

/** The record as it lies in DATA: the snapshot with the journal replayed over it. */
export function readXiaomiEmulatorState(data: string): EmState {
  const f = files(data);
  const state = empty();
  if (fs.existsSync(f.snapshot)) Object.assign(state, JSON.parse(fs.readFileSync(f.snapshot, 'utf8')) as Partial<EmState>);
  let journal = '';
  try {
    journal = fs.readFileSync(f.journal, 'utf8');
  } catch {
    // no changes since the snapshot
  }
  for (const line of journal.split('\n')) {
    if (!line) continue;
    let changes: Change[];
    try {
      changes = JSON.parse(line) as Change[];
    } catch {
      // A line being written as we read (the last one) or cut by a kill: not yet a change.
      continue;
    }
    for (const c of changes) apply(state, c);
  }
  return state;
}

/** The emulator's side: the record in memory, every change appended to the journal before it is answered. */
export class EmulatorState {
  readonly state: EmState;
  readonly file: string;
  private readonly journal: string;
  private fd: number | null;
  private pending: Change[] = [];

  constructor(data: string) {
    const f = files(data);
    fs.mkdirSync(f.dir, { recursive: true });
    this.file = f.snapshot;
    this.journal = f.journal;
    this.state = readXiaomiEmulatorState(data);
    this.compact();
    this.fd = fs.openSync(this.journal, 'a');
  }

  set(section: Exclude<Section, 'deleteLog'>, key: string, value: unknown): void {
    (this.state[section] as Record<string, unknown>)[key] = value;
    this.pending.push([section, key, value]);
  }

  remove(section: Exclude<Section, 'deleteLog'>, key: string): void {
    delete (this.state[section] as Record<string, unknown>)[key];
    this.pending.push([section, key]);
  }

  logDeletion(entry: EmState['deleteLog'][number]): void {
    this.state.deleteLog.push(entry);
    this.pending.push(['deleteLog', String(this.state.deleteLog.length - 1), entry]);
  }

  /** Writes the changes made since the last save (one line). Changes not saved ride along with the next. */
  save(): void {
    if (this.pending.length === 0) return;
    const line = JSON.stringify(this.pending) + '\n';
    // After close (a request still answering while the server stops) the journal is opened again.
    if (this.fd === null) fs.appendFileSync(this.journal, line);
    else fs.writeSync(this.fd, line);
    this.pending = [];
  }

  /** A fresh snapshot and an empty journal (at start and at close). */
  private compact(): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.state, null, 1));
    fs.renameSync(tmp, this.file);
    fs.writeFileSync(this.journal, '');
  }

  close(): void {
    this.save();
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
    this.compact();
  }
}
