import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import {
  daemonPid,
  freePort,
  isAdtError,
  lastLines,
  outputTail,
  pollUntil,
  processAlive,
  startDaemon,
  stopDaemon,
  tailFile,
} from '../src/index.ts';

const poll = suite('pollUntil');

poll('returns the first value that is not null, undefined or false', async () => {
  let n = 0;
  const v = await pollUntil(async () => (++n >= 3 ? `after ${n}` : n === 1 ? null : false), { timeoutMs: 5000, intervalMs: 1 });
  assert.is(v, 'after 3');
});

poll('times out with a TIMEOUT error naming what it waited for', async () => {
  const started = Date.now();
  const e = await pollUntil(async () => null, { timeoutMs: 60, intervalMs: 10, what: 'the moon' }).catch((x: unknown) => x);
  assert.ok(isAdtError(e));
  assert.is((e as { code: string }).code, 'TIMEOUT');
  assert.match((e as Error).message, /waiting for the moon/);
  assert.ok(Date.now() - started < 2000, 'bounded');
});

poll('errors end the wait unless ignoreErrors, which keeps the last one as the cause', async () => {
  const thrown = await pollUntil(async () => Promise.reject(new Error('boom')), { timeoutMs: 1000 }).catch((x: unknown) => x);
  assert.instance(thrown, Error);
  assert.is((thrown as Error).message, 'boom');
  const timedOut = await pollUntil(async () => Promise.reject(new Error('still down')), {
    timeoutMs: 30,
    intervalMs: 5,
    ignoreErrors: true,
  }).catch((x: unknown) => x);
  assert.ok(isAdtError(timedOut) && timedOut.code === 'TIMEOUT', String(timedOut));
  assert.is((timedOut.cause as Error).message, 'still down');
});

// ---

const text = suite('lastLines and outputTail');

text('the end of an output on one line, empty lines dropped', () => {
  assert.is(lastLines('a\n\nb\nc\nd\n', 2), 'c | d');
  assert.is(outputTail({ stdout: 'out\n', stderr: '' }), 'out');
  assert.is(outputTail({ stderr: 'x\ny', stdout: 'ignored' }, 1), 'y');
  assert.is(outputTail({ exitCode: 7 }), 'exit code 7');
});

// ---

const daemon = suite('startDaemon and stopDaemon');

const answers = (port: number) => () =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

daemon('starts a detached process, finds it again, and stops it by PID', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'adt-daemon-'));
  try {
    const port = await freePort();
    const script = join(dir, 'serve.mjs');
    await writeFile(
      script,
      `import { createServer } from 'node:net'; createServer(() => {}).listen(${port}, '127.0.0.1'); console.log('listening');\n`,
    );
    const spec = {
      name: 'toy',
      dir,
      argv: [process.execPath, script] as const,
      up: answers(port),
      identify: (c: string) => c.includes('serve.mjs'),
    };
    const first = await startDaemon(spec);
    assert.ok(first.started);
    assert.ok(processAlive(first.pid));
    const again = await startDaemon(spec);
    assert.not.ok(again.started, 'the running one is kept');
    assert.is(again.pid, first.pid);
    assert.is(daemonPid(dir, 'toy', spec.identify), first.pid);
    assert.ok(await stopDaemon(dir, 'toy', { identify: spec.identify }));
    assert.not.ok(processAlive(first.pid));
    assert.is(daemonPid(dir, 'toy'), null);
    assert.not.ok(await stopDaemon(dir, 'toy'), 'nothing left to stop');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

daemon('a program that exits at start is reported with the end of its log', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'adt-daemon-'));
  try {
    const e = await startDaemon({
      name: 'broken',
      dir,
      argv: [process.execPath, '-e', 'console.error("config file is wrong"); process.exit(3)'],
      up: async () => false,
      startTimeoutMs: 5000,
    }).catch((x: Error) => x);
    assert.match((e as Error).message, /exited at start/);
    assert.match((e as Error).message, /config file is wrong/);
    assert.match(tailFile(join(dir, 'broken.log')), /config file is wrong/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

daemon('a port another program holds is refused with exit code 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'adt-daemon-'));
  try {
    const e = await startDaemon({ name: 'x', dir, argv: ['/bin/true'], up: async () => true, conflictHint: 'set X_PORT' }).catch(
      (x: unknown) => x,
    );
    assert.is((e as { code: string }).code, 'PORT_TAKEN');
    assert.is((e as { exitCode: number }).exitCode, 2);
    assert.match((e as Error).message, /set X_PORT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

poll.run();
text.run();
daemon.run();
