/**
 * Linode drivers against the fake API (always) and the real API when LINODE_TOKEN and
 * LINODE_TEST_ZONE are set (it creates and destroys real, billed resources).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import linodeDriver, { linodeTtl } from '../../src/drivers/linode.ts';
import { linodeFake, linodeRateLimit } from '../../src/fakes/linode.ts';
import { cloudConformance } from './_cloud-conformance.ts';
import { freshKeyPair, TEST_KEY } from './_keys.ts';

const TOKEN = 'linode-test-token-e81b';

cloudConformance({
  title: 'linode drivers (fake API)',
  createPath: 'POST /linode/instances',
  listPath: 'GET /linode/instances',
  // The API's smallest page is 25: the pagination test makes 26 servers.
  pageSize: 25,
  setup: async () => {
    const fake = linodeFake({ token: TOKEN });
    const baseUrl = await fake.listen();
    const cloud = linodeDriver({
      token: TOKEN,
      baseUrl,
      region: 'eu-west',
      size: 'g6-standard-1',
      pageSize: 25,
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
      rateLimited: linodeRateLimit(0),
      secret: TOKEN,
      installedKeys: (id) => fake.state.instances.get(Number(id))!.authorized_keys,
      close: () => fake.close(),
    };
  },
});

const realToken = process.env.LINODE_TOKEN;
const realZone = process.env.LINODE_TEST_ZONE;
cloudConformance({
  title: 'linode drivers (real API)',
  createPath: 'POST /linode/instances',
  listPath: 'GET /linode/instances',
  waitMs: 1_800_000,
  intervalMs: 5_000,
  skip: !realToken || !realZone ? 'set LINODE_TOKEN and LINODE_TEST_ZONE to run it against the real API (creates billed resources)' : false,
  setup: async () => {
    if (!realToken || !realZone) throw new Error('unreachable');
    const cloud = linodeDriver({ token: realToken, region: process.env.LINODE_TEST_REGION ?? 'eu-west', size: 'g6-nanode-1' });
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

/** A fetch that keeps the request headers the driver sent (the fake's log has no headers). */
function recordingFetch(sent: { method: string; url: string; headers: Headers }[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    sent.push({ method: init?.method ?? 'GET', url: String(input), headers: new Headers(init?.headers) });
    return fetch(input, init);
  }) as typeof fetch;
}

async function withFake<T>(run: (fake: ReturnType<typeof linodeFake>, baseUrl: string) => Promise<T>): Promise<T> {
  const fake = linodeFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    return await run(fake, baseUrl);
  } finally {
    await fake.close();
  }
}

const test = suite('linode specifics (fake API)');

test('instances: base64 user-data, a random root password, legacy interfaces with a private address, tags filtered with X-Filter', () =>
  withFake(async (fake, baseUrl) => {
    const sent: { method: string; url: string; headers: Headers }[] = [];
    const cloud = linodeDriver({
      token: TOKEN,
      baseUrl,
      region: 'eu-west',
      size: 'g6-standard-1',
      baseDelayMs: 5,
      fetch: recordingFetch(sent),
    });
    const a = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\necho hi\n' });
    await cloud.create({ name: 'ws-b7-5678', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    const posts = fake.log
      .filter((l) => l.method === 'POST' && l.path === '/linode/instances')
      .map((l) => l.body as Record<string, unknown>);
    const post = posts[0]!;
    assert.equal(post.tags, ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver']);
    assert.is(Buffer.from((post.metadata as { user_data: string }).user_data, 'base64').toString(), '#!/bin/sh\necho hi\n');
    assert.match(String(post.root_pass), /^.{32,128}$/);
    assert.is.not(posts[0]!.root_pass, posts[1]!.root_pass, 'a new password per instance');
    assert.is(post.image, 'linode/debian12');
    assert.is(post.type, 'g6-standard-1');
    assert.is(post.region, 'eu-west');
    assert.is(post.private_ip, true);
    assert.is(post.interface_generation, 'legacy_config');
    assert.is(post.interfaces, undefined);
    assert.is(post.firewall_id, undefined, 'no firewall for the role yet');
    const running = await cloud.waitUntilRunning(a.id, { intervalMs: 1 });
    assert.match(running.publicIp ?? '', /^198\.51\.100\.\d+$/);
    assert.match(running.privateIp ?? '', /^192\.168\.128\.\d+$/);
    assert.equal((await cloud.list({ buildId: 'b7', role: 'webserver' })).map((s) => s.name).sort(), ['ws-b7-1234', 'ws-b7-5678']);
    const listed = sent.filter((s) => s.url.includes('/linode/instances?'));
    assert.ok(listed.length > 0);
    for (const s of listed) {
      assert.is(s.headers.get('x-filter'), JSON.stringify({ tags: 'adt-build-b7' }));
      assert.match(s.url, /page=1&page_size=500/);
    }
    assert.is(sent[0]!.headers.get('authorization'), `Bearer ${TOKEN}`);
  }));

test("SSH keys go inline in authorized_keys after the option's, each once; nothing is registered; a bad one is Linode's 400", () =>
  withFake(async (fake, baseUrl) => {
    const laptop = freshKeyPair('laptop').publicKey;
    const cloud = linodeDriver({
      token: TOKEN,
      baseUrl,
      region: 'eu-west',
      size: 'g6-standard-1',
      baseDelayMs: 5,
      authorizedKeys: [laptop],
    });
    const base = { role: 'webserver', buildId: 'b4', userData: '#!/bin/sh\n' } as const;
    const a = await cloud.create({ ...base, name: 'ws-b4-aaaa', sshKeys: [TEST_KEY.line, laptop.replace(/laptop$/, 'again')] });
    assert.equal(fake.state.instances.get(Number(a.id))!.authorized_keys, [laptop, TEST_KEY.line]);
    const post = fake.log.find((l) => l.method === 'POST' && l.path === '/linode/instances')!.body as Record<string, unknown>;
    assert.equal(post.authorized_keys, [laptop, TEST_KEY.line]);
    assert.not.ok(
      fake.log.some((l) => l.method !== 'GET' && l.path !== '/linode/instances'),
      'no other write (no /profile/sshkeys)',
    );
    const plain = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-standard-1', baseDelayMs: 5 });
    const b = await plain.create({ ...base, name: 'ws-b4-bbbb' });
    assert.equal(fake.state.instances.get(Number(b.id))!.authorized_keys, [], 'none given, none installed');
    const odd = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 's', baseDelayMs: 5, authorizedKeys: ['not a key'] });
    await rejects(odd.create({ ...base, name: 'ws-b4-cccc' }), /HTTP 400: authorized_keys\[0\]: Must be a public SSH key/);
  }));

test('a VPC subnet gives a public and a VPC interface; the VPC address is read from /ips and /vpcs/ips', () =>
  withFake(async (fake, baseUrl) => {
    const cloud = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-standard-1', baseDelayMs: 5 });
    const vpc = await cloud.api.post<{ id: number; subnets: { id: number }[] }>('/vpcs', {
      label: 'adt-vpc',
      region: 'eu-west',
      subnets: [{ label: 'adt-subnet', ipv4: '198.18.4.0/24' }],
    });
    const subnetId = vpc.subnets[0]!.id;
    const before = fake.log.length;
    await rejects(cloud.create({ name: 'db-b3-abcd', role: 'database', buildId: 'b3', userData: '#!/bin/sh\n', vpc: 'my-vpc' }), {
      code: 'BAD_VPC',
      exitCode: 2,
    });
    assert.is(fake.log.length, before, 'nothing sent for a bad subnet id');
    const s = await cloud.create({ name: 'db-b3-abcd', role: 'database', buildId: 'b3', userData: '#!/bin/sh\n', vpc: String(subnetId) });
    const post = fake.log.find((l) => l.method === 'POST' && l.path === '/linode/instances')!.body as Record<string, unknown>;
    assert.equal(post.interfaces, [{ purpose: 'public' }, { purpose: 'vpc', subnet_id: subnetId }]);
    assert.is(post.private_ip, undefined, 'the VPC address is the private one');
    const running = await cloud.waitUntilRunning(s.id, { intervalMs: 1 });
    assert.match(running.publicIp ?? '', /^198\.51\.100\.\d+$/);
    assert.is(running.privateIp, '198.18.4.2');
    assert.ok(fake.log.some((l) => l.path === `/linode/instances/${s.id}/ips`));
    const [listed] = await cloud.list({ buildId: 'b3' });
    assert.is(listed?.privateIp, '198.18.4.2');
    assert.ok(
      fake.log.some((l) => l.path === '/vpcs/ips'),
      'one list of the VPC addresses, not one call per server',
    );
    await rejects(
      cloud.create({ name: 'db-b3-efgh', role: 'database', buildId: 'b3', userData: '#!/bin/sh\n', vpc: '999999' }),
      /HTTP 400: interfaces\[1\]\.subnet_id: Subnet not found/,
    );
  }));

test('a filter the API refuses is dropped and the list is filtered here; other builds stay out', () =>
  withFake(async (fake, baseUrl) => {
    const cloud = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-nanode-1', baseDelayMs: 5 });
    await cloud.create({ name: 'ws-b1-aaaa', role: 'webserver', buildId: 'b1', userData: '#!/bin/sh\n' });
    await cloud.create({ name: 'ws-b12-bbbb', role: 'webserver', buildId: 'b12', userData: '#!/bin/sh\n' });
    fake.fail({ match: 'GET /linode/instances', status: 400, body: { errors: [{ field: 'X-Filter', reason: 'Cannot filter on tags' }] } });
    assert.equal(
      (await cloud.list({ buildId: 'b1' })).map((s) => s.name),
      ['ws-b1-aaaa'],
    );
    assert.equal(
      fake.log.filter((l) => l.path === '/linode/instances' && l.method === 'GET').map((l) => l.status),
      [400, 200],
    );
  }));

test('firewalls: one per build and role, rules with prefixes and descriptions, existing servers attached, new ones created inside', () =>
  withFake(async (fake, baseUrl) => {
    const sent: { method: string; url: string; headers: Headers }[] = [];
    const cloud = linodeDriver({
      token: TOKEN,
      baseUrl,
      region: 'eu-west',
      size: 'g6-standard-1',
      baseDelayMs: 5,
      fetch: recordingFetch(sent),
    });
    const first = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    const rules = [
      { protocol: 'tcp' as const, port: 443, sources: ['0.0.0.0/0', '::/0'], description: 'https from everyone' },
      { protocol: 'tcp' as const, port: [8000, 8010] as [number, number], sources: ['198.51.100.1', '2001:db8::1'] },
      { protocol: 'icmp' as const, sources: [] },
    ];
    await cloud.firewall.apply('b7', 'webserver', rules);
    const fw = [...fake.state.firewalls.values()][0]!;
    assert.is(fw.label, 'adt-b7-ws');
    assert.equal(fw.devices, [Number(first.id)], 'the existing webserver is attached');
    const posted = fake.log.find((l) => l.method === 'POST' && l.path === '/networking/firewalls')!.body as {
      rules: { inbound: Record<string, unknown>[]; inbound_policy: string; outbound_policy: string };
    };
    assert.equal(posted.rules.inbound, [
      {
        action: 'ACCEPT',
        protocol: 'TCP',
        ports: '443',
        addresses: { ipv4: ['0.0.0.0/0'], ipv6: ['::/0'] },
        label: 'adt-rule-1',
        description: 'https from everyone',
      },
      {
        action: 'ACCEPT',
        protocol: 'TCP',
        ports: '8000-8010',
        addresses: { ipv4: ['198.51.100.1/32'], ipv6: ['2001:db8::1/128'] },
        label: 'adt-rule-2',
      },
      { action: 'ACCEPT', protocol: 'ICMP', addresses: { ipv4: ['0.0.0.0/0'], ipv6: ['::/0'] }, label: 'adt-rule-3' },
    ]);
    assert.is(posted.rules.inbound_policy, 'DROP');
    assert.is(posted.rules.outbound_policy, 'ACCEPT');
    assert.equal(await cloud.firewall.get('b7', 'webserver'), [
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'], description: 'https from everyone' },
      { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1/32', '2001:db8::1/128'] },
      { protocol: 'icmp', sources: ['0.0.0.0/0', '::/0'] },
    ]);
    assert.ok(
      sent.some((s) => s.url.includes('/networking/firewalls?') && s.headers.get('x-filter') === JSON.stringify({ label: 'adt-b7-ws' })),
    );
    const second = await cloud.create({ name: 'ws-b7-5678', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    assert.is(
      (fake.log.filter((l) => l.method === 'POST' && l.path === '/linode/instances')[1]!.body as { firewall_id?: number }).firewall_id,
      fw.id,
    );
    assert.equal(fw.devices, [Number(first.id), Number(second.id)], 'a new webserver is created inside the firewall');
    // A server that lost its firewall is attached again by the next apply; the rules are replaced with PUT.
    fw.devices = [Number(first.id)];
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 22, sources: ['203.0.113.9'] }]);
    const put = fake.log.find((l) => l.method === 'PUT' && l.path === `/networking/firewalls/${fw.id}/rules`)!.body as {
      inbound: { addresses: { ipv4: string[] } }[];
    };
    assert.equal(
      put.inbound.map((r) => r.addresses.ipv4),
      [['203.0.113.9/32']],
    );
    assert.equal(
      fake.log.filter((l) => l.method === 'POST' && l.path === `/networking/firewalls/${fw.id}/devices`).map((l) => l.body),
      [{ id: Number(second.id), type: 'linode' }],
    );
    assert.equal(fw.devices.sort(), [Number(first.id), Number(second.id)].sort());
    await cloud.firewall.remove('b7', 'webserver');
    assert.is(fake.state.firewalls.size, 0);
  }));

test("DNS: a master zone with an SOA email, relative record names ('' at the apex), TTLs raised to values Linode keeps", () =>
  withFake(async (fake, baseUrl) => {
    const sent: { method: string; url: string; headers: Headers }[] = [];
    const cloud = linodeDriver({
      token: TOKEN,
      baseUrl,
      region: 'eu-west',
      size: 'g6-nanode-1',
      baseDelayMs: 5,
      fetch: recordingFetch(sent),
    });
    const dns = cloud.dns('Example.com.', 10);
    await dns.ensureZone('example.com');
    await dns.addA('www.example.com', '198.51.100.4');
    await dns.addA('example.com', '198.51.100.5', 200);
    const d = [...fake.state.domains.values()][0]!;
    assert.is(d.type, 'master');
    assert.is(d.soa_email, 'hostmaster@example.com');
    assert.equal(
      fake.log.filter((l) => l.method === 'POST' && l.path === `/domains/${d.id}/records`).map((l) => l.body),
      [
        { type: 'A', name: 'www', target: '198.51.100.4', ttl_sec: 30 },
        { type: 'A', name: '', target: '198.51.100.5', ttl_sec: 300 },
      ],
    );
    assert.equal(await dns.listA('example.com'), [{ name: 'example.com', type: 'A', content: '198.51.100.5', ttl: 300 }]);
    assert.ok(sent.some((s) => s.url.includes('/domains?') && s.headers.get('x-filter') === JSON.stringify({ domain: 'example.com' })));
    assert.ok(sent.some((s) => s.url.includes('/records?') && s.headers.get('x-filter') === JSON.stringify({ name: '' })));
    assert.equal([5, 30, 31, 120, 3000, 10_000_000].map(linodeTtl), [30, 30, 120, 120, 3600, 2419200]);
    const noZone = cloud.dns('elsewhere.example');
    await rejects(noZone.addA('www.elsewhere.example', '198.51.100.6'), 'NO_ZONE');
  }));

test('databases: documented create body, ids with the engine, build from the label, convergence sets the allow-list, a VPC subnet', () =>
  withFake(async (fake, baseUrl) => {
    const cloud = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-nanode-1', baseDelayMs: 5 });
    const before = fake.log.length;
    await rejects(cloud.databases.create({ name: 'adt-b5-db', buildId: 'b5', engine: 'postgres', allow: ['0.0.0.0/0'] }), { exitCode: 2 });
    assert.is(fake.log.length, before, 'nothing sent for an open allow-list');
    const vpc = await cloud.api.post<{ id: number; subnets: { id: number }[] }>('/vpcs', {
      label: 'adt-vpc',
      region: 'eu-west',
      subnets: [{ label: 'adt-subnet', ipv4: '198.18.4.0/24' }],
    });
    const db = await cloud.databases.create({
      name: 'adt-b5-db',
      buildId: 'b5',
      engine: 'postgres',
      allow: ['198.18.4.0/24'],
      vpc: String(vpc.subnets[0]!.id),
    });
    assert.match(db.id, /^postgresql\/\d+$/);
    assert.is(db.buildId, 'b5');
    assert.is(db.engine, 'postgres');
    const post = fake.log.find((l) => l.method === 'POST' && l.path === '/databases/postgresql/instances')!.body;
    assert.equal(post, {
      label: 'adt-b5-db',
      region: 'eu-west',
      type: 'g6-nanode-1',
      engine: 'postgresql/16',
      cluster_size: 1,
      allow_list: ['198.18.4.0/24'],
      private_network: { vpc_id: vpc.id, subnet_id: vpc.subnets[0]!.id, public_access: true },
    });
    const again = await cloud.databases.create({ name: 'adt-b5-db', buildId: 'b5', engine: 'postgres', allow: ['198.18.4.7'] });
    assert.is(again.id, db.id);
    assert.equal(
      fake.log.filter((l) => l.method === 'PUT').map((l) => [l.path, l.body]),
      [[`/databases/postgresql/instances/${db.id.split('/')[1]}`, { allow_list: ['198.18.4.7'] }]],
      'the allow-list of the existing database is set',
    );
    assert.is(fake.log.filter((l) => l.method === 'POST' && l.path.startsWith('/databases/')).length, 1, 'made once');
    await rejects(
      cloud.databases.create({ name: 'adt-b5-db', buildId: 'b5', engine: 'mysql', allow: ['198.18.4.7'] }),
      'DB_ENGINE_MISMATCH',
    );
    const online = await cloud.databases.waitUntilOnline(db.id, { intervalMs: 1 });
    assert.is(online.port, 5432);
    assert.is(online.user, 'akmadmin');
    assert.ok(online.password);
    assert.match(online.privateHost ?? '', /^private-/);
    assert.equal(
      (await cloud.databases.list({ buildId: 'b5' })).map((d) => d.id),
      [db.id],
    );
    assert.equal(await cloud.databases.list({ buildId: 'b' }), [], 'builds compared exactly');
    await rejects(cloud.databases.get('123'), 'BAD_ID');
    // A 500 after the database was made: found by its label, not made twice.
    fake.fail({ match: 'POST /databases/mysql/instances', status: 500, afterHandling: true });
    const made = await cloud.databases.create({ name: 'adt-b6-db', buildId: 'b6', engine: 'mysql', allow: ['198.18.4.0/24'] });
    assert.match(made.id, /^mysql\/\d+$/);
    assert.is([...fake.state.databases.values()].filter((d) => d.label === 'adt-b6-db').length, 1);
    await cloud.databases.destroy(made.id);
    await cloud.databases.destroy(db.id);
    assert.is(fake.state.databases.size, 0);
  }));

test('a rate limit is waited out for the time Retry-After asks; an image is made from the boot disk', () =>
  withFake(async (fake, baseUrl) => {
    const retries: number[] = [];
    const cloud = linodeDriver({
      token: TOKEN,
      baseUrl,
      region: 'eu-west',
      size: 'g6-nanode-1',
      baseDelayMs: 5,
      maxDelayMs: 5_000,
      onRetry: (i) => retries.push(i.delayMs),
    });
    fake.fail({ match: 'GET /linode/instances', ...linodeRateLimit(1) });
    assert.equal(await cloud.list(), []);
    assert.equal(retries, [1000]);
    assert.equal(
      fake.log.map((l) => l.status),
      [429, 200],
    );
    const s = await cloud.create({ name: 'ws-b8-abcd', role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n' });
    assert.match(await cloud.snapshot(s.id, 'adt-b8-webserver', { intervalMs: 1 }), /^private\/\d+$/);
    const image = fake.log.find((l) => l.method === 'POST' && l.path === '/images')!.body as { disk_id: number; label: string };
    assert.is(image.disk_id, Number(s.id) * 10, 'the boot disk, not the swap');
    assert.is(image.label, 'adt-b8-webserver');
  }));

// A prepared image as `fleet/images.ts` finds it: by its exact label, the newest of several, only once available.
test('findImage: the newest available private image of that label (X-Filter, all pages), none while creating; create takes its id', () =>
  withFake(async (fake, baseUrl) => {
    const sent: { method: string; url: string; headers: Headers }[] = [];
    const cloud = linodeDriver({
      token: TOKEN,
      baseUrl,
      region: 'eu-west',
      size: 'g6-nanode-1',
      baseDelayMs: 5,
      pageSize: 25,
      fetch: recordingFetch(sent),
    });
    const s = await cloud.create({ name: 'ws-b8-abcd', role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n' });
    assert.is(await cloud.findImage('adt-webserver-0a1b2c3d4e5f'), null, 'none yet');
    const first = await cloud.snapshot(s.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 });
    await cloud.snapshot(s.id, 'adt-database-0a1b2c3d4e5f', { intervalMs: 1 });
    const second = await cloud.snapshot(s.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 });
    assert.is.not(second, first);
    // `created` is to the second: of two made in it, the larger id is the newer.
    assert.equal(await cloud.findImage('adt-webserver-0a1b2c3d4e5f'), { id: second, name: 'adt-webserver-0a1b2c3d4e5f' }, 'the newest');
    const lists = sent.filter((r) => r.method === 'GET' && new URL(r.url).pathname.endsWith('/images'));
    assert.ok(lists.length > 0);
    for (const r of lists) assert.is(r.headers.get('x-filter'), JSON.stringify({ label: 'adt-webserver-0a1b2c3d4e5f', is_public: false }));
    assert.is(await cloud.findImage('adt-webserver'), null, 'a prefix is no match');

    // One still `creating` is not found; once `available` it is.
    const made = await cloud.api.post<{ id: string; status: string }>('/images', { disk_id: Number(s.id) * 10, label: 'adt-auth-0a1b' });
    assert.is(made.status, 'creating');
    assert.is(await cloud.findImage('adt-auth-0a1b'), null, 'creating');
    let status = made.status;
    for (let i = 0; i < 5 && status !== 'available'; i++) status = (await cloud.api.get<{ status: string }>(`/images/${made.id}`)).status;
    assert.is(status, 'available');
    assert.equal(await cloud.findImage('adt-auth-0a1b'), { id: made.id, name: 'adt-auth-0a1b' });

    // More than a page of that label: all pages are read, the newest is on the last.
    for (let i = 0; i < 30; i++)
      fake.state.images.set(`private/${9000 + i}`, {
        id: `private/${9000 + i}`,
        label: 'adt-many',
        status: 'available',
        polls: 0,
        created: `2026-01-01T00:00:${String(i).padStart(2, '0')}`,
      });
    assert.equal(await cloud.findImage('adt-many'), { id: 'private/9029', name: 'adt-many' });
    assert.ok(sent.some((r) => new URL(r.url).searchParams.get('page') === '2' && new URL(r.url).pathname.endsWith('/images')));

    // A name longer than a label can be is found as `snapshot` labelled it (its first 50 characters).
    const long = `adt-webserver-${'f'.repeat(60)}`;
    const cut = await cloud.snapshot(s.id, long, { intervalMs: 1 });
    assert.is((await cloud.findImage(long))?.id, cut);

    const found = (await cloud.findImage('adt-webserver-0a1b2c3d4e5f'))!;
    await cloud.create({ name: 'ws-b8-ef01', role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n', image: found.id });
    const post = fake.log.filter((l) => l.method === 'POST' && l.path === '/linode/instances').at(-1)!.body as { image: unknown };
    assert.is(post.image, found.id, 'private/<n>, as it is');
    assert.match(found.id, /^private\/\d+$/);
  }));

test("a wrong token is refused with the provider's message, not retried, not echoed; field errors are quoted; no secret in messages", () =>
  withFake(async (fake, baseUrl) => {
    const bad = linodeDriver({ token: 'wrong-token-xyz', baseUrl, region: 'eu-west', size: 'g6-nanode-1', baseDelayMs: 5 });
    const e = await rejects(bad.list(), { code: 'UNAUTHORIZED', message: /HTTP 401: Invalid Token/ });
    assert.not.ok(e.message.includes('wrong-token-xyz'));
    assert.is(fake.log.length, 1);
    const cloud = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-nanode-1', baseDelayMs: 5 });
    await cloud.create({ name: 'ws-b9-abcd', role: 'webserver', buildId: 'b9', userData: '#!/bin/sh\necho s3cr3t-user-data\n' });
    const dup = await rejects(
      cloud.create({ name: 'ws-b9-abcd', role: 'webserver', buildId: 'b9', userData: '#!/bin/sh\necho s3cr3t-user-data\n' }),
      { message: /HTTP 400: label: Label must be unique among your Linodes/, exitCode: 2 },
    );
    const rootPass = String(
      (fake.log.find((l) => l.method === 'POST' && l.path === '/linode/instances')!.body as { root_pass: string }).root_pass,
    );
    for (const secret of [TOKEN, rootPass, 's3cr3t', Buffer.from('#!/bin/sh\necho s3cr3t-user-data\n').toString('base64')])
      assert.not.ok(dup.message.includes(secret));
    assert.throws(() => linodeDriver({ token: '', region: 'eu-west' }), /LINODE_TOKEN/);
  }));

test.run();
