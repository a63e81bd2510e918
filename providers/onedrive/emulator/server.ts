// A Microsoft Graph / OneDrive emulator: the part of Graph that gallery-bridge uses, as strict as
// the documented service (../shared/reference/onedrive-graph.md), plus the Microsoft identity
// platform endpoints msal-node needs. Built from the documentation, never from our client:
// this file imports nothing from providers/onedrive/ outside emulator/.
//
// Hosts: like the real service, the API answers on one host and upload URLs live on another.
//   https://localhost:PORT/v1.0/...            Graph API (bearer token required)
//   https://localhost:PORT/{tenant}/...        sign-in (OpenID metadata, token, device code)
//   https://127.0.0.1:PORT/upload/{id}?tempauth=...   pre-authenticated upload URLs
//   https://{either}:PORT/__emulator/metrics   counters for tests (no auth)
//
// Storage: every stored file is a plain file at DATA/<drive>/<path> ("me" for the signed-in
// drive, the user id for /users/{id}/drive); metadata, unfinished uploads, issued tokens and a
// request log live under DATA/.emulator/.

import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { Faults, listenLoopback, parseEmulatorArgs, readBody, sendBody, sendStream, type CommonFlags } from '../../../src/emulator/kit.ts';
import { EmulatorQuickXor } from './quickxor.ts';
import { ensureTlsFiles } from './tls.ts';

// ---- Protocol constants (from the Graph documentation) ----
const FRAGMENT_MULTIPLE = 327_680; // 320 KiB
const FRAGMENT_MAX = 60 * 1024 * 1024; // fragments must be under 60 MiB
const SIMPLE_PUT_MAX = 250 * 1024 * 1024;
const MAX_PATH = 400;
const DEFAULT_SESSION_TTL_S = 15 * 60; // Business: about 15 minutes of inactivity
const TEMPAUTH_LIFETIME_S = 24 * 3600;
const RESERVED_CHARS = /[/\\*<>?:|"\x00-\x1f]/;
const RESERVED_NAMES = /^(con|prn|aux|nul|com[0-9]|lpt[0-9]|\.lock|desktop\.ini)(\..*)?$/i;

export type Flavor = 'personal' | 'business';

export interface OneDriveEmulatorOptions {
  common: CommonFlags;
  /**
   * personal: OneDrive for home (onedrive.live.com). business: OneDrive for work or school, a
   * SharePoint personal site behind Graph. They differ where the docs and issue threads say so:
   * - fail at session creation: Business answers 409 nameAlreadyExists when the session is
   *   created (microsoft-graph-docs#19010); Personal only at the last fragment (onedrive-api-docs#55).
   * - a second session for a path with one still open: Business answers 409 nameAlreadyExists
   *   "A file with the same name is currently being uploaded" whatever the conflict behaviour
   *   (onedrive-api-docs#747, microsoft-graph-docs-contrib#412); Personal hands out a new URL.
   * - the 400-character limit: Business counts the whole decoded path, the site and library
   *   included (personal/<upn>/Documents/...); Personal counts the path in the drive.
   * - driveType, webUrl, and item.fileSize/description (Personal only, per the reference).
   * Names are case-insensitive in both.
   */
  flavor: Flavor;
  /** Business: the signed-in user's UPN, which names the personal site (personal/<upn with _>/Documents). */
  upn: string;
  /** Personal: hashes besides quickXorHash the driveItem reports (sha1Hash, sha256Hash). */
  extraHashes: Array<'sha1' | 'sha256'>;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  acceptTokens: string[];
  /** Total bytes per drive; 0 = 1 TiB. Uploads beyond it answer 507. */
  quotaBytes: number;
  retryAfterS: number;
  /** The driveItem carries no hashes until this long after the file is created. */
  hashDelayMs: number;
  /** Lifetime of the tempauth credential in upload URLs (24 h at Microsoft). */
  tempauthTtlS: number;
  /** Lifetime of issued access tokens. */
  tokenTtlS: number;
  /** Device-code sign-ins approve themselves this long after the code was issued. */
  deviceApproveMs: number;
  /** When set, the client-credentials flow requires this secret. */
  clientSecret?: string;
  /** Write a JSON line per request to DATA/.emulator/requests.log. */
  requestLog: boolean;
}

interface ItemMeta {
  id: string;
  drive: string;
  /** '' for the root, else '/a/b/name' in the case it was created with. */
  path: string;
  name: string;
  parentId: string | null;
  folder: boolean;
  size: number;
  createdDateTime: string;
  lastModifiedDateTime: string;
  fsCreated: string;
  fsModified: string;
  /** driveItem.description (OneDrive personal): set through the upload session's item. */
  description?: string | null;
  quickXorHash: string | null;
  sha1Hash?: string | null;
  sha256Hash?: string | null;
  hashReadyAt: number;
  eTag: string;
}

interface UploadSession {
  id: string;
  drive: string;
  /** Target path '/a/b/name'. */
  path: string;
  conflictBehavior: 'fail' | 'replace' | 'rename';
  declaredSize: number | null;
  total: number | null;
  next: number;
  createdAt: number;
  expiresAt: number;
  tempauth: string;
  fsCreated: string | null;
  fsModified: string | null;
  description?: string | null;
}

interface TokenInfo {
  kind: 'delegated' | 'app';
  subject: string;
  expiresAt: number;
}

interface DeviceCode {
  deviceCode: string;
  userCode: string;
  clientId: string;
  tenant: string;
  scope: string;
  issuedAt: number;
  expiresAt: number;
}

export interface EmulatorMetrics {
  requests: number;
  byRoute: Record<string, number>;
  byStatus: Record<string, number>;
  faults: Record<string, number>;
  /** Body bytes that reached upload URLs, counted as they arrive (including cut-off fragments). */
  uploadBytesReceived: number;
  /** Fragment bytes written into sessions. */
  uploadBytesAccepted: number;
  /** Per target path: received and accepted bytes, sessions created. */
  perPath: Record<string, { received: number; accepted: number; sessions: number; fragments: number }>;
  sessionsCreated: number;
  filesCreated: number;
  authHeaderOnUploadUrl: number;
}

class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** errors.md's detailed code, nested as innererror.code. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

const nowIso = (t = Date.now()) => new Date(t).toISOString();
const rid = (bytes = 12) => crypto.randomBytes(bytes).toString('hex');
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

export class OneDriveEmulator {
  readonly faults: Faults;
  readonly metrics: EmulatorMetrics = {
    requests: 0,
    byRoute: {},
    byStatus: {},
    faults: {},
    uploadBytesReceived: 0,
    uploadBytesAccepted: 0,
    perPath: {},
    sessionsCreated: 0,
    filesCreated: 0,
    authHeaderOnUploadUrl: 0,
  };
  private readonly dataDir: string;
  private readonly metaDir: string;
  private readonly items = new Map<string, ItemMeta>();
  private readonly byPath = new Map<string, string>();
  private readonly sessions = new Map<string, UploadSession>();
  private readonly tokens = new Map<string, TokenInfo>();
  private readonly refreshTokens = new Map<string, { subject: string; clientId: string; tenant: string; scope: string }>();
  private readonly deviceCodes = new Map<string, DeviceCode>();
  private port = 0;
  private logFd: number | null = null;
  private closeServer: (() => Promise<void>) | null = null;

  constructor(readonly opts: OneDriveEmulatorOptions) {
    this.faults = new Faults(opts.common);
    this.dataDir = path.resolve(opts.common.data);
    this.metaDir = path.join(this.dataDir, '.emulator');
    for (const d of ['items', 'uploads']) fs.mkdirSync(path.join(this.metaDir, d), { recursive: true });
    this.load();
  }

  get apiBase(): string {
    return `https://localhost:${this.port}/v1.0`;
  }
  get uploadBase(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async start(): Promise<Record<string, string>> {
    let tls: { ca: string; cert: string; key: string };
    if (this.opts.tlsCert && this.opts.tlsKey) {
      tls = { cert: this.opts.tlsCert, key: this.opts.tlsKey, ca: this.opts.tlsCa ?? this.opts.tlsCert };
    } else {
      tls = await ensureTlsFiles(path.join(this.metaDir, 'tls'));
    }
    if (this.opts.requestLog) this.logFd = fs.openSync(path.join(this.metaDir, 'requests.log'), 'a');
    const started = await listenLoopback(
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          if (!res.headersSent) this.json(res, 500, { error: { code: 'generalException', message: String((err as Error)?.message ?? err) } });
          else res.destroy();
        });
      },
      this.opts.common.port,
      { key: fs.readFileSync(tls.key, 'utf8'), cert: fs.readFileSync(tls.cert, 'utf8') },
    );
    this.port = started.port;
    this.closeServer = started.close;
    return {
      GRAPH_BASE_URL: this.apiBase,
      ONEDRIVE_AUTHORITY: `https://localhost:${this.port}/consumers`,
      NODE_EXTRA_CA_CERTS: path.resolve(tls.ca),
    };
  }

  async close(): Promise<void> {
    await this.closeServer?.();
    if (this.logFd !== null) fs.closeSync(this.logFd);
    this.logFd = null;
  }

  // ---------------------------------------------------------------- persistence

  private load(): void {
    for (const f of fs.readdirSync(path.join(this.metaDir, 'items'))) {
      if (!f.endsWith('.json')) continue;
      const m = JSON.parse(fs.readFileSync(path.join(this.metaDir, 'items', f), 'utf8')) as ItemMeta;
      this.items.set(m.id, m);
      this.byPath.set(this.key(m.drive, m.path), m.id);
    }
    for (const f of fs.readdirSync(path.join(this.metaDir, 'uploads'))) {
      if (!f.endsWith('.json')) continue;
      const s = JSON.parse(fs.readFileSync(path.join(this.metaDir, 'uploads', f), 'utf8')) as UploadSession;
      this.sessions.set(s.id, s);
    }
    const tokFile = path.join(this.metaDir, 'tokens.json');
    if (fs.existsSync(tokFile)) {
      const t = JSON.parse(fs.readFileSync(tokFile, 'utf8')) as { access: [string, TokenInfo][]; refresh: [string, { subject: string; clientId: string; tenant: string; scope: string }][] };
      for (const [k, v] of t.access) this.tokens.set(k, v);
      for (const [k, v] of t.refresh) this.refreshTokens.set(k, v);
    }
  }

  private saveTokens(): void {
    const file = path.join(this.metaDir, 'tokens.json');
    fs.writeFileSync(file, JSON.stringify({ access: [...this.tokens], refresh: [...this.refreshTokens] }), { mode: 0o600 });
  }

  private saveItem(m: ItemMeta): void {
    fs.writeFileSync(path.join(this.metaDir, 'items', `${m.id}.json`), JSON.stringify(m));
  }

  private saveSession(s: UploadSession): void {
    fs.writeFileSync(path.join(this.metaDir, 'uploads', `${s.id}.json`), JSON.stringify(s));
  }

  private dropSession(s: UploadSession): void {
    this.sessions.delete(s.id);
    fs.rmSync(path.join(this.metaDir, 'uploads', `${s.id}.json`), { force: true });
    fs.rmSync(path.join(this.metaDir, 'uploads', `${s.id}.part`), { force: true });
  }

  private key(drive: string, p: string): string {
    return `${drive}\n${p.toLowerCase()}`;
  }

  private diskPath(drive: string, p: string): string {
    return path.join(this.dataDir, drive, ...p.split('/').filter(Boolean));
  }

  // ---------------------------------------------------------------- drive model

  private root(drive: string): ItemMeta {
    const id = this.byPath.get(this.key(drive, ''));
    if (id) return this.items.get(id)!;
    const t = nowIso();
    const m: ItemMeta = {
      id: `${drive === 'me' ? 'ME' : crypto.createHash('sha1').update(drive).digest('hex').slice(0, 8).toUpperCase()}!root`,
      drive,
      path: '',
      name: 'root',
      parentId: null,
      folder: true,
      size: 0,
      createdDateTime: t,
      lastModifiedDateTime: t,
      fsCreated: t,
      fsModified: t,
      quickXorHash: null,
      hashReadyAt: 0,
      eTag: rid(8),
    };
    this.items.set(m.id, m);
    this.byPath.set(this.key(drive, ''), m.id);
    fs.mkdirSync(this.diskPath(drive, ''), { recursive: true });
    this.saveItem(m);
    return m;
  }

  private lookup(drive: string, p: string): ItemMeta | undefined {
    if (p === '' || p === '/') return this.root(drive);
    const id = this.byPath.get(this.key(drive, p));
    return id ? this.items.get(id) : undefined;
  }

  private children(parent: ItemMeta): ItemMeta[] {
    return [...this.items.values()].filter((m) => m.parentId === parent.id);
  }

  private used(drive: string): number {
    let n = 0;
    for (const m of this.items.values()) if (m.drive === drive && !m.folder) n += m.size;
    return n;
  }

  private quotaTotal(): number {
    return this.opts.quotaBytes > 0 ? this.opts.quotaBytes : 1024 ** 4;
  }

  private validateName(name: string): void {
    if (!name || name === '.' || name === '..') throw new GraphError(400, 'invalidRequest', 'The name is empty or invalid.');
    if (RESERVED_CHARS.test(name)) throw new GraphError(400, 'invalidRequest', `The name "${name}" contains characters that are not allowed.`);
    if (/^\s|\s$/.test(name) || name.endsWith('.')) throw new GraphError(400, 'invalidRequest', `The name "${name}" has a leading or trailing space or a trailing dot.`);
    if (RESERVED_NAMES.test(name) || name.startsWith('~$') || name.toLowerCase().includes('_vti_')) throw new GraphError(400, 'invalidRequest', `The name "${name}" is reserved.`);
  }

  /** Business: the SharePoint site path of a drive's library, counted in the 400-character limit. */
  private sitePath(drive: string): string {
    if (this.opts.flavor !== 'business') return '';
    const upn = drive === 'me' ? this.opts.upn : drive;
    return `personal/${upn.replace(/[@.]/g, '_').toLowerCase()}/Documents`;
  }

  private validatePath(drive: string, p: string): void {
    for (const seg of p.split('/').filter(Boolean)) this.validateName(seg);
    const full = `${this.sitePath(drive)}${p}`;
    // errors.md: the top-level code is invalidRequest; the detail sits in innererror.
    if (full.length >= MAX_PATH) throw new GraphError(400, 'invalidRequest', 'The path is too long.', {}, 'pathIsTooLong');
  }

  /** Creates the folders on the way to p (as Graph does for path-addressed uploads). */
  private ensureFolders(drive: string, p: string): ItemMeta {
    let cur = this.root(drive);
    let sofar = '';
    for (const seg of p.split('/').filter(Boolean)) {
      sofar += `/${seg}`;
      const found = this.lookup(drive, sofar);
      if (found) {
        if (!found.folder) throw new GraphError(409, 'nameAlreadyExists', `A file named "${seg}" is in the way of the folder path.`);
        cur = found;
        sofar = found.path;
        continue;
      }
      cur = this.createFolder(drive, cur, seg);
      sofar = cur.path;
    }
    return cur;
  }

  private createFolder(drive: string, parent: ItemMeta, name: string): ItemMeta {
    this.validateName(name);
    const t = nowIso();
    const m: ItemMeta = {
      id: `${this.root(drive).id.split('!')[0]}!${rid(6)}`,
      drive,
      path: `${parent.path}/${name}`,
      name,
      parentId: parent.id,
      folder: true,
      size: 0,
      createdDateTime: t,
      lastModifiedDateTime: t,
      fsCreated: t,
      fsModified: t,
      quickXorHash: null,
      hashReadyAt: 0,
      eTag: rid(8),
    };
    this.validatePath(drive, m.path);
    fs.mkdirSync(this.diskPath(drive, m.path), { recursive: true });
    this.items.set(m.id, m);
    this.byPath.set(this.key(drive, m.path), m.id);
    this.saveItem(m);
    return m;
  }

  private freeName(drive: string, parent: ItemMeta, name: string): string {
    const dot = name.lastIndexOf('.');
    const stem = dot > 0 ? name.slice(0, dot) : name;
    const ext = dot > 0 ? name.slice(dot) : '';
    for (let n = 1; ; n++) {
      const candidate = `${stem} ${n}${ext}`;
      if (!this.lookup(drive, `${parent.path}/${candidate}`)) return candidate;
    }
  }

  /**
   * Puts a finished file in place: conflict rules, quota, bytes moved to DATA/<drive>/<path>,
   * QuickXorHash computed from the stored bytes.
   */
  private placeFile(
    drive: string,
    targetPath: string,
    conflict: 'fail' | 'replace' | 'rename',
    source: { file: string } | { bytes: Buffer },
    size: number,
    fsInfo: { created: string | null; modified: string | null; description?: string | null },
  ): { item: ItemMeta; created: boolean } {
    const parentPath = targetPath.slice(0, targetPath.lastIndexOf('/'));
    let name = targetPath.slice(targetPath.lastIndexOf('/') + 1);
    this.validatePath(drive, targetPath);
    const existing = this.lookup(drive, targetPath);
    let replacing: ItemMeta | undefined;
    if (existing) {
      if (conflict === 'fail' || existing.folder) throw new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists.');
      if (conflict === 'rename') {
        const parent = this.lookup(drive, parentPath)!;
        name = this.freeName(drive, parent, name);
      } else replacing = existing;
    }
    const freed = replacing ? replacing.size : 0;
    if (this.used(drive) - freed + size > this.quotaTotal()) throw new GraphError(507, 'quotaLimitReached', 'Insufficient Storage: the drive is full.');
    const parent = this.ensureFolders(drive, parentPath);
    const finalPath = `${parent.path}/${name}`;
    const disk = this.diskPath(drive, finalPath);
    if ('file' in source) fs.renameSync(source.file, disk);
    else fs.writeFileSync(disk, source.bytes);
    const hash = new EmulatorQuickXor();
    const sha1 = crypto.createHash('sha1');
    const sha256 = crypto.createHash('sha256');
    const fd = fs.openSync(disk, 'r');
    try {
      const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n <= 0) break;
        hash.update(buf.subarray(0, n));
        sha1.update(buf.subarray(0, n));
        sha256.update(buf.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
    const t = Date.now();
    const m: ItemMeta = {
      id: replacing?.id ?? `${this.root(drive).id.split('!')[0]}!${rid(6)}`,
      drive,
      path: finalPath,
      name,
      parentId: parent.id,
      folder: false,
      size,
      createdDateTime: replacing?.createdDateTime ?? nowIso(t),
      lastModifiedDateTime: nowIso(t),
      fsCreated: fsInfo.created ?? nowIso(t),
      fsModified: fsInfo.modified ?? nowIso(t),
      description: fsInfo.description ?? null,
      quickXorHash: hash.digestBase64(),
      // Personal reports these upper-case hex (sha1Hash is deprecated, sha256Hash rarely present).
      sha1Hash: sha1.digest('hex').toUpperCase(),
      sha256Hash: sha256.digest('hex').toUpperCase(),
      hashReadyAt: t + this.opts.hashDelayMs,
      eTag: rid(8),
    };
    this.items.set(m.id, m);
    this.byPath.set(this.key(drive, m.path), m.id);
    this.saveItem(m);
    this.metrics.filesCreated++;
    return { item: m, created: !replacing };
  }

  private deleteItem(m: ItemMeta): void {
    if (m.parentId === null) throw new GraphError(403, 'accessDenied', 'The root cannot be deleted.');
    for (const c of this.children(m)) this.deleteItem(c);
    this.items.delete(m.id);
    this.byPath.delete(this.key(m.drive, m.path));
    fs.rmSync(path.join(this.metaDir, 'items', `${m.id}.json`), { force: true });
    fs.rmSync(this.diskPath(m.drive, m.path), { recursive: true, force: true });
  }

  private driveJson(drive: string): unknown {
    const used = this.used(drive);
    const total = this.quotaTotal();
    return {
      id: this.root(drive).id.split('!')[0],
      driveType: this.opts.flavor,
      webUrl: this.opts.flavor === 'business' ? `https://localhost:${this.port}/${this.sitePath(drive)}` : `https://localhost:${this.port}/?cid=${this.root(drive).id.split('!')[0]}`,
      owner: { user: { id: drive, displayName: drive } },
      quota: { total, used, remaining: Math.max(0, total - used), deleted: 0, state: used >= total ? 'exceeded' : 'normal' },
    };
  }

  private itemJson(m: ItemMeta): Record<string, unknown> {
    const parent = m.parentId ? this.items.get(m.parentId) : undefined;
    const out: Record<string, unknown> = {
      id: m.id,
      name: m.name,
      eTag: `"{${m.eTag}},1"`,
      cTag: `"c:{${m.eTag}},1"`,
      size: m.folder ? this.children(m).reduce((a, c) => a + c.size, 0) : m.size,
      createdDateTime: m.createdDateTime,
      lastModifiedDateTime: m.lastModifiedDateTime,
      fileSystemInfo: { createdDateTime: m.fsCreated, lastModifiedDateTime: m.fsModified },
      ...(m.description ? { description: m.description } : {}),
      parentReference: parent
        ? { driveId: this.root(m.drive).id.split('!')[0], id: parent.id, path: `/drive/root:${parent.path}` }
        : { driveId: this.root(m.drive).id.split('!')[0] },
    };
    if (m.folder) out.folder = { childCount: this.children(m).length };
    else {
      const file: Record<string, unknown> = { mimeType: 'application/octet-stream' };
      if (m.quickXorHash && Date.now() >= m.hashReadyAt) {
        const hashes: Record<string, string> = { quickXorHash: m.quickXorHash };
        if (this.opts.flavor === 'personal') {
          if (m.sha1Hash && this.opts.extraHashes.includes('sha1')) hashes.sha1Hash = m.sha1Hash;
          if (m.sha256Hash && this.opts.extraHashes.includes('sha256')) hashes.sha256Hash = m.sha256Hash;
        }
        file.hashes = hashes;
      }
      out.file = file;
    }
    if (m.parentId === null) out.root = {};
    return out;
  }

  // ---------------------------------------------------------------- HTTP plumbing

  private json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const buf = Buffer.from(JSON.stringify(body));
    sendBody(res, this.faults, status, { 'Content-Type': 'application/json', ...headers }, buf);
  }

  private count(route: string, status?: number): void {
    this.metrics.byRoute[route] = (this.metrics.byRoute[route] ?? 0) + 1;
    if (status) this.metrics.byStatus[String(status)] = (this.metrics.byStatus[String(status)] ?? 0) + 1;
  }

  private log(entry: Record<string, unknown>): void {
    if (this.logFd !== null) fs.writeSync(this.logFd, `${JSON.stringify({ t: nowIso(), ...entry })}\n`);
  }

  private fault(kind: string): void {
    this.metrics.faults[kind] = (this.metrics.faults[kind] ?? 0) + 1;
  }

  /** 429 or 5xx before the request is served (throttling and outages). */
  private injectedFailure(): GraphError | null {
    if (this.faults.roll('429')) {
      this.fault('429');
      return new GraphError(429, 'activityLimitReached', 'The request has been throttled.', { 'Retry-After': String(this.opts.retryAfterS) });
    }
    if (this.faults.roll('5xx')) {
      const s = this.faults.random() < 0.5 ? 503 : 500;
      this.fault(String(s));
      return new GraphError(s, s === 503 ? 'serviceNotAvailable' : 'generalException', 'The service is unavailable.', s === 503 ? { 'Retry-After': String(this.opts.retryAfterS) } : {});
    }
    return null;
  }

  private sendError(res: http.ServerResponse, e: GraphError): void {
    const error: Record<string, unknown> = { code: e.code, message: e.message, innerError: { date: nowIso(), 'request-id': rid(8), 'client-request-id': rid(8) } };
    if (e.detail) error.innererror = { code: e.detail };
    this.json(res, e.status, { error }, e.headers);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.metrics.requests++;
    const host = (req.headers.host ?? '').toLowerCase();
    const url = new URL(req.url ?? '/', `https://${host || 'localhost'}`);
    const started = Date.now();
    res.on('finish', () => {
      this.log({ method: req.method, host: url.hostname, path: url.pathname.startsWith('/upload/') ? '/upload/…' : url.pathname, status: res.statusCode, range: req.headers['content-range'], bytes: Number(req.headers['content-length'] ?? 0), ms: Date.now() - started });
    });
    await this.faults.latency();

    if (url.pathname === '/__emulator/metrics') {
      this.count('metrics', 200);
      const buf = Buffer.from(JSON.stringify(this.metrics));
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': buf.length });
      res.end(buf);
      return;
    }
    if (url.pathname.startsWith('/upload/')) {
      if (url.hostname !== '127.0.0.1') return this.sendError(res, new GraphError(404, 'itemNotFound', 'Upload URLs are served on the upload host only.'));
      return this.handleUpload(req, res, url);
    }
    if (url.hostname !== 'localhost') return this.sendError(res, new GraphError(404, 'itemNotFound', `Nothing is served at ${url.hostname}${url.pathname}.`));
    if (url.pathname.startsWith('/v1.0/')) return this.handleApi(req, res, url);
    return this.handleLogin(req, res, url);
  }

  // ---------------------------------------------------------------- sign-in (msal-node)

  private issueTokens(kind: 'delegated' | 'app', subject: string, clientId: string, tenant: string, scope: string, withRefresh: boolean): Record<string, unknown> {
    const ttl = this.opts.tokenTtlS || this.opts.common.sessionTtl || 3600;
    const access = `emu-at-${rid(24)}`;
    this.tokens.set(access, { kind, subject, expiresAt: Date.now() + ttl * 1000 });
    const body: Record<string, unknown> = { token_type: 'Bearer', access_token: access, expires_in: ttl, ext_expires_in: ttl, scope };
    if (withRefresh) {
      const refresh = `emu-rt-${rid(24)}`;
      this.refreshTokens.set(refresh, { subject, clientId, tenant, scope });
      body.refresh_token = refresh;
      const tid = tenant === 'consumers' ? '9188040d-6c67-4c5b-b112-36a304b66dad' : tenant;
      const oid = crypto.createHash('sha256').update(subject).digest('hex');
      const uid = `${oid.slice(0, 8)}-${oid.slice(8, 12)}-${oid.slice(12, 16)}-${oid.slice(16, 20)}-${oid.slice(20, 32)}`;
      body.client_info = b64url({ uid, utid: tid });
      const nowS = Math.floor(Date.now() / 1000);
      body.id_token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({
        aud: clientId,
        iss: `https://localhost:${this.port}/${tid}/v2.0`,
        iat: nowS,
        nbf: nowS,
        exp: nowS + ttl,
        name: 'Emulated User',
        oid: uid,
        sub: uid,
        tid,
        preferred_username: `${subject}@example.invalid`,
        ver: '2.0',
      })}.`;
    }
    this.saveTokens();
    return body;
  }

  private async handleLogin(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const m = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/token|oauth2\/v2\.0\/devicecode|discovery\/instance)$/.exec(url.pathname);
    if (!m) {
      this.count('unknown', 404);
      return this.json(res, 404, { error: 'not_found', error_description: `No such endpoint ${url.pathname}` });
    }
    const tenant = m[1]!;
    const base = `https://localhost:${this.port}/${tenant}`;
    const oauthError = (status: number, error: string, description: string) => {
      this.count(`login:${error}`, status);
      this.json(res, status, { error, error_description: description, error_codes: [], timestamp: nowIso(), trace_id: rid(8), correlation_id: rid(8) });
    };
    if (m[2] === 'v2.0/.well-known/openid-configuration') {
      this.count('openid-configuration', 200);
      return this.json(res, 200, {
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        tenant_region_scope: null,
      });
    }
    if (m[2] === 'discovery/instance') {
      this.count('instance-discovery', 200);
      return this.json(res, 200, {
        tenant_discovery_endpoint: `${base}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: `localhost:${this.port}`, preferred_cache: `localhost:${this.port}`, aliases: [`localhost:${this.port}`] }],
      });
    }
    if (req.method !== 'POST') return oauthError(405, 'invalid_request', 'POST required');
    const form = new URLSearchParams((await readBody(req)).toString('utf8'));
    const clientId = form.get('client_id') ?? '';
    if (!clientId) return oauthError(400, 'invalid_request', "AADSTS900144: The request body must contain the following parameter: 'client_id'.");
    const scope = form.get('scope') ?? '';
    if (m[2] === 'oauth2/v2.0/devicecode') {
      if (tenant !== 'consumers' && tenant !== 'organizations' && tenant !== 'common' && !/^[0-9a-f-]{36}$|\./i.test(tenant)) {
        return oauthError(400, 'invalid_tenant', 'AADSTS90002: Tenant not found.');
      }
      const dc: DeviceCode = {
        deviceCode: `emu-dc-${rid(16)}`,
        userCode: rid(4).toUpperCase(),
        clientId,
        tenant,
        scope,
        issuedAt: Date.now(),
        expiresAt: Date.now() + 900_000,
      };
      this.deviceCodes.set(dc.deviceCode, dc);
      this.count('devicecode', 200);
      return this.json(res, 200, {
        user_code: dc.userCode,
        device_code: dc.deviceCode,
        verification_uri: `https://localhost:${this.port}/devicelogin`,
        expires_in: 900,
        interval: 1,
        message: `To sign in, use a web browser to open the page https://localhost:${this.port}/devicelogin and enter the code ${dc.userCode} to authenticate. (The emulator approves it by itself.)`,
      });
    }
    // token endpoint
    const grant = form.get('grant_type') ?? '';
    if (grant === 'urn:ietf:params:oauth:grant-type:device_code' || grant === 'device_code') {
      const dc = this.deviceCodes.get(form.get('device_code') ?? '');
      if (!dc || dc.clientId !== clientId) return oauthError(400, 'invalid_grant', 'AADSTS70000: The provided device code is invalid.');
      if (Date.now() > dc.expiresAt) return oauthError(400, 'expired_token', 'AADSTS70020: The device code has expired.');
      if (Date.now() < dc.issuedAt + this.opts.deviceApproveMs) return oauthError(400, 'authorization_pending', 'AADSTS70016: Pending end-user authorization.');
      this.deviceCodes.delete(dc.deviceCode);
      this.count('token:device_code', 200);
      return this.json(res, 200, this.issueTokens('delegated', 'me', clientId, tenant, dc.scope || scope, true));
    }
    if (grant === 'refresh_token') {
      const rt = this.refreshTokens.get(form.get('refresh_token') ?? '');
      if (!rt || rt.clientId !== clientId) return oauthError(400, 'invalid_grant', 'AADSTS70008: The refresh token has expired or is invalid.');
      this.refreshTokens.delete(form.get('refresh_token')!);
      this.count('token:refresh_token', 200);
      return this.json(res, 200, this.issueTokens('delegated', rt.subject, clientId, rt.tenant, scope || rt.scope, true));
    }
    if (grant === 'client_credentials') {
      if (tenant === 'consumers' || tenant === 'common' || tenant === 'organizations') {
        return oauthError(400, 'unauthorized_client', 'AADSTS700016/90014: app-only tokens need a tenant id, and personal accounts cannot be reached app-only.');
      }
      const secret = form.get('client_secret');
      const assertion = form.get('client_assertion');
      if (!secret && !assertion) return oauthError(401, 'invalid_client', 'AADSTS7000216: client_assertion or client_secret is required.');
      if (secret && this.opts.clientSecret && secret !== this.opts.clientSecret) return oauthError(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
      if (assertion && assertion.split('.').length !== 3) return oauthError(401, 'invalid_client', 'AADSTS50027: Invalid JWT token.');
      if (!scope.split(' ').some((s) => s.endsWith('/.default'))) return oauthError(400, 'invalid_scope', 'AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default.');
      this.count('token:client_credentials', 200);
      return this.json(res, 200, this.issueTokens('app', `app:${clientId}`, clientId, tenant, scope, false));
    }
    return oauthError(400, 'unsupported_grant_type', `AADSTS70003: grant type ${grant} is not supported by the emulator.`);
  }

  // ---------------------------------------------------------------- Graph API

  private authenticate(req: http.IncomingMessage): TokenInfo {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (!m) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token is empty.', { 'WWW-Authenticate': 'Bearer realm=""' });
    const token = m[1]!;
    if (this.opts.acceptTokens.includes(token)) return { kind: 'delegated', subject: 'me', expiresAt: Infinity };
    const t = this.tokens.get(token);
    if (!t) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.', { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    if (Date.now() > t.expiresAt) throw new GraphError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.', { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    return t;
  }

  private async handleApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    let route = 'api';
    try {
      const token = this.authenticate(req);
      const injected = this.injectedFailure();
      if (injected) {
        if (method !== 'GET') await readBody(req, SIMPLE_PUT_MAX + 1).catch(() => undefined);
        throw injected;
      }
      const raw = url.pathname.slice('/v1.0'.length);
      const dm = /^\/(me\/drive|users\/([^/]+)\/drive|drives\/([^/]+))(\/.*)?$/.exec(raw);
      if (!dm) throw new GraphError(400, 'invalidRequest', `Unsupported segment in ${url.pathname}.`);
      let drive: string;
      if (dm[1] === 'me/drive') {
        if (token.kind === 'app') throw new GraphError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
        drive = 'me';
      } else if (dm[2]) {
        const user = decodeURIComponent(dm[2]);
        if (!/^[A-Za-z0-9@._-]+$/.test(user)) throw new GraphError(404, 'ResourceNotFound', 'User not found.');
        if (token.kind === 'delegated' && user !== token.subject) throw new GraphError(403, 'accessDenied', 'Access denied to another user\'s drive with a delegated token.');
        drive = user;
      } else {
        const wanted = decodeURIComponent(dm[3]!);
        const found = [...new Set([...this.items.values()].map((m) => m.drive))].find((d) => this.root(d).id.split('!')[0] === wanted);
        if (!found) throw new GraphError(404, 'itemNotFound', 'The drive was not found.');
        drive = found;
      }
      const rest = dm[4] ?? '';
      if (rest === '') {
        route = 'drive';
        if (method !== 'GET') throw new GraphError(405, 'invalidRequest', 'Method not allowed.');
        this.count(route, 200);
        return this.json(res, 200, this.driveJson(drive));
      }
      const im = /^\/(root|items\/([^/:]+))(?::([^:]*):?)?(\/[A-Za-z.]+)?$/.exec(rest);
      if (!im) throw new GraphError(400, 'invalidRequest', `Unsupported item address ${rest}.`);
      const base: ItemMeta | undefined = im[1] === 'root' ? this.root(drive) : this.items.get(decodeURIComponent(im[2]!));
      if (!base || base.drive !== drive) throw new GraphError(404, 'itemNotFound', 'The resource could not be found.');
      let rel = '';
      if (im[3] !== undefined) {
        // Each segment is percent-encoded on its own; a raw '/' separates segments.
        rel = im[3]
          .split('/')
          .filter(Boolean)
          .map((s) => decodeURIComponent(s))
          .map((s) => `/${s}`)
          .join('');
      }
      const targetPath = `${base.path}${rel}`;
      const action = im[4] ?? '';
      const target = rel ? this.lookup(drive, targetPath) : base;

      if (action === '/createUploadSession') {
        route = 'createUploadSession';
        if (method !== 'POST') throw new GraphError(405, 'invalidRequest', 'Method not allowed.');
        const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { item?: Record<string, unknown>; deferCommit?: boolean };
        const item = body.item ?? {};
        if (!rel) throw new GraphError(400, 'invalidRequest', 'createUploadSession needs a file path.');
        this.validatePath(drive, targetPath);
        const name = targetPath.slice(targetPath.lastIndexOf('/') + 1);
        if (typeof item.name === 'string' && item.name !== name) throw new GraphError(400, 'invalidRequest', 'item.name does not match the name in the path.');
        const cb = (item['@microsoft.graph.conflictBehavior'] as string | undefined) ?? 'replace';
        if (!['fail', 'replace', 'rename'].includes(cb)) throw new GraphError(400, 'invalidRequest', `Invalid conflictBehavior ${cb}.`);
        const fsi = (item.fileSystemInfo ?? {}) as { createdDateTime?: string; lastModifiedDateTime?: string };
        for (const v of [fsi.createdDateTime, fsi.lastModifiedDateTime]) {
          if (v !== undefined && !Number.isFinite(Date.parse(v))) throw new GraphError(400, 'invalidRequest', 'fileSystemInfo dates must be ISO 8601.');
        }
        if (this.opts.flavor === 'business') {
          const existing = this.lookup(drive, targetPath);
          // Business checks the name now; a folder in the way is a conflict in either flavor.
          if (existing && (cb === 'fail' || existing.folder)) throw new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists.');
          const open = [...this.sessions.values()].find((o) => o.drive === drive && o.path.toLowerCase() === targetPath.toLowerCase() && Date.now() <= o.expiresAt);
          if (open) throw new GraphError(409, 'nameAlreadyExists', 'A file with the same name is currently being uploaded. Change the filename and try to save again.');
        }
        // fileSize is a Personal property: there a file that cannot fit is refused before any byte moves.
        const declared = this.opts.flavor === 'personal' && typeof item.fileSize === 'number' ? item.fileSize : null;
        if (declared !== null && this.used(drive) + declared > this.quotaTotal()) throw new GraphError(507, 'quotaLimitReached', 'Insufficient Storage: the file does not fit.');
        if (this.used(drive) >= this.quotaTotal()) throw new GraphError(507, 'quotaLimitReached', 'Insufficient Storage: the drive is full.');
        const ttl = this.opts.common.sessionTtl || DEFAULT_SESSION_TTL_S;
        const s: UploadSession = {
          id: rid(16),
          drive,
          path: targetPath,
          conflictBehavior: cb as UploadSession['conflictBehavior'],
          declaredSize: declared,
          total: declared,
          next: 0,
          createdAt: Date.now(),
          expiresAt: Date.now() + ttl * 1000,
          tempauth: rid(24),
          fsCreated: fsi.createdDateTime ?? null,
          fsModified: fsi.lastModifiedDateTime ?? null,
          // A Personal property (the reference); Business keeps no description from here.
          description: this.opts.flavor === 'personal' && typeof item.description === 'string' ? item.description : null,
        };
        this.sessions.set(s.id, s);
        this.saveSession(s);
        this.metrics.sessionsCreated++;
        this.pathMetrics(drive, targetPath).sessions++;
        this.count(route, 200);
        return this.json(res, 200, {
          '@odata.context': `${this.apiBase}/$metadata#microsoft.graph.uploadSession`,
          uploadUrl: `${this.uploadBase}/upload/${s.id}?tempauth=${s.tempauth}`,
          expirationDateTime: nowIso(s.expiresAt),
          nextExpectedRanges: ['0-'],
        });
      }

      if (action === '/content') {
        if (method === 'PUT') {
          route = 'putContent';
          if (!rel) throw new GraphError(400, 'invalidRequest', 'A simple upload needs a file path.');
          const len = Number(req.headers['content-length'] ?? NaN);
          if (!Number.isFinite(len)) throw new GraphError(411, 'lengthRequired', 'Content-Length is required.');
          if (len > SIMPLE_PUT_MAX) throw new GraphError(413, 'requestTooLarge', 'Simple uploads are limited to 250 MB; use an upload session.');
          const bytes = await readBody(req, SIMPLE_PUT_MAX);
          if (bytes.length !== len) throw new GraphError(400, 'invalidRequest', 'Body length differs from Content-Length.');
          const cb = (url.searchParams.get('@microsoft.graph.conflictBehavior') ?? 'replace') as 'fail' | 'replace' | 'rename';
          const placed = this.placeFile(drive, targetPath, cb, { bytes }, bytes.length, { created: null, modified: null });
          this.count(route, placed.created ? 201 : 200);
          return this.json(res, placed.created ? 201 : 200, this.itemJson(placed.item));
        }
        if (method === 'GET') {
          route = 'getContent';
          if (!target || target.folder) throw new GraphError(404, 'itemNotFound', 'The resource could not be found.');
          const disk = this.diskPath(drive, target.path);
          this.count(route, 200);
          return sendStream(res, this.faults, 200, { 'Content-Type': 'application/octet-stream' }, fs.createReadStream(disk), target.size, { corruptible: true });
        }
        throw new GraphError(405, 'invalidRequest', 'Method not allowed.');
      }

      if (action === '/children') {
        if (!target?.folder) throw new GraphError(404, 'itemNotFound', 'The resource could not be found.');
        if (method === 'GET') {
          route = 'listChildren';
          this.count(route, 200);
          return this.json(res, 200, { value: this.children(target).map((c) => this.itemJson(c)) });
        }
        if (method === 'POST') {
          route = 'createFolder';
          const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as Record<string, unknown>;
          const name = String(body.name ?? '');
          if (!body.folder) throw new GraphError(400, 'invalidRequest', 'Only folders can be created this way.');
          const cb = (body['@microsoft.graph.conflictBehavior'] as string | undefined) ?? 'fail';
          this.validateName(name);
          const existing = this.lookup(drive, `${target.path}/${name}`);
          if (existing) {
            if (cb === 'fail') throw new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists.');
            if (cb === 'replace' && existing.folder) {
              this.count(route, 200);
              return this.json(res, 200, this.itemJson(existing));
            }
            const created = this.createFolder(drive, target, this.freeName(drive, target, name));
            this.count(route, 201);
            return this.json(res, 201, this.itemJson(created));
          }
          const created = this.createFolder(drive, target, name);
          this.count(route, 201);
          return this.json(res, 201, this.itemJson(created));
        }
        throw new GraphError(405, 'invalidRequest', 'Method not allowed.');
      }

      if (action === '') {
        if (!target) {
          route = 'getItem';
          throw new GraphError(404, 'itemNotFound', 'The resource could not be found.');
        }
        if (method === 'GET') {
          route = 'getItem';
          this.count(route, 200);
          return this.json(res, 200, this.itemJson(target));
        }
        if (method === 'PATCH') {
          // Update an item: its dates and description, or a file's name within its folder.
          route = 'updateItem';
          const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { name?: unknown; fileSystemInfo?: { createdDateTime?: string; lastModifiedDateTime?: string }; description?: unknown; parentReference?: unknown };
          if (body.parentReference !== undefined) throw new GraphError(501, 'notSupported', 'The emulator does not move items.');
          const fsi = body.fileSystemInfo ?? {};
          for (const v of [fsi.createdDateTime, fsi.lastModifiedDateTime]) {
            if (v !== undefined && !Number.isFinite(Date.parse(v))) throw new GraphError(400, 'invalidRequest', 'fileSystemInfo dates must be ISO 8601.');
          }
          if (typeof body.name === 'string' && body.name !== target.name) {
            if (target.folder || target.parentId === null) throw new GraphError(501, 'notSupported', 'The emulator renames files only.');
            this.validateName(body.name);
            const parent = this.items.get(target.parentId)!;
            const newPath = `${parent.path}/${body.name}`;
            this.validatePath(drive, newPath);
            const other = this.lookup(drive, newPath);
            if (other && other.id !== target.id) throw new GraphError(409, 'nameAlreadyExists', 'The specified item name already exists.');
            fs.renameSync(this.diskPath(drive, target.path), this.diskPath(drive, newPath));
            this.byPath.delete(this.key(drive, target.path));
            target.path = newPath;
            target.name = body.name;
            this.byPath.set(this.key(drive, newPath), target.id);
          }
          if (fsi.createdDateTime) target.fsCreated = fsi.createdDateTime;
          if (fsi.lastModifiedDateTime) target.fsModified = fsi.lastModifiedDateTime;
          if (typeof body.description === 'string' && this.opts.flavor === 'personal') target.description = body.description;
          target.lastModifiedDateTime = nowIso();
          target.eTag = rid(8);
          this.saveItem(target);
          this.count(route, 200);
          return this.json(res, 200, this.itemJson(target));
        }
        if (method === 'DELETE') {
          route = 'deleteItem';
          this.deleteItem(target);
          this.count(route, 204);
          res.writeHead(204);
          res.end();
          return;
        }
        throw new GraphError(405, 'invalidRequest', 'Method not allowed.');
      }
      throw new GraphError(400, 'invalidRequest', `Unsupported action ${action}.`);
    } catch (e) {
      if (!(e instanceof GraphError)) throw e;
      this.count(route, e.status);
      return this.sendError(res, e);
    }
  }

  private pathMetrics(drive: string, p: string) {
    const k = `${drive}:${p}`;
    return (this.metrics.perPath[k] ??= { received: 0, accepted: 0, sessions: 0, fragments: 0 });
  }

  // ---------------------------------------------------------------- upload URLs

  private async handleUpload(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const route = `upload:${method}`;
    const fail = async (e: GraphError) => {
      if (method === 'PUT' && !req.readableEnded) {
        // Drain what the client sends so it sees the answer rather than a reset.
        await new Promise<void>((resolve) => {
          req.on('data', () => undefined);
          req.on('end', resolve);
          req.on('error', () => resolve());
          req.on('close', () => resolve());
        });
      }
      this.count(route, e.status);
      this.sendError(res, e);
    };
    if (req.headers.authorization) {
      this.metrics.authHeaderOnUploadUrl++;
      return fail(new GraphError(401, 'unauthenticated', 'An Authorization header must not be sent to a pre-authenticated upload URL.'));
    }
    const id = url.pathname.slice('/upload/'.length);
    const s = this.sessions.get(id);
    if (!s || Date.now() > s.expiresAt) {
      if (s) this.dropSession(s);
      return fail(new GraphError(404, 'itemNotFound', 'The upload session was not found or has expired.'));
    }
    if (url.searchParams.get('tempauth') !== s.tempauth) return fail(new GraphError(401, 'unauthenticated', 'Invalid tempauth.'));
    if (Date.now() > s.createdAt + this.opts.tempauthTtlS * 1000) return fail(new GraphError(401, 'unauthenticated', 'The tempauth token in the upload URL has expired.'));
    const ttl = this.opts.common.sessionTtl || DEFAULT_SESSION_TTL_S;
    const status = () => ({ expirationDateTime: nowIso(s.expiresAt), nextExpectedRanges: s.total !== null && s.next >= s.total ? [] : [`${s.next}-${s.total !== null ? s.total - 1 : ''}`] });

    if (method === 'GET') {
      const injected = this.injectedFailure();
      if (injected) return fail(injected);
      this.count(route, 200);
      return this.json(res, 200, status());
    }
    if (method === 'DELETE') {
      const injected = this.injectedFailure();
      if (injected) return fail(injected);
      this.dropSession(s);
      this.count(route, 204);
      res.writeHead(204);
      res.end();
      return;
    }
    if (method !== 'PUT') return fail(new GraphError(405, 'invalidRequest', 'Method not allowed.'));

    const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
    if (!cr) return fail(new GraphError(400, 'invalidRange', 'Content-Range must be "bytes start-end/total".'));
    const start = Number(cr[1]);
    const end = Number(cr[2]);
    const total = Number(cr[3]);
    const length = end - start + 1;
    const contentLength = Number(req.headers['content-length'] ?? NaN);
    if (!(end >= start) || end >= total) return fail(new GraphError(400, 'invalidRange', 'The Content-Range is not valid.'));
    if (contentLength !== length) return fail(new GraphError(400, 'invalidRange', 'Content-Length must equal the size of the Content-Range.'));
    if (s.total !== null && total !== s.total) return fail(new GraphError(400, 'invalidRange', `The total size must stay ${s.total} on every fragment.`));
    if (length >= FRAGMENT_MAX) return fail(new GraphError(413, 'requestTooLarge', 'Fragments must be under 60 MiB.'));
    const isLast = end === total - 1;
    if (!isLast && length % FRAGMENT_MULTIPLE !== 0) return fail(new GraphError(400, 'invalidRange', 'Fragments other than the last must be a multiple of 320 KiB.'));
    if (start < s.next) return fail(new GraphError(416, 'fragmentOverlap', 'The uploaded fragment overlaps with data that has already been received.'));
    if (start > s.next) return fail(new GraphError(400, 'invalidRange', `Fragments must be sent in order; expected ${s.next}.`));

    // Receive the fragment, counting bytes as they arrive (a client killed mid-fragment still counts).
    const pm = this.pathMetrics(s.drive, s.path);
    const parts: Buffer[] = [];
    let got = 0;
    const complete = await new Promise<boolean>((resolve) => {
      req.on('data', (c: Buffer) => {
        got += c.length;
        this.metrics.uploadBytesReceived += c.length;
        pm.received += c.length;
        if (got <= length) parts.push(c);
      });
      req.on('end', () => resolve(got === length));
      req.on('error', () => resolve(false));
      req.on('aborted', () => resolve(false));
    });
    if (!complete) {
      if (!res.destroyed && !res.headersSent) return fail(new GraphError(400, 'invalidRange', 'The fragment body was shorter or longer than Content-Length.'));
      return;
    }
    // Faults: throttled before storing; a 5xx half the time after storing (the client then sees
    // 416 on its retry, as with the real service); a drop always after storing.
    if (this.faults.roll('429')) {
      this.fault('429');
      return fail(new GraphError(429, 'activityLimitReached', 'The request has been throttled.', { 'Retry-After': String(this.opts.retryAfterS) }));
    }
    let failAfterStore: GraphError | null = null;
    if (this.faults.roll('5xx')) {
      const e = new GraphError(503, 'serviceNotAvailable', 'The service is unavailable.', { 'Retry-After': String(this.opts.retryAfterS) });
      this.fault('503');
      if (this.faults.random() < 0.5) return fail(e);
      failAfterStore = e;
    }
    const data = Buffer.concat(parts);
    // Another fragment may have been accepted (or the session cancelled) while this one arrived.
    if (this.sessions.get(s.id) !== s) return fail(new GraphError(404, 'itemNotFound', 'The upload session was not found.'));
    if (start !== s.next) return fail(new GraphError(416, 'fragmentOverlap', 'The uploaded fragment overlaps with data that has already been received.'));
    const partFile = path.join(this.metaDir, 'uploads', `${s.id}.part`);
    if (s.total === null) s.total = total;
    if (!isLast) {
      const fd = fs.openSync(partFile, start === 0 ? 'w' : 'r+');
      try {
        fs.writeSync(fd, data, 0, data.length, start);
      } finally {
        fs.closeSync(fd);
      }
      s.next = end + 1;
      s.expiresAt = Date.now() + ttl * 1000;
      this.saveSession(s);
      this.metrics.uploadBytesAccepted += data.length;
      pm.accepted += data.length;
      pm.fragments++;
      if (failAfterStore) return fail(failAfterStore);
      this.count(route, 202);
      return this.json(res, 202, status());
    }
    // The last fragment creates the file.
    try {
      const fd = fs.openSync(partFile, start === 0 ? 'w' : 'r+');
      try {
        fs.writeSync(fd, data, 0, data.length, start);
      } finally {
        fs.closeSync(fd);
      }
      const placed = this.placeFile(s.drive, s.path, s.conflictBehavior, { file: partFile }, total, { created: s.fsCreated, modified: s.fsModified, description: s.description ?? null });
      this.metrics.uploadBytesAccepted += data.length;
      pm.accepted += data.length;
      pm.fragments++;
      this.dropSession(s);
      if (failAfterStore) return fail(failAfterStore);
      this.count(route, placed.created ? 201 : 200);
      return this.json(res, placed.created ? 201 : 200, this.itemJson(placed.item));
    } catch (e) {
      if (!(e instanceof GraphError)) throw e;
      if (e.status === 409) this.dropSession(s); // the uploaded bytes are discarded with the session
      else if (fs.existsSync(partFile)) fs.truncateSync(partFile, start); // 507: the session stays, waiting for the last fragment
      return fail(e);
    }
  }
}

export function parseOneDriveEmulatorArgs(args: string[]): OneDriveEmulatorOptions {
  const { common, extra } = parseEmulatorArgs(args, {
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-ca': { type: 'string' },
    'accept-token': { type: 'string', multiple: true },
    'quota-bytes': { type: 'string', default: '0' },
    'retry-after': { type: 'string', default: '1' },
    'hash-delay-ms': { type: 'string', default: '0' },
    'tempauth-ttl': { type: 'string', default: String(TEMPAUTH_LIFETIME_S) },
    'token-ttl': { type: 'string', default: '0' },
    'device-approve-ms': { type: 'string', default: '0' },
    'client-secret': { type: 'string' },
    'request-log': { type: 'boolean', default: false },
    flavor: { type: 'string', default: 'personal' },
    upn: { type: 'string', default: 'emulated.user@contoso.onmicrosoft.com' },
    hashes: { type: 'string', default: '' },
  });
  const flavor = extra.flavor;
  if (flavor !== 'personal' && flavor !== 'business') throw new Error('--flavor must be personal or business');
  const extraHashes = String(extra.hashes ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (const h of extraHashes) if (h !== 'sha1' && h !== 'sha256') throw new Error('--hashes takes sha1 and/or sha256');
  const num = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  return {
    common,
    tlsCert: extra['tls-cert'],
    tlsKey: extra['tls-key'],
    tlsCa: extra['tls-ca'],
    acceptTokens: (extra['accept-token'] as string[] | undefined) ?? [],
    quotaBytes: num('quota-bytes', extra['quota-bytes']),
    retryAfterS: num('retry-after', extra['retry-after']),
    hashDelayMs: num('hash-delay-ms', extra['hash-delay-ms']),
    tempauthTtlS: num('tempauth-ttl', extra['tempauth-ttl']),
    tokenTtlS: num('token-ttl', extra['token-ttl']),
    deviceApproveMs: num('device-approve-ms', extra['device-approve-ms']),
    clientSecret: extra['client-secret'],
    requestLog: Boolean(extra['request-log']),
    flavor,
    upn: String(extra.upn),
    extraHashes: extraHashes as Array<'sha1' | 'sha256'>,
  };
}

export const ONEDRIVE_EMULATOR_HELP = `OneDrive emulator flags (besides the common ones):
  --tls-cert FILE --tls-key FILE [--tls-ca FILE]  serve this certificate (else one is generated under DATA/.emulator/tls)
  --accept-token TOKEN   accept this bearer token as a signed-in user (repeatable)
  --quota-bytes N        drive size; uploads beyond it answer 507
  --retry-after SEC      Retry-After on 429/503 (default 1)
  --hash-delay-ms N      driveItems show no quickXorHash until N ms after creation
  --tempauth-ttl SEC     lifetime of the credential in upload URLs (default 86400)
  --token-ttl SEC        lifetime of issued access tokens (default --session-ttl or 3600)
  --device-approve-ms N  device-code sign-ins approve themselves after N ms (default 0)
  --client-secret S      require this secret for the client-credentials flow
  --request-log          write DATA/.emulator/requests.log (one JSON line per request)
  --flavor personal|business  which OneDrive to behave as (default personal); see the provider README
  --upn NAME             business: the signed-in user's UPN, naming the site personal/<upn>/Documents
  --hashes sha1,sha256   personal: report sha1Hash and/or sha256Hash besides quickXorHash`;

/** Starts the emulator from CLI-style arguments. */
export async function startOneDriveEmulator(args: string[]): Promise<{ env: Record<string, string>; emulator: OneDriveEmulator; close(): Promise<void> }> {
  const emulator = new OneDriveEmulator(parseOneDriveEmulatorArgs(args));
  const env = await emulator.start();
  return { env, emulator, close: () => emulator.close() };
}
