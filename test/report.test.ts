// Reports a person reads: the summary first, reasons grouped with what to do, thumbnails of the
// items that need attention (a placeholder where the format cannot be decoded here), every item
// accounted for, human units, and no secrets. The state is built through the state machine, as
// a run would leave it; the thumbnails are read from the source folder on disk.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { openState, setMeta } from '../state/db.ts';
import type { DB } from '../state/db.ts';
import { Items } from '../state/items.ts';
import { startRun, finishRun } from '../src/engine/runs.ts';
import { writeReport } from '../src/report/report.ts';
import { bytes, duration } from '../src/report/human.ts';
import { FIXTURES, runCli, tmpDir } from './helpers.ts';

const H = (c: string, size: number) => ({ sha1: c.repeat(40), sha256: c.repeat(64), quickXor: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=', size });

/** A folder source with real photos in two albums, and a state that holds every outcome. */
function buildState(): { t: string; db: DB; src: string } {
  const t = tmpDir('gb-report-');
  const src = path.join(t, 'src');
  const layout: Record<string, string[]> = {
    Camera: ['img_1771.jpg', 'canon-dslr.jpg', 'f6t.jpg', 'noexif.jpg', 'heic-single.heic', 'not-a-photo.jpg'],
    'Trip 2023': ['IMG_20180725_163423.jpg', 'png_with_exif_and_gps.png', 'VID_20230514_101112.mp4', 'cookiezen.jpg'],
  };
  for (const [album, files] of Object.entries(layout)) {
    fs.mkdirSync(path.join(src, album), { recursive: true });
    for (const f of files) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, album, f));
  }
  const db = openState(path.join(t, 'state.db'));
  setMeta(db, 'source_identity', `folder:${src}`);
  setMeta(db, 'destination_identity', 'folder:/backup/photos');
  setMeta(db, 'list_state', 'complete');
  const items = new Items(db);
  const run = startRun(db, {
    command: 'migrate',
    sourceSpec: `folder:${src}`,
    destinationSpec: 'folder:/backup/photos',
    deleteSource: true,
    deleteEvidence: 'bytes',
    concurrency: 4,
  });
  for (const [album, files] of Object.entries(layout)) {
    items.recordPage(
      files.map((f) => ({
        sourceId: `${album}/${f}`,
        name: f,
        albumId: album,
        albumName: album,
        size: fs.statSync(path.join(src, album, f)).size,
        kind: 'image',
        declaredSha1: null,
        declaredTime: null,
        json: JSON.stringify({ id: `${album}/${f}`, name: f }),
      })),
      () => undefined,
      run,
    );
  }
  const row = (id: string) => items.bySourceId(id)!;
  const upload = (id: string, c: string) => {
    const r = row(id);
    items.startTransfer(r.id, run);
    items.recordStaged(r.id, H(c, r.size!), null, { tmp: 'x' });
    return items.markUploaded(r.id, `dest-${c}`, `/backup/photos/${id}`);
  };
  upload('Camera/img_1771.jpg', 'a');
  items.markVerified(row('Camera/img_1771.jpg').id, 'bytes', 'sha256 equal');
  upload('Camera/canon-dslr.jpg', 'b');
  items.markVerified(row('Camera/canon-dslr.jpg').id, 'bytes', 'sha256 equal');
  items.markSourceDeleted(row('Camera/canon-dslr.jpg').id, run, 'deleted');
  upload('Camera/f6t.jpg', 'a'); // same destination item as img_1771: a duplicate
  // Rejected: a format the destination refuses (a placeholder, sharp cannot read it).
  items.startTransfer(row('Camera/not-a-photo.jpg').id, run);
  items.markRejected(row('Camera/not-a-photo.jpg').id, 'unsupported format: the file is not a photo or video');
  // Failed twice over with a server error, one of them a photo that gets a thumbnail.
  for (const id of ['Trip 2023/IMG_20180725_163423.jpg', 'Camera/heic-single.heic']) {
    items.startTransfer(row(id).id, run);
    items.saveSession(row(id).id, { uploadUrl: 'https://upload.example.test/session?upload_id=SECRET-UPLOAD-TOKEN-123' });
    items.markFailed(row(id).id, 'HTTP 503 Service Unavailable', 0);
  }
  upload('Trip 2023/png_with_exif_and_gps.png', 'c'); // awaiting verification
  finishRun(db, run, 'partial', 1, items.countsByState());
  return { t, db, src };
}

describe('reports a person reads', () => {
  it('HTML: summary first, grouped reasons with what to do, thumbnails and placeholders, every item by album, no secrets', async () => {
    const { t, db } = buildState();
    const out = path.join(t, 'report.html');
    const r = await writeReport(db, out);
    expect(r).toEqual({ format: 'html', rows: 10 });
    const html = fs.readFileSync(out, 'utf8');
    // The summary comes before any list of items.
    const lead = html.indexOf('class="lead"');
    expect(lead).toBeGreaterThan(0);
    expect(lead).toBeLessThan(html.indexOf('What needs attention'));
    expect(html.indexOf('What needs attention')).toBeLessThan(html.indexOf('Every item'));
    expect(html).toMatch(
      /3 of 10 items \([\d.]+ MB of [\d.]+ MB\) are safely at the destination and verified; 1 of them deleted at the source; 4 items need attention; 3 not moved yet\./,
    );
    // Reasons grouped, each with what to do.
    expect(html).toContain('Network or service errors — 2 items');
    expect(html).toContain('Format the destination does not take — 1 item');
    expect(html).toContain('Destination still processing — 1 item');
    expect((html.match(/What to do:/g) ?? []).length).toBe(3);
    // Thumbnails: real JPEGs of 96x96 for the decodable photos, placeholders for the rest.
    const imgs = [...html.matchAll(/<img src="data:image\/jpeg;base64,([^"]+)" alt="([^"]+)"/g)];
    expect(imgs.map((m) => m[2]).sort()).toEqual(['IMG_20180725_163423.jpg', 'png_with_exif_and_gps.png']);
    for (const m of imgs) {
      const meta = await sharp(Buffer.from(m[1]!, 'base64')).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 96, 96]);
    }
    expect(html).toMatch(/<div class="ph"[^>]*>heic<\/div>/);
    expect(html).toMatch(/<div class="ph"[^>]*>jpg<\/div>/); // not-a-photo.jpg cannot be decoded
    // Every item listed under its album; human sizes, no raw byte counts in the table.
    for (const name of fs.readdirSync(path.join(t, 'src', 'Camera'))) expect(html).toContain(`<tr><td>${name}<td class="n">`);
    expect(html).toContain('<b>Trip 2023</b> — 4 items');
    expect(html).toMatch(
      /Every item accounted for: 1 moved and verified \+ 1 moved, verified and deleted at the source \+ 1 skipped: already at the destination \+ [^=]*1 rejected[^=]+= 10 items/,
    );
    expect(html).not.toContain('SECRET-UPLOAD-TOKEN');
    expect(html).not.toMatch(/<(script|link)[^>]*(src|href)=/i); // self-contained
    db.close();
  });

  it('CSV and JSON: one row per item with its outcome and what to do, summary in human units, no secrets', async () => {
    const { t, db } = buildState();
    await writeReport(db, path.join(t, 'r.csv'));
    await writeReport(db, path.join(t, 'r.json'));
    const csv = fs.readFileSync(path.join(t, 'r.csv'), 'utf8').trim().split('\n');
    expect(csv[0]!.startsWith('outcome,size_human,what_to_do,source_id,')).toBe(true);
    expect(csv).toHaveLength(11);
    expect(csv.some((l) => l.startsWith('failed (will be tried again),') && l.includes('Usually passing: run again'))).toBe(true);
    const json = JSON.parse(fs.readFileSync(path.join(t, 'r.json'), 'utf8'));
    expect(json.items).toHaveLength(10);
    expect(json.summary.outcomes.deleted).toMatchObject({ items: 1, label: 'moved, verified and deleted at the source' });
    expect(json.summary.attention.map((g: { title: string; items: number }) => [g.title, g.items])).toEqual([
      ['Network or service errors', 2],
      ['Format the destination does not take', 1],
      ['Destination still processing', 1],
    ]);
    const stays = json.summary.staysAtSource.reduce((n: number, s: { items: number }) => n + s.items, 0);
    expect(stays + json.summary.outcomes.deleted.items).toBe(10); // every item not deleted has a reason to stay
    for (const f of ['r.csv', 'r.json']) expect(fs.readFileSync(path.join(t, f), 'utf8')).not.toContain('SECRET-UPLOAD-TOKEN');
    await expect(writeReport(db, path.join(t, 'r.txt'))).rejects.toThrow(/\.json, \.csv or \.html/);
    expect(fs.readdirSync(t).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    db.close();
  });

  it('a real run writes the report with --report, thumbnails made through the open source', async () => {
    const t = tmpDir('gb-report-run-');
    const src = path.join(t, 'src');
    fs.mkdirSync(path.join(src, 'Album'), { recursive: true });
    for (const f of ['img_1771.jpg', 'noexif.jpg']) fs.copyFileSync(path.join(FIXTURES, f), path.join(src, 'Album', f));
    const res = await runCli([
      'migrate',
      '--from',
      `folder:${src}`,
      '--to',
      `folder:${path.join(t, 'dst')}`,
      '--state',
      path.join(t, 's.db'),
      '--report',
      path.join(t, 'r.html'),
    ]);
    expect(res.code).toBe(0);
    const html = fs.readFileSync(path.join(t, 'r.html'), 'utf8');
    expect(html).toContain('2 of 2 items');
    expect(html).toContain('Nothing: every item that was tried is at the destination and verified.');
    // noexif.jpg has no date inside: the page says so, and where its date came from.
    expect(html).toContain('<h2>Capture dates</h2>');
    expect(html).toMatch(/1 of 2 items carry their own date; 1 had none in the file/);
  });

  it('human units', () => {
    expect([bytes(716.53), bytes(999), bytes(1500), bytes(2_345_678), bytes(3.2e9), bytes(null)]).toEqual([
      '717 B',
      '999 B',
      '1.5 kB',
      '2.3 MB',
      '3.2 GB',
      '—',
    ]);
    expect([duration(42), duration(125), duration(3 * 3600 + 60), duration(50 * 3600)]).toEqual(['42 s', '2 min 5 s', '3 h 1 min', '2 days 2 h']);
  });

  it('stays bounded for many items: a 20,000-item page is a few MB with at most 120 thumbnails', async () => {
    const t = tmpDir('gb-report-big-');
    const db = openState(path.join(t, 'state.db'));
    const items = new Items(db);
    const run = startRun(db, {
      command: 'migrate',
      sourceSpec: 'xiaomi',
      destinationSpec: 'google-photos',
      deleteSource: false,
      deleteEvidence: 'pixels',
      concurrency: 4,
    });
    const page = (from: number) =>
      Array.from({ length: 1000 }, (_, i) => ({
        sourceId: String(from + i),
        name: `IMG_${from + i}.jpg`,
        albumId: `a${(from + i) % 7}`,
        albumName: `Album ${(from + i) % 7}`,
        size: 2_000_000,
        kind: 'image',
        declaredSha1: null,
        declaredTime: null,
        json: '{}',
      }));
    for (let p = 0; p < 20; p++) items.recordPage(page(p * 1000), () => undefined, run);
    db.prepare(`UPDATE items SET state = 'rejected', reason = 'unsupported format' WHERE id % 10 = 0`).run();
    const r = await writeReport(db, path.join(t, 'big.html'));
    expect(r.rows).toBe(20_000);
    const size = fs.statSync(path.join(t, 'big.html')).size;
    expect(size).toBeLessThan(20_000 * 200); // < 200 bytes an item: 100,000 items stay under 20 MB
    const html = fs.readFileSync(path.join(t, 'big.html'), 'utf8');
    expect((html.match(/<figure>/g) ?? []).length).toBeLessThanOrEqual(120);
    expect(html).toContain('Format the destination does not take — 2,000 items');
    db.close();
  });
});
