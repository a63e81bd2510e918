// The emulator's route tables. A new group of routes is one module exporting a Route[] and one
// line here. Routes are tried in order; the first whose method and path match answers.

import { albumRoutes } from './albums.ts';
import { controlRoutes } from './control.ts';
import { downloadRoutes } from './download.ts';
import { mediaItemRoutes } from './media-items.ts';
import { oauthRoutes } from './oauth.ts';
import type { ApiCall, Route } from './route.ts';
import { uploadRoutes } from './uploads.ts';

export { findRoute, type ApiCall, type Call, type Route } from './route.ts';

/** /__emulator/...: the emulator's controls for tests. */
export const CONTROL_ROUTES: Route[] = [...controlRoutes];

/** Without a bearer token: sign-in and the signed baseUrl downloads. */
export const OPEN_ROUTES: Route[] = [...oauthRoutes, ...downloadRoutes];

/** /v1/...: the Library API, after authentication, scopes, quota and faults. */
export const API_ROUTES: Array<Route<ApiCall>> = [...uploadRoutes, ...mediaItemRoutes, ...albumRoutes];
