/**
 * The local cloud's HTTP API for real: serveLocalApi over a LocalCloud on loopback, and the `local`
 * driver of @adt/providers as its client, with the account token and scoped tokens. This file's
 * cloud is `tla` on 198.19.12.0/24 (public) and 198.19.13.0/24 (VPC), its state under
 * <tmp>/adt-test-tla; the last suite tears it down. The cloud's services (S3, DNS, ...) are not
 * started here (daemon.test.ts runs them): the API is given their description, which it hands out.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@adt/core';
import { serverName, type Role, type Server } from '@adt/providers';
import localDriver, { type LocalDriver } from '@adt/providers/drivers/local';
import { serveLocalApi, type CloudServices, type LocalApi } from '../src/api.ts';
import { LocalCloud } from '../src/cloud.ts';
import { newAccountToken, TokenStore } from '../src/tokens.ts';
import { cleanup, setup } from '@adt/test-utils';
import { connects, eventually, onThisMachine, rejection, type Where } from './fixtures/helpers.ts';

const BASE = join(tmpdir(), 'adt-test-tla');
const STATE = join(BASE, 'state');
const cloud = new LocalCloud({ cloudId: 'tla', stateDir: STATE, publicCidr: '198.19.12.0/24', privateCidr: '198.19.13.0/24' });
const ACCOUNT_TOKEN = newAccountToken();
const outsider: Where = (argv) => cloud.outsiderArgv(argv);

/** What the API hands the account token's holder (the services themselves run in daemon.test.ts). */
const SERVICES: CloudServices = {
  s3: { endpoint: 'http://198.19.13.1:9000', region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  dns: { apiUrl: 'http://198.19.13.1:8081', apiKey: 'not-a-real-key', nameserver: '198.19.12.1', port: 53 },
  smtp: { host: '198.19.13.1', port: 2525, mailDir: '/nonexistent/mail' },
  mirror: null,
  acme: async () => {
    throw new Error('this test runs no ACME server');
  },
};

let api: LocalApi | null = null;
let started: Promise<LocalApi> | null = null;
/** Every server this file made (destroyed in the last `after`). */
const made: string[] = [];

/** The API, started once for the whole file (after a run that died is cleaned up). */
function ensureApi(): Promise<LocalApi> {
  started ??= (async () => {
    await cloud.teardown();
    await rm(BASE, { recursive: true, force: true });
    await cloud.ensureNetwork();
    api = await serveLocalApi({
      cloud,
      tokens: new TokenStore(ACCOUNT_TOKEN, join(BASE, 'api', 'tokens.json')),
      services: SERVICES,
      version: 'api-test',
      address: '127.0.0.1',
      port: 0,
    });
    return api;
  })();
  return started;
}

const driverWith = (token: string, more: Partial<Parameters<typeof localDriver>[0]> = {}) =>
  localDriver({ url: api!.url, token, attempts: 2, baseDelayMs: 50, maxDelayMs: 200, timeoutMs: 30_000, ...more });

async function create(d: LocalDriver, role: Role, buildId: string, userData = '#!/bin/sh\n'): Promise<Server> {
  const s = await d.create({ name: serverName({ role, buildId }), role, buildId, userData });
  made.push(s.id);
  return s;
}

const names = (xs: { name: string }[]) => xs.map((s) => s.name).sort();

// ---

interface ServersCtx {
  driver: LocalDriver;
}
const servers = suite<ServersCtx>('local cloud API: servers, images and firewalls through the local driver');

setup(servers, async (ctx) => {
  await ensureApi();
  ctx.driver = driverWith(ACCOUNT_TOKEN);
});

servers.after(async () => {
  await cleanup('the API servers suite', [() => Promise.all(made.splice(0).map((id) => cloud.destroy(id)))]);
});

servers('a server is created, listed, fetched and destroyed through the driver', async ({ driver }) => {
  const s = await create(driver, 'webserver', 'ta');
  assert.is(s.state, 'creating');
  assert.match(s.publicIp!, /^198\.19\.12\.\d+$/);
  assert.match(s.privateIp!, /^198\.19\.13\.\d+$/);
  const running = await driver.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  assert.equal({ ...running, state: 'creating' }, s, 'the same server, now running');
  assert.equal(await driver.get(s.id), running);
  assert.equal(names(await driver.list({ buildId: 'ta' })), [s.name]);
  assert.equal(await driver.list({ buildId: 'ta', role: 'database' }), []);
  assert.equal(await driver.list({ buildId: 't' }), [], 'a prefix of a build id matches nothing');
  await driver.destroy(s.id);
  assert.is(await driver.get(s.id), null);
  assert.equal(await driver.list({ buildId: 'ta' }), []);
  assert.not.ok(existsSync(join(STATE, 'servers', s.name)), 'its state is gone');
  await driver.destroy(s.id); // absent: not an error
});

servers("console shows the user-data's output and its exit code", async ({ driver }) => {
  const s = await create(driver, 'webserver', 'ta', '#!/bin/sh\necho "hello from $(hostname)"\necho "to stderr" >&2\nexit 3\n');
  await driver.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  const c = await eventually('the user-data to end', async () => {
    const x = await driver.console(s.id);
    return x.exitCode === null ? null : x;
  });
  assert.is(c.exitCode, 3);
  assert.match(c.log, `hello from ${s.name}`);
  assert.match(c.log, 'to stderr');
  const missing = await rejection(driver.console('ws-ta-nope'));
  assert.is(missing?.status, 404);
});

servers('power off and snapshot through the API: the image is listed, found, used and deleted', async ({ driver }) => {
  const s = await create(driver, 'webserver', 'ta', '#!/bin/sh\necho from-the-first > /opt/first\n');
  await driver.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  await eventually('the user-data to end', async () => (await driver.console(s.id)).exitCode === 0);
  const early = await rejection(driver.snapshot(s.id, 'adt-tla-never'));
  assert.is(early?.status, 422);
  assert.match(early?.message ?? '', /snapshots stopped servers only/);
  await driver.powerOff(s.id);
  assert.is((await driver.get(s.id))?.state, 'stopped');
  const name = `adt-tla-snap-${randomBytes(3).toString('hex')}`;
  const id = await driver.snapshot(s.id, name);
  try {
    assert.equal(await driver.findImage(name), await driver.findImage(id));
    assert.is((await driver.findImage(name))?.kind, 'snapshot');
    assert.ok((await driver.listImages()).some((i) => i.id === id));
    const second = await driver.create({
      name: serverName({ role: 'webserver', buildId: 'ta' }),
      role: 'webserver',
      buildId: 'ta',
      userData: '#!/bin/sh\ncat /opt/first\n',
      image: name,
    });
    made.push(second.id);
    await driver.waitUntilRunning(second.id, { timeoutMs: 60_000 });
    const c = await eventually('the second user-data to end', async () => {
      const x = await driver.console(second.id);
      return x.exitCode === null ? null : x;
    });
    assert.is(c.exitCode, 0);
    assert.match(c.log, 'from-the-first');
    const inUse = await rejection(driver.deleteImage(id));
    assert.is(inUse?.status, 422, 'an image in use is not deleted');
    await driver.destroy(second.id);
  } finally {
    await driver.destroy(s.id);
    await driver.deleteImage(id).catch(() => cloud.images.delete(id));
  }
  assert.is(await driver.findImage(id), null);
});

servers('images: the stock image is listed and found by name and by id; an unknown one is null', async ({ driver }) => {
  const stock = await driver.findImage('debian-12');
  assert.is(stock?.id, cloud.images.stockId);
  assert.is(stock?.kind, 'stock');
  assert.equal(await driver.findImage(stock!.id), stock);
  assert.ok((await driver.listImages()).some((i) => i.id === stock!.id));
  assert.is(await driver.findImage('no-such-image'), null);
  assert.is((await driver.cloud()).stockImage, 'debian-12');
});

servers("bad input is refused with the cloud's message (422, exit code 2) and creates nothing", async ({ driver }) => {
  const before = await driver.list();
  const name = serverName({ role: 'webserver', buildId: 'ta' });
  const cases: [{ userData: string; image?: string; sshKeys?: string[] }, RegExp][] = [
    [{ userData: 'echo no shebang' }, /must be a script starting with "#!"/],
    [{ userData: '#!/bin/sh\n', image: 'no-such-image' }, /image "no-such-image" is not in this cloud's images/],
    [{ userData: '#!/bin/sh\n', sshKeys: ['not a key'] }, /sshKeys\[0\]: an OpenSSH public key/],
  ];
  for (const [body, message] of cases) {
    const e = await rejection(driver.create({ name, role: 'webserver', buildId: 'ta', ...body }));
    assert.is(e?.status, 422, e?.message);
    assert.is(e?.exitCode, 2);
    assert.match(e?.message ?? '', message);
  }
  const raw = await fetch(`${api!.url}/v1/servers`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ACCOUNT_TOKEN}` },
    body: 'not json',
  });
  assert.is(raw.status, 400);
  assert.is(((await raw.json()) as { id: string }).id, 'bad_request');
  assert.equal(await driver.list(), before);
});

servers('firewalls through the API: applied, read, enforced by the cloud, and removed', async ({ driver }) => {
  const db = await create(driver, 'database', 'ta');
  await driver.waitUntilRunning(db.id, { timeoutMs: 60_000 });
  assert.ok(await connects(outsider, db.publicIp!, 22, 3), 'open before any rule');
  assert.is(await driver.firewall.get('ta', 'database'), null);
  const rules = [{ protocol: 'tcp' as const, port: 22, sources: [`${cloud.buildMachine.publicIp}/32`], description: 'ssh' }];
  await driver.firewall.apply('ta', 'database', rules);
  assert.equal(await driver.firewall.get('ta', 'database'), rules);
  assert.not.ok(await connects(outsider, db.publicIp!, 22), 'the outsider is refused');
  assert.ok(await connects(onThisMachine, db.publicIp!, 22, 3), 'the build machine is allowed');
  const bad = await rejection(driver.firewall.apply('ta', 'database', [{ protocol: 'tcp', port: 70000, sources: ['0.0.0.0/0'] }]));
  assert.is(bad?.exitCode, 2, 'a bad rule is refused before the call');
  const raw = await fetch(`${api!.url}/v1/firewalls/ta/database`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ACCOUNT_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ rules: [{ protocol: 'tcp', port: 22, sources: ['not-an-ip'] }] }),
  });
  assert.is(raw.status, 422, 'and by the API itself');
  assert.equal(await driver.firewall.get('ta', 'database'), rules, 'the rules in force did not change');
  await driver.firewall.remove('ta', 'database');
  assert.is(await driver.firewall.get('ta', 'database'), null);
  assert.ok(await connects(outsider, db.publicIp!, 22, 3), 'open again');
});

servers.run();

// ---

interface TokensCtx {
  account: LocalDriver;
  scoped: LocalDriver;
  scopedToken: string;
  wsA: Server;
  dbA: Server;
  wsB: Server;
}
const tokens = suite<TokensCtx>('local cloud API: account and scoped tokens');

setup(tokens, async (ctx) => {
  await ensureApi();
  ctx.account = driverWith(ACCOUNT_TOKEN);
  [ctx.wsA, ctx.dbA, ctx.wsB] = await Promise.all([
    create(ctx.account, 'webserver', 'ta'),
    create(ctx.account, 'database', 'ta'),
    create(ctx.account, 'webserver', 'tb'),
  ]);
  for (const s of [ctx.wsA, ctx.dbA, ctx.wsB]) await ctx.account.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  const t = await ctx.account.createScopedToken('ta', ['webserver'], 'the autoscaler of ta');
  assert.match(t.id, /^tok-/);
  ctx.scopedToken = t.token;
  ctx.scoped = driverWith(t.token);
});

tokens.after(async () => {
  await cleanup('the API tokens suite', [
    () => Promise.all(made.splice(0).map((id) => cloud.destroy(id))),
    () => api?.close(),
    () => cloud.teardown(),
    () => rm(BASE, { recursive: true, force: true }),
  ]);
});

tokens("a scoped token lists and gets its build's servers only", async ({ scoped, account, wsA, dbA, wsB }) => {
  assert.equal(names(await scoped.list()), names([wsA, dbA]));
  assert.equal(names(await scoped.list({ buildId: 'tb' })), names([wsA, dbA]), 'it cannot ask for another build');
  assert.equal(names(await account.list({ buildId: 'tb' })), [wsB.name], 'the account token sees every build');
  assert.is((await scoped.get(dbA.id))?.name, dbA.name);
  assert.is(await scoped.get(wsB.id), null, "another build's server is not there for it");
});

tokens('a scoped token creates and destroys webservers of its build', async ({ scoped }) => {
  const s = await create(scoped, 'webserver', 'ta');
  assert.is((await scoped.waitUntilRunning(s.id, { timeoutMs: 60_000 })).state, 'running');
  await scoped.destroy(s.id);
  assert.is(await scoped.get(s.id), null);
  assert.is(await cloud.get(s.id), null);
});

tokens('a scoped token is refused other roles, other builds, services, tokens and the cloud (403)', async (ctx) => {
  const { scoped, account, dbA, wsB } = ctx;
  const refused = async (what: string, p: Promise<unknown>, message?: RegExp) => {
    const e = await rejection(p);
    assert.is(e?.status, 403, `${what}: ${e?.message ?? 'allowed'}`);
    if (message) assert.match(e?.message ?? '', message);
  };
  const before = names(await account.list());
  await refused(
    'a database of its build',
    scoped.create({ name: serverName({ role: 'database', buildId: 'ta' }), role: 'database', buildId: 'ta', userData: '#!/bin/sh\n' }),
    /a database server may not be created or destroyed with this token \(allowed: webserver\)/,
  );
  await refused(
    'a webserver of another build',
    scoped.create({ name: serverName({ role: 'webserver', buildId: 'tb' }), role: 'webserver', buildId: 'tb', userData: '#!/bin/sh\n' }),
    /build "tb" is not this token's \(ta\)/,
  );
  await refused('destroying the database of its build', scoped.destroy(dbA.id));
  await refused('powering the database off', scoped.powerOff(dbA.id));
  await refused('the services', scoped.services());
  await refused('a token of its own', scoped.createScopedToken('ta', ['webserver', 'database']));
  await refused('revoking tokens', scoped.revokeTokens('ta'));
  await refused('a firewall', scoped.firewall.apply('ta', 'webserver', []));
  await refused('an image deletion', scoped.deleteImage(cloud.images.stockId));
  await refused('the teardown', scoped.teardown());
  await scoped.destroy(wsB.id); // another build's server is absent for it: nothing happens
  assert.equal(names(await account.list()), before, 'every server is still there');
  assert.is((await account.get(wsB.id))?.state, 'running');
  assert.is((await account.get(dbA.id))?.state, 'running');
  assert.is(await cloud.images.get(cloud.images.stockId).then((i) => i?.id), cloud.images.stockId);
});

tokens('revoked tokens are refused (401)', async ({ account, scoped, scopedToken }) => {
  const other = await account.createScopedToken('tb', ['webserver']);
  assert.is(await account.revokeTokens('ta'), 1);
  const e = await rejection(scoped.list());
  assert.is(e?.status, 401, e?.message);
  const raw = await fetch(`${api!.url}/v1/servers`, { headers: { authorization: `Bearer ${scopedToken}` } });
  assert.is(raw.status, 401);
  assert.ok((await driverWith(other.token).list()).length > 0, "another build's token still works");
});

tokens('requests without a token, or with a wrong one, are 401', async () => {
  const headerSets: Record<string, string>[] = [
    {},
    { authorization: `Basic ${ACCOUNT_TOKEN}` },
    { authorization: 'Bearer ' },
    { authorization: 'Bearer x' },
  ];
  for (const headers of headerSets) {
    const r = await fetch(`${api!.url}/v1/servers`, { headers });
    assert.is(r.status, 401, JSON.stringify(headers));
    assert.equal(await r.json(), { id: 'unauthorized', message: 'a valid bearer token is required' });
  }
  const e = await rejection(driverWith(newAccountToken()).list());
  assert.is(e?.status, 401);
  assert.match(e?.message ?? '', /HTTP 401: a valid bearer token is required \(check the API token/);
});

tokens('an API that does not answer is retried, then reported clearly (bounded)', async () => {
  let calls = 0;
  const counting: typeof fetch = (input, init) => {
    calls++;
    return fetch(input, init);
  };
  // Nothing listens on this port.
  const dead = localDriver({
    url: `http://127.0.0.1:${await freePort()}`,
    token: ACCOUNT_TOKEN,
    fetch: counting,
    attempts: 3,
    baseDelayMs: 20,
  });
  const e = await rejection(dead.list());
  assert.is(e?.code, 'API_UNREACHABLE');
  assert.match(e?.message ?? '', /^\[adt:providers\] \[local\] GET http:\/\/127\.0\.0\.1:\d+\/v1\/servers: .* \(after 3 attempts\)$/);
  assert.is(calls, 3, 'retried');
  calls = 0;
  const post = await rejection(
    dead.create({ name: serverName({ role: 'webserver', buildId: 'ta' }), role: 'webserver', buildId: 'ta', userData: '#!/bin/sh\n' }),
  );
  assert.is(post?.code, 'API_UNREACHABLE');
  assert.match(post?.message ?? '', /not retried: the request may or may not have been carried out/);
  assert.is(calls, 1, 'a create is not repeated');
  // One that accepts connections and never answers: each attempt ends at its timeout.
  const held: Socket[] = [];
  const silent = createServer((socket) => held.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    calls = 0;
    const port = (silent.address() as { port: number }).port;
    const hung = localDriver({
      url: `http://127.0.0.1:${port}`,
      token: ACCOUNT_TOKEN,
      fetch: counting,
      attempts: 2,
      baseDelayMs: 20,
      timeoutMs: 300,
    });
    const t = await rejection(hung.list());
    assert.is(t?.code, 'API_UNREACHABLE');
    assert.match(t?.message ?? '', /\(after 2 attempts\)/);
    assert.is(calls, 2);
  } finally {
    for (const s of held) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

tokens.run();
