// gallery-bridge end to end into the OneDrive emulator, through the real CLI as a child process:
// sign-in with the device-code flow, every fault kind at once, a 200 MB upload killed with
// SIGKILL and resumed, a full drive (exit 5) and refused credentials (exit 3).
// Everything is checked from the outside: the bytes the emulator stored on disk, its own
// request counters, and the source folder.

import { describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FIXTURES, killCliWhen, makeSource, runCli, sha256File, tmpDir, treeHashes } from './helpers.ts';
import { oneDriveKit } from './onedrive-kit.ts';

const TOKEN = 'e2e-token-abcdef0123456789';
const od = oneDriveKit(TOKEN);
const { emulator, cliEnv } = od;

/** Every file under the source must be at DATA/me/<root>/<album>/<name> with the same bytes. */
function expectStored(pristine: Map<string, string>, data: string, root: string): void {
  for (const [rel, hash] of pristine) {
    const stored = path.join(data, 'me', root, rel);
    expect(fs.existsSync(stored), `${rel} missing at OneDrive`).toBe(true);
    expect(sha256File(stored), `${rel} bytes differ`).toBe(hash);
  }
}

describe('gallery-bridge migrate --to onedrive (CLI, emulator)', () => {
  it('migrates the sample media with every fault on, signed in by device code; verified before any deletion', async () => {
    const t = tmpDir('gb-od-e2e-');
    const src = path.join(t, 'src');
    const data = path.join(t, 'emu');
    const home = path.join(t, 'home');
    const files = fs.readdirSync(FIXTURES);
    makeSource(src, { Camera: files, Trip: files });
    fs.writeFileSync(path.join(src, 'Camera', 'empty.jpg'), '');
    const pristine = treeHashes(src);
    const e = await emulator(data, [
      '--fault-429',
      '0.06',
      '--fault-5xx',
      '0.06',
      '--fault-drop',
      '0.06',
      '--fault-corrupt',
      '0.2',
      '--latency-ms',
      '3',
      '--random-seed',
      '20261123',
      '--retry-after',
      '1',
      '--hash-delay-ms',
      '200',
    ]);
    const env = cliEnv(e, home, {
      ONEDRIVE_ACCESS_TOKEN: '',
      ONEDRIVE_CLIENT_ID: '0d1e2f3a-0000-4000-8000-000000000001',
      ONEDRIVE_AUTHORITY: e.env.ONEDRIVE_AUTHORITY!,
      ONEDRIVE_HASH_RETRY_MS: '100',
    });

    const auth = await runCli(['auth', 'onedrive'], { env });
    expect(auth.code, auth.stderr).toBe(0);
    expect(auth.stdout + auth.stderr).toMatch(/enter the code/);
    expect(fs.statSync(path.join(home, 'credentials', 'onedrive', 'default.msal.json')).mode & 0o777).toBe(0o600);

    const state = path.join(t, 'state.db');
    const args = [
      'migrate',
      '--from',
      `folder:${src}`,
      '--to',
      'onedrive:/Pictures/Xiaomi',
      '--state',
      state,
      '--delete-source',
      '--delete-evidence',
      'bytes',
      '--concurrency',
      '4',
      '--onedrive-chunk-size',
      '320KiB',
      '--retries',
      '6',
    ];
    let last = null;
    for (let run = 0; run < 4; run++) {
      last = await runCli(args, { env });
      // After every run: whatever left the source was verified with byte evidence and is stored intact.
      const db = new Database(state, { readonly: true });
      const rows = db.prepare('SELECT source_id, state, evidence_level FROM items').all() as Array<{
        source_id: string;
        state: string;
        evidence_level: string | null;
      }>;
      db.close();
      for (const [rel] of pristine) {
        if (fs.existsSync(path.join(src, rel))) continue;
        const row = rows.find((r) => r.source_id === rel || r.source_id.endsWith(rel));
        expect(row, `${rel} deleted but unknown`).toBeDefined();
        expect(row!.evidence_level, `${rel} deleted without byte evidence`).toBe('bytes');
      }
      expectStored(new Map([...pristine].filter(([rel]) => !fs.existsSync(path.join(src, rel)))), data, 'Pictures/Xiaomi');
      if (last.code === 0) break;
    }
    expect(last!.code, last!.stderr + last!.stdout).toBe(0);
    expectStored(pristine, data, 'Pictures/Xiaomi');
    expect(treeHashes(src).size).toBe(0); // all deleted, each after its verification
    const m = e.emulator.metrics;
    expect(m.faults['429'] ?? 0).toBeGreaterThan(0);
    expect((m.faults['500'] ?? 0) + (m.faults['503'] ?? 0)).toBeGreaterThan(0);
    expect(m.authHeaderOnUploadUrl).toBe(0);
    const out = last!.stdout + last!.stderr;
    expect(out).not.toContain('tempauth');
    expect(out).not.toMatch(/emu-at-|emu-rt-/);
  });

  it('a 200 MB file killed mid-upload resumes its session: no byte sent twice beyond one chunk', async () => {
    const t = tmpDir('gb-od-big-');
    const src = path.join(t, 'src', 'Videos');
    fs.mkdirSync(src, { recursive: true });
    const file = path.join(src, 'VID_big.mp4');
    const size = 200 * 1024 * 1024;
    const fd = fs.openSync(file, 'w');
    for (let o = 0; o < size; o += 8 * 1024 * 1024) fs.writeSync(fd, crypto.randomBytes(Math.min(8 * 1024 * 1024, size - o)));
    fs.closeSync(fd);
    const data = path.join(t, 'emu');
    const e = await emulator(data, ['--request-log']);
    const env = cliEnv(e, path.join(t, 'home'));
    const state = path.join(t, 'state.db');
    const chunk = 10 * 1024 * 1024;
    const args = [
      'migrate',
      '--from',
      `folder:${path.join(t, 'src')}`,
      '--to',
      'onedrive:/Pictures/Xiaomi',
      '--state',
      state,
      '--onedrive-chunk-size',
      '10MiB',
    ];
    const key = 'me:/Pictures/Xiaomi/Videos/VID_big.mp4';

    // First run: SIGKILL once 60 MB have reached the emulator.
    let killedAt = 0;
    await killCliWhen(args, env, () => {
      killedAt = e.emulator.metrics.perPath[key]?.received ?? 0;
      return killedAt >= 60 * 1024 * 1024;
    });
    expect(killedAt).toBeLessThan(size);
    expect(fs.existsSync(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Videos', 'VID_big.mp4'))).toBe(false);

    const second = await runCli(args, { env });
    expect(second.code, second.stderr).toBe(0);
    const pm = e.emulator.metrics.perPath[key]!;
    expect(pm.sessions).toBe(1); // resumed the saved session, not a new one
    expect(pm.received).toBeLessThanOrEqual(size + chunk);
    expect(pm.accepted).toBe(size);
    expect(sha256File(path.join(data, 'me', 'Pictures', 'Xiaomi', 'Videos', 'VID_big.mp4'))).toBe(sha256File(file));
    // The request log agrees: fragment PUTs never covered any byte range twice beyond one fragment.
    const log = fs.readFileSync(path.join(data, '.emulator', 'requests.log'), 'utf8');
    expect(log).not.toContain('tempauth');
    const accepted = log
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { method: string; status: number; range?: string })
      .filter((r) => r.method === 'PUT' && r.range && r.status >= 200 && r.status < 300)
      .map((r) => Number(/bytes (\d+)-/.exec(r.range!)![1]));
    expect(new Set(accepted).size).toBe(accepted.length);
    expect(accepted.length).toBe(Math.ceil(size / chunk) + 1); // 20 fragments of 10 MiB; the last 320 KiB held back for commit
  });

  it('a full drive stops with exit code 5 and resumes once there is room; a refused token exits 3', async () => {
    const t = tmpDir('gb-od-full-');
    makeSource(path.join(t, 'src'), { Camera: ['IMG_20180725_163423.jpg', 'canon-dslr.jpg', 'cookiezen.jpg', 'heic-iphone7.heic'] });
    const pristine = treeHashes(path.join(t, 'src'));
    const data = path.join(t, 'emu');
    const state = path.join(t, 'state.db');
    const args = ['migrate', '--from', `folder:${path.join(t, 'src')}`, '--to', 'onedrive:/Pictures/Xiaomi', '--state', state, '--concurrency', '1'];

    const small = await emulator(data, ['--quota-bytes', '5000000']);
    const port = new URL(small.env.GRAPH_BASE_URL!).port;
    const plan = await runCli(['plan', ...args.slice(1)], { env: cliEnv(small, path.join(t, 'home')) });
    expect(plan.stdout + plan.stderr).toMatch(/5[,.]?000[,.]?000|5\.0 MB|4\.8 MiB|not fit|does not fit|won't fit/i);
    const full = await runCli(args, { env: cliEnv(small, path.join(t, 'home')) });
    expect(full.code, full.stderr + full.stdout).toBe(5);
    expect(full.stderr + full.stdout).toMatch(/full/i);

    // (A fresh state: with the saved upload sessions, which need no token, the run would get as
    // far as the full drive again before it ever asked the API.)
    const badArgs = [...args.slice(0, -4), '--state', path.join(t, 'other.db'), '--concurrency', '1'];
    const bad = await runCli(badArgs, { env: cliEnv(small, path.join(t, 'home'), { ONEDRIVE_ACCESS_TOKEN: 'not-a-valid-token-xyz' }) });
    expect(bad.code, bad.stderr + bad.stdout).toBe(3);
    expect(bad.stderr + bad.stdout).not.toContain('not-a-valid-token-xyz');

    // More room (same data, same port): the run resumes and finishes.
    await od.close(small);
    const roomy = await emulator(data, ['--port', port]);
    const done = await runCli(args, { env: cliEnv(roomy, path.join(t, 'home')) });
    expect(done.code, done.stderr + done.stdout).toBe(0);
    expectStored(pristine, data, 'Pictures/Xiaomi');
  });
});
