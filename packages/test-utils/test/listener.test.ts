import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { freePort, pollUntil } from '@adt/core';
import { listenerArgv, throws } from '../src/index.ts';

/** True when a TCP connection to 127.0.0.1:port opens. */
function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const listener = suite('listenerArgv');

listener('listens on every port given and accepts each connection, until killed', async () => {
  const ports = [await freePort(), await freePort()];
  const [cmd, ...args] = listenerArgv(ports, '127.0.0.1');
  assert.is(cmd, 'python3');
  const child = spawn(cmd!, args, { stdio: 'ignore' });
  try {
    for (const p of ports) await pollUntil(() => connects(p), { timeoutMs: 10_000, intervalMs: 50, what: `port ${p}` });
    for (const p of ports) assert.ok(await connects(p), `port ${p} again: connections are closed, the listener stays`);
  } finally {
    const exited = once(child, 'exit');
    child.kill();
    await exited;
  }
  assert.not.ok(await connects(ports[0]!), 'gone once killed');
});

listener('refuses no ports or a port out of range', () => {
  throws(() => listenerArgv([]), /no ports/);
  throws(() => listenerArgv([22, 70000]), /bad port 70000/);
});

listener.run();
