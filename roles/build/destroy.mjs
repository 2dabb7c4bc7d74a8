#!/usr/bin/env zx
// Tears down a build: `npx zx roles/build/destroy.mjs [--config FILE] [--backup] [--keep-bucket] [--json]`.
import { register } from 'tsx/esm/api';

register();
const { destroyCommand } = await import('./src/destroy.ts');
const { quietAwsSdk, runMain, runCommand } = await import('@adt/role-common');
quietAwsSdk();
const argv = process.argv.slice(process.argv.findIndex((a) => a.endsWith('destroy.mjs')) + 1);
await runMain(() => runCommand(destroyCommand, argv));
