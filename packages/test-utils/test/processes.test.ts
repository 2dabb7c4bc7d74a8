import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:net';
import { processAlive, sleep } from '@adt/core';
import { freeLowPort, killPids, startDetached, throws } from '../src/index.ts';

const processes = suite('killPids, startDetached and freeLowPort');

processes('startDetached starts a process in its own group; killPids ends it and its children, and waits', async () => {
  const pid = startDetached(['sh', '-c', 'sleep 300 & echo $! > /dev/null; sleep 300']);
  try {
    assert.ok(processAlive(pid));
    await sleep(100);
  } finally {
    await killPids([pid]);
  }
  assert.not.ok(processAlive(pid));
});

processes('killPids is fine with processes already gone', async () => {
  const pid = startDetached(['true']);
  await sleep(200);
  await killPids([pid, pid]);
  assert.not.ok(processAlive(pid));
});

processes('startDetached refuses an empty argv, and says when a file cannot be run', () => {
  throws(() => startDetached([]), /empty argv/);
  throws(() => startDetached(['/nonexistent/adt-no-such-file']), /could not be started/);
});

processes('freeLowPort gives a port in 20000-32767 that can be listened on', async () => {
  const port = await freeLowPort();
  assert.ok(port >= 20000 && port <= 32767, String(port));
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', resolve);
  });
  srv.close();
});

processes.run();
