// /__emulator/...: the emulator's own controls for tests (no auth): its state as stored, the
// next Pacific day (a fresh quota), and zeroed request counters.

import { OTHER_APP } from '../options.ts';
import type { MediaRow } from '../store.ts';
import type { Call, Route } from './route.ts';

function snapshot({ ctx }: Call): unknown {
  const db = ctx.store.db;
  const q = ctx.quota();
  const items = db.prepare('SELECT * FROM media_items ORDER BY seq').all() as MediaRow[];
  const albums = db.prepare('SELECT id, title, owner FROM albums ORDER BY seq').all() as Array<{ id: string; title: string; owner: string }>;
  const links = db.prepare('SELECT album_id, media_id FROM album_items ORDER BY pos').all() as Array<{ album_id: string; media_id: string }>;
  return {
    quota: { date: q.date, day: q.day, used: q.used, limit: ctx.opt.dailyQuota },
    requests: { ...ctx.stats },
    mediaItems: items.map((m) => ({
      id: m.id,
      owner: m.owner === OTHER_APP ? 'other-app' : 'this-app',
      filename: m.filename,
      file: m.file,
      sha1: m.sha1,
      size: m.size,
      mimeType: m.mime,
      kind: m.kind,
      width: m.width,
      height: m.height,
      creationTime: m.creation_time,
      description: m.description,
      status: m.kind === 'video' ? ctx.videoStatus(m) : 'READY',
      albumIds: links.filter((l) => l.media_id === m.id).map((l) => l.album_id),
    })),
    albums: albums.map((a) => ({ id: a.id, title: a.title, count: links.filter((l) => l.album_id === a.id).length })),
    uploadTokens: (db.prepare('SELECT COUNT(*) AS n FROM uploads').get() as { n: number }).n,
    sessions: (db.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n,
  };
}

function nextDay({ ctx, res }: Call): void {
  const q = ctx.quota();
  ctx.store.kvSet('quota', { date: q.date, day: q.day + 1, used: {} });
  ctx.writeStamps.clear();
  ctx.json(res, 200, { day: q.day + 1 });
}

function state(call: Call): void {
  call.res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(snapshot(call)));
}

function resetCounters({ ctx, res }: Call): void {
  for (const k of Object.keys(ctx.stats)) (ctx.stats as Record<string, number>)[k] = 0;
  ctx.json(res, 200, {});
}

export const controlRoutes: Route[] = [
  { method: 'POST', path: '/__emulator/next-day', handle: nextDay },
  { path: '/__emulator/state', handle: state },
  { method: 'POST', path: '/__emulator/reset-counters', handle: resetCounters },
];
