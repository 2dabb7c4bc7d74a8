/**
 * Keeps the scaling service running: starts it, and restarts it when it exits, with a growing
 * pause (1 s doubling to 60 s, back to 1 s after it ran 5 minutes). SIGTERM stops both. This is
 * the "service restarted on failure" of the autoscaler, without needing systemd on the host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { sleep } from '@adt/core';

const root = join(import.meta.dirname, '../../..');
let child: ChildProcess | null = null;
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
  child?.kill('SIGTERM');
});

let pause = 1000;
while (!stopping) {
  const started = Date.now();
  child = spawn(join(root, 'node_modules/.bin/tsx'), [join(root, 'roles/autoscaler/src/service.ts')], { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child!.on('exit', (c) => resolve(c)));
  if (stopping) break;
  if (Date.now() - started > 300_000) pause = 1000;
  process.stdout.write(`${new Date().toISOString()} scaling service exited (${code}); restarting in ${pause / 1000} s\n`);
  await sleep(pause);
  pause = Math.min(pause * 2, 60_000);
}
