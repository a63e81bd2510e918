// The manifest says every problem at once with its line; the schedule finishes the most
// accounts by a deadline and shares Google's budget fairly; `batch check` tries every row.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parseCsv, parseManifest } from '../src/batch/manifest.ts';
import { googleShares, orderJobs, planSchedule } from '../src/batch/schedule.ts';
import type { Job } from '../src/batch/schedule.ts';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';

describe('manifest', () => {
  it('reads quoted fields, CRLF and a BOM', () => {
    expect(parseCsv('\uFEFFa,b\r\n"x, y","say ""hi"""\r\n\r\n').map((r) => r.fields)).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"'],
    ]);
  });

  it('turns rows into accounts with their settings', () => {
    const m = parseManifest(
      'account,source,destination,source_account,destination_account,delete_source,delete_evidence,priority\n' +
        'alice@example.com,xiaomi,google-photos,alice,alice-g,yes,bytes,5\nbob,folder:/p/bob,onedrive:bob@contoso.com:/Pictures/Xiaomi,,,,,\n',
    );
    expect(m.problems).toEqual([]);
    expect(m.rows[0]).toMatchObject({
      line: 2,
      account: 'alice@example.com',
      sourceAccount: 'alice',
      destinationAccount: 'alice-g',
      deleteSource: true,
      deleteEvidence: 'bytes',
      priority: 5,
    });
    expect(m.rows[0]!.slug).toMatch(/^alice_example.com-[0-9a-f]{8}$/);
    expect(m.rows[1]).toMatchObject({ account: 'bob', slug: 'bob', sourceAccount: 'default', deleteSource: null, priority: 0 });
  });

  it('says every problem, one line each with its line number and what to do', () => {
    const m = parseManifest(
      'account,source,destination,color\n' +
        'a,dropbox,google-photos\n' +
        'b,xiaomi,onedrive:/Pictures\n' +
        'a,xiaomi,google-photos\n' +
        ',xiaomi,google-photos\n' +
        'c,xiaomi,folder:/x,\n' +
        'd,xiaomi,google-photos\n',
    );
    expect(m.problems.map((p) => [p.line, p.problem])).toEqual([
      [1, 'unknown column "color"'],
      [2, 'source "dropbox" is not one of: xiaomi, folder:PATH'],
      [3, 'destination "onedrive:/Pictures" must name the user and the path: onedrive:USER:PATH (app-only credentials write to each user\'s drive)'],
      [4, 'account "a" is already on line 2'],
      [5, 'no account name'],
    ]);
    expect(m.problems.every((p) => p.todo.length > 10)).toBe(true);
    expect(m.rows.map((r) => r.account)).toEqual(['c', 'd']);
    expect(parseManifest('account,source\n').problems[0]!.problem).toBe('missing column destination');
  });
});

const job = (slug: string, bytes: number, o: Partial<Job> = {}): Job => ({
  slug,
  account: slug,
  priority: 0,
  line: 1,
  providers: ['xiaomi', 'folder'],
  remainingItems: bytes / 1e6,
  remainingBytes: bytes,
  rate: 1e6,
  google: false,
  ...o,
});

describe('schedule', () => {
  it('with a deadline, runs the shortest accounts first so the most finish, and says which miss it', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const jobs = [
      job('big', 3600e6, { line: 1 }),
      job('small', 60e6, { line: 2 }),
      job('mid', 600e6, { line: 3 }),
      job('vip', 3000e6, { line: 4, priority: 1 }),
    ];
    const ordered = orderJobs(jobs, new Date('2026-01-01T01:00:00Z'));
    expect(ordered.map((j) => j.slug)).toEqual(['vip', 'small', 'mid', 'big']);
    const plan = planSchedule(ordered, { accountsAtOnce: 1, perProvider: {} }, null, now, new Date('2026-01-01T01:00:00Z'));
    expect(plan.map((p) => [p.slug, p.makesDeadline])).toEqual([
      ['vip', true],
      ['small', true],
      ['mid', false],
      ['big', false],
    ]);
    // Without a deadline the manifest order stands.
    expect(orderJobs(jobs, null).map((j) => j.slug)).toEqual(['vip', 'big', 'small', 'mid']);
  });

  it("Google's shared budget pushes accounts to later days, and per-provider limits serialise them", () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const reset = new Date('2026-01-01T08:00:00Z');
    const g = (s: string) => job(s, 100e6, { remainingItems: 1000, google: true, providers: ['xiaomi', 'google-photos'] });
    const plan = planSchedule(
      [g('a'), g('b'), g('c')],
      { accountsAtOnce: 3, perProvider: { 'google-photos': 3 } },
      { perDay: 1100, remainingToday: 2300, nextReset: reset },
      now,
      new Date('2026-01-01T06:00:00Z'),
    );
    expect(plan.map((p) => [p.slug, p.waitsForBudgetDays, p.makesDeadline])).toEqual([
      ['a', 0, true],
      ['b', 0, true],
      ['c', 1, false],
    ]);
    const serial = planSchedule([job('x', 100e6), job('y', 100e6)], { accountsAtOnce: 4, perProvider: { xiaomi: 1 } }, null, now, null);
    expect(serial[1]!.start.getTime()).toBe(serial[0]!.finish!.getTime());
  });

  it('fair shares: max-min, and what a small account leaves goes to the others; in order with a deadline', () => {
    const needs = [
      { slug: 'a', need: 100 },
      { slug: 'b', need: 5000 },
      { slug: 'c', need: 5000 },
    ];
    expect(Object.fromEntries(googleShares(needs, 3100, 'fair'))).toEqual({ a: 100, b: 1500, c: 1500 });
    expect(Object.fromEntries(googleShares(needs, 3100, 'in-order'))).toEqual({ a: 100, b: 3000, c: 0 });
  });
});

describe('batch check', () => {
  it('writes one line per problem (CSV and HTML), counts items and bytes, and exits non-zero when a row cannot run', async () => {
    const t = tmpDir('gb-check-');
    fs.mkdirSync(path.join(t, 'src', 'a', 'Album'), { recursive: true });
    for (const f of ['img_1771.jpg', 'f6t.jpg']) fs.copyFileSync(path.join(FIXTURES, f), path.join(t, 'src', 'a', 'Album', f));
    fs.writeFileSync(path.join(t, 'readonly'), 'a file where a folder should be');
    fs.writeFileSync(
      path.join(t, 'm.csv'),
      [
        'account,source,destination',
        `ann,folder:${t}/src/a,folder:${t}/dst/ann`,
        `ben,folder:${t}/src/missing,folder:${t}/dst/ben`,
        `cat,folder:${t}/src/a,folder:${t}/readonly/cat`,
        `dan,xiaomi,google-photos`,
        'eve,ftp:x,folder:/tmp/x',
      ].join('\n'),
    );
    const r = await runCli(['batch', 'check', path.join(t, 'm.csv'), '--state', path.join(t, 'b'), '--json'], {
      env: { GALLERY_BRIDGE_HOME: path.join(t, 'home'), XIAOMI_BASE_URL: 'http://127.0.0.1:9' },
    });
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.accounts.find((a: { account: string }) => a.account === 'ann')).toMatchObject({
      ok: true,
      items: 2,
      bytes: fs.statSync(path.join(FIXTURES, 'img_1771.jpg')).size + fs.statSync(path.join(FIXTURES, 'f6t.jpg')).size,
    });
    const csv = fs
      .readFileSync(path.join(t, 'b', 'check.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(csv[0]).toBe('line,account,severity,problem,what_to_do');
    const lines = csv.slice(1).join('\n');
    expect(lines).toMatch(/^3,ben,error,source folder .*missing does not exist/m);
    expect(lines).toMatch(/^4,cat,error,"destination not writable: .*readonly is a file, not a folder/m);
    expect(lines).toMatch(
      /^5,dan,error,"credentials missing or refused: no Xiaomi credentials.*",Sign in: gallery-bridge auth xiaomi --account default \(it shows a QR code/m,
    );
    expect(lines).toMatch(/^6,eve,error,"?source ""?ftp:x/m);
    expect(lines).not.toMatch(/^2,ann/m);
    const html = fs.readFileSync(path.join(t, 'b', 'check.html'), 'utf8');
    expect(html).toContain('1 of 5 accounts can run.');
    expect(html).toContain('4 problems must be fixed first.');
  });
});
