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
    const items: SourceItem[] = [];
    const list = async (): Promise<number> => {
      const t0 = performance.now();
      items.length = 0;
      for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
        const page = await src.listItems(cursor);
        items.push(...page.items);
        cursor = page.cursor;
      }
      if (items.length !== N) throw new Error(`listed ${items.length} of ${N}`);
      return performance.now() - t0;
    };
    // (The album id is a 17-digit JSON number: read it from the text, JSON.parse would round it.)
    const albumsText = await (
      await fetch(`${emu.baseUrl}/gallery/user/album/list?pageNum=0&pageSize=50`, { headers: { Cookie: emu.env.XIAOMI_COOKIE! } })
    ).text();
    const albumId = /"albumId":"?(\d+)/.exec(albumsText)![1]!;
    const bare = async (): Promise<number> => {
      const t0 = performance.now();
      let n = 0;
      for (let p = 0; ; p++) {
        const r = (await (
          await fetch(`${emu.baseUrl}/gallery/user/galleries?albumId=${albumId}&pageNum=${p}&pageSize=50`, { headers: { Cookie: emu.env.XIAOMI_COOKIE! } })
        ).json()) as { data: { galleries: unknown[]; isLastPage: boolean } };
        n += r.data.galleries.length;
        if (r.data.isLastPage) break;
      }
      if (n !== N) throw new Error(`the bare peer read ${n} of ${N}`);
      return performance.now() - t0;
    };
    // One round each first, so neither is measured cold (the one measured first paid the JIT), then
    // the median of three rounds, interleaved, so both see the same load.
    await list();
    await bare();
    const ours: number[] = [];
    const peers: number[] = [];
    for (let round = 0; round < 3; round++) {
      ours.push(await list());
      peers.push(await bare());
    }
    const mid = (xs: number[]) => xs.sort((a, b) => a - b)[1]!;
    const rate = N / (mid(ours) / 1000);
    const peerRate = N / (mid(peers) / 1000);
    rows.push({
      name: 'listing, 50/page (unpaced; median of 3, after a warm-up round each)',
      value: rate,
      unit: 'items/s',
      peer: { name: 'bare fetch+JSON.parse', value: peerRate, unit: 'items/s' },
      ratio: rate / peerRate,
      goal: '>= 0.5',
      met: rate / peerRate >= 0.5,
    });

    let t0: number;
    const M = 200;
    t0 = performance.now();
    for (const it of items.slice(0, M)) for await (const _ of await src.open(it)) void _;
    const dlMs = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < M; i++) await (await fetch(`${emu.baseUrl}/status/lite/alldetail`, { headers: { Cookie: emu.env.XIAOMI_COOKIE! } })).arrayBuffer();
    const oneMs = performance.now() - t0;
    const dl = M / (dlMs / 1000);
    const one = M / (oneMs / 1000);
    rows.push({
      name: 'small downloads, three steps each',
      value: dl,
      unit: 'items/s',
      peer: { name: 'one bare GET', value: one, unit: 'req/s' },
      ratio: dl / one,
      goal: '>= 0.25 (three requests per item)',
      met: dl / one >= 0.25,
    });
    await src.close();
  } finally {
    await emu.close();
  }
  return rows;
};
