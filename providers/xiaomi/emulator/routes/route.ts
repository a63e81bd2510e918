import type { EmulatorContext } from '../context.ts';
import type { Exchange } from '../exchange.ts';

export interface Route {
  /** An HTTP method, several, or '*' when the handler answers every method itself. */
  method: string | string[];
  /** The exact path, or a RegExp whose groups land in `x.params`. */
  path: string | RegExp;
  /** The gallery's API: a request without a live session is sent to sign in. */
  session?: boolean;
  /** Behind the gallery's second check (trust.ts): with --gallery-needs-trust an untrusted sign-in is refused. */
  gallery?: boolean;
  handle(ctx: EmulatorContext, x: Exchange): void | Promise<void>;
}
