// Runs once before any test worker starts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Every temp folder the tests make, and the CLIs and emulators they start, goes under one
 * folder of this run (TMPDIR, which os.tmpdir() reads and forked workers inherit), removed when
 * the run ends. Tests make their folders with mkdtemp and few remove them: a whole run left about
 * 500 folders and 2.8 GB in /tmp (a 200 MB upload's source among them).
 */
export default function setup(): () => void {
  process.env.GALLERY_BRIDGE_BACKOFF_SCALE = '0.01';
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-tests-'));
  // As /tmp: the queue tests' PostgreSQL server runs as another user and must reach its folder.
  fs.chmodSync(root, 0o1777);
  process.env.TMPDIR = root;
  return () => removeRunFolder(root);
}

/** Removes the run's folder, unless a mount is still inside it (a recursive removal would reach into what it shows). */
function removeRunFolder(root: string): void {
  const inside = mountsUnder(root);
  if (inside.length > 0) {
    process.stderr.write(`test temp folder ${root} kept: ${inside.join(', ')} still mounted inside it\n`);
    return;
  }
  fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 });
}

function mountsUnder(root: string): string[] {
  let table: string;
  try {
    table = fs.readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return []; // not Linux: the tests mount nothing there
  }
  const prefix = `${fs.realpathSync(root)}/`;
  // The mount table escapes a space in a path as \040.
  return table
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((point) => point.startsWith(prefix));
}
