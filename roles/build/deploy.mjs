#!/usr/bin/env zx
// The toolkit's main entry: `npx zx roles/build/deploy.mjs [--config FILE] [--dry-run] [--json]`.
// A thin launcher: it lets Node load the TypeScript sources (tsx) and runs src/deploy.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./src/deploy.ts');
const { scriptArgs } = await import('./src/cli.ts');
const { runMain } = await import('@adt/role-common');
await runMain(() => main(scriptArgs('deploy.mjs')));
