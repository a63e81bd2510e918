// The floor for any Node.js program doing what a verified, crash-safe folder copy must do, with
// none of gallery-bridge's bookkeeping: per file, open, read while hashing (SHA-256), write a
// temp file, fsync it, link it into place, then read the copy back and hash it again; four files
// at once. No state, no progress, no capture dates. `core` runs it side by side with rclone and
// gallery-bridge, so the gap between the two peers says what Node itself costs here, and the gap
// between this and gallery-bridge what the tool's own work costs.
//
// usage: node bench/node-floor.mjs SRC DST [--syncfs]
//
// --syncfs: no fsync per file; one syncfs(2) of the destination's file system at the end (through
// coreutils `sync -f`, Linux only: Node has no syncfs). This measures the lever issue 23 names for
// the folder copy (one sync per durability group instead of one per file); it is not what
// gallery-bridge does, and as written here it loses the per-file write-back error report (a
// syncfs reports only errors since its own descriptor was opened).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [src, dst] = process.argv.slice(2);
const SYNCFS = process.argv.includes('--syncfs');
const files = [];
(function walk(rel) {
  for (const d of fs.readdirSync(path.join(src, rel), { withFileTypes: true })) {
    const r = path.join(rel, d.name);
    if (d.isDirectory()) walk(r);
    else if (d.isFile()) files.push(r);
  }
})('');

const call = (fn, ...args) => new Promise((resolve, reject) => fn(...args, (err, v) => (err ? reject(err) : resolve(v))));
const CHUNK = 1 << 20;

async function copyOne(rel) {
  const to = path.join(dst, rel);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const tmp = `${to}.part`;
  const buf = Buffer.allocUnsafe(CHUNK);
  const inFd = await call(fs.open, path.join(src, rel), 'r');
  const outFd = await call(fs.open, tmp, 'wx');
  const h = crypto.createHash('sha256');
  for (let pos = 0; ; ) {
    const n = await call(fs.read, inFd, buf, 0, CHUNK, pos);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    for (let off = 0; off < n; ) off += await call(fs.write, outFd, buf, off, n - off, null);
    pos += n;
  }
  fs.closeSync(inFd);
  if (!SYNCFS) await call(fs.fsync, outFd);
  fs.closeSync(outFd);
  await call(fs.link, tmp, to);
  await call(fs.unlink, tmp);
  const back = crypto.createHash('sha256');
  const fd = await call(fs.open, to, 'r');
  for (let pos = 0; ; ) {
    const n = await call(fs.read, fd, buf, 0, CHUNK, pos);
    if (n === 0) break;
    back.update(buf.subarray(0, n));
    pos += n;
  }
  fs.closeSync(fd);
  if (back.digest('hex') !== h.digest('hex')) throw new Error(`${rel}: the copy differs`);
}

let next = 0;
await Promise.all(
  Array.from({ length: 4 }, async () => {
    while (next < files.length) await copyOne(files[next++]);
  }),
);
if (SYNCFS) (await import('node:child_process')).execFileSync('sync', ['-f', dst]);
