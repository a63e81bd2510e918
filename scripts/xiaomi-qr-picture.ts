// Makes docs/xiaomi-qr-sign-in.png: what `gallery-bridge auth xiaomi` shows in a terminal, from a
// real run of the CLI against the emulator (stopped once it waits for the phone). The QR code's
// block characters are drawn as the cells a terminal fills; the other lines as text.
//
//   node bin/run-ts.js scripts/xiaomi-qr-picture.ts [OUT.png]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { startEmulator } from '../providers/xiaomi/test-support.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const out = process.argv[2] ?? path.join(ROOT, 'docs', 'xiaomi-qr-sign-in.png');

async function capture(): Promise<string> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-qr-picture-'));
  const emu = await startEmulator(path.join(t, 'data'), { synthetic: 1 });
  try {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'gallery-bridge.js'), 'auth', 'xiaomi'], {
      env: {
        ...process.env,
        XIAOMI_BASE_URL: emu.baseUrl,
        GALLERY_BRIDGE_HOME: path.join(t, 'home'),
        XIAOMI_COOKIE: '',
        XIAOMI_USER_ID: '',
        XIAOMI_PASS_TOKEN: '',
        XIAOMI_COOKIE_FILE: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    await new Promise<void>((resolve) => {
      const on = (d: Buffer): void => {
        text += d.toString('utf8');
        if (text.includes('Waiting for the phone')) resolve();
      };
      child.stdout.on('data', on);
      child.stderr.on('data', on);
    });
    child.kill('SIGKILL');
    return text;
  } finally {
    await emu.close();
  }
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function svgOf(text: string): string {
  const lines = text
    .replace(/\s+$/, '')
    .split('\n')
    .map((l) => (`$ gallery-bridge auth xiaomi` === l ? l : l.replace(/\x1b\[[0-9;]*m/g, '')));
  lines.unshift('$ gallery-bridge auth xiaomi');
  const cw = 9;
  const lh = 18;
  const pad = 16;
  const width = Math.max(...lines.map((l) => [...l].length)) * cw + pad * 2;
  const height = lines.length * lh + pad * 2;
  const parts: string[] = [`<rect width="${width}" height="${height}" fill="#1e1e1e"/>`];
  lines.forEach((line, row) => {
    const y = pad + row * lh;
    const chars = [...line];
    if (/[▀▄█]/.test(line)) {
      // A QR row: the block characters are the light modules (white on black, as the tool draws it).
      const first = chars.findIndex((c) => c !== ' ');
      parts.push(`<rect x="${pad + first * cw}" y="${y}" width="${(chars.length - first) * cw}" height="${lh}" fill="#000"/>`);
      chars.forEach((c, col) => {
        const x = pad + col * cw;
        if (c === '█') parts.push(`<rect x="${x}" y="${y}" width="${cw}" height="${lh}" fill="#fff"/>`);
        if (c === '▀') parts.push(`<rect x="${x}" y="${y}" width="${cw}" height="${lh / 2}" fill="#fff"/>`);
        if (c === '▄') parts.push(`<rect x="${x}" y="${y + lh / 2}" width="${cw}" height="${lh / 2}" fill="#fff"/>`);
      });
    } else if (line.trim()) {
      parts.push(
        `<text x="${pad}" y="${y + 13}" font-family="DejaVu Sans Mono, monospace" font-size="14.5" fill="${row === 0 ? '#8fd18f' : '#e6e6e6'}" xml:space="preserve">${esc(line)}</text>`,
      );
    }
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

const text = await capture();
fs.mkdirSync(path.dirname(out), { recursive: true });
await sharp(Buffer.from(svgOf(text)))
  .png()
  .toFile(out);
process.stdout.write(`wrote ${out}\n`);
