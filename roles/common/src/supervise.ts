/**
 * Keeps a service of a role running: `tsx supervise.ts <script relative to the checkout>` starts it
 * and restarts it when it exits, with a growing pause (1 s doubling to 60 s, back to 1 s after it
 * ran 5 minutes). SIGTERM stops both. A "service restarted on failure" without systemd on the host
 * (the autoscaler's scaling service, the authentication app).
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

const script = process.argv[2] ?? '';
if (!/^roles\/[a-z]+\/src\/[a-z-]+\.ts$/.test(script)) {
  process.stderr.write('usage: supervise.ts roles/<role>/src/<service>.ts\n');
  process.exit(2);
}
let pause = 1000;
while (!stopping) {
  const started = Date.now();
  child = spawn(join(root, 'node_modules/.bin/tsx'), [join(root, script)], { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child!.on('exit', (c) => resolve(c)));
  if (stopping) break;
  if (Date.now() - started > 300_000) pause = 1000;
  process.stdout.write(`${new Date().toISOString()} ${script} exited (${code}); restarting in ${pause / 1000} s\n`);
  await sleep(pause);
  pause = Math.min(pause * 2, 60_000);
}
