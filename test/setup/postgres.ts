// vitest globalSetup: a real PostgreSQL server for the queue tests, started from the machine's
// own server binaries (Debian's /usr/lib/postgresql/<major>/bin) with no manual step. initdb and
// start take about a second, so it always runs rather than guessing which files were selected.
//
// PostgreSQL refuses to run as root, so as root everything runs as the `postgres` user in a temp
// folder that user owns. It listens on 127.0.0.1 only, on a free port, with password (SCRAM)
// authentication so that a wrong password is a real failure a test can provoke.
//
// Tests read the server's URL from process.env.GALLERY_BRIDGE_TEST_PG_URL (forks inherit it) or
// from vitest's inject('pgUrl'); test/pg.ts makes a fresh database per test file.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const PG_ROOT = '/usr/lib/postgresql';
const SUPERUSER = 'postgres';

interface Server {
  bin: string;
  dir: string;
  data: string;
}

let server: Server | undefined;

export function findServerBin(root = PG_ROOT): string | undefined {
  let majors: string[];
  try {
    majors = fs.readdirSync(root);
  } catch {
    return undefined;
  }
  const found = majors
    .filter((m) => fs.existsSync(path.join(root, m, 'bin', 'postgres')) && fs.existsSync(path.join(root, m, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return found[0] === undefined ? undefined : path.join(root, found[0], 'bin');
}

const runsAsRoot = (): boolean => process.getuid?.() === 0;

// As root, run as `postgres`; as any other user, run as that user (PostgreSQL accepts it).
function runPg(bin: string, tool: string, args: string[]): string {
  const exe = path.join(bin, tool);
  const [cmd, argv] = runsAsRoot() ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ownedTempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-pg-'));
  fs.chmodSync(dir, 0o700);
  if (runsAsRoot()) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    fs.chownSync(dir, uid, gid);
  }
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function initCluster(bin: string, dir: string, password: string): string {
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  if (runsAsRoot()) execFileSync('chown', ['postgres', pwfile]);
  const data = path.join(dir, 'data');
  runPg(bin, 'initdb', ['-D', data, '-U', SUPERUSER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  fs.rmSync(pwfile);
  fs.mkdirSync(path.join(dir, 'sock'));
  if (runsAsRoot()) execFileSync('chown', ['postgres', path.join(dir, 'sock')]);
  return data;
}

// fsync off: a test server's data need not survive a power cut, and 2 shared cores are slow enough.
function startCluster(bin: string, dir: string, data: string, port: number): void {
  const opts = [
    `-p ${port}`,
    '-h 127.0.0.1',
    `-k ${path.join(dir, 'sock')}`,
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=300',
  ].join(' ');
  runPg(bin, 'pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', opts, 'start']);
}

export default async function setup(project?: { provide?: (key: string, value: unknown) => void }): Promise<() => void> {
  const bin = findServerBin();
  if (bin === undefined) {
    throw new Error(`PostgreSQL server binaries not found under ${PG_ROOT}/*/bin: run \`apt-get install postgresql\``);
  }
  const dir = ownedTempDir();
  watchForOrphan(bin, dir);
  const password = crypto.randomBytes(12).toString('hex');
  const data = initCluster(bin, dir, password);
  server = { bin, dir, data };
  let port = 0;
  // Another process can take the free port between our probe and the server's bind: try again.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      startCluster(bin, dir, data, port);
      break;
    } catch (e) {
      if (attempt >= 3) {
        teardown();
        const log = fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8').trim().split('\n').pop() : '';
        throw new Error(`PostgreSQL test server did not start: ${log || (e as Error).message}`);
      }
    }
  }
  const url = `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/postgres`;
  process.env.GALLERY_BRIDGE_TEST_PG_URL = url;
  project?.provide?.('pgUrl', url);
  return teardown;
}

// If vitest itself is killed, teardown never runs: a detached watcher stops the server and removes
// its folder once this process is gone, so no stray postgres outlives the test run.
function watchForOrphan(bin: string, dir: string): void {
  const stop = runsAsRoot() ? `runuser -u postgres -- '${bin}/pg_ctl'` : `'${bin}/pg_ctl'`;
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 2; done; if [ -d '${dir}' ]; then ${stop} -D '${dir}/data' -m immediate stop; rm -rf '${dir}'; fi`;
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

function teardown(): void {
  if (server === undefined) return;
  const { bin, dir, data } = server;
  server = undefined;
  try {
    runPg(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  } catch {
    // not running (start failed): nothing to stop
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
