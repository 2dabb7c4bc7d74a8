/**
 * SetupFirewall end to end: run inside a local-cloud database server (cloud `tsf`, 198.19.28.0/24 +
 * 198.19.29.0/24), reading the fleet from a real datastore (the embedded S3 on the cloud's build
 * machine address), applying iptables in the server, following a webserver that leaves.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { freePort, sleep } from '@adt/core';
import { listenerArgv, quietAwsSdk, removeTempDir, tempDir } from '@adt/test-utils';
import { ConfigStore, keys } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import localDriver, { type LocalCloud } from '@adt/providers/drivers/local';
import { serverName, type Server } from '@adt/providers';
import { firewallSettings } from '../src/setup-firewall.ts';

quietAwsSdk();
const root = resolve(import.meta.dirname, '../../..');
const BUCKET = 'www-adt-test-config-tsf';

interface Ctx {
  cloud: LocalCloud;
  s3: EmbeddedS3;
  dir: string;
  store: ConfigStore;
  db: Server;
  ws: Server;
}
const test = suite<Ctx>('SetupFirewall (a role command, inside a local-cloud server)');

async function writeEnv(ctx: Ctx, server: Server, extra = '') {
  const env = [
    `ADT_S3_ENDPOINT=${ctx.s3.endpoint}`,
    `ADT_S3_ACCESS_KEY_ID=${ctx.s3.credentials.accessKeyId}`,
    `ADT_S3_SECRET_ACCESS_KEY=${ctx.s3.credentials.secretAccessKey}`,
    `ADT_CONFIG_BUCKET=${BUCKET}`,
    'ADT_WRITE_BUDGET=none',
    extra,
    '',
  ].join('\n');
  await ctx.cloud.exec(server.id, ['sh', '-c', 'umask 077 && mkdir -p /etc/adt && cat > /etc/adt/datastore.env'], { input: env });
}

const setupFirewall = (ctx: Ctx, server: Server, role: string, args: string[] = []) =>
  ctx.cloud.exec(server.id, [join('/opt/adt/roles', role, 'security/SetupFirewall'), ...args], { nothrow: true, timeoutMs: 60_000 });

test.before(async (ctx) => {
  // The toolkit's code reaches the servers at /opt/adt, wherever this checkout is (even under /tmp).
  ctx.cloud = localDriver({
    cloudId: 'tsf',
    stateDir: '/var/lib/adt-local/test-tsf',
    publicCidr: '198.19.28.0/24',
    privateCidr: '198.19.29.0/24',
    shares: [{ hostPath: root, target: '/opt/adt' }],
  });
  await ctx.cloud.teardown();
  await ctx.cloud.ensureNetwork();
  ctx.dir = await tempDir('setupfw');
  // The datastore, where the servers can reach it: the build machine's VPC address.
  ctx.s3 = await startEmbeddedS3({
    directory: ctx.dir,
    address: ctx.cloud.buildMachine.privateIp,
    port: await freePort(ctx.cloud.buildMachine.privateIp),
  });
  ctx.store = new ConfigStore({
    driver: s3Driver({ bucket: BUCKET, endpoint: ctx.s3.endpoint, credentials: ctx.s3.credentials }),
    writeBudget: null,
  });
  await ctx.store.ensureBucket();
  ctx.db = await ctx.cloud.create({
    name: serverName({ role: 'database', buildId: 'tsf' }),
    role: 'database',
    buildId: 'tsf',
    userData: '#!/bin/sh\n',
  });
  ctx.ws = await ctx.cloud.create({
    name: serverName({ role: 'webserver', buildId: 'tsf' }),
    role: 'webserver',
    buildId: 'tsf',
    userData: '#!/bin/sh\n',
  });
  for (const s of [ctx.db, ctx.ws]) await ctx.cloud.waitUntilRunning(s.id);
  const argv = await ctx.cloud.execArgv(ctx.db.id, ['setsid', ...listenerArgv([22, 3306])]);
  spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore' }).unref();
  for (
    let i = 0;
    i < 100 && (await ctx.cloud.exec(ctx.db.id, ['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/3306'], { nothrow: true })).exitCode !== 0;
    i++
  )
    await sleep(50);
  const at = new Date().toISOString();
  await ctx.store.put(keys.buildMachineIps.key(ctx.cloud.buildMachine.privateIp), { name: 'build', role: 'build', at });
  await ctx.store.put(keys.databaseIps.key(ctx.db.privateIp!), { name: ctx.db.name, role: 'database', at });
  await ctx.store.put(keys.webserverIps.key(ctx.ws.privateIp!), { name: ctx.ws.name, role: 'webserver', at });
  for (const s of [ctx.db, ctx.ws]) await writeEnv(ctx, s);
});

test.after(async (ctx) => {
  await ctx.cloud?.teardown();
  await ctx.s3?.stop();
  await removeTempDir(ctx.dir);
});

const wsReachesDb = async (ctx: Ctx) =>
  (await ctx.cloud.exec(ctx.ws.id, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.db.privateIp}/3306`], { nothrow: true }))
    .exitCode === 0;

test('--dry-run shows the policy from the datastore and applies nothing', async (ctx) => {
  const r = await setupFirewall(ctx, ctx.db, 'database', ['--dry-run', '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.dryRun, true);
  assert.equal(out.policy.rules.find((x: { port: number }) => x.port === 3306).sources, [`${ctx.ws.privateIp}/32`]);
  assert.is.not((await ctx.cloud.exec(ctx.db.id, ['iptables', '-S', 'ADT-INPUT'], { nothrow: true })).exitCode, 0, 'no chain yet');
});

test('it applies the policy, then does nothing while nothing changes', async (ctx) => {
  const r1 = await setupFirewall(ctx, ctx.db, 'database');
  assert.is(r1.exitCode, 0, r1.stderr);
  assert.match(r1.stdout, /database: applied policy [0-9a-f]{16}/);
  assert.ok(await wsReachesDb(ctx));
  const outsider = ctx.cloud.outsiderArgv(['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.db.publicIp}/22`]);
  assert.is.not((await execa(outsider[0], outsider.slice(1), { reject: false })).exitCode, 0, 'the outsider gets no SSH');
  const r2 = await setupFirewall(ctx, ctx.db, 'database');
  assert.match(r2.stdout, /unchanged/);
});

test('a webserver withdrawn from the datastore is refused after the next run', async (ctx) => {
  await ctx.store.delete(keys.webserverIps.key(ctx.ws.privateIp!));
  const r = await setupFirewall(ctx, ctx.db, 'database');
  assert.match(r.stdout, /applied/);
  assert.not.ok(await wsReachesDb(ctx));
  await ctx.store.put(keys.webserverIps.key(ctx.ws.privateIp!), { name: ctx.ws.name, role: 'webserver', at: new Date().toISOString() });
  await setupFirewall(ctx, ctx.db, 'database');
  assert.ok(await wsReachesDb(ctx), 'back in');
});

test('bad settings exit 2 naming each one, and leave the rules as they were', async (ctx) => {
  const before = (await ctx.cloud.exec(ctx.db.id, ['iptables', '-S', 'ADT-INPUT'])).stdout;
  await writeEnv(ctx, ctx.db, 'ADT_WEB_MODE=everyone\nADT_DB_PORT=99999\nADT_EXTRA_PORTS=database:3306/tcp');
  const r = await setupFirewall(ctx, ctx.db, 'database');
  assert.is(r.exitCode, 2);
  for (const v of ['ADT_WEB_MODE="everyone"', 'ADT_DB_PORT="99999"', 'ADT_EXTRA_PORTS item 1'])
    assert.ok(r.stderr.includes(v), `${v} in ${r.stderr}`);
  assert.is((await ctx.cloud.exec(ctx.db.id, ['iptables', '-S', 'ADT-INPUT'])).stdout, before);
  await writeEnv(ctx, ctx.db);
  assert.is((await setupFirewall(ctx, ctx.db, 'build')).exitCode, 127, 'the build role has no SetupFirewall link');
});

test('--every keeps reconciling on its own (for hosts without cron) until stopped', async (ctx) => {
  const argv = await ctx.cloud.execArgv(ctx.db.id, ['/opt/adt/roles/database/security/SetupFirewall', '--every', '5']);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  try {
    // First tick: unchanged. Then the fleet changes, and the next tick (at most 5 s later) follows it.
    for (let i = 0; i < 100 && !/unchanged/.test(out); i++) await sleep(100);
    assert.match(out, /database: unchanged/);
    await ctx.store.delete(keys.webserverIps.key(ctx.ws.privateIp!));
    for (let i = 0; i < 120 && !/applied/.test(out); i++) await sleep(100);
    assert.match(out, /database: applied/);
    assert.not.ok(await wsReachesDb(ctx));
  } finally {
    child.kill('SIGTERM');
    await ctx.store.put(keys.webserverIps.key(ctx.ws.privateIp!), { name: ctx.ws.name, role: 'webserver', at: new Date().toISOString() });
  }
});

test('settings parse as documented', () => {
  const s = firewallSettings({
    ADT_WEB_MODE: 'cloudflare',
    ADT_FIREWALL_BACKEND: 'ufw',
    ADT_DB_PORT: '5432',
    ADT_HTTP: 'yes',
    ADT_EXTRA_PORTS: 'webserver:8443/tcp:0.0.0.0/0, database:9100-9110/udp:198.18.1.0/24',
  });
  assert.is(s.backend, 'ufw');
  assert.is(s.options.webMode, 'cloudflare');
  assert.is(s.options.dbPort, 5432);
  assert.is(s.options.http, true);
  assert.equal(s.options.extraPorts, [
    { role: 'webserver', port: 8443, protocol: 'tcp', source: '0.0.0.0/0' },
    { role: 'database', port: [9100, 9110], protocol: 'udp', source: '198.18.1.0/24' },
  ]);
});

test.run();
