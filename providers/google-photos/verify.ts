// Verification for the Google Photos destination, graded by what Google lets this app see:
// batchGet for the item, then a `=d` download compared with the source by bytes (SHA-1), else
// by decoded pixels and capture time (Google removes the location), else by dimensions and
// time where the format does not decode here. Videos (Google gives back a transcode) rest on
// Google's acknowledgement of every byte and their READY status.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { backoffDelay } from '../../src/lib/backoff.ts';
import { reason } from '../../src/lib/redact.ts';
import { RetryableError, StopRunError, type ProviderContext, type VerifyRequest, type VerifyResult } from '../types.ts';
import type { GoogleApi } from './client.ts';
import { captureTime, decodableHere, dimensions, fileHead, type Fingerprint, normalizeMime, pixelDigest, pixelDigestFile } from './evidence.ts';
import { googleError } from './client.ts';
import { inLibrary } from './in-library.ts';
import * as P from './protocol.ts';
import { spillFile } from './spill.ts';

/** What an upload left for verification, by the source's SHA-256 (up:<sha256> in the state store). */
export interface UploadRecord {
  /** Bytes Google itself acknowledged, or null when it said nothing (never assumed). */
  acknowledged: number | null;
  size: number;
  protocol: 'raw' | 'resumable';
  fp: Fingerprint | null;
}

export interface MediaItemJson {
  id: string;
  baseUrl?: string;
  mimeType?: string;
  filename?: string;
  mediaMetadata?: { creationTime?: string; width?: string; height?: string; video?: { status?: string } };
}

const GENERIC_MIME = new Set(['', 'application/octet-stream', 'binary/octet-stream']);
const MB = 1024 * 1024;
/** Downloads up to this size are judged in memory; larger photos go through a temporary file. */
const IN_MEMORY_DOWNLOAD = 32 * MB;

export class Verifier {
  private readonly pendingPolls = new Map<string, number>();

  constructor(
    private readonly api: GoogleApi,
    private readonly store: ProviderContext['store'],
    private readonly videoStuckMs: number,
  ) {}

  async verify(requests: VerifyRequest[]): Promise<VerifyResult[]> {
    const ids = [...new Set(requests.map((r) => r.destId))];
    const items = new Map<string, MediaItemJson | { error: string }>();
    for (let s = 0; s < ids.length; s += P.MAX_BATCH_GET) {
      const chunk = ids.slice(s, s + P.MAX_BATCH_GET);
      const q = chunk.map((id) => `mediaItemIds=${encodeURIComponent(id)}`).join('&');
      let r;
      try {
        r = await this.api.call('mediaItems.batchGet', this.api.json('GET', `${P.PATH_BATCH_GET}?${q}`));
      } catch (err) {
        if (err instanceof StopRunError) throw err;
        return requests.map(() => ({ outcome: 'error', error: err instanceof Error ? err : new RetryableError(reason(err)) }));
      }
      if (r.status !== 200) {
        const err = new RetryableError(`mediaItems.batchGet: HTTP ${r.status} ${googleError(r).message ?? ''}`);
        return requests.map(() => ({ outcome: 'error', error: err }));
      }
      const list =
        (JSON.parse(r.text || '{}') as { mediaItemResults?: Array<{ mediaItem?: MediaItemJson; status?: { code?: number; message?: string } }> })
          .mediaItemResults ?? [];
      chunk.forEach((id, i) => {
        const res = list.find((x) => x.mediaItem?.id === id) ?? list[i];
        items.set(id, res?.mediaItem ?? { error: res?.status?.message ?? 'not in the answer' });
      });
    }
    // Downloads and decoding run a few at a time.
    const results: VerifyResult[] = new Array(requests.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < requests.length; i = next++) {
        const req = requests[i]!;
        try {
          results[i] = await this.verifyOne(req, items.get(req.destId)!);
        } catch (err) {
          if (err instanceof StopRunError) throw err;
          results[i] = { outcome: 'error', error: err instanceof Error ? err : new RetryableError(reason(err)) };
        }
      }
    };
    // Up to 16 downloads at once; photos judged in memory keep that under about 256 MiB, larger
    // ones (through a file, a band at a time) go two at a time.
    const largest = Math.max(1, ...requests.map((r) => r.size));
    const parallel = largest > IN_MEMORY_DOWNLOAD ? 2 : Math.max(2, Math.min(16, Math.floor((256 * MB) / largest)));
    await Promise.all(Array.from({ length: Math.min(parallel, requests.length) }, worker));
    return results;
  }

  private async verifyOne(req: VerifyRequest, m: MediaItemJson | { error: string }): Promise<VerifyResult> {
    if ('error' in m) {
      // Google named this item when it took the bytes, yet will not show it: since March 2025 an
      // app reads only what it created, so the item was in the library before, from another app.
      const r = inLibrary(req.destId, `Google resolved the upload to media item ${req.destId}, which it does not let this app read (${m.error})`);
      return { outcome: 'in-library', reason: r.reason, evidence: r.evidence };
    }
    const wantMime = normalizeMime(req.facts.mimeType);
    const gotMime = normalizeMime(m.mimeType);
    if (!GENERIC_MIME.has(wantMime) && gotMime !== wantMime)
      return { outcome: 'mismatch', reason: `Google Photos reports ${m.mimeType}, the source is ${req.facts.mimeType}` };
    const md = m.mediaMetadata ?? {};
    const record = this.store.get<UploadRecord>(`up:${req.hashes.sha256}`) ?? null;
    // The kind by content: Google's answer or the sniffed type (a listing may only know 'other').
    const isVideo = req.facts.kind === 'video' || wantMime.startsWith('video/') || !!md.video || gotMime.startsWith('video/');
    if (isVideo) return this.verifyVideo(req, m, record);
    // Expected dimensions: the engine's (from metadata) or the decoded source's; either orientation.
    const dimsOk = (w: number | null | undefined, h: number | null | undefined) => {
      const known = [
        [req.facts.width, req.facts.height],
        [record?.fp?.width, record?.fp?.height],
      ].filter(([W, H]) => !!W && !!H) as Array<[number, number]>;
      if (known.length === 0 || !w || !h) return true;
      return known.some(([W, H]) => (W === w && H === h) || (W === h && H === w));
    };
    if (!dimsOk(Number(md.width) || null, Number(md.height) || null)) {
      return { outcome: 'mismatch', reason: `Google Photos reports ${md.width}x${md.height}, the source is ${req.facts.width}x${req.facts.height}` };
    }
    if (!m.baseUrl) return { outcome: 'pending', retryAfterMs: backoffDelay(1, undefined, { baseMs: 5000 }), reason: 'no baseUrl yet' };

    const judge = (got: Fetched) => judgeDownload({ req, record, wantMime, gotMime, md, dimsOk }, got);

    // A photo too large to hold is downloaded to a temporary file and decoded from there.
    const fetchOnce = async () =>
      req.size > IN_MEMORY_DOWNLOAD ? fetchedFile(this.api, `${m.baseUrl}=d`) : fetchedBuffer(await this.api.download(`${m.baseUrl}=d`));
    const first = await fetchOnce();
    let verdict: VerifyResult;
    try {
      verdict = await judge(first);
    } finally {
      first.dispose();
    }
    if (verdict.outcome !== 'mismatch') return verdict;
    // A second look tells a changed file from a download damaged on the way.
    const again = await fetchOnce();
    try {
      if (again.sha1 === first.sha1 && again.size === first.size) return verdict;
      const second = await judge(again);
      if (second.outcome !== 'mismatch') return second;
    } finally {
      again.dispose();
    }
    return { outcome: 'error', error: new RetryableError(`two downloads of ${req.destId} differ from each other: ${verdict.reason}`) };
  }

  private verifyVideo(req: VerifyRequest, m: MediaItemJson, record: UploadRecord | null): VerifyResult {
    const md = m.mediaMetadata ?? {};
    const status = md.video?.status ?? 'UNSPECIFIED';
    if (status === 'FAILED') return { outcome: 'mismatch', reason: 'Google Photos could not process the video (status FAILED)' };
    if (status !== 'READY') {
      const key = `vp:${req.destId}`;
      const since = this.store.get<number>(key) ?? Date.now();
      if (!this.store.get(key)) this.store.set(key, since);
      if (Date.now() - since > this.videoStuckMs)
        return { outcome: 'mismatch', reason: `the video is still ${status} after ${Math.round((Date.now() - since) / 3600000)} h` };
      const n = (this.pendingPolls.get(req.destId) ?? 0) + 1;
      this.pendingPolls.set(req.destId, n);
      return {
        outcome: 'pending',
        retryAfterMs: backoffDelay(n, undefined, { baseMs: 5000, maxMs: 10 * 60_000 }),
        reason: `Google Photos is processing the video (${status})`,
      };
    }
    this.pendingPolls.delete(req.destId);
    const w = Number(md.width) || null;
    const h = Number(md.height) || null;
    if (
      req.facts.width &&
      req.facts.height &&
      w &&
      h &&
      !((w === req.facts.width && h === req.facts.height) || (w === req.facts.height && h === req.facts.width))
    ) {
      return { outcome: 'mismatch', reason: `Google Photos reports ${w}x${h}, the source is ${req.facts.width}x${req.facts.height}` };
    }
    if (req.facts.captureTime && (req.facts.captureTimeSource === 'container' || req.facts.dateAdded) && md.creationTime) {
      const diff = Math.abs(Date.parse(md.creationTime) - Date.parse(req.facts.captureTime));
      // Exact, or off by a whole time-zone step (a container date read as local time); a date
      // written here is UTC by the format's definition, so it must be exact.
      const zoneStep = !req.facts.dateAdded && diff <= 14 * 3600_000 && diff % (15 * 60_000) < 2000;
      if (Number.isFinite(diff) && diff > 2000 && !zoneStep) {
        return { outcome: 'mismatch', reason: `Google Photos dates the video ${md.creationTime}, the source ${req.facts.captureTime}` };
      }
    }
    if (record && record.acknowledged !== null && record.acknowledged !== req.size)
      return { outcome: 'mismatch', reason: `Google acknowledged ${record.acknowledged} of ${req.size} bytes` };
    if (!record || record.acknowledged === null) {
      // `received` rests on Google's word for every byte; without it there is nothing to claim.
      return {
        outcome: 'pending',
        retryAfterMs: 3600_000,
        reason: `Google has not confirmed receiving all ${req.size} bytes (${record ? 'no X-Goog-Upload-Size-Received in its answers' : 'no record of its acknowledgement here'}); the video stays at the source`,
      };
    }
    const ack = `Google acknowledged all ${record.acknowledged} bytes (${record.protocol === 'raw' ? 'a token for the one request carrying them' : 'X-Goog-Upload-Size-Received'})`;
    return {
      outcome: 'verified',
      evidence: {
        level: 'received',
        detail: `READY at Google Photos; ${ack}; ${m.mimeType}${w ? ` ${w}x${h}` : ''}; the download (=dv) is a transcode, so no byte comparison`,
      },
    };
  }
}

/** What a download is judged against. */
interface Judging {
  req: VerifyRequest;
  record: UploadRecord | null;
  wantMime: string;
  gotMime: string;
  md: NonNullable<MediaItemJson['mediaMetadata']>;
  /** Whether dimensions match the source's (either orientation; unknown passes). */
  dimsOk(w: number | null | undefined, h: number | null | undefined): boolean;
}

/**
 * A `=d` download against the source: the same bytes; else the same decoded pixels and capture
 * time; else (not decodable here) the same dimensions and capture time, at the `received` level.
 */
async function judgeDownload({ req, record, wantMime, gotMime, md, dimsOk }: Judging, got: Fetched): Promise<VerifyResult> {
  const sha1 = got.sha1;
  if (sha1 === req.hashes.sha1 && got.size === req.size) {
    return { outcome: 'verified', evidence: { level: 'bytes', detail: `the download (=d) equals the source: ${got.size} bytes, SHA-1 ${sha1}` } };
  }
  const time = await captureTime(got.head);
  const srcTime = record?.fp ? record.fp.time : null;
  const timeOk = record?.fp ? time === srcTime : true;
  if (record?.fp?.pixels) {
    let digest: string;
    try {
      digest = await got.pixels();
    } catch (err) {
      return { outcome: 'mismatch', reason: `the download (=d) does not decode although the source did: ${reason(err)}` };
    }
    if (digest !== record.fp.pixels) return { outcome: 'mismatch', reason: `the download (=d) decodes to other pixels than the source (${record.fp.shape})` };
    if (!timeOk) return { outcome: 'mismatch', reason: `capture time differs: source ${srcTime ?? 'none'}, download ${time ?? 'none'}` };
    return {
      outcome: 'verified',
      evidence: {
        level: 'pixels',
        detail: `decoded pixels equal (${record.fp.shape}, SHA-256 of pixels), capture time equal (${srcTime ?? 'none at the source'}); only metadata differs (Google removes the location)`,
      },
    };
  }
  // Not decodable here (HEIC with prebuilt sharp) or the source itself did not decode.
  if (!record?.fp) {
    if (decodableHere(wantMime))
      return { outcome: 'mismatch', reason: 'the download differs from the source and no pixel fingerprint of the source was kept to compare' };
  }
  const d = await got.dims();
  if (!dimsOk(d.width, d.height))
    return { outcome: 'mismatch', reason: `the download is ${d.width}x${d.height}, the source ${record?.fp?.width}x${record?.fp?.height}` };
  if (!timeOk) return { outcome: 'mismatch', reason: `capture time differs: source ${srcTime ?? 'none'}, download ${time ?? 'none'}` };
  const why = record?.fp?.decodeError ? 'the source does not decode here' : `${wantMime} does not decode here`;
  return {
    outcome: 'verified',
    evidence: {
      level: 'received',
      detail: `${why}; Google Photos has it as ${gotMime} ${md.width ?? d.width}x${md.height ?? d.height} with the same capture time (${srcTime ?? 'none'})`,
    },
  };
}

/** A `=d` download, held in memory or (a large photo) in a temporary file. */
interface Fetched {
  sha1: string;
  size: number;
  head: Buffer;
  pixels(): Promise<string>;
  dims(): Promise<{ width: number | null; height: number | null }>;
  dispose(): void;
}

function fetchedBuffer(bytes: Buffer): Fetched {
  return {
    sha1: crypto.createHash('sha1').update(bytes).digest('hex'),
    size: bytes.length,
    head: bytes,
    pixels: async () => (await pixelDigest(bytes)).digest,
    dims: () => dimensions(bytes),
    dispose: () => undefined,
  };
}

async function fetchedFile(api: GoogleApi, url: string): Promise<Fetched> {
  const spill = spillFile();
  fs.closeSync(spill.fd);
  spill.fd = -1;
  try {
    const { sha1, size } = await api.downloadTo(url, spill.file);
    return {
      sha1,
      size,
      head: await fileHead(spill.file),
      pixels: async () => (await pixelDigestFile(spill.file)).digest,
      dims: () => dimensions(spill.file),
      dispose: () => spill.dispose(),
    };
  } catch (err) {
    spill.dispose();
    throw err;
  }
}
