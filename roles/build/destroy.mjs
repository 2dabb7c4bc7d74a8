#!/usr/bin/env zx
// Tears down a build: `npx zx roles/build/destroy.mjs [--config FILE] [--keep-bucket] [--json]`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./src/destroy.ts');
const { scriptArgs } = await import('./src/cli.ts');
const { runMain } = await import('@adt/role-common');
await runMain(() => main(scriptArgs('destroy.mjs')));
