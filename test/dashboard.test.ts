// The live dashboard in a real headless Chromium (Debian's chromium, driven by playwright-core):
// a screenshot taken while a batch runs, the numbers on the page checked against the state
// stores, no secret on the page, and nothing but reading allowed.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCredentials } from '../src/lib/credentials.ts';
import { batchView, stateProgress } from '../src/batch/view.ts';
import { CLI, FIXTURES, ROOT, runCli, tmpDir } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAS_CHROMIUM) console.warn(`dashboard test skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`);

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function start(args: string[], env: Record<string, string>, want: (line: string) => boolean): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${args[0]} did not start`)), 60_000);
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      lines.push(l);
      if (want(l)) {
        clearTimeout(t);
        resolve({ child, lines });
      }
    });
    child.on('exit', (c) => reject(new Error(`${args[0]} exited ${c}`)));
  });
}

const until = async (what: string, f: () => boolean, ms = 120_000) => {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
};

/** "12 / 120" cells of the accounts table, by account. */
async function pageCounts(page: import('playwright-core').Page): Promise<Map<string, { done: number; items: number; status: string }>> {
  const rows = await page.$$eval('#accounts tr[data-account]', (trs) =>
    trs.map((tr) => ({
      account: tr.getAttribute('data-account')!,
      done: tr.querySelector('[data-k=done]')!.textContent!,
      status: tr.querySelector('.state')!.textContent!,
    })),
  );
  return new Map(
    rows.map((r) => {
      const [done, items] = r.done.split('/').map((s) => Number(s.replace(/[^\d]/g, '')));
      return [r.account, { done: done!, items: items!, status: r.status }];
    }),
  );
}

describe.skipIf(!HAS_CHROMIUM)('dashboard in headless Chromium', () => {
  it('shows a running batch with the numbers of the state stores, no secrets, read-only; screenshot', async () => {
    const { chromium } = await import('playwright-core');
    const t = tmpDir('gb-dash-');
    const home = path.join(t, 'home');
    const dir = path.join(t, 'batch');
    const xdata = path.join(t, 'xiaomi');
    const emu = await start(['emulator', 'xiaomi', '--port', '0', '--data', xdata, '--synthetic', '150', '--latency-ms', '60'], {}, (l) =>
      l.startsWith('XIAOMI_COOKIE='),
    );
    const env = Object.fromEntries(
      emu.lines
        .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l))
        .filter((m) => m)
        .map((m) => [m![1]!, m![2]!]),
    );
    const { credentialsFromText } = await import('../providers/xiaomi/session.ts');
    const creds = credentialsFromText(env.XIAOMI_COOKIE!);
    writeCredentials(home, 'xiaomi', 'anna', { ...creds, savedAt: new Date().toISOString() });
    writeCredentials(home, 'xiaomi', 'old', {
      userId: creds.userId,
      serviceToken: 'stale-token',
      passToken: 'revoked-pass',
      savedAt: new Date().toISOString(),
    });
    const rows = [
      'account,source,destination,source_account,priority',
      `anna (xiaomi),xiaomi,folder:${t}/dst/anna,anna,1`,
      `ben (expired),xiaomi,folder:${t}/dst/ben,old,1`,
    ];
    for (const name of ['carla', 'dev', 'emil', 'fay']) {
      fs.mkdirSync(path.join(t, 'src', name, 'Camera'), { recursive: true });
      for (const f of ['img_1771.jpg', 'noexif.jpg', 'f6t.jpg', 'IMG_20180725_163423.jpg'])
        fs.copyFileSync(path.join(FIXTURES, f), path.join(t, 'src', name, 'Camera', f));
      rows.push(`${name},folder:${t}/src/${name},folder:${t}/dst/${name},,`);
    }
    fs.writeFileSync(path.join(t, 'm.csv'), rows.join('\n') + '\n');
    const runEnv = { GALLERY_BRIDGE_HOME: home, XIAOMI_BASE_URL: env.XIAOMI_BASE_URL!, GALLERY_BRIDGE_BACKOFF_SCALE: '0.01' };
    const run = runCli(['batch', 'run', path.join(t, 'm.csv'), '--state', dir, '--accounts-at-once', '3', '--concurrency', '2'], {
      env: runEnv,
      timeoutMs: 300_000,
    });
    await until('the batch to start', () => fs.existsSync(path.join(dir, 'batch.db')));
    const serve = await start(['serve', '--state', dir, '--port', '0'], {}, (l) => l.startsWith('DASHBOARD_URL='));
    const url = serve.lines.find((l) => l.startsWith('DASHBOARD_URL='))!.slice('DASHBOARD_URL='.length);
    await until('anna to be under way and ben paused', () => {
      const v = batchView(dir);
      const a = v.accounts.find((x) => x.account === 'anna (xiaomi)');
      const b = v.accounts.find((x) => x.account === 'ben (expired)');
      return !!a && a.status === 'running' && a.doneItems >= 10 && b?.status === 'paused';
    });

    const userData = tmpDir('gb-chromium-');
    const browser = await chromium.launchPersistentContext(userData, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1200, height: 900 },
    });
    try {
      const page = await browser.newPage();
      // The numbers of a running account lie between what its store said before and after the page was read.
      const before = batchView(dir);
      await page.goto(url);
      await page.waitForSelector('#accounts tr[data-account]');
      const seen = await pageCounts(page);
      const after = batchView(dir);
      expect(seen.size).toBe(6);
      for (const [account, s] of seen) {
        const b = before.accounts.find((a) => a.account === account)!;
        const a = after.accounts.find((x) => x.account === account)!;
        expect([account, s.done >= b.doneItems && s.done <= a.doneItems]).toEqual([account, true]);
        expect([account, s.items >= b.items && s.items <= a.items]).toEqual([account, true]);
      }
      expect(seen.get('anna (xiaomi)')!.status).toBe('running');
      expect(seen.get('ben (expired)')!.status).toBe('paused');
      const text = await page.textContent('body');
      expect(text).toContain('credentials expired or refused');
      expect(text).toContain('What to do: Sign in again');
      const shot = path.join(t, 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(20_000);
      if (process.env.GB_UPDATE_DOCS) fs.copyFileSync(shot, path.join(ROOT, 'docs', 'dashboard.png'));
      const html = await page.content();
      for (const secret of [creds.serviceToken!, 'revoked-pass', 'stale-token']) expect(html).not.toContain(secret);

      // The page refreshes itself from the stores: once the batch is over, every number matches them exactly.
      const r = await run;
      expect(r.code).toBe(1); // ben stays paused
      const final = batchView(dir);
      await page.waitForFunction((done) => document.querySelector('[data-k=accounts-done]')?.textContent === done, `${final.totals.byStatus.done} / 6`, {
        timeout: 30_000,
      });
      const last = await pageCounts(page);
      for (const a of final.accounts) {
        const p = stateProgress(path.join(dir, 'accounts', a.slug, 'state.db'));
        expect([a.account, last.get(a.account)]).toEqual([
          a.account,
          { done: p.doneItems, items: p.items, status: a.status === 'waiting-quota' ? 'waiting for quota' : a.status },
        ]);
      }
      expect(await page.textContent('[data-k=items-done]')).toBe(final.totals.doneItems.toLocaleString('en-US'));

      // An account's report opens from the dashboard; the batch report is the same page, written.
      await page.click('text=carla');
      await page.waitForSelector('h1');
      expect(await page.textContent('.lead')).toContain('4 of 4 items');
      if (process.env.GB_UPDATE_DOCS) {
        await page.screenshot({ path: path.join(ROOT, 'docs', 'account-report.png'), fullPage: false });
        const rep = await browser.newPage();
        await rep.goto('file://' + path.join(dir, 'report.html'));
        await rep.screenshot({ path: path.join(ROOT, 'docs', 'batch-report.png'), fullPage: true });
      }
    } finally {
      await browser.close();
    }

    // Read-only, and only for this machine's names.
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);
    const port = new URL(url).port;
    const evil = await new Promise<number>((resolve) => {
      import('node:http').then((http) =>
        http.get({ host: '127.0.0.1', port, path: '/', headers: { Host: 'attacker.example' } }, (res) => resolve(res.statusCode!)),
      );
    });
    expect(evil).toBe(403);
    expect((await fetch(new URL('/accounts/..%2F..%2Fetc/report.html', url))).status).toBe(404);
    serve.child.kill('SIGTERM');
    emu.child.kill('SIGTERM');
  }, 400_000);
});
