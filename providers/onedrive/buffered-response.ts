// The answer our last Graph handler hands the SDK: the parts of a WHATWG Response the SDK reads
// (status, ok, headers.get, json/text/arrayBuffer/blob, body), over the bytes node:https already
// read whole. Building Node's own Response for it put undici's constructor, its Headers
// validation and a web-stream body read on every Graph call: about a tenth of the migrate
// process's CPU for small photos at 50 ms latency (docs/benchmarks.md), for two calls a photo.
//
// What the SDK reads, in @microsoft/microsoft-graph-client 3.0.x: GraphResponseHandler takes
// `status` (204: no body), `headers.get('Content-type')` to choose the reader, `json()`,
// `text()`, `blob()`, `arrayBuffer()` or `body`, then `ok`; GraphErrorHandler keeps `headers`
// on the GraphError it throws (our code reads Retry-After from there). `body`, a stream, is
// built only if asked for (a body of a type the SDK does not parse), from Node's Response.

/** Header lookup as WHATWG Headers does it: names case-insensitive, repeated values joined by ", ". */
export class AnswerHeaders {
  /** Name, value, name, value… as received (node's rawHeaders). */
  constructor(private readonly raw: readonly string[]) {}

  get(name: string): string | null {
    const want = name.toLowerCase();
    let out: string | null = null;
    for (let i = 0; i + 1 < this.raw.length; i += 2) {
      if (this.raw[i]!.toLowerCase() !== want) continue;
      out = out === null ? this.raw[i + 1]! : `${out}, ${this.raw[i + 1]!}`;
    }
    return out;
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  forEach(fn: (value: string, name: string) => void): void {
    const names = [...new Set(this.raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()))].sort();
    for (const n of names) fn(this.get(n)!, n);
  }
}

export class BufferedResponse {
  readonly ok: boolean;
  readonly statusText = '';
  readonly headers: AnswerHeaders;
  private used = false;

  constructor(
    readonly status: number,
    rawHeaders: readonly string[],
    /** null: an answer that has no body (204, 205, 304, HEAD). */
    private readonly bytes: Buffer | null,
  ) {
    this.ok = status >= 200 && status <= 299;
    this.headers = new AnswerHeaders(rawHeaders);
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  /** As a Response's body: a stream over the bytes (null without a body). Built only when asked for. */
  get body(): ReadableStream<Uint8Array> | null {
    if (!this.bytes) return null;
    this.used = true;
    return new Response(this.bytes as Uint8Array<ArrayBuffer>).body;
  }

  private take(): Buffer {
    if (this.used) throw new TypeError('Body is unusable: Body has already been read');
    this.used = true;
    return this.bytes ?? Buffer.alloc(0);
  }

  /** UTF-8, a leading byte order mark dropped, as Response.text() decodes. */
  async text(): Promise<string> {
    const s = this.take().toString('utf8');
    return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    return new Blob([this.take() as Uint8Array<ArrayBuffer>], { type: this.headers.get('content-type') ?? '' });
  }

  /** What the SDK and our middleware see: the Response type, of which this is the part they read. */
  asResponse(): Response {
    return this as unknown as Response;
  }
}
