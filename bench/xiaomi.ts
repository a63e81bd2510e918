// Xiaomi source: listing throughput over the emulator (10,000 items, 50 per page), against a
// peer that fetches the same pages with bare fetch + JSON.parse (no cookies, retries, big-id
// handling or mapping); and small-item downloads through the three steps against one bare GET each.

import type { BenchRow, BenchSuite } from './types.ts';
import { createXiaomiSource } from '../providers/xiaomi/index.ts';
import { startEmulator, testContext, tmpDir } from '../providers/xiaomi/test-support.ts';
import type { SourceItem } from '../providers/types.ts';

export const suite: BenchSuite = async () => {
  const N = 10_000;
  const emu = await startEmulator(tmpDir('bench'), { synthetic: N });
  const rows: BenchRow[] = [];
  try {
    const src = await createXiaomiSource(testContext({ ...emu.env, XIAOMI_MAX_RPS: '0' }));
    let t0 = performance.now();
    const items: SourceItem[] = [];
    for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
      const page = await src.listItems(cursor);
      items.push(...page.items);
      cursor = page.cursor;
    }
    const listMs = performance.now() - t0;
    if (items.length !== N) throw new Error(`listed ${items.length} of ${N}`);

    // (The album id is a 17-digit JSON number: read it from the text, JSON.parse would round it.)
    const albumsText = await (await fetch(`${emu.baseUrl}/gallery/user/album/list?pageNum=0&pageSize=50`, { headers: { Cookie: emu.env.XIAOMI_COOKIE! } })).text();
    const albumId = /"albumId":"?(\d+)/.exec(albumsText)![1]!;
    t0 = performance.now();
    let n = 0;
    for (let p = 0; ; p++) {
      const r = (await (await fetch(`${emu.baseUrl}/gallery/user/galleries?albumId=${albumId}&pageNum=${p}&pageSize=50`, { headers: { Cookie: emu.env.XIAOMI_COOKIE! } })).json()) as { data: { galleries: unknown[]; isLastPage: boolean } };
      n += r.data.galleries.length;
      if (r.data.isLastPage) break;
    }
    const peerMs = performance.now() - t0;
    const rate = N / (listMs / 1000);
    const peerRate = n / (peerMs / 1000);
    rows.push({ name: 'listing, 50/page (unpaced)', value: rate, unit: 'items/s', peer: { name: 'bare fetch+JSON.parse', value: peerRate, unit: 'items/s' }, ratio: rate / peerRate, goal: '>= 0.5', met: rate / peerRate >= 0.5 });

    const M = 200;
    t0 = performance.now();
    for (const it of items.slice(0, M)) for await (const _ of await src.open(it)) void _;
    const dlMs = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < M; i++) await (await fetch(`${emu.baseUrl}/status/lite/alldetail`, { headers: { Cookie: emu.env.XIAOMI_COOKIE! } })).arrayBuffer();
    const oneMs = performance.now() - t0;
    const dl = M / (dlMs / 1000);
    const one = M / (oneMs / 1000);
    rows.push({ name: 'small downloads, three steps each', value: dl, unit: 'items/s', peer: { name: 'one bare GET', value: one, unit: 'req/s' }, ratio: dl / one, goal: '>= 0.25 (three requests per item)', met: dl / one >= 0.25 });
    await src.close();
  } finally {
    await emu.close();
  }
  return rows;
};
