// Source and destination must not overlap: the same folder, one inside the other, or the same
// files reached through an alias (a symlink, a bind mount). Otherwise the "already there with
// the same bytes" check finds the source file itself, and deleting the source deletes the only
// copy. Paths are compared after resolving links, and folders by device and inode, so an alias
// is caught whatever its path says.

import fs from 'node:fs';
import path from 'node:path';
import type { Destination, Source } from '../../providers/types.ts';
import { StopRunError } from '../../providers/types.ts';

/** Throws StopRunError('config') with a one-line reason when the two local trees overlap. */
export function refuseOverlap(source: Source, destination: Destination): void {
  if (!source.localPath || !destination.localPath) return;
  const why = overlap(source.localPath, destination.localPath);
  if (why) throw new StopRunError('config', `refusing to run: ${why}; deleting or reorganising in place could lose the only copy`);
}

export function overlap(src: string, dst: string): string | null {
  const s = resolveExisting(src);
  const d = resolveExisting(dst);
  if (s.real === d.real) return `the source ${src} and the destination ${dst} are the same folder`;
  if (inside(d.real, s.real)) return `the destination ${dst} is inside the source ${src}`;
  if (inside(s.real, d.real)) return `the source ${src} is inside the destination ${dst}`;
  // A bind mount shows one folder under two real paths: compare the folders themselves.
  const sId = s.missing ? null : idOf(s.real);
  const dId = d.missing ? null : idOf(d.real);
  if (sId && dId && sId === dId) return `the source ${src} and the destination ${dst} are the same folder (one is an alias of the other)`;
  if (sId && ancestorIds(d.existing).includes(sId)) return `the destination ${dst} is inside the source ${src} (through an alias)`;
  if (dId && ancestorIds(s.existing).includes(dId)) return `the source ${src} is inside the destination ${dst} (through an alias)`;
  return null;
}

/** The real path of `p`: its deepest existing ancestor resolved, plus the parts not created yet. */
function resolveExisting(p: string): { real: string; existing: string; missing: boolean } {
  const abs = path.resolve(p);
  let existing = abs;
  const rest: string[] = [];
  while (!fs.existsSync(existing)) {
    const parent = path.dirname(existing);
    if (parent === existing) break;
    rest.unshift(path.basename(existing));
    existing = parent;
  }
  const realExisting = fs.realpathSync(existing);
  return { real: path.join(realExisting, ...rest), existing: realExisting, missing: rest.length > 0 };
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel);
}

function idOf(p: string): string | null {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** Device and inode of `p` and of every folder above it. */
function ancestorIds(p: string): string[] {
  const out: string[] = [];
  for (let cur = p; ; cur = path.dirname(cur)) {
    const id = idOf(cur);
    if (id) out.push(id);
    if (path.dirname(cur) === cur) return out;
  }
}
