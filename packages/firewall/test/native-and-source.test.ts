/** The cloud-level layer and the datastore as the fleet's source, against real parts. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { sleep } from '@adt/core';
import { listenerArgv, quietAwsSdk, removeTempDir, tempDir } from '@adt/test-utils';
import { ConfigStore, keys } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { startEmbeddedS3 } from '@adt/localcloud/services/s3';
import localDriver from '@adt/providers/drivers/local';
import { MemoryNativeFirewall } from '@adt/providers/drivers/memory';
import { serverName } from '@adt/providers';
import { applyNative, computePolicies, datastoreFleetSource, toInboundRules } from '../src/index.ts';

quietAwsSdk();
const test = suite('native layer and datastore source');

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

test("pushed to the local cloud's native firewall, the policy holds even with the host layer off", async () => {
  const cloud = localDriver({
    cloudId: 'tnf',
    stateDir: '/var/lib/adt-local/test-tnf',
    publicCidr: '198.19.24.0/24',
    privateCidr: '198.19.25.0/24',
  });
  await cloud.teardown();
  await cloud.ensureNetwork();
  try {
    const db = await cloud.create({
      name: serverName({ role: 'database', buildId: 'tnf' }),
      role: 'database',
      buildId: 'tnf',
      userData: '#!/bin/sh\n',
    });
    const ws = await cloud.create({
      name: serverName({ role: 'webserver', buildId: 'tnf' }),
      role: 'webserver',
      buildId: 'tnf',
      userData: '#!/bin/sh\n',
    });
    await cloud.waitUntilRunning(db.id);
    await cloud.waitUntilRunning(ws.id);
    const argv = await cloud.execArgv(db.id, ['setsid', ...listenerArgv([3306])]);
    spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore' }).unref();
    for (
      let i = 0;
      i < 100 && (await cloud.exec(db.id, ['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/3306'], { nothrow: true })).exitCode !== 0;
      i++
    )
      await sleep(50);
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
    const outsider = cloud.outsiderArgv(['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${db.publicIp}/3306`]);
    const fromOutside = (await execa(outsider[0], outsider.slice(1), { reject: false })).exitCode === 0;
    const fromBuild =
      (await execa('timeout', ['1.5', 'bash', '-c', `exec 3<>/dev/tcp/${db.privateIp}/3306`], { reject: false })).exitCode === 0;
    assert.ok(fromWs, 'the webserver reaches the database');
    assert.not.ok(fromOutside, 'the outsider does not');
    assert.not.ok(fromBuild, 'nor does the build machine (the database port is for webservers and autoscalers)');
  } finally {
    await cloud.teardown();
  }
});

test('the datastore source reads what the machines published, and only live grants', async () => {
  const dir = await tempDir('fw-src');
  const s3 = await startEmbeddedS3({ directory: dir });
  try {
    const store = new ConfigStore({
      driver: s3Driver({ bucket: 'adt-fw-src', endpoint: s3.endpoint, credentials: s3.credentials }),
      writeBudget: null,
    });
    await store.ensureBucket();
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
    await store.driver.dispose?.();
  } finally {
    await s3.stop();
    await removeTempDir(dir);
  }
});

test.run();
