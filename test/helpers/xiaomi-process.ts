// The Xiaomi emulator as its own process (`gallery-bridge emulator xiaomi`), for tests that stop
// it mid-run or run it beside other processes: started on a free port, ready once it has printed
// the base URL and the cookie a client signs in with.

import { type ChildProcess, spawn } from 'node:child_process';
import readline from 'node:readline';
import { CLI } from '../helpers.ts';

/** Starts it with `flags` after `--port 0`; `env` holds the lines it printed (XIAOMI_BASE_URL=…). The caller stops it. */
export async function startXiaomiProcess(flags: string[]): Promise<{ env: Record<string, string>; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, 'emulator', 'xiaomi', '--port', '0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  // What it said on stderr before it was ready, for the error; read on after that, never kept.
  let err = '';
  let ready = false;
  child.stderr!.on('data', (d) => {
    if (!ready) err += String(d);
  });
  const env: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`xiaomi emulator did not start: ${err}`));
    }, 30_000);
    child.on('exit', (code) => reject(new Error(`xiaomi emulator exited with ${code}: ${err}`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
      if (env.XIAOMI_BASE_URL && env.XIAOMI_COOKIE) {
        clearTimeout(t);
        ready = true;
        resolve();
      }
    });
  });
  return { env, child };
}
