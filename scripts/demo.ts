// `npm run demo`: a full migration of the bundled sample media with no account at all.
// It seeds the Xiaomi emulator with the samples and migrates them to the OneDrive emulator with
// deletion at the source, when those providers are present; otherwise folder to folder.
// Everything lands in ./demo-out/ so a newcomer can look at what happened.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { loadProviders } from '../providers/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'demo-out');
const fixtures = path.join(root, 'test', 'fixtures');
const cli = path.join(root, 'bin', 'gallery-bridge.js');

fs.rmSync(out, { recursive: true, force: true });
const seed = path.join(out, 'seed');
const albums: Record<string, string[]> = { Camera: [], Screenshots: [], Holidays: [] };
const seedFiles = fs.readdirSync(fixtures).filter((f) => !f.startsWith('.'));
for (const [i, f] of seedFiles.entries()) albums[['Camera', 'Holidays', 'Screenshots'][i % 3]!]!.push(f);
for (const [album, files] of Object.entries(albums)) {
  fs.mkdirSync(path.join(seed, album), { recursive: true });
  for (const f of files) fs.copyFileSync(path.join(fixtures, f), path.join(seed, album, f));
}

const children: Array<ReturnType<typeof spawn>> = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGTERM');
});

/** Starts an emulator as its own process and collects the KEY=VALUE lines it prints. */
async function emulator(name: string, args: string[]): Promise<Record<string, string>> {
  const child = spawn(process.execPath, [cli, 'emulator', name, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const env: Record<string, string> = {};
  const rl = readline.createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(env), 15_000);
    child.on('exit', (code) => reject(new Error(`emulator ${name} exited with ${code}`)));
    rl.on('line', (line) => {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
      // The emulators print their lines at once; a short quiet spell means they are done.
      clearTimeout(t);
      setTimeout(() => resolve(env), 300);
    });
  });
}

const available = await loadProviders().catch(() => []);
const has = (name: string) => available.some((p) => p.name === name && p.emulator);
const env: Record<string, string> = { ...(process.env as Record<string, string>), GALLERY_BRIDGE_HOME: path.join(out, 'home') };
let from = `folder:${seed}`;
let to = `folder:${path.join(out, 'destination')}`;

if (has('xiaomi')) {
  Object.assign(env, await emulator('xiaomi', ['--seed', seed, '--data', path.join(out, 'xiaomi-data')]));
  from = 'xiaomi';
}
if (has('onedrive')) {
  const od = await emulator('onedrive', ['--data', path.join(out, 'onedrive-data'), '--accept-token', 'demo-token']);
  Object.assign(env, od, { ONEDRIVE_ACCESS_TOKEN: 'demo-token' });
  to = 'onedrive:/Pictures/Xiaomi';
}

const state = path.join(out, 'demo.db');
const report = path.join(out, 'report.html');
process.stderr.write(`\ngallery-bridge demo: ${from} -> ${to}, deleting each item at the source once verified\n\n`);
const args = ['migrate', '--from', from, '--to', to, '--state', state, '--delete-source', '--report', report];
const code = await new Promise<number>((resolve) => {
  const c = spawn(process.execPath, [cli, ...args], { stdio: 'inherit', env, cwd: root });
  c.on('close', (n) => resolve(n ?? 1));
});
process.stderr.write(`\nexit code ${code}. Report: ${report}\nState: ${state} (try: npx gallery-bridge status --state ${path.relative(root, state)})\n`);
process.stderr.write(`Items that stay at the source are kept on purpose: each report row says why.\n`);
process.exit(code);
