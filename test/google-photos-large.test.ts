// A photo near Google's 200 MB limit verifies at `pixels` in bounded memory: a 150 MB PNG with a
// location (so Google's `=d` download differs in bytes) is migrated by the CLI as a child process
// whose peak RSS is read at exit. The photo is written here a row at a time, never held whole.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { CLI, FIXTURES, ROOT, tmpDir } from './helpers.ts';
import { startGoogleEmulator, type Emu } from './google-photos-emulator.ts';

const TOKEN = 'large-photo-token-4711';
const WIDTH = 7000;
const HEIGHT = 7150; // 7000 x 7150 RGB, stored deflate: about 150 MB

const crc32 = (b: Buffer) => zlib.crc32(b) >>> 0;
function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** The eXIf chunk (capture date and GPS) of the sample PNG. */
function sampleExif(): Buffer {
  const png = fs.readFileSync(path.join(FIXTURES, 'png_with_exif_and_gps.png'));
  for (let at = 8; at < png.length; ) {
    const len = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'eXIf') return png.subarray(at + 8, at + 8 + len);
    at += 12 + len;
  }
  throw new Error('no eXIf in the sample');
}

/** Writes a WIDTH x HEIGHT RGB PNG row by row (deflate level 0, so the size is the pixel count). */
async function writeBigPng(file: string): Promise<void> {
  const out = fs.createWriteStream(file);
  const write = (b: Buffer) => new Promise<void>((res) => (out.write(b) ? res() : out.once('drain', res)));
  await write(Buffer.from('89504e470d0a1a0a', 'hex'));
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(WIDTH, 0);
  ihdr.writeUInt32BE(HEIGHT, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  await write(chunk('IHDR', ihdr));
  await write(chunk('eXIf', sampleExif()));
  const deflate = zlib.createDeflate({ level: 0 });
  const pending: Buffer[] = [];
  deflate.on('data', (d: Buffer) => pending.push(d));
  const flushIdat = async () => {
    if (!pending.length) return;
    const data = Buffer.concat(pending.splice(0));
    await write(chunk('IDAT', data));
  };
  const row = Buffer.alloc(1 + WIDTH * 3);
  for (let y = 0; y < HEIGHT; y++) {
    row[0] = 0;
    for (let x = 0; x < WIDTH; x++) {
      row[1 + x * 3] = (x + y) & 0xff;
      row[2 + x * 3] = (x * 7 + y * 3) & 0xff;
      row[3 + x * 3] = (x ^ y) & 0xff;
    }
    if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
    if (y % 64 === 63) await flushIdat();
  }
  const ended = new Promise<void>((res) => deflate.once('end', () => res()));
  deflate.end();
  await ended;
  await flushIdat();
  await write(chunk('IEND', Buffer.alloc(0)));
  await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
}

let emu: Emu;
beforeAll(async () => {
  emu = await startGoogleEmulator(TOKEN, [], 'gp-large-emu-');
});
afterAll(async () => emu?.close());

describe('google-photos: a photo near the 200 MB limit', () => {
  it('a 150 MB photo is verified at pixels with the process under 300 MB RSS', async () => {
    const t = tmpDir('gp-large-');
    const src = path.join(t, 'src');
    fs.mkdirSync(src);
    const file = path.join(src, 'panorama.png');
    await writeBigPng(file);
    const size = fs.statSync(file).size;
    expect(size).toBeGreaterThan(145_000_000);
    expect(size).toBeLessThan(200 * 1024 * 1024);
    const rssFile = path.join(t, 'maxrss');
    const preload = `data:text/javascript,${encodeURIComponent(`import fs from 'node:fs'; process.on('exit', () => fs.writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));`)}`;
    const state = path.join(t, 'state.db');
    const res = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', preload, CLI, 'migrate', '--from', `folder:${src}`, '--to', 'google-photos', '--state', state, '--verify-wait', '120'],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            GALLERY_BRIDGE_BACKOFF_SCALE: '0.01',
            GALLERY_BRIDGE_HOME: path.join(t, 'home'),
            GOOGLE_PHOTOS_BASE_URL: emu.env.GOOGLE_PHOTOS_BASE_URL!,
            GOOGLE_ACCESS_TOKEN: TOKEN,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(res.code, res.out).toBe(0);
    // From the outside: the emulator holds exactly these bytes, and its =d copy differs (no GPS).
    const st = await emu.state();
    const item = st.mediaItems.find((m) => m.size === size)!;
    expect(item).toBeTruthy();
    const sha1 = (f: string) =>
      new Promise<string>((r) => {
        const h = crypto.createHash('sha1');
        fs.createReadStream(f)
          .on('data', (c) => h.update(c))
          .on('end', () => r(h.digest('hex')));
      });
    expect(await sha1(item.file)).toBe(await sha1(file));
    const db = new Database(state, { readonly: true });
    const row = db.prepare('SELECT state, evidence_level, evidence_detail FROM items').get() as {
      state: string;
      evidence_level: string;
      evidence_detail: string;
    };
    db.close();
    expect(row).toMatchObject({ state: 'verified', evidence_level: 'pixels' });
    expect(row.evidence_detail).toMatch(/7000x7150x3/);
    const maxRssMb = Number(fs.readFileSync(rssFile, 'utf8')) / 1024;
    expect(maxRssMb).toBeLessThan(300);
    console.log(`150 MB photo: peak RSS ${Math.round(maxRssMb)} MB`);
    fs.rmSync(t, { recursive: true, force: true });
  }, 240_000);
});
