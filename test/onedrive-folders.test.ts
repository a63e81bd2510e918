// The order of a run's first folder requests to OneDrive, against a Graph client whose answers
// the test gives one at a time: which requests go out before which answers. A new folder three
// deep costs the latency of its creations, not of its lookups one after another as well.

import { describe, expect, it } from 'vitest';
import type { ItemFacts, ProviderStore, SourceItem } from '../providers/types.ts';
import { Drive } from '../providers/onedrive/drive.ts';
import { type GraphHttp, GraphHttpError } from '../providers/onedrive/graph.ts';

interface Call {
  method: string;
  path: string;
  body: unknown;
  answer(value: unknown): void;
  fail(e: Error): void;
}

/** A Graph client that records each request and answers only when the test says. */
function heldGraph() {
  const calls: Call[] = [];
  const http = {
    api: (method: string, path: string, body?: unknown) => new Promise((resolve, reject) => calls.push({ method, path, body, answer: resolve, fail: reject })),
  } as unknown as GraphHttp;
  const find = (method: string, path: string) => calls.find((c) => c.method === method && c.path === path);
  return { http, calls, find };
}

function memoryStore(): ProviderStore {
  const m = new Map<string, unknown>();
  return { get: <T>(k: string) => m.get(k) as T | undefined, set: (k, v) => void m.set(k, v), delete: (k) => void m.delete(k) };
}

const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const item = { id: 'Camera/IMG_1.jpg', name: 'IMG_1.jpg', albumId: 'Camera', albumName: 'Camera' } as SourceItem;
const facts = {} as ItemFacts;
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
const notFound = () => new GraphHttpError(404, 'itemNotFound', 'The resource could not be found.');

describe('OneDrive folders at the start of a run', () => {
  it('looks up the first album with the root, and creates the folders above while its own lookup is out', async () => {
    const g = heldGraph();
    const drive = new Drive(g.http, '/me/drive', { root: '/Bench/small', layout: 'album' }, { store: memoryStore(), log }, new AbortController());
    drive.askEarly();
    const made = drive.container(item, facts);
    await turns();
    // Before any answer: the drive's facts, the root's two folders, and the album's folder as a Personal drive names it.
    expect(g.calls.map((c) => `${c.method} ${c.path}`).sort()).toEqual([
      'get /me/drive',
      'get /me/drive/root:/Bench/small/Camera:',
      'get /me/drive/root:/Bench/small:',
      'get /me/drive/root:/Bench:',
    ]);
    g.find('get', '/me/drive')!.answer({ driveType: 'personal' });
    g.find('get', '/me/drive/root:/Bench:')!.fail(notFound());
    g.find('get', '/me/drive/root:/Bench/small:')!.fail(notFound());
    await turns();
    // The album's lookup is still out, and /Bench is being created all the same.
    const top = g.find('post', '/me/drive/root/children');
    expect(top?.body).toMatchObject({ name: 'Bench', folder: {} });
    top!.answer({ id: 'id-bench', folder: {} });
    await turns();
    const small = g.find('post', '/me/drive/root:/Bench:/children');
    expect(small?.body).toMatchObject({ name: 'small' });
    small!.answer({ id: 'id-small', folder: {} });
    await turns();
    // Camera is created only once its own lookup said it is not there.
    expect(g.find('post', '/me/drive/root:/Bench/small:/children')).toBeUndefined();
    g.find('get', '/me/drive/root:/Bench/small/Camera:')!.fail(notFound());
    await turns();
    const camera = g.find('post', '/me/drive/root:/Bench/small:/children');
    expect(camera?.body).toMatchObject({ name: 'Camera' });
    camera!.answer({ id: 'id-camera', folder: {} });
    expect(await made).toBe('/Bench/small/Camera');
    // Each request once: no lookup or creation was sent twice.
    expect(g.calls).toHaveLength(7);
  });

  it('a folder its lookup finds is not created, and a file in its place refuses the item', async () => {
    const g = heldGraph();
    const drive = new Drive(g.http, '/me/drive', { root: '/Pictures', layout: 'album' }, { store: memoryStore(), log }, new AbortController());
    drive.askEarly();
    const made = drive.container(item, facts);
    made.catch(() => undefined);
    await turns();
    g.find('get', '/me/drive')!.answer({ driveType: 'personal' });
    g.find('get', '/me/drive/root:/Pictures:')!.answer({ id: 'id-pictures', folder: {} });
    g.find('get', '/me/drive/root:/Pictures/Camera:')!.answer({ id: 'id-file', file: {} });
    await expect(made).rejects.toThrow(/a file named \/Pictures\/Camera is in the way/);
    expect(g.calls.filter((c) => c.method === 'post')).toHaveLength(0);
  });
});
