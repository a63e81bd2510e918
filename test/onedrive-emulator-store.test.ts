// The OneDrive emulator keeps items and upload sessions across a restart on the same data folder
// (a journal replayed at start), as a service keeps them across a client's reconnect. Checked as
// any client would: through Graph requests and the bytes on disk.

import { describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers.ts';
import { oneDriveKit, type Emu } from './onedrive-kit.ts';

const TOKEN = 'store-token-0123456789abcdef';
const od = oneDriveKit(TOKEN);
const FRAGMENT = 320 * 1024;

// biome-ignore lint/suspicious/noExplicitAny: the tests read whatever JSON Graph answers, field by field
async function call(url: string, method: string, headers: Record<string, string>, body?: Buffer | string): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method, headers, body: typeof body === 'string' ? body : body && new Uint8Array(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

const auth = { Authorization: `Bearer ${TOKEN}` };
const graph = (e: Emu, method: string, p: string, body?: object) =>
  call(`${e.env.GRAPH_BASE_URL}${p}`, method, { ...auth, 'Content-Type': 'application/json' }, body && JSON.stringify(body));

async function session(e: Emu, name: string): Promise<string> {
  const r = await graph(e, 'POST', `/me/drive/root:/Keep/${name}:/createUploadSession`, { item: { '@microsoft.graph.conflictBehavior': 'fail' } });
  expect(r.status).toBe(200);
  return r.json.uploadUrl as string;
}

function putRange(url: string, bytes: Buffer, start: number, end: number) {
  const part = bytes.subarray(start, end + 1);
  return call(url, 'PUT', { 'Content-Length': String(part.length), 'Content-Range': `bytes ${start}-${end}/${bytes.length}` }, part);
}

describe('OneDrive emulator store', () => {
  it('keeps items, their ids and an unfinished upload across a restart; a line cut short by a kill is skipped', async () => {
    const data = path.join(tmpDir(), 'emu');
    const whole = crypto.randomBytes(5000);
    const split = crypto.randomBytes(FRAGMENT + 777);
    const first = await od.emulator(data);
    const done = await putRange(await session(first, 'whole.bin'), whole, 0, whole.length - 1);
    expect(done.status).toBe(201);
    const renamed = await graph(first, 'PATCH', `/me/drive/items/${done.json.id}`, { name: 'renamed.bin' });
    expect(renamed.status).toBe(200);
    const gone = await putRange(await session(first, 'gone.bin'), whole, 0, whole.length - 1);
    expect((await graph(first, 'DELETE', `/me/drive/items/${gone.json.id}`)).status).toBe(204);
    const url = await session(first, 'split.bin');
    expect((await putRange(url, split, 0, FRAGMENT - 1)).status).toBe(202);
    await od.close(first);
    // A kill in the middle of writing a line leaves it cut short.
    fs.appendFileSync(path.join(data, '.emulator', 'journal.ndjson'), '{"item":{"id":"ME!cut');

    const second = await od.emulator(data);
    const again = url.replace(new URL(url).origin, new URL(second.env.GRAPH_BASE_URL!).origin.replace('localhost', '127.0.0.1'));
    expect((await call(again, 'GET', {})).json.nextExpectedRanges).toEqual([`${FRAGMENT}-${split.length - 1}`]);
    const last = await putRange(again, split, FRAGMENT, split.length - 1);
    expect(last.status).toBe(201);
    const kept = await graph(second, 'GET', `/me/drive/items/${done.json.id}`);
    expect(kept.json.name).toBe('renamed.bin');
    expect((await graph(second, 'GET', '/me/drive/root:/Keep/whole.bin')).status).toBe(404);
    expect((await graph(second, 'GET', `/me/drive/items/${gone.json.id}`)).status).toBe(404);
    const children = await graph(second, 'GET', '/me/drive/root:/Keep:/children');
    expect(children.json.value.map((c: { name: string }) => c.name).sort()).toEqual(['renamed.bin', 'split.bin']);
    expect(fs.readFileSync(path.join(data, 'me', 'Keep', 'renamed.bin')).equals(whole)).toBe(true);
    expect(fs.readFileSync(path.join(data, 'me', 'Keep', 'split.bin')).equals(split)).toBe(true);
    expect(last.json.size).toBe(split.length);
    expect(last.json.file.hashes.quickXorHash).toMatch(/^[A-Za-z0-9+/]{27}=$/);
  });
});
