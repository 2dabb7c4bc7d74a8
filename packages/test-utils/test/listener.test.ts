import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { execa } from 'execa';
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
  assert.is(cmd, 'perl', "perl-base is in every Debian image (the local cloud's stock one has no python3)");
  const child = spawn(cmd!, args, { stdio: 'ignore' });
  try {
    for (const p of ports) await pollUntil(() => connects(p), { timeoutMs: 10_000, intervalMs: 50, what: `port ${p}` });
    for (let i = 0; i < 20; i++)
      for (const p of ports) assert.ok(await connects(p), `port ${p} again: connections are closed, the listener stays`);
  } finally {
    const exited = once(child, 'exit');
    child.kill();
    await exited;
  }
  assert.not.ok(await connects(ports[0]!), 'gone once killed');
});

listener('needs only the modules of perl-base', () => {
  const [, ...args] = listenerArgv([443]);
  assert.equal(
    args.filter((a) => a.startsWith('-M')),
    ['-MIO::Socket::INET', '-MIO::Select'],
  );
});

listener('a port it cannot listen on makes it exit non-zero, naming the port', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const [cmd, ...args] = listenerArgv([port], '127.0.0.1');
    const r = await execa(cmd!, args, { reject: false, timeout: 10_000 });
    assert.is.not(r.exitCode, 0);
    assert.match(String(r.stderr), `cannot listen on 127.0.0.1:${port}`);
  } finally {
    taken.close();
  }
});

listener('refuses no ports or a port out of range', () => {
  throws(() => listenerArgv([]), /no ports/);
  throws(() => listenerArgv([22, 70000]), /bad port 70000/);
});

listener.run();
