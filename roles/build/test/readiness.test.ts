/**
 * How deploy waits for servers (real local-cloud servers, cloud `trd` on 198.19.36.0/24 +
 * 198.19.37.0/24): ready through the datastore; a bootstrap that fails or never finishes stops
 * the wait with the server's name, the last step it finished and its log.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAdtError } from '@adt/core';
import { ConfigStore, keys } from '@adt/configstore';
import memoryDriver from '@adt/configstore/drivers/memory';
import { serverName } from '@adt/providers';
import { readDeployment } from '../src/settings.ts';
import { localEnv, type LocalEnv } from '../src/local-env.ts';
import { waitReady, type Booting, type Ctx } from '../src/deploy.ts';
import { followLog } from '../src/log-follow.ts';

const test = suite<{ dir: string; env: LocalEnv; ctx: Ctx; store: ConfigStore; said: string[] }>('waiting for servers to be ready');

test.before(async (t) => {
  t.dir = await mkdtemp(join(tmpdir(), 'adt-ready-'));
  const d = readDeployment(undefined, {
    ADT_STATE_DIR: join(t.dir, 'state'),
    ADT_LOCAL_CLOUD_ID: 'trd',
    ADT_LOCAL_PUBLIC_CIDR: '198.19.36.0/24',
    ADT_LOCAL_PRIVATE_CIDR: '198.19.37.0/24',
    ADT_BUILD_ID: 'r1',
  });
  t.env = localEnv(d);
  await t.env.cloud.teardown();
  await t.env.cloud.ensureNetwork();
  t.said = [];
  t.ctx = { d, env: t.env, say: (l) => t.said.push(l), timings: {} };
  t.store = new ConfigStore({ driver: memoryDriver(), writeBudget: null });
});

test.after(async (t) => {
  await t.env?.cloud.teardown();
  if (t.dir)
    await rm(t.dir, { recursive: true, force: true }).catch((e: Error) => process.stderr.write(`${t.dir} not removed: ${e.message}\n`));
});

async function boot(t: { env: LocalEnv }, role: 'database' | 'webserver', script: string, timeoutMs = 60_000): Promise<Booting> {
  const server = await t.env.cloud.create({
    name: serverName({ role, buildId: 'r1' }),
    role,
    buildId: 'r1',
    userData: `#!/bin/sh\n${script}\n`,
  });
  return { role, server, log: followLog(t.env.cloud.userDataLog(server.id)), deadline: Date.now() + timeoutMs, lastStep: 'created' };
}

const step = (role: string, s: string) => `echo "2026-11-25T00:00:00.000Z [${role}] ${s}"`;

test('ready servers end the wait; their steps are shown as they come', async (t) => {
  const b = await boot(
    t,
    'database',
    [step('database', 'bootstrap started (0.0s)'), step('database', 'mariadb running (1.0s)'), 'sleep 5'].join('\n'),
  );
  setTimeout(() => void t.store.put(keys.ready('database', b.server.name), { at: new Date().toISOString() }), 1500);
  let follows = 0;
  await waitReady(t.ctx, t.store, [b], async () => void follows++);
  assert.ok(t.said.includes('      database: mariadb running (1.0s)'), t.said.join('\n'));
  assert.ok(follows >= 2, 'onTick ran on every poll');
});

test('a bootstrap that fails stops the wait: server, last step, log', async (t) => {
  const b = await boot(
    t,
    'webserver',
    [step('webserver', 'registered (0.1s)'), 'echo "Error: the datastore refused the key" >&2', 'exit 3'].join('\n'),
  );
  try {
    await waitReady(t.ctx, t.store, [b], async () => {});
    assert.unreachable('it should fail');
  } catch (e) {
    assert.ok(isAdtError(e), String(e));
    const m = (e as Error).message;
    assert.ok(m.includes(`the webserver server ${b.server.name} stopped before it was ready (exit code 3)`), m);
    assert.ok(m.includes('last step it finished: "registered (0.1s)"'), m);
    assert.ok(m.includes('Error: the datastore refused the key'), m);
    assert.ok(m.includes(t.env.cloud.userDataLog(b.server.id)), m);
  }
});

test('a bootstrap that never finishes times out, naming READY_TIMEOUT', async (t) => {
  const b = await boot(t, 'database', [step('database', 'bootstrap started (0.0s)'), 'sleep 30'].join('\n'), 1500);
  const t0 = Date.now();
  try {
    await waitReady(t.ctx, t.store, [b], async () => {});
    assert.unreachable('it should time out');
  } catch (e) {
    const m = (e as Error).message;
    assert.ok(m.includes(`the database server ${b.server.name} was not ready within`), m);
    assert.ok(m.includes('READY_TIMEOUT'), m);
    assert.ok(m.includes('bootstrap started (0.0s)'), m);
    assert.ok(Date.now() - t0 < 20_000, 'bounded');
  }
});

test.run();
