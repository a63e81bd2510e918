// OneDrive benchmarks against the Graph emulator (a child process, over HTTPS on loopback):
// 1. 1 GiB folder -> OneDrive migration through the CLI (hashing SHA-1 + SHA-256 + QuickXorHash,
//    state store, verification) next to a plain chunked upload of the same bytes to the same
//    emulator with no hashing and no state: the ratio is what the careful path costs.
// 2. items/s for 2,000 small photos with 50 ms latency per request, next to the bound that the
//    requests in flight and the requests on each item's path allow: in flight / (requests x latency).

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { BenchRow, BenchSuite } from './types.ts';
import { CLI, QUICK, measure, runCli, startEmulator as startEmu } from './util.ts';
import type { Emu } from './util.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const TOKEN = 'bench-token-0123456789abcdef';
const CHUNK = 10 * 1024 * 1024;

const startEmulator = (data: string, flags: string[]): Promise<Emu> => startEmu('onedrive', data, TOKEN, flags, ['NODE_EXTRA_CA_CERTS', 'GRAPH_BASE_URL']);

/**
 * One request of a peer over its keep-alive agent, the answer read whole. A reused socket the
 * emulator closed as idle (its keep-alive timeout, 5 s) answers ECONNRESET before the request is
 * read: sent again once, as Node's documentation does for that race; nothing else is retried.
 */
function requester(agent: https.Agent) {
  const request = (
    url: string,
    method: string,
    headers: Record<string, string | number>,
    body?: Buffer,
    again = true,
  ): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (again && req.reusedSocket && e.code === 'ECONNRESET') resolve(request(url, method, headers, body, false));
        else reject(e);
      });
      req.end(body);
    });
  return request;
}

/** The peer: createUploadSession + 10 MiB fragments, files in parallel, no hashing, no state. */
async function plainUpload(emu: Emu, files: string[], folder: string, concurrency: number): Promise<number> {
  const ca = fs.readFileSync(emu.env.NODE_EXTRA_CA_CERTS!);
  const agent = new https.Agent({ keepAlive: true, ca, maxSockets: 64 });
  const request = requester(agent);
  const one = async (file: string) => {
    const size = fs.statSync(file).size;
    const name = path.basename(file);
    const payload = JSON.stringify({ item: { '@microsoft.graph.conflictBehavior': 'replace' } });
    const s = await request(
      `${emu.env.GRAPH_BASE_URL}/me/drive/root:/${folder}/${encodeURIComponent(name)}:/createUploadSession`,
      'POST',
      { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
      Buffer.from(payload),
    );
    const url = (JSON.parse(s.body) as { uploadUrl: string }).uploadUrl;
    const fd = fs.openSync(file, 'r');
    try {
      for (let o = 0; o < size; o += CHUNK) {
        const len = Math.min(CHUNK, size - o);
        const buf = Buffer.allocUnsafe(len);
        fs.readSync(fd, buf, 0, len, o);
        const r = await request(url, 'PUT', { 'Content-Length': len, 'Content-Range': `bytes ${o}-${o + len - 1}/${size}` }, buf);
        if (r.status >= 300) throw new Error(`plain upload: fragment answered ${r.status}`);
      }
    } finally {
      fs.closeSync(fd);
    }
  };
  const start = performance.now();
  const queue = [...files];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) await one(f);
    }),
  );
  const ms = performance.now() - start;
  agent.destroy();
  return ms;
}

async function throughput(): Promise<BenchRow[]> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-od-'));
  try {
    const src = path.join(t, 'src', 'Videos');
    fs.mkdirSync(src, { recursive: true });
    const files: string[] = [];
    const per = 128 * 1024 * 1024;
    for (let i = 0; i < (QUICK ? 2 : 8); i++) {
      const f = path.join(src, `VID_${i}.mp4`);
      const fd = fs.openSync(f, 'w');
      for (let o = 0; o < per; o += 16 * 1024 * 1024) fs.writeSync(fd, crypto.randomBytes(16 * 1024 * 1024));
      fs.closeSync(fd);
      files.push(f);
    }
    const total = per * files.length;
    const concurrency = 4;
    // Rounds in the order plain, migrate, migrate, plain, each on an emulator of its own (removed
    // after it, so the disk holds one copy at a time): both peers see the same drifting load on
    // average. The rows are totals over both rounds.
    const onEmulator = async <T>(label: string, fn: (emu: Emu) => Promise<T>): Promise<T> => {
      const data = path.join(t, `emu-${label}`);
      const emu = await startEmulator(data, []);
      try {
        return await fn(emu);
      } finally {
        await emu.stop();
        fs.rmSync(data, { recursive: true, force: true });
      }
    };
    const migrateOnce = (round: number) =>
      onEmulator(`migrate-${round}`, async (emu) => {
        const mig = await runCli(
          [
            'migrate',
            '--from',
            `folder:${path.join(t, 'src')}`,
            '--to',
            'onedrive:/Bench/migrated',
            '--state',
            path.join(t, `state-${round}.db`),
            '--concurrency',
            String(concurrency),
            '--onedrive-chunk-size',
            '10MiB',
            '--onedrive-requests-per-5min',
            '0',
            '--onedrive-app-requests-per-minute',
            '0',
          ],
          {
            GRAPH_BASE_URL: emu.env.GRAPH_BASE_URL!,
            NODE_EXTRA_CA_CERTS: emu.env.NODE_EXTRA_CA_CERTS!,
            ONEDRIVE_ACCESS_TOKEN: TOKEN,
            GALLERY_BRIDGE_HOME: path.join(t, `home-${round}`),
          },
        );
        if (mig.code !== 0) throw new Error(`migration exited ${mig.code}: ${mig.out.slice(-400)}`);
        return mig.ms;
      });
    const plainOnce = (round: number) => onEmulator(`plain-${round}`, (emu) => plainUpload(emu, files, 'Bench/plain', concurrency));
    const plain1 = await plainOnce(1);
    const migMs = (await migrateOnce(1)) + (await migrateOnce(2));
    const plainMs = plain1 + (await plainOnce(2));
    const migMBs = (2 * total) / 1e6 / (migMs / 1000);
    const plainMBs = (2 * total) / 1e6 / (plainMs / 1000);
    const ratio = migMBs / plainMBs;
    return [
      {
        name: `${(total / 1024 ** 3).toFixed(2)} GiB folder -> OneDrive emulator, migrate (hash, state, verify; two rounds each peer: plain, migrate, migrate, plain)`,
        value: migMBs,
        unit: 'MB/s',
        peer: { name: 'plain chunked upload, no hashing', value: plainMBs, unit: 'MB/s' },
        ratio,
        goal: '>= 0.8',
        met: ratio >= 0.8,
      },
    ];
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

/** CPU time (user + sys, ms) the process has used so far, from /proc. */
function cpuMsOf(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

interface Round {
  ms: number;
  /** CPU (user + sys) of the client: the bench process for the bare script, the migrate process. */
  cpuMs: number;
  emuCpuMs: number;
  requests: number;
}

/** One run of the bare script over every photo, on an emulator of its own. */
async function bareRound(t: string, round: number, files: string[], latency: number, concurrency: number): Promise<Round> {
  const emu = await startEmulator(path.join(t, `emu-bare-${round}`), ['--latency-ms', String(latency)]);
  try {
    const cpu0 = cpuMsOf(emu.child.pid!);
    // The bench process does nothing else meanwhile: its CPU is the bare script's.
    const own0 = process.cpuUsage();
    const ms = await bareSmallUploads(emu, files, 'Bench/bare', concurrency);
    const own = process.cpuUsage(own0);
    return { ms, cpuMs: (own.user + own.system) / 1000, emuCpuMs: cpuMsOf(emu.child.pid!) - cpu0, requests: await requestsServed(emu) };
  } finally {
    await emu.stop();
  }
}

/** One migrate run (folder -> OneDrive, a state of its own) over every photo, on an emulator of its own. */
async function migrateRound(t: string, round: number, latency: number, concurrency: number): Promise<Round> {
  const emu = await startEmulator(path.join(t, `emu-${round}`), ['--latency-ms', String(latency)]);
  try {
    const cpu0 = cpuMsOf(emu.child.pid!);
    const mig = await measure(
      process.execPath,
      [
        CLI,
        'migrate',
        '--from',
        `folder:${path.join(t, 'src')}`,
        '--to',
        'onedrive:/Bench/small',
        '--state',
        path.join(t, `state-${round}.db`),
        '--concurrency',
        String(concurrency),
        '--onedrive-requests-per-5min',
        '0',
        '--onedrive-app-requests-per-minute',
        '0',
      ],
      {
        env: {
          GRAPH_BASE_URL: emu.env.GRAPH_BASE_URL!,
          NODE_EXTRA_CA_CERTS: emu.env.NODE_EXTRA_CA_CERTS!,
          ONEDRIVE_ACCESS_TOKEN: TOKEN,
          GALLERY_BRIDGE_HOME: path.join(t, `home-${round}`),
        },
      },
    );
    if (mig.code !== 0) throw new Error(`migration exited ${mig.code}: ${(mig.stdout + mig.stderr).slice(-400)}`);
    return { ms: mig.wallMs, cpuMs: mig.cpuMs, emuCpuMs: cpuMsOf(emu.child.pid!) - cpu0, requests: await requestsServed(emu) };
  } finally {
    await emu.stop();
  }
}

/** The emulator's request counters (GET /__emulator/metrics, no auth): requests per photo, for both peers. */
async function requestsServed(emu: Emu): Promise<number> {
  const ca = fs.readFileSync(emu.env.NODE_EXTRA_CA_CERTS!);
  const url = new URL('/__emulator/metrics', emu.env.GRAPH_BASE_URL!);
  const body = await new Promise<string>((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
  const m = JSON.parse(body) as { byRoute: Record<string, number> };
  // The photos' own requests: sessions, upload URLs and item reads (a run's few folder and drive calls are in getItem too).
  return Object.entries(m.byRoute)
    .filter(([route]) => route !== 'metrics')
    .reduce((n, [, c]) => n + c, 0);
}

/**
 * The peer of the small-photo row: a bare node:https script making the requests each photo needs
 * (create the upload session, PUT the bytes in one fragment, read the item back for its hash),
 * `concurrency` photos at a time over one keep-alive agent. No hashing, no state, no EXIF.
 */
async function bareSmallUploads(emu: Emu, files: string[], folder: string, concurrency: number): Promise<number> {
  const ca = fs.readFileSync(emu.env.NODE_EXTRA_CA_CERTS!);
  const agent = new https.Agent({ keepAlive: true, ca, maxSockets: 64 });
  const base = emu.env.GRAPH_BASE_URL!;
  const request = requester(agent);
  const one = async (file: string) => {
    const bytes = fs.readFileSync(file);
    const payload = JSON.stringify({ item: { '@microsoft.graph.conflictBehavior': 'fail' } });
    const s = await request(
      `${base}/me/drive/root:/${folder}/${encodeURIComponent(path.basename(file))}:/createUploadSession`,
      'POST',
      { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
      Buffer.from(payload),
    );
    const url = (JSON.parse(s.body) as { uploadUrl: string }).uploadUrl;
    const put = await request(url, 'PUT', { 'Content-Length': bytes.length, 'Content-Range': `bytes 0-${bytes.length - 1}/${bytes.length}` }, bytes);
    if (put.status >= 300) throw new Error(`bare upload: PUT answered ${put.status}`);
    const id = (JSON.parse(put.body) as { id: string }).id;
    const got = await request(`${base}/me/drive/items/${encodeURIComponent(id)}`, 'GET', { Authorization: `Bearer ${TOKEN}` });
    if (!(JSON.parse(got.body) as { file?: { hashes?: { quickXorHash?: string } } }).file?.hashes?.quickXorHash)
      throw new Error('bare upload: no hash read back');
  };
  const start = performance.now();
  const queue = [...files];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) await one(f);
    }),
  );
  const ms = performance.now() - start;
  agent.destroy();
  return ms;
}

export async function smallPhotos(): Promise<BenchRow[]> {
  const t = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-bench-od-small-'));
  try {
    const src = path.join(t, 'src', 'Camera');
    fs.mkdirSync(src, { recursive: true });
    const jpeg = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'img_1771.jpg'));
    const n = QUICK ? 500 : 2000;
    // Distinct bytes per photo (a tag after the JPEG's end), so none is a duplicate of another.
    const files: string[] = [];
    for (let i = 0; i < n; i++) {
      const f = path.join(src, `IMG_${String(i).padStart(5, '0')}.jpg`);
      fs.writeFileSync(f, Buffer.concat([jpeg, Buffer.from(`gb-bench-${i}`)]));
      files.push(f);
    }
    const latency = 50;
    const concurrency = 16;
    // A migrate at --concurrency N keeps up to N sessions being created (the transfer stage), N
    // final fragments (OneDrive's commitConcurrency) and N read-backs (verification) in flight:
    // 3N requests, each photo's three in sequence. The bare script gets the same requests in
    // flight, 3N photos one request each at a time, and both share one bound: 3N / (3 x latency).
    const requestsInFlight = 3 * concurrency;
    // Peers in the order bare, migrate, migrate, bare (each run on an emulator of its own, so
    // none inherits another's items): on a shared machine whose load drifts, each peer then sees
    // the same load on average. Totals over both rounds make each row.
    const bare1 = await bareRound(t, 1, files, latency, requestsInFlight);
    const mig1 = await migrateRound(t, 1, latency, concurrency);
    const mig2 = await migrateRound(t, 2, latency, concurrency);
    const bare2 = await bareRound(t, 2, files, latency, requestsInFlight);
    const bareMs = bare1.ms + bare2.ms;
    const bareCpu = bare1.cpuMs + bare2.cpuMs;
    const bareEmuCpu = bare1.emuCpuMs + bare2.emuCpuMs;
    const bareRequests = bare1.requests + bare2.requests;
    const mig = { wallMs: mig1.ms + mig2.ms, cpuMs: mig1.cpuMs + mig2.cpuMs };
    const emuCpu = mig1.emuCpuMs + mig2.emuCpuMs;
    const migRequests = mig1.requests + mig2.requests;
    /** Photos each peer moved over its two rounds. */
    const moved = 2 * n;
    const rate = moved / (mig.wallMs / 1000);
    const bareRate = moved / (bareMs / 1000);
    // Context: the same photos folder -> folder (the engine alone: hashing, EXIF, state; no network).
    const local = await runCli(
      [
        'migrate',
        '--from',
        `folder:${path.join(t, 'src')}`,
        '--to',
        `folder:${path.join(t, 'dst')}`,
        '--state',
        path.join(t, 'local.db'),
        '--concurrency',
        String(concurrency),
      ],
      {},
    );
    const localRate = local.code === 0 ? n / (local.ms / 1000) : NaN;
    const requestsOnPath = 3;
    const bound = requestsInFlight / (requestsOnPath * (latency / 1000));
    // The emulator answers on one thread: its CPU per photo caps what any client can reach.
    const emuCap = 1000 / (emuCpu / moved);
    // Client and emulator share the machine's cores: with nothing else running, their CPU per
    // photo together caps the rate at cores x 1000 ms / (both). When that cap is above the bound
    // and the rate is not, the client's CPU is not what holds it back; the other load on the
    // machine is, and the bare script's own ratio to the bound shows how much.
    const cores = os.availableParallelism();
    const machineCap = (cores * 1000) / ((mig.cpuMs + emuCpu) / moved);
    return [
      {
        name: `${n.toLocaleString('en')} small photos, ${latency} ms latency, concurrency ${concurrency} (two rounds each peer: bare, migrate, migrate, bare)`,
        value: rate,
        unit: 'items/s',
        peer: { name: `bound: ${requestsInFlight} requests in flight / (${requestsOnPath} requests x ${latency} ms)`, value: bound, unit: 'items/s' },
        ratio: rate / bound,
        goal: '>= 0.8',
        met: rate / bound >= 0.8,
      },
      {
        name: `  the same run against a bare node:https script (session, PUT, read back the hash; ${requestsInFlight} photos at once: the same requests in flight)`,
        value: rate,
        unit: 'items/s',
        peer: { name: 'bare node:https script', value: bareRate, unit: 'items/s' },
        ratio: rate / bareRate,
        goal: '>= 0.8',
        met: rate / bareRate >= 0.8,
      },
      // CPU holds on a loaded machine, where the wall-clock rows above do not.
      {
        name: '  CPU per photo (user + sys) of the migrate process, start-up included',
        value: mig.cpuMs / moved,
        unit: 'ms',
        peer: { name: 'the bare node:https script', value: bareCpu / moved, unit: 'ms' },
        ratio: mig.cpuMs / bareCpu,
      },
      {
        name: '  emulator CPU per photo serving the migration (one thread): its ceiling, 1000 ms / that',
        value: emuCpu / moved,
        unit: 'ms',
        peer: { name: `ceiling ${emuCap.toFixed(0)} items/s; serving the bare script`, value: bareEmuCpu / moved, unit: 'ms' },
      },
      {
        name: '  the bare node:https script against the same bound: what this machine allowed a minimal client in this run',
        value: bareRate,
        unit: 'items/s',
        peer: { name: 'bound', value: bound, unit: 'items/s' },
        ratio: bareRate / bound,
      },
      {
        name: `  CPU ceiling on ${cores} cores: ${cores} x 1000 ms / (migrate + emulator CPU per photo), other load not counted`,
        value: machineCap,
        unit: 'items/s',
        peer: { name: 'bound', value: bound, unit: 'items/s' },
        ratio: machineCap / bound,
      },
      {
        name: '  requests per photo the emulator served (session, PUT, read-back; the run adds a few folder calls)',
        value: migRequests / moved,
        unit: 'requests',
        peer: { name: 'the bare script', value: bareRequests / moved, unit: 'requests' },
      },
      { name: `  same ${n.toLocaleString('en')} photos folder -> folder (engine alone, no network): context`, value: localRate, unit: 'items/s' },
    ];
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
}

export const suite: BenchSuite = async () => [...(await throughput()), ...(await smallPhotos())];
