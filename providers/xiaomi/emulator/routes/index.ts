// The emulator's route table. A new group of routes is one module exporting a Route[] and one
// line here. Order matters only where two paths could match the same request.

import { binRoutes } from './bin.ts';
import { downloadRoutes } from './download.ts';
import { galleryRoutes } from './gallery.ts';
import { loginRoutes } from './login.ts';
import { qrRoutes } from './qr.ts';
import type { Route } from './route.ts';
import { statusRoutes } from './status.ts';
import { trustRoutes } from './trust.ts';

export type { Route } from './route.ts';

// qrRoutes before loginRoutes: it answers serviceLogin?_json=true and the QR sign-in's STS hop, and hands the rest on.
export const ROUTES: Route[] = [...qrRoutes, ...loginRoutes, ...downloadRoutes, ...galleryRoutes, ...binRoutes, ...statusRoutes, ...trustRoutes];
