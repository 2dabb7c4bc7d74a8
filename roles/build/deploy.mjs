#!/usr/bin/env zx
// The toolkit's main entry: `npx zx roles/build/deploy.mjs [--config FILE] [--dry-run] [--json]`.
// A thin launcher: it lets Node load the TypeScript sources (tsx) and runs the deploy command
// (src/deploy.ts, over the pipeline of @adt/fleet).
import { register } from 'tsx/esm/api';

register();
const { deployCommand } = await import('./src/deploy.ts');
const { quietAwsSdk, runMain, runCommand } = await import('@adt/role-common');
quietAwsSdk();
const argv = process.argv.slice(process.argv.findIndex((a) => a.endsWith('deploy.mjs')) + 1);
await runMain(() => runCommand(deployCommand, argv));
