// A batch of 20 accounts across the emulators, with faults on, a tight shared Google budget and
// a deadline. One account's Xiaomi sign-in is expired, one's destination is a full disk (a real
// tmpfs mount), and one's source (the Xiaomi emulator) goes down mid-run. The others finish,
// the three are paused with clear reasons, and a rerun after the causes are removed finishes
// them. Nothing is duplicated or lost: checked against the emulators' data and the disk.

import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCredentials } from '../src/lib/credentials.ts';
import { batchView, stateProgress } from '../src/batch/view.ts';
import { startGoogleEmulator } from './google-photos-emulator.ts';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';
import { sha1Counts, visibleFilesUnder, writeDistinctPhotos } from './helpers/photo-files.ts';
import { startXiaomiProcess } from './helpers/xiaomi-process.ts';

const TOKEN = 'batch-test-google-token-0123456789';
const children = new Set<ChildProcess>();
const mounts: string[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const m of mounts) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
});

function tmpfs(dir: string, sizeKb: number): boolean {
  fs.mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir], { stdio: 'ignore' });
    mounts.push(dir);
    return true;
  } catch {
    return false;
  }
}
const CAN_MOUNT = (() => {
  const d = tmpDir('gb-mount-probe-');
  const ok = tmpfs(d, 64);
  if (ok) {
    execFileSync('umount', [d]);
    mounts.pop();
  }
  return ok;
})();

async function startXiaomi(data: string, flags: string[] = []): Promise<{ env: Record<string, string>; child: ChildProcess }> {
  const xiaomi = await startXiaomiProcess(['--data', data, '--synthetic', '120', '--random-seed', '3', ...flags]);
  children.add(xiaomi.child);
  return xiaomi;
}

describe.skipIf(!CAN_MOUNT)('batch of 20 accounts (needs tmpfs mounts for the full destination)', () => {
  it('isolates an expired sign-in, a full destination and a source that goes down; a rerun finishes them; nothing duplicated or lost', async () => {
    const t = tmpDir('gb-batch-');
    const home = path.join(t, 'home');
    const dir = path.join(t, 'batch');
    const google = await startGoogleEmulator(
      TOKEN,
      ['--daily-quota', '2000', '--fault-5xx', '0.03', '--fault-429', '0.03', '--random-seed', '11'],
      'gb-batch-gp-',
    );
    const xdata = path.join(t, 'xiaomi');
    let xiaomi = await startXiaomi(xdata, ['--latency-ms', '40', '--fault-5xx', '0.02']);
    const cookie = xiaomi.env.XIAOMI_COOKIE!;
    const { credentialsFromText } = await import('../providers/xiaomi/session.ts');
    const good = credentialsFromText(cookie);
    writeCredentials(home, 'xiaomi', 'xgood', { ...good, savedAt: new Date().toISOString() });
    // A sign-in Xiaomi no longer honours: a stale serviceToken and a revoked passToken.
    writeCredentials(home, 'xiaomi', 'xold', {
      userId: good.userId,
      serviceToken: 'stale-service-token',
      passToken: 'revoked-pass-token',
      savedAt: new Date().toISOString(),
    });

    const rows = ['account,source,destination,source_account,priority'];
    const folderAccounts: string[] = [];
    const googleAccounts: string[] = [];
    for (let i = 1; i <= 12; i++) {
      const a = `folder-${String(i).padStart(2, '0')}`;
      await writeDistinctPhotos(path.join(t, 'src', a), i, 4 + (i % 3));
      rows.push(`${a},folder:${t}/src/${a},folder:${t}/dst/${a},,`);
      folderAccounts.push(a);
    }
    for (let i = 1; i <= 5; i++) {
      const a = `google-${i}`;
      await writeDistinctPhotos(path.join(t, 'src', a), 100 + i, 5);
      rows.push(`${a},folder:${t}/src/${a},google-photos,,`);
      googleAccounts.push(a);
    }
    rows.push(`xiaomi-down,xiaomi,folder:${t}/dst/xiaomi-down,xgood,1`);
    rows.push(`xiaomi-expired,xiaomi,folder:${t}/dst/xiaomi-expired,xold,2`); // starts while the source is up
    // The full destination: a 400 kB tmpfs for 2.5 MB of photos.
    fs.mkdirSync(path.join(t, 'src', 'full', 'Camera'), { recursive: true });
    for (const f of ['canon-dslr.jpg', 'cookiezen.jpg', 'img_1771.jpg']) fs.copyFileSync(path.join(FIXTURES, f), path.join(t, 'src', 'full', 'Camera', f));
    expect(tmpfs(path.join(t, 'small'), 400)).toBe(true);
    rows.push(`full,folder:${t}/src/full,folder:${t}/small/full,,`);
    const manifest = path.join(t, 'accounts.csv');
    fs.writeFileSync(manifest, rows.join('\n') + '\n');
    expect(rows.length - 1).toBe(20);

    const env = {
      GALLERY_BRIDGE_HOME: home,
      XIAOMI_BASE_URL: xiaomi.env.XIAOMI_BASE_URL!,
      GOOGLE_PHOTOS_BASE_URL: google.env.GOOGLE_PHOTOS_BASE_URL!,
      GOOGLE_ACCESS_TOKEN: TOKEN,
      GALLERY_BRIDGE_BACKOFF_SCALE: '0.01',
    };

    // The check pass counts every account and finds two of the three problems before anything moves.
    const check = await runCli(['batch', 'check', manifest, '--state', dir, '--accounts-at-once', '4'], { env, timeoutMs: 240_000 });
    expect(check.code).toBe(1);
    const checkCsv = fs.readFileSync(path.join(dir, 'check.csv'), 'utf8');
    expect(checkCsv).toMatch(/,xiaomi-expired,error,"?credentials missing or refused/);
    expect(checkCsv).toMatch(/,full,error,"?destination full: /);
    expect(checkCsv).not.toMatch(/,(folder-\d\d|google-\d|xiaomi-down),error/);

    // Run 1: the Xiaomi source goes down once the account is under way.
    const deadline = new Date(Date.now() + 6 * 3600_000).toISOString();
    const args = [
      'batch',
      'run',
      manifest,
      '--state',
      dir,
      '--deadline',
      deadline,
      '--accounts-at-once',
      '6',
      '--per-provider',
      'google-photos=2',
      '--google-daily-budget',
      '60',
      '--retries',
      '2',
      '--fail-streak',
      '6',
      '--concurrency',
      '3',
    ];
    const run1 = runCli(args, { env, timeoutMs: 400_000 });
    const downState = path.join(dir, 'accounts', 'xiaomi-down', 'state.db');
    // ...and once the expired sign-in was met while the source was up (no race on who runs first).
    const expiredSettled = () => {
      try {
        return batchView(dir).accounts.find((a) => a.account === 'xiaomi-expired')?.status === 'paused';
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 2400; i++) {
      if (stateProgress(downState).doneItems >= 5 && expiredSettled()) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stateProgress(downState).doneItems).toBeGreaterThanOrEqual(5);
    xiaomi.child.kill('SIGKILL');
    const r1 = await run1;
    expect(r1.code, r1.stderr).toBe(1);
    expect(r1.stderr).toMatch(/Deadline .*: \d+ of 20 accounts finish in time/);
    expect(r1.stderr).toMatch(/Google budget: 60 of 60 requests left today/);

    const status1 = await runCli(['batch', 'status', '--state', dir, '--json']);
    const v1 = JSON.parse(status1.stdout) as { accounts: Array<{ account: string; status: string; reason: string | null; doneItems: number; items: number }> };
    const by1 = new Map(v1.accounts.map((a) => [a.account, a]));
    for (const a of [...folderAccounts, ...googleAccounts]) expect([a, by1.get(a)!.status]).toEqual([a, 'done']);
    expect(by1.get('xiaomi-expired')).toMatchObject({ status: 'paused', reason: expect.stringMatching(/^credentials expired or refused: /) });
    expect(by1.get('full')).toMatchObject({ status: 'paused', reason: expect.stringMatching(/^destination full/) });
    expect(by1.get('xiaomi-down')!.status).toBe('paused');
    expect(by1.get('xiaomi-down')!.reason).toMatch(/errors/);
    expect(by1.get('xiaomi-down')!.doneItems).toBeLessThan(120);
    const text1 = (await runCli(['batch', 'status', '--state', dir])).stdout;
    expect(text1).toMatch(/^xiaomi-expired\s+paused\s+0\/0 .*credentials expired or refused/m);

    // The batch report: a row per account, the three with what to do; nothing secret in it.
    const report = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(report).toContain('17 of 20 accounts done');
    expect(report).toMatch(/xiaomi-expired: paused<\/h3><p class="err">credentials expired or refused/);
    for (const secret of [good.serviceToken!, 'revoked-pass-token', TOKEN]) {
      for (const f of [
        report,
        fs.readFileSync(path.join(dir, 'report.json'), 'utf8'),
        fs.readFileSync(path.join(dir, 'report.csv'), 'utf8'),
        status1.stdout,
        r1.stdout,
        r1.stderr,
      ])
        expect(f).not.toContain(secret);
    }

    // Remove the causes: the source is back, the sign-in renewed, the disk bigger.
    xiaomi = await startXiaomi(xdata, ['--latency-ms', '5']);
    writeCredentials(home, 'xiaomi', 'xold', { ...good, savedAt: new Date().toISOString() });
    execFileSync('mount', ['-o', 'remount,size=20m', path.join(t, 'small')]);
    const r2 = await runCli(args, { env: { ...env, XIAOMI_BASE_URL: xiaomi.env.XIAOMI_BASE_URL! }, timeoutMs: 400_000 });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(/20 accounts: 17 done, 3 to run/);
    const v2 = JSON.parse((await runCli(['batch', 'status', '--state', dir, '--json'])).stdout) as typeof v1;
    expect(v2.accounts.every((a) => a.status === 'done')).toBe(true);

    // From the outside: every source item exactly once at its destination.
    for (const a of [...folderAccounts, 'full']) {
      const src = sha1Counts(path.join(t, 'src', a));
      const dst = sha1Counts(a === 'full' ? path.join(t, 'small', 'full') : path.join(t, 'dst', a));
      expect([a, dst]).toEqual([a, new Map([...src.keys()].map((k) => [k, 1]))]);
    }
    const items = (await google.state()).mediaItems;
    for (const a of googleAccounts) {
      // Google gets a copy with the capture date written in (issue 13), so the photo is found by its name, once.
      for (const f of visibleFilesUnder(path.join(t, 'src', a))) {
        const held = items.filter((m) => m.filename === path.basename(f));
        expect([path.basename(f), held.length]).toEqual([path.basename(f), 1]);
        const meta = await sharp(fs.readFileSync(held[0]!.file)).metadata();
        expect([meta.width, meta.height]).toEqual([48, 32]);
      }
    }
    expect(items.length).toBe(25);
    const xmanifest = JSON.parse(fs.readFileSync(path.join(xdata, '.emulator', 'xiaomi-manifest.json'), 'utf8')) as Array<{ sha1: string }>;
    expect(xmanifest.length).toBe(120);
    for (const a of ['xiaomi-down', 'xiaomi-expired']) {
      const dst = sha1Counts(path.join(t, 'dst', a));
      expect([a, dst]).toEqual([a, new Map(xmanifest.map((m) => [m.sha1, 1]))]);
    }
    xiaomi.child.kill('SIGTERM');
    await google.close();
  }, 900_000);
});
