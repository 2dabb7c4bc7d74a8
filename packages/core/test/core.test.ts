import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:net';
import {
  AdtError,
  isAdtError,
  errorFactory,
  retry,
  backoffDelay,
  execaRunner,
  CommandError,
  freePort,
  processAlive,
} from '../src/index.ts';

const errors = suite('errors');

errors('an AdtError carries code, exit code and a prefixed message', () => {
  const fail = errorFactory('configstore', 's3');
  const e = fail('BAD_KEY', 'key "" is empty', { exitCode: 2 });
  assert.is(e.code, 'BAD_KEY');
  assert.is(e.exitCode, 2);
  assert.is(e.message, '[adt:configstore] [s3] key "" is empty');
  assert.ok(isAdtError(e));
});

errors('isAdtError is false for plain errors and non-errors', () => {
  assert.not.ok(isAdtError(new Error('x')));
  assert.not.ok(isAdtError(null));
  assert.not.ok(isAdtError({ code: 'X' }));
});

errors('isAdtError does not depend on instanceof (works across package copies)', () => {
  const e = new AdtError('X', 'y', { pkg: 'p' });
  const copy = Object.create(Object.getPrototypeOf(Object.getPrototypeOf(e)));
  Object.defineProperty(copy, Symbol.for('adt.error'), { value: true });
  assert.ok(isAdtError(copy));
});

errors.run();

// ---

const retries = suite('retry');

retries('returns the first success and stops retrying', async () => {
  let calls = 0;
  const v = await retry(
    async () => {
      calls++;
      if (calls < 3) throw new Error('transient');
      return 'ok';
    },
    { baseMs: 1 },
  );
  assert.is(v, 'ok');
  assert.is(calls, 3);
});

retries('gives up after the configured attempts with the last error', async () => {
  let calls = 0;
  // Not @adt/test-utils' rejects: that package depends on this one. The check stays outside any
  // catch, so a retry that resolved fails here by name instead of being swallowed.
  const e = await retry(
    async () => {
      calls++;
      throw new Error(`fail ${calls}`);
    },
    { attempts: 3, baseMs: 1 },
  ).catch((err: unknown) => err);
  assert.instance(e, Error, 'retry gives up with an error');
  assert.is((e as Error).message, 'fail 3');
  assert.is(calls, 3);
});

retries('does not retry what retryable refuses', async () => {
  let calls = 0;
  await retry(
    async () => {
      calls++;
      throw new Error('fatal');
    },
    { retryable: () => false },
  ).catch(() => {});
  assert.is(calls, 1);
});

retries('backoff doubles and is capped', () => {
  const max = () => 0.999999;
  assert.is(backoffDelay(1, 100, 3000, max), 100);
  assert.is(backoffDelay(2, 100, 3000, max), 200);
  assert.is(backoffDelay(3, 100, 3000, max), 400);
  assert.is(backoffDelay(10, 100, 3000, max), 3000);
  assert.is(
    backoffDelay(3, 100, 3000, () => 0),
    200,
  );
});

retries.run();

// ---

const runner = suite('execaRunner');

runner('runs argv without a shell and returns stdout', async () => {
  const r = await execaRunner().run(['printf', '%s', 'a b; echo injected']);
  assert.is(r.stdout, 'a b; echo injected');
  assert.is(r.exitCode, 0);
});

runner('passes input on stdin', async () => {
  const r = await execaRunner().run(['cat'], { input: 'hello' });
  assert.is(r.stdout, 'hello');
});

runner('throws a CommandError naming the command on failure, or returns it with nothrow', async () => {
  const e = await execaRunner()
    .run(['sh', '-c', 'echo boom >&2; exit 3'])
    .catch((err: unknown) => err);
  assert.instance(e, CommandError);
  assert.match((e as Error).message, /boom/);
  assert.is((e as CommandError).result.exitCode, 3);
  const r = await execaRunner().run(['sh', '-c', 'exit 4'], { nothrow: true });
  assert.is(r.exitCode, 4);
});

runner('kills a command that runs past its timeout', async () => {
  const r = await execaRunner().run(['sleep', '5'], { timeoutMs: 200, nothrow: true });
  assert.is.not(r.exitCode, 0);
  assert.match(r.stderr, /timed out/);
});

runner.run();

// ---

const processes = suite('process helpers');

processes('processAlive tells a live PID from a gone one', async () => {
  assert.ok(processAlive(process.pid));
  const r = await execaRunner().run(['sh', '-c', 'echo $$']);
  assert.not.ok(processAlive(Number(r.stdout.trim())));
  assert.not.ok(processAlive(0));
  assert.not.ok(processAlive(-1));
});

processes('freePort gives a port that can be listened on', async () => {
  const port = await freePort();
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  await new Promise((r) => srv.close(r));
});

processes.run();
