// The answer our last Graph handler hands the SDK (providers/onedrive/buffered-response.ts): read
// by the real SDK as it reads a fetch Response, for a driveItem, an answer without a body and a
// Graph error with Retry-After.

import { Client, GraphError, type Context, type Middleware } from '@microsoft/microsoft-graph-client';
import { describe, expect, it } from 'vitest';
import { AnswerHeaders, BufferedResponse } from '../providers/onedrive/buffered-response.ts';

/** A Client whose last handler answers every request with `answer`. */
function clientAnswering(answer: () => BufferedResponse): Client {
  const last: Middleware = {
    execute: async (context: Context) => {
      context.response = answer().asResponse();
    },
  };
  return Client.initWithMiddleware({ middleware: last, baseUrl: 'https://graph.example', defaultVersion: 'v1.0' });
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('BufferedResponse', () => {
  it('headers: names case-insensitive, repeated values joined as Headers.get joins them', () => {
    const h = new AnswerHeaders(['Content-Type', 'application/json', 'X-A', '1', 'x-a', '2']);
    expect(h.get('content-type')).toBe('application/json');
    expect(h.get('X-A')).toBe('1, 2');
    expect(h.get('retry-after')).toBeNull();
    expect(h.has('CONTENT-TYPE')).toBe(true);
  });

  it('the SDK parses a JSON answer, returns nothing for 204, and a body reads once', async () => {
    const item = { id: 'ABC', name: 'IMG_1.jpg', file: { hashes: { quickXorHash: 'AAAA' } } };
    const ok = clientAnswering(() => new BufferedResponse(200, ['Content-Type', 'application/json; charset=utf-8'], json(item)));
    expect(await ok.api('/me/drive/items/ABC').get()).toEqual(item);
    const none = clientAnswering(() => new BufferedResponse(204, [], null));
    expect(await none.api('/me/drive/items/ABC').delete()).toBeUndefined();

    const r = new BufferedResponse(200, [], Buffer.from('\ufeff{"a":1}'));
    expect(await r.json()).toEqual({ a: 1 });
    await expect(r.text()).rejects.toThrow(TypeError);
    expect(await new Response(new BufferedResponse(200, [], Buffer.from('xyz')).body).text()).toBe('xyz');
  });

  it('a Graph error reaches us as a GraphError with its code, message and Retry-After', async () => {
    const body = json({ error: { code: 'activityLimitReached', message: 'slow down', innerError: { date: '2024-01-01T00:00:00', 'request-id': 'r1' } } });
    const c = clientAnswering(() => new BufferedResponse(429, ['Content-Type', 'application/json', 'Retry-After', '7'], body));
    const e = await c
      .api('/me/drive/root:/a.jpg:/createUploadSession')
      .post({ item: {} })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GraphError);
    const g = e as GraphError;
    expect(g.statusCode).toBe(429);
    expect(g.code).toBe('activityLimitReached');
    expect(g.message).toBe('slow down');
    expect(g.headers?.get('retry-after')).toBe('7');
  });
});
