// The emulator's route table. A new group of routes is one module exporting a Route[] and one
// line here. Order matters only where two paths could match the same request.

import { binRoutes } from './bin.ts';
import { downloadRoutes } from './download.ts';
import { galleryRoutes } from './gallery.ts';
import { loginRoutes } from './login.ts';
import type { Route } from './route.ts';
import { statusRoutes } from './status.ts';

export type { Route } from './route.ts';

export const ROUTES: Route[] = [...loginRoutes, ...downloadRoutes, ...galleryRoutes, ...binRoutes, ...statusRoutes];
