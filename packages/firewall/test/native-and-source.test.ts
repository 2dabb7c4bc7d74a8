/**
 * The cloud-level layer and the datastore as the fleet's source, against real parts: the local
 * cloud's native firewall (cloud `tnf`, 198.19.24.0/24 + 198.19.25.0/24, its state in
 * /var/lib/adt-local/test-tnf; servers of the stock image, with a Perl listener on 3306) and the
 * embedded S3.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { sleep } from '@adt/core';
import { cleanup, killPids, listenerArgv, quietAwsSdk, removeTempDir, setup, startDetached, tempDir } from '@adt/test-utils';
import { ConfigStore, keys } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { LocalCloud, type LocalServer } from '@adt/localcloud';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import { MemoryNativeFirewall } from '@adt/providers/drivers/memory';
import { serverName } from '@adt/providers';
import { applyNative, computePolicies, datastoreFleetSource, toInboundRules } from '../src/index.ts';

/**
 * Options of every probe run on this machine or in the outsider: stdin not a socket (execa's default
 * pipe is one), else bash takes itself for a remote shell and reads root's ~/.bashrc, whose start-up
 * (here pyenv's, with a lock) can outlast the probe's timeout and turn an accepted connection into a refusal.
 */
const PROBE = { reject: false, stdin: 'ignore' } as const;

quietAwsSdk();
const test = suite('native layer');

test("every role's policy becomes the provider's inbound rules", async () => {
  const fleet = {
    buildMachine: ['198.18.0.1'],
    webservers: ['198.18.1.11'],
    autoscalers: [],
    databases: ['198.18.1.31'],
    auth: [],
    authorisedClients: [],
  };
  const policies = computePolicies(fleet, { webMode: 'open' });
  const fw = new MemoryNativeFirewall();
  await applyNative(fw, 'b1', policies);
  assert.equal(await fw.get('b1', 'database'), toInboundRules(policies.database));
  assert.equal(
    (await fw.get('b1', 'database'))!.map((r) => r.port),
    [22, 3306],
  );
  assert.equal((await fw.get('b1', 'webserver'))!.find((r) => r.port === 443)?.sources, ['0.0.0.0/0', '::/0']);
});

test.run();

// ---

interface NativeCtx {
  cloud: LocalCloud;
  db: LocalServer;
  ws: LocalServer;
  pids: number[];
}
const native = suite<NativeCtx>("native layer on the local cloud's firewall");

setup(native, async (ctx) => {
  ctx.pids = [];
  ctx.cloud = new LocalCloud({
    cloudId: 'tnf',
    stateDir: '/var/lib/adt-local/test-tnf',
    publicCidr: '198.19.24.0/24',
    privateCidr: '198.19.25.0/24',
  });
  // A run that died leaves nothing in the way (this cloud id and state dir are this file's own).
  await ctx.cloud.teardown();
  await ctx.cloud.ensureNetwork();
  const mk = async (role: 'database' | 'webserver') => {
    const s = await ctx.cloud.create({ name: serverName({ role, buildId: 'tnf' }), role, buildId: 'tnf', userData: '#!/bin/sh\n' });
    return ctx.cloud.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  };
  [ctx.db, ctx.ws] = await Promise.all([mk('database'), mk('webserver')]);
  ctx.pids.push(startDetached(await ctx.cloud.execArgv(ctx.db.id, ['setsid', ...listenerArgv([3306])])));
  // Bounded wait for the listener, seen from every source the case probes (no rule yet: all get in).
  const probes = [
    () => ctx.cloud.exec(ctx.db.id, ['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/3306'], { nothrow: true }),
    () => ctx.cloud.exec(ctx.ws.id, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.db.privateIp}/3306`], { nothrow: true }),
    () => execa(...outsiderProbe(ctx.cloud, ctx.db.publicIp!, 3306), PROBE),
    () => execa('timeout', ['1.5', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.db.privateIp}/3306`], PROBE),
  ];
  for (const [n, probe] of probes.entries()) {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = (await probe()).exitCode === 0;
      if (!up) await sleep(100);
    }
    if (!up) throw new Error(`the database's listener on 3306 does not answer probe ${n + 1} before any rule`);
  }
});

native.after(async (ctx) => {
  await cleanup('the native layer suite', [() => killPids(ctx.pids ?? []), () => ctx.cloud?.teardown()]);
});

/** [file, args] that try a TCP connection to ip:port from the outsider ("the internet"). */
function outsiderProbe(cloud: LocalCloud, ip: string, port: number): [string, string[]] {
  const [file, ...args] = cloud.outsiderArgv(['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`]);
  return [file, args];
}

native("pushed to the local cloud's native firewall, the policy holds even with the host layer off", async ({ cloud, db, ws }) => {
  const fleet = {
    buildMachine: [cloud.buildMachine.publicIp, cloud.buildMachine.privateIp],
    webservers: [ws.privateIp!],
    autoscalers: [],
    databases: [db.privateIp!],
    auth: [],
    authorisedClients: [],
  };
  await applyNative(cloud.firewall, 'tnf', computePolicies(fleet, { webMode: 'open' }));
  const fromWs =
    (await cloud.exec(ws.id, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${db.privateIp}/3306`], { nothrow: true })).exitCode === 0;
  const fromOutside = (await execa(...outsiderProbe(cloud, db.publicIp!, 3306), PROBE)).exitCode === 0;
  const fromBuild = (await execa('timeout', ['1.5', 'bash', '-c', `exec 3<>/dev/tcp/${db.privateIp}/3306`], PROBE)).exitCode === 0;
  assert.ok(fromWs, 'the webserver reaches the database');
  assert.not.ok(fromOutside, 'the outsider does not');
  assert.not.ok(fromBuild, 'nor does the build machine (the database port is for webservers and autoscalers)');
  assert.is(
    (await cloud.exec(db.id, ['sh', '-c', 'command -v iptables'], { nothrow: true })).exitCode === 0,
    false,
    'the host layer is off: the server has no iptables at all',
  );
});

native.run();

// ---

interface SourceCtx {
  dir: string;
  s3: EmbeddedS3;
  store: ConfigStore;
}
const source = suite<SourceCtx>('datastore fleet source');

setup(source, async (ctx) => {
  ctx.dir = await tempDir('fw-src');
  ctx.s3 = await startEmbeddedS3({ directory: ctx.dir });
  ctx.store = new ConfigStore({
    driver: s3Driver({ bucket: 'adt-fw-src', endpoint: ctx.s3.endpoint, credentials: ctx.s3.credentials }),
    writeBudget: null,
  });
  await ctx.store.ensureBucket();
});

source.after(async (ctx) => {
  await cleanup('the datastore source suite', [() => ctx.store?.driver.dispose?.(), () => ctx.s3?.stop(), () => removeTempDir(ctx.dir)]);
});

source('the datastore source reads what the machines published, and only live grants', async ({ store }) => {
  const at = new Date().toISOString();
  await store.put(keys.buildMachineIps.key('198.18.0.1'), { name: 'build', role: 'build', at });
  await store.put(keys.webserverIps.key('198.18.1.11'), { name: 'ws-1', role: 'webserver', at });
  await store.put(keys.webserverIps.key('198.18.1.12'), { name: 'ws-2', role: 'webserver', at });
  await store.put(keys.databaseIps.key('198.18.1.31'), { name: 'db', role: 'database', at });
  await store.put(keys.authorisedIps.key('198.18.0.200'), {
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
    subject: 'a@example.test',
  });
  const fleet = await datastoreFleetSource(store).snapshot();
  assert.equal(fleet.webservers.sort(), ['198.18.1.11', '198.18.1.12']);
  assert.equal(fleet.buildMachine, ['198.18.0.1']);
  assert.equal(fleet.databases, ['198.18.1.31']);
  assert.equal(
    fleet.authorisedClients.map((c) => c.ip),
    ['198.18.0.200'],
  );
  const policies = computePolicies(fleet, { webMode: 'auth' });
  // The live grant, and the build machine's health checks.
  assert.equal(policies.webserver.rules.find((r) => r.port === 443)?.sources, ['198.18.0.1/32', '198.18.0.200/32']);
});

source.run();
