#!/usr/bin/env node
// The sources are TypeScript run through tsx's loader, so `npx gallery-bridge` works
// straight after `npm ci` with no build step that could go stale.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli.ts');
