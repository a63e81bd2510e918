import type http from 'node:http';
import type { Caller, EmulatorContext, Stats } from '../context.ts';

export interface Call {
  ctx: EmulatorContext;
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  /** The route's RegExp groups, when its path is a RegExp. */
  params: string[];
}

/** A Library API call: authenticated, within its scopes and quota. */
export interface ApiCall extends Call {
  caller: Caller;
}

export interface Route<C extends Call = Call> {
  /** The HTTP method; absent when the handler answers every method itself. */
  method?: string;
  /** The exact path, or a RegExp whose groups land in `params`. */
  path: string | RegExp;
  /** The request counter this route adds one to when it matches. */
  stat?: keyof Stats;
  handle(call: C): void | Promise<void>;
}

/** The first route for this method and path, with its RegExp groups. */
export function findRoute<C extends Call>(routes: Array<Route<C>>, method: string | undefined, p: string): { route: Route<C>; params: string[] } | undefined {
  for (const route of routes) {
    if (route.method !== undefined && route.method !== method) continue;
    if (typeof route.path === 'string') {
      if (route.path === p) return { route, params: [] };
      continue;
    }
    const m = route.path.exec(p);
    if (m) return { route, params: m.slice(1) };
  }
  return undefined;
}
