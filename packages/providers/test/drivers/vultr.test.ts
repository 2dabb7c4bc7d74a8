/**
 * Vultr drivers against the fake API (always) and the real API when VULTR_API_KEY and
 * VULTR_TEST_ZONE are set (it creates and destroys real, billed resources).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import vultrDriver, { ruleSource, VultrDns } from '../../src/drivers/vultr.ts';
import { vultrFake, vultrRateLimit } from '../../src/fakes/vultr.ts';
import { cloudConformance } from './_cloud-conformance.ts';
import { freshKeyPair, TEST_KEY } from './_keys.ts';

const KEY = 'vultr-test-key-5d20c3';

cloudConformance({
  title: 'vultr drivers (fake API)',
  createPath: 'POST /instances',
  listPath: 'GET /instances',
  keyPath: 'POST /ssh-keys',
  pageSize: 2,
  setup: async () => {
    const fake = vultrFake({ apiKey: KEY });
    const baseUrl = await fake.listen();
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'lhr', size: 'vc2-1c-2gb', perPage: 2, baseDelayMs: 5, maxDelayMs: 50 });
    const zone = 'example.com';
    return {
      compute: cloud,
      firewall: cloud.firewall,
      dns: cloud.dns(zone),
      databases: cloud.databases,
      zone,
      fake,
      rateLimited: vultrRateLimit(),
      secret: KEY,
      installedKeys: (id) => fake.state.instances.get(id)!.sshKeyIds.map((k) => fake.state.sshKeys.get(k)!.ssh_key),
      close: () => fake.close(),
    };
  },
});

const realKey = process.env.VULTR_API_KEY;
const realZone = process.env.VULTR_TEST_ZONE;
cloudConformance({
  title: 'vultr drivers (real API)',
  createPath: 'POST /instances',
  listPath: 'GET /instances',
  keyPath: 'POST /ssh-keys',
  waitMs: 600_000,
  intervalMs: 5_000,
  skip: !realKey || !realZone ? 'set VULTR_API_KEY and VULTR_TEST_ZONE to run it against the real API (creates billed resources)' : false,
  setup: async () => {
    if (!realKey || !realZone) throw new Error('unreachable');
    const cloud = vultrDriver({ apiKey: realKey, region: process.env.VULTR_TEST_REGION ?? 'lhr', size: 'vc2-1c-1gb' });
    return {
      compute: cloud,
      firewall: cloud.firewall,
      dns: cloud.dns(realZone),
      databases: cloud.databases,
      zone: realZone,
      secret: realKey,
      close: async () => {},
    };
  },
});

// ---

const test = suite('vultr specifics (fake API)');

async function withFake(
  run: (fake: ReturnType<typeof vultrFake>, baseUrl: string) => Promise<void>,
  options: Parameters<typeof vultrFake>[0] = {},
): Promise<void> {
  const fake = vultrFake({ apiKey: KEY, ...options });
  const baseUrl = await fake.listen();
  try {
    await run(fake, baseUrl);
  } finally {
    await fake.close();
  }
}

const bodies = (fake: ReturnType<typeof vultrFake>, method: string, path: string | RegExp) =>
  fake.log
    .filter((l) => l.method === method && (typeof path === 'string' ? l.path === path : path.test(l.path)))
    .map((l) => l.body as Record<string, unknown>);

test("an instance is made as documented: base64 user-data, Debian 12, tags, VPC, its role's firewall group, a snapshot image", async () => {
  await withFake(async (fake, baseUrl) => {
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'ams', size: 'vc2-1c-2gb', baseDelayMs: 5 });
    const first = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\necho hi\n' });
    const post = bodies(fake, 'POST', '/instances')[0]!;
    assert.equal(post.tags, ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver']);
    assert.is(Buffer.from(String(post.user_data), 'base64').toString(), '#!/bin/sh\necho hi\n');
    assert.is(post.os_id, 2136);
    assert.is(post.region, 'ams');
    assert.is(post.plan, 'vc2-1c-2gb');
    assert.is(post.label, 'ws-b7-1234');
    assert.is(post.hostname, 'ws-b7-1234');
    assert.is(post.enable_vpc, true);
    assert.is(post.attach_vpc, undefined);
    assert.is(post.firewall_group_id, undefined, 'no group yet');
    assert.is(first.publicIp, null, 'main_ip 0.0.0.0 is no address');
    assert.is(first.state, 'creating');
    // The password Vultr returns on create is never part of what the driver hands back.
    assert.not.ok(JSON.stringify(first).includes(fake.state.instances.get(first.id)!.default_password));

    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'] }]);
    const group = [...fake.state.groups.values()][0]!;
    await rejects(
      cloud.create({ name: 'ws-b7-5678', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', vpc: 'vpc-9', image: 'snap-1' }),
      /HTTP 400: Invalid snapshot_id/,
      'unknown snapshot',
    );
    const s = await cloud.create({ name: 'ws-b7-5678', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', vpc: 'vpc-9' });
    const second = bodies(fake, 'POST', '/instances').at(-1)!;
    assert.equal(second.attach_vpc, ['vpc-9']);
    assert.is(second.enable_vpc, undefined, 'attach_vpc or enable_vpc, never both');
    assert.is(second.firewall_group_id, group.id, "created in the role's group");
    const running = await cloud.waitUntilRunning(s.id, { intervalMs: 1 });
    assert.is(running.state, 'running');
    assert.match(running.publicIp ?? '', /^198\.51\.100\.\d+$/);
    assert.match(running.privateIp ?? '', /^198\.18\.130\.\d+$/, 'the VPC address from /instances/{id}/vpcs');
    const snap = await cloud.snapshot(s.id, 'adt-b7-webserver', { intervalMs: 1 });
    assert.equal(bodies(fake, 'POST', '/snapshots'), [{ instance_id: s.id, description: 'adt-b7-webserver' }]);
    await cloud.create({ name: 'ws-b7-9abc', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: snap });
    const third = bodies(fake, 'POST', '/instances').at(-1)!;
    assert.is(third.snapshot_id, snap);
    assert.is(third.os_id, undefined, 'snapshot_id instead of os_id');
  });
});

// A prepared image as `fleet/images.ts` finds it: by its exact description, the newest of several, only once complete.
test('findImage: the newest complete snapshot of that description (all pages), not pending or deleted; create: snapshot_id', async () => {
  await withFake(async (fake, baseUrl) => {
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'ams', size: 'vc2-1c-2gb', perPage: 2, baseDelayMs: 5 });
    const s = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    assert.is(await cloud.findImage('adt-webserver-0a1b2c3d4e5f'), null, 'none yet');
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      made.push(await cloud.snapshot(s.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 }));
      await new Promise((r) => setTimeout(r, 2));
    }
    await cloud.snapshot(s.id, 'adt-database-0a1b2c3d4e5f', { intervalMs: 1 });
    assert.equal(await cloud.findImage('adt-webserver-0a1b2c3d4e5f'), { id: made[2]!, name: 'adt-webserver-0a1b2c3d4e5f' }, 'the newest');
    const lists = fake.log.filter((l) => l.method === 'GET' && l.path === '/snapshots').map((l) => new URLSearchParams(l.query));
    assert.ok(
      lists.some((q) => q.get('description') === 'adt-webserver-0a1b2c3d4e5f' && q.get('cursor')),
      'read to the last page',
    );
    assert.is(await cloud.findImage('adt-webserver'), null, 'a prefix is no match');

    // One still `pending` is not found; once `complete` it is; one `deleted` is not.
    const r = await cloud.api.post<{ snapshot: { id: string; status: string } }>('/snapshots', {
      instance_id: s.id,
      description: 'adt-auth-0a1b',
    });
    assert.is(r.snapshot.status, 'pending');
    assert.is(await cloud.findImage('adt-auth-0a1b'), null, 'pending');
    let status = r.snapshot.status;
    for (let i = 0; i < 5 && status !== 'complete'; i++)
      status = (await cloud.api.get<{ snapshot: { status: string } }>(`/snapshots/${r.snapshot.id}`)).snapshot.status;
    assert.is(status, 'complete');
    assert.equal(await cloud.findImage('adt-auth-0a1b'), { id: r.snapshot.id, name: 'adt-auth-0a1b' });
    fake.state.snapshots.get(r.snapshot.id)!.status = 'deleted';
    assert.is(await cloud.findImage('adt-auth-0a1b'), null, 'deleted');

    const found = (await cloud.findImage('adt-webserver-0a1b2c3d4e5f'))!;
    await cloud.create({ name: 'ws-b7-9abc', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: found.id });
    const post = bodies(fake, 'POST', '/instances').at(-1)!;
    assert.is(post.snapshot_id, found.id);
    assert.is(post.os_id, undefined, 'snapshot_id instead of os_id');
  });
});

test('SSH keys: found in the paged list (by name or key), registered once, given by id after the option ids', async () => {
  await withFake(async (fake, baseUrl) => {
    // Keys a person registered under names of theirs (more than a page of them): found by the key itself.
    const own = freshKeyPair('laptop');
    for (let i = 0; i < 3; i++)
      fake.state.sshKeys.set(`k${i}`, { id: `k${i}`, date_created: '', name: `n${i}`, ssh_key: freshKeyPair().publicKey });
    fake.state.sshKeys.set('mine', { id: 'mine', date_created: '', name: 'laptop', ssh_key: own.publicKey.replace(/laptop$/, 'x') });
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'ams', size: 'vc2-1c-2gb', baseDelayMs: 5, perPage: 2, sshKeyIds: ['k0'] });
    const base = { role: 'webserver', buildId: 'b6', userData: '#!/bin/sh\n' } as const;
    const a = await cloud.create({ ...base, name: 'ws-b6-aaaa', sshKeys: [TEST_KEY.line, own.publicKey] });
    const made = [...fake.state.sshKeys.values()].find((k) => k.ssh_key === TEST_KEY.line)!;
    assert.match(made.name, /^adt-[0-9a-f]{12}$/);
    assert.equal(bodies(fake, 'POST', '/ssh-keys'), [{ name: made.name, ssh_key: TEST_KEY.line }], 'only the new key');
    assert.equal(bodies(fake, 'POST', '/instances').at(-1)!.sshkey_id, ['k0', made.id, 'mine']);
    assert.equal(fake.state.instances.get(a.id)!.sshKeyIds, ['k0', made.id, 'mine']);
    assert.ok(fake.log.filter((l) => l.path === '/ssh-keys' && l.method === 'GET').length > 1, 'every page of keys read');

    // Registered meanwhile (Vultr's 400 for a key it has): looked up again, not fatal; an unknown outcome too.
    const other = freshKeyPair();
    fake.fail({ match: 'POST /ssh-keys', status: 400, afterHandling: true, body: fake.options.errorBody(400, 'SSH key already exists.') });
    const b = await cloud.create({ ...base, name: 'ws-b6-bbbb', sshKeys: [other.publicKey] });
    const third = freshKeyPair();
    fake.fail({ match: 'POST /ssh-keys', status: 500, afterHandling: true });
    await cloud.create({ ...base, name: 'ws-b6-cccc', sshKeys: [third.publicKey] });
    assert.is(fake.state.sshKeys.size, 7, 'each key once');
    assert.is(fake.state.instances.get(b.id)!.sshKeyIds.length, 2);
    // An id the account does not have (the option's ids are sent as they are): Vultr's 400, quoted.
    const stale = vultrDriver({ apiKey: KEY, baseUrl, region: 'ams', size: 'vc2-1c-2gb', baseDelayMs: 5, sshKeyIds: ['gone'] });
    await rejects(stale.create({ ...base, name: 'ws-b6-dddd' }), { exitCode: 2, message: /HTTP 400: Invalid SSH key id/ });
    // Without keys the instance body has no sshkey_id, as before.
    const plain = vultrDriver({ apiKey: KEY, baseUrl, region: 'ams', size: 'vc2-1c-2gb', baseDelayMs: 5 });
    const lists = fake.log.filter((l) => l.path === '/ssh-keys').length;
    await plain.create({ ...base, name: 'ws-b6-eeee' });
    assert.is(bodies(fake, 'POST', '/instances').at(-1)!.sshkey_id, undefined);
    assert.is(fake.log.filter((l) => l.path === '/ssh-keys').length, lists, 'no key call without keys');
  });
});

test("the role's firewall group: from:to ranges, v4 and v6, add before delete, existing instances moved in, removed", async () => {
  await withFake(async (fake, baseUrl) => {
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'lhr', size: 's', baseDelayMs: 5 });
    const web = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    const db = await cloud.create({ name: 'db-b7-1234', role: 'database', buildId: 'b7', userData: '#!/bin/sh\n' });
    await cloud.firewall.apply('b7', 'webserver', [
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'], description: 'HTTPS' },
      { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1', '198.51.100.77/24'] },
      { protocol: 'icmp', sources: [] },
    ]);
    assert.equal(bodies(fake, 'POST', '/firewalls'), [{ description: 'adt-b7-webserver' }]);
    const group = [...fake.state.groups.values()][0]!;
    assert.equal(bodies(fake, 'POST', /^\/firewalls\/[^/]+\/rules$/), [
      { ip_type: 'v4', protocol: 'tcp', port: '443', subnet: '0.0.0.0', subnet_size: 0, notes: 'HTTPS' },
      { ip_type: 'v6', protocol: 'tcp', port: '443', subnet: '::', subnet_size: 0, notes: 'HTTPS' },
      { ip_type: 'v4', protocol: 'tcp', port: '8000:8010', subnet: '198.51.100.1', subnet_size: 32 },
      { ip_type: 'v4', protocol: 'tcp', port: '8000:8010', subnet: '198.51.100.0', subnet_size: 24 },
      { ip_type: 'v4', protocol: 'icmp', subnet: '0.0.0.0', subnet_size: 0 },
      { ip_type: 'v6', protocol: 'icmp', subnet: '::', subnet_size: 0 },
    ]);
    assert.equal(
      bodies(fake, 'PATCH', `/instances/${web.id}`),
      [{ firewall_group_id: group.id }],
      'the existing webserver moved into the group',
    );
    assert.is(fake.state.instances.get(db.id)!.firewall_group_id, '', 'the database server is not the webserver role');
    const got = await cloud.firewall.get('b7', 'webserver');
    assert.equal(
      got?.find((r) => r.port === 443),
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'], description: 'HTTPS' },
    );
    assert.equal(got?.find((r) => Array.isArray(r.port))?.port, [8000, 8010]);

    // Applying the same rules again changes nothing.
    fake.log.length = 0;
    await cloud.firewall.apply('b7', 'webserver', [
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'], description: 'HTTPS' },
      { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1/32', '198.51.100.0/24'] },
      { protocol: 'icmp', sources: [] },
    ]);
    assert.equal(
      fake.log.filter((l) => l.method !== 'GET'),
      [],
      'nothing written',
    );

    // Replacing: the new rule is added before the old ones go.
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['2001:DB8:0:0::7/64'] }]);
    const writes = fake.log.filter((l) => l.method !== 'GET').map((l) => l.method);
    assert.equal(writes, ['POST', 'DELETE', 'DELETE', 'DELETE', 'DELETE', 'DELETE', 'DELETE']);
    assert.equal(
      group.rules.map((r) => `${r.ip_type} ${r.protocol} ${r.port} ${r.subnet}/${r.subnet_size}`),
      ['v6 tcp 443 2001:db8::/64'],
    );

    await cloud.firewall.remove('b7', 'webserver');
    assert.is(fake.state.groups.size, 0);
    assert.is(await cloud.firewall.get('b7', 'webserver'), null);
  });
});

test('a group at its rule limit: as many rules added first as fit, the rest after the extra ones went; too many is refused', async () => {
  await withFake(
    async (fake, baseUrl) => {
      const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'lhr', size: 's', baseDelayMs: 5 });
      const rules = (prefix: string, count: number) => [
        { protocol: 'tcp' as const, port: 22, sources: Array.from({ length: count }, (_v, i) => `${prefix}.${i + 1}`) },
      ];
      await cloud.firewall.apply('b7', 'database', rules('198.51.100', 3));
      fake.log.length = 0;
      await cloud.firewall.apply('b7', 'database', rules('203.0.113', 3));
      assert.equal(
        fake.log.filter((l) => l.method !== 'GET').map((l) => `${l.method} ${l.status}`),
        ['POST 201', 'DELETE 204', 'DELETE 204', 'DELETE 204', 'POST 201', 'POST 201'],
      );
      assert.equal((await cloud.firewall.get('b7', 'database'))?.[0]?.sources, ['203.0.113.1/32', '203.0.113.2/32', '203.0.113.3/32']);
      const before = fake.log.length;
      await rejects(cloud.firewall.apply('b7', 'database', rules('198.18.0', 5)), { exitCode: 2, message: /at most 4/ });
      assert.is(fake.log.slice(before).filter((l) => l.method !== 'GET').length, 0, 'nothing changed');
    },
    { maxRuleCount: 4 },
  );
});

test('creates that fail with 5xx after the work was done are found, never repeated: rule, group, record, snapshot, database', async () => {
  await withFake(async (fake, baseUrl) => {
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'lhr', size: 's', baseDelayMs: 5 });
    fake.fail({ match: 'POST /firewalls', status: 500, afterHandling: true });
    fake.fail({ match: 'POST /firewalls/', status: 502, afterHandling: true });
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['198.51.100.1', '198.51.100.2'] }]);
    assert.is(fake.state.groups.size, 1);
    assert.equal(
      [...fake.state.groups.values()][0]!.rules.map((r) => r.subnet),
      ['198.51.100.1', '198.51.100.2'],
    );

    const dns = new VultrDns({ apiKey: KEY, baseUrl, zone: 'example.com', baseDelayMs: 5 });
    fake.fail({ match: 'POST /domains', status: 500, afterHandling: true, times: 2 });
    await dns.ensureZone('example.com');
    await dns.addA('www.example.com', '198.51.100.4');
    assert.is(fake.state.domains.get('example.com')!.length, 1);

    const s = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    fake.fail({ match: 'POST /snapshots', status: 503, afterHandling: true });
    const snap = await cloud.snapshot(s.id, 'adt-b7-image', { intervalMs: 1 });
    assert.is(fake.state.snapshots.size, 1);
    assert.ok(fake.state.snapshots.has(snap));

    fake.fail({ match: 'POST /databases', status: 500, afterHandling: true });
    const db = await cloud.databases.create({ name: 'adt-b7-db', buildId: 'b7', engine: 'mysql', allow: ['198.18.128.0/20'] });
    assert.is(fake.state.databases.size, 1);
    assert.equal(await cloud.databases.getAllowList(db.id), ['198.18.128.0/20']);

    // A 500 before anything was done is reported, with its outcome unknown.
    fake.fail({ match: 'POST /domains/example.com/records', status: 500 });
    await rejects(dns.addA('www.example.com', '198.51.100.5'), /HTTP 500.*may or may not/);
  });
});

test("DNS records: relative names, '' for the apex, the TTL asked for; a second zone create is not attempted", async () => {
  await withFake(async (fake, baseUrl) => {
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'lhr', size: 's', baseDelayMs: 5 });
    const dns = cloud.dns('Example.com.', 120);
    await dns.ensureZone('example.com.');
    await dns.ensureZone('example.com');
    assert.equal(bodies(fake, 'POST', '/domains'), [{ domain: 'example.com' }]);
    await dns.addA('www.example.com', '198.51.100.4');
    await dns.addA('example.com', '198.51.100.5', 300);
    assert.equal(bodies(fake, 'POST', '/domains/example.com/records'), [
      { name: 'www', type: 'A', data: '198.51.100.4', ttl: 120 },
      { name: '', type: 'A', data: '198.51.100.5', ttl: 300 },
    ]);
    assert.equal(await dns.listA('example.com'), [{ name: 'example.com', type: 'A', content: '198.51.100.5', ttl: 300 }]);
  });
});

test('managed databases: documented create body, trusted IPs set on a second create, bad lists send nothing, pg + VPC hosts', async () => {
  await withFake(async (fake, baseUrl) => {
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'fra', size: 's', baseDelayMs: 5 });
    const db = await cloud.databases.create({
      name: 'adt-b7-db',
      buildId: 'b7',
      engine: 'postgres',
      vpc: 'vpc-3',
      allow: ['198.18.128.0/20'],
    });
    assert.equal(bodies(fake, 'POST', '/databases'), [
      {
        database_engine: 'pg',
        database_engine_version: '16',
        region: 'fra',
        plan: 'vultr-dbaas-hobbyist-cc-1-25-1',
        label: 'adt-b7-db',
        tag: 'adt-build-b7',
        vpc_id: 'vpc-3',
        trusted_ips: ['198.18.128.0/20'],
      },
    ]);
    assert.is(db.state, 'creating');
    const online = await cloud.databases.waitUntilOnline(db.id, { intervalMs: 1 });
    assert.is(online.engine, 'postgres');
    assert.match(online.host ?? '', /^public-/, 'the public host of a cluster in a VPC');
    assert.match(online.privateHost ?? '', /^vultr-prod-/, 'its private host');
    assert.is(online.port, 16751);
    assert.is(online.database, 'defaultdb');
    const again = await cloud.databases.create({ name: 'adt-b7-db', buildId: 'b7', engine: 'postgres', allow: ['198.18.128.9'] });
    assert.is(again.id, db.id);
    assert.equal(bodies(fake, 'PUT', `/databases/${db.id}`), [{ trusted_ips: ['198.18.128.9'] }]);
    assert.equal(await cloud.databases.getAllowList(db.id), ['198.18.128.9/32'], 'Vultr keeps CIDRs');
    const before = fake.log.length;
    for (const allow of [['0.0.0.0/0'], [], ['198.0.0.0/4']]) {
      await rejects(cloud.databases.setAllowList(db.id, allow), { exitCode: 2 });
    }
    assert.is(fake.log.length, before, 'nothing sent');
    assert.equal(
      (await cloud.databases.list()).map((d) => d.buildId),
      ['b7'],
    );
    assert.is(fake.log.at(-1)!.query, '', 'the database list is not paginated: no per_page or cursor');
  });
});

test("a 429 with no wait header is backed off and retried; a bad key is refused with Vultr's message, not retried or echoed", async () => {
  await withFake(async (fake, baseUrl) => {
    const retries: { status: number | null; delayMs: number }[] = [];
    const cloud = vultrDriver({
      apiKey: KEY,
      baseUrl,
      region: 'lhr',
      size: 's',
      baseDelayMs: 5,
      maxDelayMs: 50,
      onRetry: (i) => retries.push({ status: i.status, delayMs: i.delayMs }),
    });
    fake.fail({ match: 'GET /instances', ...vultrRateLimit(), times: 2 });
    assert.equal(await cloud.list(), []);
    assert.equal(
      retries.map((r) => r.status),
      [429, 429],
    );
    assert.ok(
      retries.every((r) => r.delayMs <= 50),
      'backoff capped by maxDelayMs',
    );
    const bad = vultrDriver({ apiKey: 'wrong-key-xyz', baseUrl, region: 'lhr', size: 's', baseDelayMs: 5 });
    const before = fake.log.length;
    const e = await rejects(bad.list(), { code: 'UNAUTHORIZED', message: /HTTP 401: Invalid API token\./ });
    assert.not.ok(e.message.includes('wrong-key-xyz'));
    assert.is(fake.log.length - before, 1, 'one request, not retried');
  });
});

test('rule sources are written as Vultr keeps them: network address, prefix, short IPv6', () => {
  assert.equal(ruleSource('198.51.100.7'), { ip_type: 'v4', subnet: '198.51.100.7', subnet_size: 32 });
  assert.equal(ruleSource('198.51.100.7/24'), { ip_type: 'v4', subnet: '198.51.100.0', subnet_size: 24 });
  assert.equal(ruleSource('0.0.0.0/0'), { ip_type: 'v4', subnet: '0.0.0.0', subnet_size: 0 });
  assert.equal(ruleSource('2001:0DB8:0000:0000:0000:0000:0000:0001'), { ip_type: 'v6', subnet: '2001:db8::1', subnet_size: 128 });
  assert.equal(ruleSource('2001:db8:1:2:3::/48'), { ip_type: 'v6', subnet: '2001:db8:1::', subnet_size: 48 });
  assert.equal(ruleSource('::/0'), { ip_type: 'v6', subnet: '::', subnet_size: 0 });
  assert.throws(() => ruleSource('1:2:3'), /not an IPv6 address/);
});

test.run();
