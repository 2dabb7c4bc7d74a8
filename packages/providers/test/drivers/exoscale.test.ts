/**
 * Exoscale drivers against the fake API (always; the fake checks every request's signature) and
 * the real API when EXOSCALE_API_KEY, EXOSCALE_API_SECRET and EXOSCALE_TEST_ZONE are set (it
 * creates and destroys real, billed resources; EXOSCALE_TEST_PRIVATE_NETWORK names a managed
 * private network to attach the instances to).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import exoscaleDriver, { exoscaleSignature } from '../../src/drivers/exoscale.ts';
import { checkExoscaleSignature, EXOSCALE_FAKE_NETWORK, exoscaleFake, exoscaleRateLimit } from '../../src/fakes/exoscale.ts';
import { cloudConformance } from './_cloud-conformance.ts';
import { freshKeyPair, TEST_KEY } from './_keys.ts';

const KEY = 'EXOfakekey0123';

/** The keys an instance of the fake holds (`ssh-keys`, as the API shows them). */
const keysOf = (fake: ReturnType<typeof exoscaleFake>, id: string) =>
  fake.state.instances.get(id)!['ssh-keys'] as { name: string; fingerprint: string }[];
const SECRET = 'exo-secret-9a7c-do-not-log';

cloudConformance({
  title: 'exoscale drivers (fake API)',
  createPath: 'POST /instance',
  listPath: 'GET /instance',
  keyPath: 'POST /ssh-key',
  paginated: false,
  setup: async () => {
    const fake = exoscaleFake({ apiKey: KEY, apiSecret: SECRET });
    const baseUrl = await fake.listen();
    const cloud = exoscaleDriver({
      apiKey: KEY,
      apiSecret: SECRET,
      baseUrl,
      privateNetwork: EXOSCALE_FAKE_NETWORK,
      baseDelayMs: 5,
      maxDelayMs: 50,
      operationIntervalMs: 1,
    });
    const zone = 'example.com';
    return {
      compute: cloud,
      firewall: cloud.firewall,
      dns: cloud.dns(zone),
      databases: cloud.databases,
      zone,
      fake,
      rateLimited: exoscaleRateLimit(),
      secret: SECRET,
      installedKeys: (id) => keysOf(fake, id).map((k) => fake.state.sshKeys.get(k.name)!.publicKey),
      close: () => fake.close(),
    };
  },
});

const real = { key: process.env.EXOSCALE_API_KEY, secret: process.env.EXOSCALE_API_SECRET, zone: process.env.EXOSCALE_TEST_ZONE };
cloudConformance({
  title: 'exoscale drivers (real API)',
  createPath: 'POST /instance',
  listPath: 'GET /instance',
  keyPath: 'POST /ssh-key',
  paginated: false,
  waitMs: 600_000,
  intervalMs: 5_000,
  skip:
    !real.key || !real.secret || !real.zone
      ? 'set EXOSCALE_API_KEY, EXOSCALE_API_SECRET and EXOSCALE_TEST_ZONE to run it against the real API (creates billed resources)'
      : false,
  setup: async () => {
    const cloud = exoscaleDriver({
      apiKey: real.key!,
      apiSecret: real.secret!,
      zone: process.env.EXOSCALE_TEST_REGION ?? 'ch-gva-2',
      privateNetwork: process.env.EXOSCALE_TEST_PRIVATE_NETWORK,
    });
    return {
      compute: cloud,
      firewall: cloud.firewall,
      dns: cloud.dns(real.zone!),
      databases: cloud.databases,
      zone: real.zone!,
      secret: real.secret!,
      close: async () => {},
    };
  },
});

// ---

const test = suite('exoscale specifics (fake API)');

test('the request signature: query values signed in name order, a changed body or an expired signature is refused', () => {
  const req = { method: 'GET', url: 'https://api-ch-gva-2.exoscale.com/v2/template?visibility=public&family=debian', body: undefined };
  const header = exoscaleSignature({ apiKey: KEY, apiSecret: SECRET }, req, 2_000_000_000);
  assert.match(
    header,
    /^EXO2-HMAC-SHA256 credential=EXOfakekey0123,signed-query-args=family;visibility,expires=2000000000,signature=[A-Za-z0-9+/]+=*$/,
  );
  assert.not.ok(header.includes(SECRET));
  const query = new URL(req.url).searchParams;
  const check = (h: string, body = '', now = 1_999_999_000) =>
    checkExoscaleSignature(h, { method: 'GET', fullPath: '/v2/template', query, rawBody: body }, KEY, SECRET, now);
  assert.is(check(header), null);
  assert.is(check(header, '{"x":1}'), 'invalid request signature');
  assert.is(check(header, '', 2_000_000_001), 'request expired');
  assert.is(check(header.replace(KEY, 'EXOother')), 'invalid API key');
});

test('the signature matches a known answer computed by an independent Exoscale client', () => {
  const header = exoscaleSignature(
    { apiKey: 'EXO123', apiSecret: 'secret-value' },
    { method: 'GET', url: 'https://api-ch-gva-2.exoscale.com/v2/instance?zone=ch-gva-2&name=sb-test', body: undefined },
    1_700_000_000,
  );
  assert.is(
    header,
    'EXO2-HMAC-SHA256 credential=EXO123,signed-query-args=name;zone,expires=1700000000,' +
      'signature=LdrDqX3RL8WKrHOSxqZ3ueR5PcwwEzjtwlOXWUThvUc=',
  );
});

test('as documented: tags as labels, base64 user-data, type and template by id, a security group per role, polled operations', async () => {
  const fake = exoscaleFake({ apiKey: KEY, apiSecret: SECRET });
  const baseUrl = await fake.listen();
  try {
    const cloud = exoscaleDriver({
      apiKey: KEY,
      apiSecret: SECRET,
      baseUrl,
      privateNetwork: EXOSCALE_FAKE_NETWORK,
      baseDelayMs: 5,
      operationIntervalMs: 1,
    });
    const first = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\necho hi\n' });
    const post = fake.log.find((l) => l.method === 'POST' && l.path === '/instance')!.body as Record<string, unknown>;
    assert.equal(post.labels, { adt: '1', 'adt-role-webserver': '1', 'adt-build-b7': '1', 'adt-b7-webserver': '1' });
    assert.is(Buffer.from(String(post['user-data']), 'base64').toString(), '#!/bin/sh\necho hi\n');
    assert.equal(post['instance-type'], { id: '21624abb-764e-4def-81d7-9fc54b5957fb' });
    assert.ok(
      fake.log.some((l) => l.path.startsWith('/operation/')),
      'the operation was polled',
    );
    assert.match(first.privateIp ?? '', /^198\.18\.140\.\d+$/, 'the private network lease');
    await cloud.firewall.apply('b7', 'webserver', [
      { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1'] },
      { protocol: 'icmp', sources: [] },
    ]);
    const g = [...fake.state.groups.values()][0]!;
    assert.is(g.name, 'adt-b7-webserver');
    assert.equal(
      g.rules.map((r) => `${r['flow-direction']} ${r.protocol} ${r['start-port']}-${r['end-port']} ${r.network}`),
      ['ingress tcp 8000-8010 198.51.100.1/32', 'ingress icmp undefined-undefined 0.0.0.0/0', 'ingress icmpv6 undefined-undefined ::/0'],
    );
    assert.equal(
      (await cloud.firewall.get('b7', 'webserver'))?.map((r) => `${r.protocol} ${r.sources.join(',')}`),
      ['tcp 198.51.100.1/32', 'icmp 0.0.0.0/0,::/0'],
    );
    assert.equal(fake.state.instances.get(first.id)!['security-groups'], [{ id: g.id }], 'the existing webserver is attached');
    const second = await cloud.create({ name: 'ws-b7-5678', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    assert.equal(fake.state.instances.get(second.id)!['security-groups'], [{ id: g.id }], 'a new one is created in the group');
    // The group is in use: remove detaches the instances, then deletes it.
    await cloud.firewall.remove('b7', 'webserver');
    assert.is(fake.state.groups.size, 0);
    assert.equal(fake.state.instances.get(first.id)!['security-groups'], []);
    await rejects(
      cloud.create({ name: 'ws-b7-9abc', role: 'webserver', buildId: 'b7', region: 'de-fra-1', userData: '#!/bin/sh\n' }),
      { exitCode: 2 },
      'another zone needs another driver',
    );
  } finally {
    await fake.close();
  }
});

test("SSH keys: found by name or fingerprint, registered once (an operation), given by name in ssh-keys after the option's", async () => {
  const fake = exoscaleFake({ apiKey: KEY, apiSecret: SECRET });
  const baseUrl = await fake.listen();
  try {
    // A key a person registered under a name of theirs: found by its fingerprint, reused.
    const own = freshKeyPair('laptop');
    const options = { apiKey: KEY, apiSecret: SECRET, baseUrl, baseDelayMs: 5, operationIntervalMs: 1 };
    const seed = exoscaleDriver(options);
    await seed.api.post('/ssh-key', { name: 'laptop', 'public-key': own.publicKey });
    await seed.api.post('/ssh-key', { name: 'ops', 'public-key': freshKeyPair().publicKey });
    const cloud = exoscaleDriver({ ...options, sshKey: 'ops' });
    const base = { role: 'webserver', buildId: 'b5', userData: '#!/bin/sh\n' } as const;
    const a = await cloud.create({ ...base, name: 'ws-b5-aaaa', sshKeys: [TEST_KEY.line, own.publicKey] });
    const registers = () => fake.log.filter((l) => l.method === 'POST' && l.path === '/ssh-key').map((l) => l.body);
    const name = (registers().at(-1) as { name: string }).name;
    assert.match(name, /^adt-[0-9a-f]{12}$/);
    assert.equal(registers().slice(2), [{ name, 'public-key': TEST_KEY.line }], 'only the new key');
    assert.is(fake.state.sshKeys.get(name)!.fingerprint, TEST_KEY.md5);
    const post = fake.log.filter((l) => l.method === 'POST' && l.path === '/instance').at(-1)!.body as Record<string, unknown>;
    assert.equal(post['ssh-keys'], [{ name: 'ops' }, { name }, { name: 'laptop' }]);
    assert.is(post['ssh-key'], undefined, 'not the deprecated single key');
    assert.equal(
      keysOf(fake, a.id).map((k) => k.name),
      ['ops', name, 'laptop'],
    );
    const registerAt = fake.log.findIndex(
      (l) => l.method === 'POST' && l.path === '/ssh-key' && (l.body as { name: string }).name === name,
    );
    assert.ok(
      fake.log.slice(registerAt).some((l) => l.path.startsWith('/operation/')),
      'the registration was waited for',
    );

    // The same key again: nothing registered; registered meanwhile (a 409): looked up, not fatal.
    await cloud.create({ ...base, name: 'ws-b5-bbbb', sshKeys: [TEST_KEY.line] });
    assert.is(registers().length, 3);
    const other = freshKeyPair();
    fake.fail({ match: 'POST /ssh-key', status: 409, afterHandling: true, body: { message: 'SSH key already exists' } });
    const c = await cloud.create({ ...base, name: 'ws-b5-cccc', sshKeys: [other.publicKey] });
    assert.is(keysOf(fake, c.id).length, 2);
    assert.is(fake.state.sshKeys.size, 4);
    // A bad size is refused before any key is registered.
    const third = freshKeyPair();
    await rejects(cloud.create({ ...base, name: 'ws-b5-dddd', size: 'standard.huge', sshKeys: [third.publicKey] }), 'BAD_SIZE');
    assert.is(fake.state.sshKeys.size, 4);
    // An option name the account does not have: the API's answer, quoted.
    const stale = exoscaleDriver({ ...options, sshKey: 'gone' });
    await rejects(stale.create({ ...base, name: 'ws-b5-eeee' }), { exitCode: 2, message: /HTTP 400: SSH key gone not found/ });
  } finally {
    await fake.close();
  }
});

test("a wrong secret is refused (403) with Exoscale's message and never shown; a 429 is backed off", async () => {
  const fake = exoscaleFake({ apiKey: KEY, apiSecret: SECRET });
  const baseUrl = await fake.listen();
  try {
    const bad = exoscaleDriver({ apiKey: KEY, apiSecret: 'wrong-secret-77', baseUrl, baseDelayMs: 5 });
    const e = await rejects(bad.list(), { code: 'UNAUTHORIZED', message: /HTTP 403: invalid request signature \(check the API token/ });
    assert.not.ok(e.message.includes('wrong-secret-77'));
    const retries: number[] = [];
    const cloud = exoscaleDriver({
      apiKey: KEY,
      apiSecret: SECRET,
      baseUrl,
      baseDelayMs: 5,
      maxDelayMs: 50,
      onRetry: (i) => retries.push(i.status ?? 0),
    });
    fake.fail({ match: 'GET /instance', ...exoscaleRateLimit() });
    assert.equal(await cloud.list(), []);
    assert.equal(retries, [429]);
    fake.fail({ match: 'GET /dns-domain', status: 400, body: { title: 'Bad Request', detail: 'unicode-name: invalid' } });
    await rejects(cloud.dns('example.com').ensureZone('example.com'), /HTTP 400: unicode-name: invalid/);
  } finally {
    await fake.close();
  }
});

test('a snapshot is promoted to a private template later servers boot from; an unknown outcome is looked up, never repeated', async () => {
  const fake = exoscaleFake({ apiKey: KEY, apiSecret: SECRET, snapshotPolls: 2 });
  const baseUrl = await fake.listen();
  try {
    const cloud = exoscaleDriver({ apiKey: KEY, apiSecret: SECRET, baseUrl, baseDelayMs: 5, maxDelayMs: 50, operationIntervalMs: 1 });
    assert.ok(cloud.flags.snapshots);
    const s = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    const template = await cloud.snapshot(s.id, 'adt-b7-webserver', { intervalMs: 1 });
    const snap = [...fake.state.snapshots.values()];
    assert.is(snap.length, 1);
    assert.equal(snap[0]!.instance.id, s.id);
    const promote = fake.log.find((l) => l.method === 'POST' && l.path.endsWith(':promote'))!;
    assert.is(promote.path, `/snapshot/${snap[0]!.id}:promote`);
    assert.equal(promote.body, {
      name: 'adt-b7-webserver',
      description: `adt: snapshot ${snap[0]!.id} of instance ${s.id}`,
      'default-user': 'debian',
      'ssh-key-enabled': true,
      'password-enabled': false,
    });
    assert.ok(
      fake.log.filter((l) => l.method === 'GET' && l.path === `/snapshot/${snap[0]!.id}`).length >= 3,
      'promoted only once the snapshot was ready',
    );
    assert.is(fake.state.templates.get(template)?.visibility, 'private');
    // A later instance boots from it, by id or by name.
    const byId = await cloud.create({ name: 'ws-b7-5678', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: template });
    assert.equal(fake.state.instances.get(byId.id)!.template, { id: template });
    const byName = await cloud.create({
      name: 'ws-b7-9abc',
      role: 'webserver',
      buildId: 'b7',
      userData: '#!/bin/sh\n',
      image: 'adt-b7-webserver',
    });
    assert.equal(fake.state.instances.get(byName.id)!.template, { id: template });
    // The same name again is refused before anything is made.
    await rejects(cloud.snapshot(s.id, 'adt-b7-webserver', { intervalMs: 1 }), {
      exitCode: 2,
      message: /template named "adt-b7-webserver" already exists/,
    });
    assert.is(fake.state.snapshots.size, 1);
    // Both POSTs answer 503 after doing their work: the snapshot and the template are found, not made twice.
    fake.fail({ match: 'POST /instance/', status: 503, afterHandling: true });
    fake.fail({ match: 'POST /snapshot/', status: 503, afterHandling: true });
    const second = await cloud.snapshot(s.id, 'adt-b7-webserver-2', { intervalMs: 1 });
    assert.is(fake.state.snapshots.size, 2);
    assert.equal(
      [...fake.state.templates.values()]
        .filter((t) => t.visibility === 'private')
        .map((t) => t.name)
        .sort(),
      ['adt-b7-webserver', 'adt-b7-webserver-2'],
    );
    assert.is(fake.state.templates.get(second)?.name, 'adt-b7-webserver-2');
    // A 503 before any work is reported, with nothing made.
    fake.fail({ match: 'POST /instance/', status: 503 });
    await rejects(cloud.snapshot(s.id, 'adt-b7-webserver-3', { intervalMs: 1 }), /HTTP 503/);
    assert.is(fake.state.snapshots.size, 2);
    // An unknown template name is a clear error.
    await rejects(
      cloud.create({ name: 'ws-b7-0000', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: 'no-such-template' }),
      { exitCode: 2, message: /template "no-such-template" not found/ },
    );
  } finally {
    await fake.close();
  }
});

test.run();
