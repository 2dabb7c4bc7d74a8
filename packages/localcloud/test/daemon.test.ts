/**
 * The local cloud as a daemon of this machine, for real: ensureLocalCloud starts it (supervisor +
 * worker, detached) with its services (embedded S3, PowerDNS, the mail catcher, the package
 * mirror), and the `local` driver reaches it through its API. This file's cloud is `tld` on
 * 198.19.14.0/24 (public) and 198.19.15.0/24 (VPC), with ports of its own and its state and the
 * services' data under <tmp>/adt-test-tld (images: the machine's). Everything is stopped in
 * `after`, by PID and by this cloud's names only.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, statSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { freePort, processAlive } from '@adt/core';
import { serverName, type Server } from '@adt/providers';
import localDriver, { type LocalDriver, type LocalServices } from '@adt/providers/drivers/local';
import { LocalCloud } from '../src/cloud.ts';
import { ensureLocalCloud, stopLocalCloudDaemon, type LocalCloudAccess, type LocalCloudConfig } from '../src/daemon.ts';
import { DEFAULT_IMAGE_DIR } from '../src/images.ts';
import { stopMirror } from '../src/services/mirror.ts';
import { attachPebble } from '../src/services/pebble.ts';
import { attachPowerDns } from '../src/services/powerdns.ts';
import { cleanup, freeLowPort, quietAwsSdk, setup } from '@adt/test-utils';
import { eventually, rejection } from './fixtures/helpers.ts';

quietAwsSdk();

const BASE = join(tmpdir(), 'adt-test-tld');
const BUCKET = 'adt-tld-test';

async function newConfig(): Promise<LocalCloudConfig> {
  return {
    cloudId: 'tld',
    stateDir: join(BASE, 'state'),
    publicCidr: '198.19.14.0/24',
    privateCidr: '198.19.15.0/24',
    imageDir: DEFAULT_IMAGE_DIR,
    ports: { api: await freePort(), s3: await freePort(), smtp: await freePort(), mirror: await freeLowPort(), dns: await freePort() },
    dirs: {
      s3: join(BASE, 's3'),
      dns: join(BASE, 'dns'),
      acme: join(BASE, 'acme'),
      mail: join(BASE, 'mail'),
      mirror: join(BASE, 'mirror'),
    },
  };
}

/** The cloud seen from this process (its state is the daemon's): for cleanups only. */
const cloudOf = (c: LocalCloudConfig) =>
  new LocalCloud({ cloudId: c.cloudId, stateDir: c.stateDir, publicCidr: c.publicCidr, privateCidr: c.privateCidr, imageDir: c.imageDir });

/** Stops whatever a run left of this cloud: its servers, its daemon and services (by their pid files), its networks, its dirs. */
async function stopEverything(c: LocalCloudConfig): Promise<void> {
  await cleanup('the daemon test cloud', [
    () => stopLocalCloudDaemon(c.stateDir),
    async () => (await attachPowerDns(c.dirs.dns))?.stop(),
    async () => (await attachPebble(c.dirs.acme))?.stop(),
    () => stopMirror(c.dirs.mirror),
    () => cloudOf(c).teardown(),
    () => rm(BASE, { recursive: true, force: true }),
  ]);
}

function s3Of(s: LocalServices): S3Client {
  return new S3Client({
    endpoint: s.s3.endpoint,
    region: s.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s.s3.accessKeyId, secretAccessKey: s.s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function dig(nameserver: string, port: number, name: string): Promise<string[]> {
  const r = await execa('dig', [`@${nameserver}`, '-p', String(port), '+short', '+time=2', '+tries=2', name, 'A'], { timeout: 15_000 });
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** Sends one message over SMTP, step by step (each reply awaited, 10 s bound); returns the replies. */
async function sendMail(host: string, port: number, m: { from: string; to: string; subject: string; text: string }): Promise<string[]> {
  const socket = connect({ host, port });
  socket.setTimeout(10_000, () => socket.destroy(new Error('the SMTP server did not answer')));
  let buffer = '';
  const replies: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  socket.on('data', (d) => {
    buffer += d.toString('utf8');
    for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      replies.push(line);
      waiters.shift()?.(line);
    }
  });
  const failed = new Promise<never>((_, reject) => socket.once('error', reject));
  const reply = () => Promise.race([new Promise<string>((resolve) => waiters.push(resolve)), failed]);
  try {
    await reply();
    for (const command of [
      'EHLO adt-test',
      `MAIL FROM:<${m.from}>`,
      `RCPT TO:<${m.to}>`,
      'DATA',
      `From: ${m.from}\r\nTo: ${m.to}\r\nSubject: ${m.subject}\r\n\r\n${m.text}\r\n.`,
      'QUIT',
    ]) {
      socket.write(`${command}\r\n`);
      await reply();
    }
    return replies;
  } finally {
    socket.destroy();
  }
}

// ---

interface Ctx {
  config: LocalCloudConfig;
  access: LocalCloudAccess;
  driver: LocalDriver;
  services: LocalServices;
  server?: Server;
}
const test = suite<Ctx>('local cloud daemon: ensureLocalCloud, its services, restart and teardown');

setup(test, async (ctx) => {
  ctx.config = await newConfig();
  await stopEverything(ctx.config); // a run that died leaves nothing in the way
});

test.after(async (ctx) => {
  const steps: (() => unknown)[] = [];
  if (ctx.driver && ctx.server) steps.push(() => ctx.driver.destroy(ctx.server!.id));
  await cleanup('the daemon test servers', steps);
  if (ctx.config) await stopEverything(ctx.config);
});

test('ensureLocalCloud starts the daemon and returns its URL and account token', async (ctx) => {
  ctx.access = await ensureLocalCloud(ctx.config);
  assert.is(ctx.access.started, true);
  assert.is(ctx.access.url, `http://198.19.15.1:${ctx.config.ports.api}`);
  assert.ok(processAlive(ctx.access.pid));
  assert.ok(ctx.access.token.length >= 64);
  const tokenFile = join(ctx.config.stateDir, 'api', 'account.token');
  assert.is(statSync(tokenFile).mode & 0o777, 0o600);
  assert.is((await readFile(tokenFile, 'utf8')).trim(), ctx.access.token);
  ctx.driver = localDriver({ url: ctx.access.url, token: ctx.access.token });
  const info = await ctx.driver.cloud();
  assert.equal(
    { id: info.id, publicCidr: info.publicCidr, privateCidr: info.privateCidr, buildMachine: info.buildMachine },
    {
      id: 'tld',
      publicCidr: '198.19.14.0/24',
      privateCidr: '198.19.15.0/24',
      buildMachine: { publicIp: '198.19.14.1', privateIp: '198.19.15.1' },
    },
  );
  ctx.services = await ctx.driver.services();
});

test('a second call keeps the running daemon', async ({ config, access }) => {
  const again = await ensureLocalCloud(config);
  assert.is(again.started, false);
  assert.equal({ pid: again.pid, url: again.url, token: again.token }, { pid: access.pid, url: access.url, token: access.token });
});

test('S3: a bucket is made and an object written and read back', async ({ services, config }) => {
  assert.is(services.s3.endpoint, `http://198.19.15.1:${config.ports.s3}`);
  const s3 = s3Of(services);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'hello.txt', Body: 'hello from the daemon test' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'hello.txt' }));
    assert.is(await got.Body!.transformToString(), 'hello from the daemon test');
    assert.ok(existsSync(join(config.dirs.s3, 'data', BUCKET)), 'kept in the S3 data dir');
  } finally {
    s3.destroy();
  }
});

test("DNS: PowerDNS answers a record added through the driver's dns(zone)", async ({ driver, services, config }) => {
  assert.equal({ nameserver: services.dns.nameserver, port: services.dns.port }, { nameserver: '198.19.14.1', port: config.ports.dns });
  const dns = driver.dns('tld.test', 30);
  await dns.ensureZone('tld.test');
  await dns.addA('www.tld.test', '198.19.14.50');
  await dns.addA('www.tld.test', '198.19.14.51');
  assert.equal(await dig(services.dns.nameserver, services.dns.port, 'www.tld.test'), ['198.19.14.50', '198.19.14.51']);
  await dns.removeA('www.tld.test', '198.19.14.50');
  assert.equal(await dig(services.dns.nameserver, services.dns.port, 'www.tld.test'), ['198.19.14.51']);
});

test('SMTP: a message sent to the mail catcher lands as a file in the mail dir', async ({ services, config }) => {
  assert.equal({ host: services.smtp.host, port: services.smtp.port }, { host: '198.19.15.1', port: config.ports.smtp });
  const subject = `sign-in link ${Date.now()}`;
  const replies = await sendMail(services.smtp.host, services.smtp.port, {
    from: 'auth@tld.test',
    to: 'someone@tld.test',
    subject,
    text: 'https://auth.tld.test/link',
  });
  assert.ok(
    replies.some((r) => r.startsWith('250 kept')),
    replies.join(' | '),
  );
  const file = await eventually('the message to be written', async () => {
    for (const f of await readdir(services.smtp.mailDir).catch(() => [] as string[])) {
      const text = await readFile(join(services.smtp.mailDir, f), 'utf8');
      if (text.includes(subject)) return text;
    }
    return null;
  });
  assert.match(file, 'To: someone@tld.test');
  assert.match(file, 'https://auth.tld.test/link');
});

test('the mirror: apt inside a server updates through it', async (ctx) => {
  const { driver, services, config } = ctx;
  assert.is(services.mirror?.proxy, `http://198.19.15.1:${config.ports.mirror}`);
  ctx.server = await driver.create({
    name: serverName({ role: 'webserver', buildId: 'tld' }),
    role: 'webserver',
    buildId: 'tld',
    userData: '#!/bin/sh\nset -e\ncat /etc/apt/apt.conf.d/00adt-local-mirror\napt-get update\necho apt-updated\n',
  });
  await driver.waitUntilRunning(ctx.server.id, { timeoutMs: 60_000 });
  const c = await eventually(
    'apt-get update in the server',
    async () => {
      const x = await driver.console(ctx.server!.id);
      return x.exitCode === null ? null : x;
    },
    300,
    500,
  );
  assert.is(c.exitCode, 0, c.log);
  assert.match(c.log, `Acquire::http::Proxy "${services.mirror!.proxy}";`);
  assert.match(c.log, /apt-updated/);
  const log = await readFile(join(config.dirs.mirror, 'log', 'apt-cacher.log'), 'utf8');
  assert.match(log, /bookworm/, 'the mirror served the index files');
});

test('a changed config restarts the daemon, and its services follow; servers keep running', async (ctx) => {
  const changed: LocalCloudConfig = {
    ...ctx.config,
    ports: { ...ctx.config.ports, api: await freePort(), smtp: await freePort(), dns: await freePort() },
  };
  const access = await ensureLocalCloud(changed);
  assert.is(access.started, true);
  assert.is.not(access.pid, ctx.access.pid);
  assert.not.ok(processAlive(ctx.access.pid), 'the old daemon is gone');
  assert.is(access.url, `http://198.19.15.1:${changed.ports.api}`);
  ctx.config = changed;
  ctx.access = access;
  ctx.driver = localDriver({ url: access.url, token: access.token });
  ctx.services = await ctx.driver.services();
  assert.is(ctx.services.smtp.port, changed.ports.smtp);
  assert.is(ctx.services.dns.port, changed.ports.dns);
  assert.equal(await dig(ctx.services.dns.nameserver, changed.ports.dns, 'www.tld.test'), ['198.19.14.51'], 'the zone is kept');
  assert.is((await ctx.driver.get(ctx.server!.id))?.state, 'running');
});

test('teardown through the driver is refused while servers remain (409)', async ({ driver, server }) => {
  const e = await rejection(driver.teardown());
  assert.is(e?.status, 409, e?.message);
  assert.match(e?.message ?? '', new RegExp(`1 server\\(s\\) remain: ${server!.name}`));
  assert.is((await driver.cloud()).id, 'tld', 'it still answers');
});

/** Tears the cloud down through the driver and waits (bounded) for the daemon and its services to end. */
async function teardown(ctx: Ctx): Promise<number[]> {
  const pidOf = async (dir: string, name: string) => Number((await readFile(join(dir, `${name}.pid`), 'utf8')).trim());
  const pids = [ctx.access.pid, await pidOf(ctx.config.dirs.dns, 'pdns'), await pidOf(ctx.config.dirs.mirror, 'mirror')];
  assert.ok(pids.every(processAlive), `the daemon and its services run: ${pids.join(' ')}`);
  await ctx.driver.teardown();
  await eventually('the daemon and its services to end', async () => !pids.some(processAlive), 150, 200);
  return pids;
}

test('once no server remains, teardown removes networks, services and state; the S3 data stays with its buckets', async (ctx) => {
  const { config } = ctx;
  await ctx.driver.destroy(ctx.server!.id);
  ctx.server = undefined;
  await teardown(ctx);
  const links = (await execa('ip', ['-br', 'link'])).stdout;
  assert.not.match(links, /^tld/m, 'no bridge or link of the cloud');
  assert.not.match((await execa('ip', ['netns', 'list'])).stdout, /^tld-/m, 'no namespace of the cloud');
  assert.not.match((await execa('iptables', ['-S'])).stdout, /ADT-tld-FW/, 'no firewall chain');
  assert.not.ok(existsSync(config.stateDir), 'no state');
  for (const dir of [config.dirs.dns, config.dirs.mirror, config.dirs.mail, config.dirs.acme]) assert.not.ok(existsSync(dir), dir);
  assert.equal(await readdir(join(config.dirs.s3, 'data')), [BUCKET], 'the bucket is kept');
  const answered = await fetch(`${ctx.access.url}/v1/cloud`, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );
  assert.not.ok(answered, 'the API is gone');
});

test('started again, its buckets are there; without buckets, teardown removes the S3 data too', async (ctx) => {
  ctx.access = await ensureLocalCloud(ctx.config);
  assert.is(ctx.access.started, true);
  ctx.driver = localDriver({ url: ctx.access.url, token: ctx.access.token });
  const s3 = s3Of(await ctx.driver.services());
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'hello.txt' }));
    assert.is(await got.Body!.transformToString(), 'hello from the daemon test');
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'hello.txt' }));
    await s3.send(new DeleteBucketCommand({ Bucket: BUCKET }));
  } finally {
    s3.destroy();
  }
  await teardown(ctx);
  assert.not.ok(existsSync(ctx.config.dirs.s3), 'no S3 data left');
  assert.not.ok(existsSync(ctx.config.stateDir));
});

test.run();
