/**
 * launchServer as data: which servers it accepts with and without secrets, and the user-data each
 * gets. A memory compute and config store; the S3 client only signs links (no request is sent).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { S3Client } from '@aws-sdk/client-s3';
import { ConfigStore, keys } from '@adt/configstore';
import memoryStore from '@adt/configstore/drivers/memory';
import { MemoryCompute } from '@adt/providers/drivers/memory';
import { serverName } from '@adt/providers';
import { quietAwsSdk } from '@adt/test-utils';
import { launchServer, type LaunchContext } from '../src/index.ts';

quietAwsSdk();
const SHA = (c: string) => c.repeat(64);

async function context(): Promise<LaunchContext & { compute: MemoryCompute }> {
  const store = new ConfigStore({ driver: memoryStore({ bucket: 'adt-launch-unit' }), writeBudget: null });
  await store.put(keys.bundle, {
    bundle: { key: `artifacts/bundle-${SHA('a')}.tar.gz`, sha256: SHA('a'), bytes: 1, version: '0.2.0', inputs: 'x' },
    runtime: { key: `artifacts/runtime-${SHA('b')}.tar.gz`, sha256: SHA('b'), bytes: 1, node: 'v20.20.2', dir: 'node-v20.20.2-linux-x64' },
    publishedAt: new Date().toISOString(),
  });
  const s3 = new S3Client({
    endpoint: 'http://127.0.0.1:9',
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'unit', secretAccessKey: 'unit' },
  });
  return { compute: new MemoryCompute(), store, s3, linkSeconds: 600, authorizedKeys: [] };
}

const launch = suite('launchServer: servers without secrets');

launch('an unpack-only server of any role: its user-data fetches, checks and unpacks the toolkit, and runs nothing', async () => {
  const ctx = await context();
  const name = serverName({ role: 'database', buildId: 'unit' });
  const l = await launchServer(ctx, { name, role: 'database', buildId: 'unit', secrets: null, unpackOnly: true });
  assert.is(l.server.name, name);
  assert.is(l.hostKey, null, 'no host key: nothing of its own is made');
  assert.is(ctx.compute.servers.get(name)?.userData, l.userData);
  assert.match(l.userData, /sha256sum -c/);
  assert.match(l.userData, /tar -xzf "\$B\/bundle\.tar\.gz" -C \/opt\/adt/);
  assert.match(l.userData, /Unpack only: no secret at all/);
  assert.not.match(l.userData, /bootstrap|envelope|^exec /m, 'no bootstrap, no envelope, nothing run');
  assert.is(await ctx.store.get(keys.hostKeys.key(name)), null);
});

launch('an unpack-only server gets no secrets and builds no image: refused with exit code 2, nothing created', async () => {
  const ctx = await context();
  const secrets = { datastoreEnv: {}, datastoreKey: null, secrets: {} } as never;
  for (const extra of [{ secrets }, { secrets: null, imageFor: 'webserver' as const }]) {
    const role = 'imageFor' in extra ? 'build' : 'database';
    const e = await launchServer(ctx, {
      name: serverName({ role, buildId: 'unit' }),
      role,
      buildId: 'unit',
      unpackOnly: true,
      ...extra,
    }).then(
      () => null,
      (err: Error & { code?: string; exitCode?: number }) => err,
    );
    assert.is(e?.code, 'BAD_LAUNCH', String(e));
    assert.is(e?.exitCode, 2);
  }
  assert.is(ctx.compute.servers.size, 0);
});

launch('otherwise a server without secrets is an image builder only (role build, imageFor its role)', async () => {
  const ctx = await context();
  const e = await launchServer(ctx, {
    name: serverName({ role: 'database', buildId: 'unit' }),
    role: 'database',
    buildId: 'unit',
    secrets: null,
  }).then(
    () => null,
    (err: Error & { code?: string }) => err,
  );
  assert.is(e?.code, 'BAD_LAUNCH');
  const name = serverName({ role: 'build', buildId: 'unit' });
  const l = await launchServer(ctx, { name, role: 'build', buildId: 'unit', secrets: null, imageFor: 'webserver' });
  assert.match(l.userData, /exec \/opt\/adt\/roles\/webserver\/bootstrap --prepare-image/);
  assert.match(l.userData, /An image builder/);
});

launch.run();
