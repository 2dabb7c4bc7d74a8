/**
 * SetupFirewall end to end: run inside a local-cloud database server (cloud `tsf`, 198.19.28.0/24 +
 * 198.19.29.0/24), reading the fleet from a real datastore (the embedded S3 on the cloud's build
 * machine's VPC address), applying iptables in the server, following a webserver that leaves.
 *
 * The servers get the toolkit the way real servers do: the role bundle and the Node runtime are
 * built from this checkout (packages/bundle; cached in ~/.cache/adt-test-artifacts), published to
 * the test's bucket, and each server is launched with user-data that fetches, checks and unpacks
 * them into /opt/adt and runs nothing (`launchServer({ unpackOnly: true })`). The servers boot from
 * a test image with iptables (the stock image has none), made once per machine through a package
 * mirror of this cloud's own (`LocalCloud.prepareImage`). The cloud's state is
 * /var/lib/adt-local/test-tsf and everything else <tmp>/adt-test-tsf: fixed places, so a run that
 * died is cleaned up by the next one; `after` removes it all.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { freePort, sleep } from '@adt/core';
import { buildBundle, buildRuntime } from '@adt/bundle';
import { ConfigStore, keys } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { launchServer, publishArtifacts } from '@adt/launch';
import { LocalCloud } from '@adt/localcloud';
import { startMirror, stopMirror } from '@adt/localcloud/services/mirror';
import { startEmbeddedS3, type EmbeddedS3 } from '@adt/localcloud/services/s3';
import { serverName, type Server } from '@adt/providers';
import { cleanup, freeLowPort, killPids, listenerArgv, quietAwsSdk, setup, startDetached, testS3Client } from '@adt/test-utils';
import { firewallSettings } from '../src/setup-firewall.ts';

/**
 * Options of every probe run on this machine or in the outsider: stdin not a socket (execa's default
 * pipe is one), else bash takes itself for a remote shell and reads root's ~/.bashrc, whose start-up
 * (here pyenv's, with a lock) can outlast the probe's timeout and turn an accepted connection into a refusal.
 */
const PROBE = { reject: false, stdin: 'ignore' } as const;

quietAwsSdk();
const root = resolve(import.meta.dirname, '../../..');
const BUCKET = 'www-adt-test-config-tsf';
const BASE = join(tmpdir(), 'adt-test-tsf');
const MIRROR_DIR = join(BASE, 'mirror');
const S3_DIR = join(BASE, 's3');
/** Built bundles and runtimes, by the hash of their inputs: kept between runs (a cache, not a temp dir). */
const ARTIFACTS = join(homedir(), '.cache', 'adt-test-artifacts');
// apt-cacher-ng cannot listen above 32767.
const MIRROR_PORT = await freeLowPort();
const cloud = new LocalCloud({
  cloudId: 'tsf',
  stateDir: '/var/lib/adt-local/test-tsf',
  publicCidr: '198.19.28.0/24',
  privateCidr: '198.19.29.0/24',
  aptProxy: `http://198.19.29.1:${MIRROR_PORT}`,
});

interface Ctx {
  cloud: LocalCloud;
  s3: EmbeddedS3;
  client: S3Client;
  store: ConfigStore;
  db: Server;
  ws: Server;
  pids: number[];
  loop?: ChildProcess;
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

/** The test image: the stock one with iptables, made once per machine (the mirror runs only meanwhile). */
async function iptablesImage(): Promise<string> {
  await startMirror({ dataDir: MIRROR_DIR, address: cloud.buildMachine.privateIp, port: MIRROR_PORT });
  try {
    return await cloud.prepareImage('adt-test-firewall', ['iptables']);
  } finally {
    await stopMirror(MIRROR_DIR);
  }
}

/** Waits (bounded) until the user-data of a server ended; it must have unpacked the toolkit. */
async function unpacked(ctx: Ctx, s: Server): Promise<void> {
  for (let i = 0; i < 900; i++) {
    const c = await ctx.cloud.console(s.id);
    if (c.exitCode !== null) {
      if (c.exitCode !== 0 || !/unpacked; nothing run/.test(c.log))
        throw new Error(`the user-data of ${s.name} failed (${c.exitCode}):\n${c.log}`);
      return;
    }
    await sleep(200);
  }
  throw new Error(`the user-data of ${s.name} did not end within 180 s:\n${(await ctx.cloud.console(s.id)).log}`);
}

setup(test, async (ctx) => {
  ctx.cloud = cloud;
  ctx.pids = [];
  // A run that died leaves nothing in the way (this cloud id, state dir and BASE are this file's own).
  await stopMirror(MIRROR_DIR);
  await cloud.teardown();
  await rm(BASE, { recursive: true, force: true });
  await cloud.ensureNetwork();
  const image = await iptablesImage();
  // The datastore, where the servers can reach it: the build machine's VPC address.
  ctx.s3 = await startEmbeddedS3({
    directory: S3_DIR,
    address: cloud.buildMachine.privateIp,
    port: await freePort(cloud.buildMachine.privateIp),
  });
  ctx.client = testS3Client({ endpoint: ctx.s3.endpoint, credentials: ctx.s3.credentials });
  ctx.store = new ConfigStore({
    driver: s3Driver({ bucket: BUCKET, endpoint: ctx.s3.endpoint, credentials: ctx.s3.credentials }),
    writeBudget: null,
  });
  await ctx.store.ensureBucket();
  // The toolkit as a server gets it: the role bundle and Node, published to the bucket.
  const [bundle, runtime] = await Promise.all([buildBundle({ root, cacheDir: ARTIFACTS }), buildRuntime({ cacheDir: ARTIFACTS })]);
  await publishArtifacts(ctx.store, ctx.client, { bundle, runtime });
  const launch = { compute: cloud, store: ctx.store, s3: ctx.client, linkSeconds: 900, authorizedKeys: [] };
  const mk = async (role: 'database' | 'webserver') =>
    (
      await launchServer(launch, {
        name: serverName({ role, buildId: 'tsf' }),
        role,
        buildId: 'tsf',
        image,
        secrets: null,
        unpackOnly: true,
      })
    ).server;
  [ctx.db, ctx.ws] = await Promise.all([mk('database'), mk('webserver')]);
  for (const s of [ctx.db, ctx.ws]) {
    const running = await cloud.waitUntilRunning(s.id, { timeoutMs: 60_000 });
    Object.assign(s, running);
    await unpacked(ctx, s);
  }
  // sshd has 22; a listener stands in for the database on 3306.
  ctx.pids.push(startDetached(await cloud.execArgv(ctx.db.id, ['setsid', ...listenerArgv([3306])])));
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    up = (await cloud.exec(ctx.db.id, ['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/3306'], { nothrow: true })).exitCode === 0;
    if (!up) await sleep(100);
  }
  if (!up) throw new Error("the database's listener on 3306 does not answer");
  const at = new Date().toISOString();
  await ctx.store.put(keys.buildMachineIps.key(cloud.buildMachine.privateIp), { name: 'build', role: 'build', at });
  await ctx.store.put(keys.databaseIps.key(ctx.db.privateIp!), { name: ctx.db.name, role: 'database', at });
  await ctx.store.put(keys.webserverIps.key(ctx.ws.privateIp!), { name: ctx.ws.name, role: 'webserver', at });
  for (const s of [ctx.db, ctx.ws]) await writeEnv(ctx, s);
});

test.after(async (ctx) => {
  await cleanup('the SetupFirewall test', [
    () => killPids([...(ctx.pids ?? []), ...(ctx.loop?.pid ? [ctx.loop.pid] : [])]),
    () => cloud.teardown(),
    () => ctx.store?.driver.dispose?.(),
    () => ctx.client?.destroy(),
    () => ctx.s3?.stop(),
    () => stopMirror(MIRROR_DIR),
    () => rm(BASE, { recursive: true, force: true }),
  ]);
});

test('the servers run the toolkit from the bundle they unpacked, on the Node of the runtime artifact', async (ctx) => {
  const sh = (script: string) => ctx.cloud.exec(ctx.db.id, ['sh', '-c', script]).then((r) => r.stdout.trim());
  const record = await ctx.store.get(keys.bundle);
  assert.is(await sh('cat /opt/adt/BUNDLE.sha256'), record?.bundle.sha256);
  assert.is(await sh('readlink -f /opt/adt/roles/database/security/SetupFirewall'), '/opt/adt/roles/common/bin/adt-run');
  assert.is(await sh('test -f /opt/adt/dist/database.mjs && /opt/adt/runtime/current/bin/node --version'), record?.runtime.node);
  assert.is(await sh('command -v node python3 tsx || true'), '', 'nothing else to run it with: no node, python3 or tsx of the image');
  assert.is(await sh('test -e /opt/adt/node_modules || echo none'), 'none', 'no node_modules: the bundle is self-contained');
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
  assert.is.not((await execa(outsider[0], outsider.slice(1), PROBE)).exitCode, 0, 'the outsider gets no SSH');
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
  // Its own process group: stopping it stops the whole chain (nsenter, the launcher, node in the server).
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  ctx.loop = child;
  const exited = once(child, 'exit');
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
    process.kill(-child.pid!, 'SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    await ctx.store.put(keys.webserverIps.key(ctx.ws.privateIp!), { name: ctx.ws.name, role: 'webserver', at: new Date().toISOString() });
  }
  assert.is.not(child.exitCode ?? child.signalCode, null, 'stopped by SIGTERM');
  const left = await ctx.cloud.exec(ctx.db.id, ['sh', '-c', 'ps -eo args | grep -c "[S]etupFirewall --every" || true']);
  assert.is(left.stdout.trim(), '0', 'nothing of it is left in the server');
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
