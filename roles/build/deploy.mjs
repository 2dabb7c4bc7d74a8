#!/usr/bin/env zx
// The toolkit's main entry: `npx zx roles/build/deploy.mjs [--config FILE] [--dry-run] [--json]`.
// A thin launcher: it lets Node load the TypeScript sources (tsx) and runs src/deploy.ts.
import { register } from 'tsx/esm/api';

register();
await import('./src/deploy.ts');
