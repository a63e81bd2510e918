// Xiaomi deletions per second against the emulator: the adaptive pacer (floor 100 ms after each
// answer, doubling on a busy answer, decaying back) beside the old way in the same run (the
// client's delete, then a fixed 200 ms pause; its retries wait the plain back-off), without
// and with injected delete faults (a share of deletes answered 503 "server busy").

import type { BenchRow, BenchSuite } from './types.ts';
import { createXiaomiSource } from '../providers/xiaomi/index.ts';
import { CODE_DELETED, CODE_OK } from '../providers/xiaomi/protocol.ts';
import { startEmulator, testContext, tmpDir } from '../providers/xiaomi/test-support.ts';
import type { SourceItem } from '../providers/types.ts';
import type { XiaomiSource } from '../providers/xiaomi/source.ts';

const OLD_PAUSE_MS = 200;
const proofOf = (it: SourceItem) => ({ hashes: { sha1: it.sha1 ?? '', sha256: '', quickXor: '', size: it.size ?? 0 }, readThisRun: true });

async function listed(n: number, faultDelete: number): Promise<{ src: XiaomiSource; items: SourceItem[]; close: () => Promise<void> }> {
  const emu = await startEmulator(tmpDir('bench-del'), { synthetic: n, faultDelete });
  const src = await createXiaomiSource(testContext({ ...emu.env, XIAOMI_MAX_RPS: '0' }));
  const items: SourceItem[] = [];
  for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
    const page = await src.listItems(cursor);
    items.push(...page.items);
    cursor = page.cursor;
  }
  const close = async () => {
    await src.close();
    await emu.close();
  };
  return { src, items, close };
}

/** Deletes every item, retrying one the client gave up on as the engine would; deletions/s. */
async function rate(items: SourceItem[], del: (it: SourceItem) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  for (const it of items) {
    for (let tries = 0; ; tries++) {
      try {
        await del(it);
        break;
      } catch (err) {
        if (tries >= 5) throw err;
      }
    }
  }
  return items.length / ((performance.now() - t0) / 1000);
}

export const suite: BenchSuite = async () => {
  const N = process.env.BENCH_QUICK === '1' ? 20 : 50;
  const rows: BenchRow[] = [];
  for (const fault of [0, 0.2]) {
    const paced = await listed(N, fault);
    const now = await rate(paced.items, async (it) => void (await paced.src.delete(it, proofOf(it))));
    await paced.close();
    const old = await listed(N, fault);
    const then = await rate(old.items, async (it) => {
      const env = await old.src.client.deleteItem(it.id);
      if (env.code !== CODE_OK && env.code !== CODE_DELETED) throw new Error(`code ${env.code}`);
      await new Promise((r) => setTimeout(r, OLD_PAUSE_MS));
    });
    await old.close();
    rows.push({
      name: `Xiaomi deletions, ${N} one at a time, ${fault ? `${fault * 100}% of deletes answered 503 busy` : 'no faults'} (adaptive pacer, floor 100 ms)`,
      value: now,
      unit: 'deletions/s',
      peer: { name: `fixed ${OLD_PAUSE_MS} ms pause after each`, value: then, unit: 'deletions/s' },
      ratio: now / then,
      goal: fault ? '>= 1 (backs off, still ahead)' : '>= 1.5',
      met: fault ? now / then >= 1 : now / then >= 1.5,
    });
  }
  return rows;
};
