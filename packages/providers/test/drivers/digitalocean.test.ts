/**
 * DigitalOcean drivers against the fake API (always) and the real API when DIGITALOCEAN_TOKEN and
 * DIGITALOCEAN_TEST_ZONE are set (it creates and destroys real, billed resources).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import digitaloceanDriver, { DigitalOceanDns } from '../../src/drivers/digitalocean.ts';
import { digitaloceanFake, digitaloceanFingerprint, digitaloceanRateLimit } from '../../src/fakes/digitalocean.ts';
import { cloudConformance } from './_cloud-conformance.ts';
import { freshKeyPair, TEST_KEY } from './_keys.ts';

const TOKEN = 'do-test-token-7f3a9c';

cloudConformance({
  title: 'digitalocean drivers (fake API)',
  createPath: 'POST /droplets',
  listPath: 'GET /droplets',
  keyPath: 'POST /account/keys',
  setup: async () => {
    const fake = digitaloceanFake({ token: TOKEN });
    const baseUrl = await fake.listen();
    const cloud = digitaloceanDriver({
      token: TOKEN,
      baseUrl,
      region: 'lon1',
      size: 's-1vcpu-2gb',
      perPage: 2,
      baseDelayMs: 5,
      maxDelayMs: 50,
    });
    const zone = 'example.com';
    return {
      compute: cloud,
      firewall: cloud.firewall,
      dns: cloud.dns(zone),
      databases: cloud.databases,
      zone,
      fake,
      rateLimited: digitaloceanRateLimit(0),
      secret: TOKEN,
      installedKeys: (id) => fake.state.droplets.get(Number(id))!.ssh_keys.map((k) => fake.state.sshKeys.get(k)!.public_key),
      close: () => fake.close(),
    };
  },
});

const realToken = process.env.DIGITALOCEAN_TOKEN;
const realZone = process.env.DIGITALOCEAN_TEST_ZONE;
cloudConformance({
  title: 'digitalocean drivers (real API)',
  createPath: 'POST /droplets',
  listPath: 'GET /droplets',
  keyPath: 'POST /account/keys',
  waitMs: 600_000,
  intervalMs: 5_000,
  skip:
    !realToken || !realZone
      ? 'set DIGITALOCEAN_TOKEN and DIGITALOCEAN_TEST_ZONE to run it against the real API (creates billed resources)'
      : false,
  setup: async () => {
    if (!realToken || !realZone) throw new Error('unreachable');
    const cloud = digitaloceanDriver({ token: realToken, region: process.env.DIGITALOCEAN_TEST_REGION ?? 'lon1', size: 's-1vcpu-1gb' });
    return {
      compute: cloud,
      firewall: cloud.firewall,
      dns: cloud.dns(realZone),
      databases: cloud.databases,
      zone: realZone,
      secret: realToken,
      close: async () => {},
    };
  },
});

// ---

const test = suite('digitalocean specifics (fake API)');

test('requests follow the documented shapes: droplet tags, firewall by tag, relative record names, trusted sources', async () => {
  const fake = digitaloceanFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    const cloud = digitaloceanDriver({ token: TOKEN, baseUrl, region: 'ams3', size: 's-1vcpu-2gb', baseDelayMs: 5 });
    await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', vpc: 'vpc-1' });
    const post = fake.log.find((l) => l.method === 'POST' && l.path === '/droplets')!.body as Record<string, unknown>;
    assert.equal(post.tags, ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver']);
    assert.is(post.region, 'ams3');
    assert.is(post.image, 'debian-12-x64');
    assert.is(post.vpc_uuid, 'vpc-1');
    await cloud.firewall.apply('b7', 'webserver', [
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'] },
      { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1'] },
    ]);
    const fw = [...fake.state.firewalls.values()][0]! as Record<string, unknown>;
    assert.equal(fw.tags, ['adt-b7-webserver']);
    assert.equal(
      (fw.inbound_rules as { ports: string }[]).map((r) => r.ports),
      ['443', '8000-8010'],
    );
    const dns = new DigitalOceanDns({ token: TOKEN, baseUrl, zone: 'example.com' });
    await dns.ensureZone('example.com');
    await dns.addA('www.example.com', '198.51.100.4', 5);
    assert.equal(
      fake.state.domains.get('example.com'),
      [{ id: fake.state.domains.get('example.com')![0]!.id, type: 'A', name: 'www', data: '198.51.100.4', ttl: 30 }],
      'relative name, TTL raised to the minimum of 30',
    );
    await dns.addA('example.com', '198.51.100.5');
    assert.is(fake.state.domains.get('example.com')![1]!.name, '@');
  } finally {
    await fake.close();
  }
});

test('SSH keys: found by MD5 fingerprint, registered once by a stable name, put on the droplet by id with the option keys', async () => {
  const fake = digitaloceanFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    // A key a person put in the account under a name of theirs: found by its fingerprint, reused.
    const own = freshKeyPair('laptop');
    fake.state.sshKeys.set(7, { id: 7, fingerprint: digitaloceanFingerprint(own.publicKey)!, public_key: own.publicKey, name: 'laptop' });
    const cloud = digitaloceanDriver({ token: TOKEN, baseUrl, region: 'lon1', size: 's', baseDelayMs: 5, sshKeys: ['7'] });
    const base = { role: 'webserver', buildId: 'b9', userData: '#!/bin/sh\n' } as const;
    const a = await cloud.create({ ...base, name: 'ws-b9-aaaa', sshKeys: [own.publicKey, TEST_KEY.line] });
    const key = [...fake.state.sshKeys.values()].find((k) => k.fingerprint === TEST_KEY.md5)!;
    assert.ok(key, 'registered with the fingerprint DigitalOcean computes');
    assert.match(key.name, /^adt-[0-9a-f]{12}$/);
    assert.is(key.public_key, TEST_KEY.line);
    assert.is(fake.state.sshKeys.size, 2, 'the known key was not registered again');
    assert.equal(fake.state.droplets.get(Number(a.id))!.ssh_keys, [7, key.id], "the option's key (the same as the first) and the new one");
    const post = fake.log.filter((l) => l.method === 'POST' && l.path === '/droplets').at(-1)!.body as { ssh_keys: unknown[] };
    assert.equal(post.ssh_keys, ['7', key.id], 'each once: the option as given, ours by integer id');
    assert.ok(fake.log.some((l) => l.method === 'GET' && l.path === `/account/keys/${TEST_KEY.md5}` && l.status === 404));

    // Registered meanwhile by another deploy: the 422 "already in use" is looked up, not fatal.
    const other = freshKeyPair();
    fake.fail({
      match: 'POST /account/keys',
      status: 422,
      afterHandling: true,
      body: fake.options.errorBody(422, 'SSH Key is already in use on your account'),
    });
    const b = await cloud.create({ ...base, name: 'ws-b9-bbbb', sshKeys: [other.publicKey] });
    const otherKey = [...fake.state.sshKeys.values()].find((k) => k.public_key === other.publicKey)!;
    assert.equal(fake.state.droplets.get(Number(b.id))!.ssh_keys, [7, otherKey.id]);

    // An unknown outcome (500 after it was made): found, never made twice.
    const third = freshKeyPair();
    fake.fail({ match: 'POST /account/keys', status: 500, afterHandling: true });
    await cloud.create({ ...base, name: 'ws-b9-cccc', sshKeys: [third.publicKey, TEST_KEY.line] });
    assert.is([...fake.state.sshKeys.values()].filter((k) => k.public_key === third.publicKey).length, 1);
    assert.is(fake.state.sshKeys.size, 4);
    // A key identifier the account does not have is DigitalOcean's 422, quoted.
    const stale = digitaloceanDriver({ token: TOKEN, baseUrl, region: 'lon1', size: 's', baseDelayMs: 5, sshKeys: ['99'] });
    await rejects(stale.create({ ...base, name: 'ws-b9-dddd' }), {
      exitCode: 2,
      message: /99 are invalid key identifiers for Droplet creation/,
    });
  } finally {
    await fake.close();
  }
});

test('a rate limit is waited out for the time the reset header asks', async () => {
  const fake = digitaloceanFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    const retries: number[] = [];
    const cloud = digitaloceanDriver({
      token: TOKEN,
      baseUrl,
      region: 'lon1',
      size: 's',
      baseDelayMs: 5,
      maxDelayMs: 5_000,
      onRetry: (i) => retries.push(i.delayMs),
    });
    fake.fail({ match: 'GET /droplets', ...digitaloceanRateLimit(1) });
    assert.equal(await cloud.list(), []);
    assert.is(retries.length, 1);
    assert.ok(retries[0]! >= 0 && retries[0]! <= 2_000, `waited ${retries[0]} ms, as the reset header asked`);
  } finally {
    await fake.close();
  }
});

test('a snapshot is taken and its id returned when the action completes', async () => {
  const fake = digitaloceanFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    const cloud = digitaloceanDriver({ token: TOKEN, baseUrl, region: 'lon1', size: 's', baseDelayMs: 5 });
    const s = await cloud.create({ name: 'ws-b8-abcd', role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n' });
    const id = await cloud.snapshot(s.id, 'adt-b8-webserver', { intervalMs: 1 });
    assert.match(id, /^\d+$/);
  } finally {
    await fake.close();
  }
});

// A prepared image as `fleet/images.ts` finds it: by its exact name, the newest of several, only once made.
test('findImage: the newest droplet snapshot of that name (all pages), none while made; create sends its id as an integer', async () => {
  const fake = digitaloceanFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    const cloud = digitaloceanDriver({ token: TOKEN, baseUrl, region: 'lon1', size: 's', perPage: 2, baseDelayMs: 5 });
    const s = await cloud.create({ name: 'ws-b8-abcd', role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n' });
    assert.is(await cloud.findImage('adt-webserver-0a1b2c3d4e5f'), null, 'none yet');
    const first = await cloud.snapshot(s.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 });
    await cloud.snapshot(s.id, 'adt-database-0a1b2c3d4e5f', { intervalMs: 1 });
    await cloud.snapshot(s.id, 'adt-webserver-0a1b2c3d4e5f-old', { intervalMs: 1 });
    const second = await cloud.snapshot(s.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 });
    assert.is.not(second, first);
    assert.equal(await cloud.findImage('adt-webserver-0a1b2c3d4e5f'), { id: second, name: 'adt-webserver-0a1b2c3d4e5f' }, 'the newest');
    const lists = fake.log.filter((l) => l.method === 'GET' && l.path === '/snapshots');
    assert.ok(
      lists.every((l) => new URLSearchParams(l.query).get('resource_type') === 'droplet'),
      'droplet snapshots only',
    );
    assert.ok(
      lists.some((l) => new URLSearchParams(l.query).get('page') === '2'),
      'read to the last page',
    );
    assert.is(await cloud.findImage('adt-webserver'), null, 'a prefix is no match');
    assert.is(await cloud.findImage('ADT-WEBSERVER-0A1B2C3D4E5F'), null, 'nor another case');

    // A snapshot still being made is not listed, so not found; once its action completed it is.
    const r = await cloud.api.post<{ action: { id: number } }>(`/droplets/${s.id}/actions`, { type: 'snapshot', name: 'adt-auth-0a1b' });
    assert.is(await cloud.findImage('adt-auth-0a1b'), null, 'in progress');
    let status = 'in-progress';
    for (let i = 0; i < 5 && status !== 'completed'; i++)
      status = (await cloud.api.get<{ action: { status: string } }>(`/actions/${r.action.id}`)).action.status;
    assert.is(status, 'completed');
    assert.is((await cloud.findImage('adt-auth-0a1b'))?.name, 'adt-auth-0a1b');

    const found = (await cloud.findImage('adt-webserver-0a1b2c3d4e5f'))!;
    await cloud.create({ name: 'ws-b8-ef01', role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n', image: found.id });
    const posts = fake.log.filter((l) => l.method === 'POST' && l.path === '/droplets').map((l) => l.body as { image: unknown });
    assert.is(posts[0]!.image, 'debian-12-x64', 'a slug as it is');
    assert.is(posts.at(-1)!.image, Number(found.id), "the snapshot's id as the integer the API's image ids are");
  } finally {
    await fake.close();
  }
});

test("a wrong token is refused with the provider's message, never retried, never echoed", async () => {
  const fake = digitaloceanFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    const cloud = digitaloceanDriver({ token: 'wrong-token-xyz', baseUrl, region: 'lon1', size: 's', baseDelayMs: 5 });
    const e = await rejects(cloud.list(), { code: 'UNAUTHORIZED', message: /HTTP 401: Unable to authenticate you/ });
    assert.not.ok(e.message.includes('wrong-token-xyz'));
    assert.is(fake.log.length, 1);
  } finally {
    await fake.close();
  }
});

test.run();
