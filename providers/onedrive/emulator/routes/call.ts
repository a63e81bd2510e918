import type http from 'node:http';
import type { EmulatorContext } from '../context.ts';
import type { ItemMeta } from '../store.ts';

/** A Graph request addressed to an item: /{drive}/root or /items/{id}, a path under it, an action. */
export interface ItemCall {
  ctx: EmulatorContext;
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  drive: string;
  /** The path under the addressed item ('' when none): '/a/b'. */
  rel: string;
  /** The addressed item's path plus rel. */
  targetPath: string;
  /** The item at targetPath, if there is one. */
  target: ItemMeta | undefined;
}

/** One handler of the action table; `route` names it in the metrics. */
export interface ItemAction {
  route: string;
  handle(call: ItemCall): void | Promise<void>;
}
