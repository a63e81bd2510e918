// Everything a route handler may use: the account, the library, the record kept in DATA, the
// sessions, the download links and the faults. Built once per emulator by server.ts.

import { Faults, seededRandom } from '../../../src/emulator/kit.ts';
import type { Exchange } from './exchange.ts';
import { Library } from './library.ts';
import { Links } from './links.ts';
import { EMULATOR_DEFAULTS, type XiaomiEmulatorOptions } from './options.ts';
import type { EmAlbum } from './seed.ts';
import { Sessions } from './sessions.ts';
import { EmulatorState } from './store.ts';

export class EmulatorContext {
  readonly userId: string;
  readonly passToken: string;
  readonly linkTtlMs: number;
  readonly faults: Faults;
  readonly record: EmulatorState;
  readonly library: Library;
  readonly sessions: Sessions;
  readonly links = new Links();
  readonly expiredLinkRate: number;
  readonly deleteFaultRate: number;
  // Own sequence: which delete fails depends only on how many deletes came before, not on timing.
  readonly deleteFaultRandom: () => number;
  /** Set once the server listens. */
  port = 0;
  baseUrl = '';

  constructor(
    readonly opts: XiaomiEmulatorOptions,
    albums: Map<string, EmAlbum>,
  ) {
    const { common } = opts;
    this.userId = opts.userId ?? EMULATOR_DEFAULTS.userId;
    this.passToken = opts.passToken ?? EMULATOR_DEFAULTS.passToken;
    this.linkTtlMs = (opts.linkTtlSeconds ?? EMULATOR_DEFAULTS.linkTtlSeconds) * 1000;
    this.faults = new Faults(common);
    this.expiredLinkRate = opts.faultExpiredLink ?? 0;
    this.deleteFaultRate = opts.faultDelete ?? 0;
    this.deleteFaultRandom = seededRandom(common.randomSeed + 1);
    this.record = new EmulatorState(common.data);
    this.library = new Library(albums, this.record.state, opts.hostile ?? {}, opts.faultWrongSha1 ?? 0, common.randomSeed);
    this.sessions = new Sessions(this.record, this.userId, common.sessionTtl > 0 ? common.sessionTtl * 1000 : 0);
  }

  get state() {
    return this.record.state;
  }

  save(): void {
    this.record.save();
  }

  count(name: string): void {
    this.record.set('counters', name, (this.state.counters[name] ?? 0) + 1);
    // Counters are read from the outside by tests: write them through (the plain request count rides along).
    if (name !== 'requests') this.save();
  }

  loginUrl(): string {
    return `${this.baseUrl}/pass/serviceLogin?sid=i.mi.com&callback=${encodeURIComponent(`${this.baseUrl}/sts`)}&_locale=zh_CN`;
  }

  /** The gallery's answer to a request without a live session: where to sign in. */
  unauthorized(x: Exchange): void {
    this.count('unauthorized');
    x.json(401, JSON.stringify({ R: 401, S: 'Err', D: this.loginUrl() }));
  }
}
