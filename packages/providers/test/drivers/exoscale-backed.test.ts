/**
 * The Exoscale driver against the Exoscale fake backed by a cloud (`backing` option): instances
 * are the backing's servers with its addresses (the private one as the lease of the managed
 * private network), security groups its native firewalls of build roles, domains its zones,
 * snapshots and templates its images. The backing here is the memory compute (a first GET of a
 * new server answers `creating`) with snapshots of stopped servers (as the local cloud takes them;
 * `snapshots: false` for a backing without), the memory native firewall and a record of the zones,
 * each call kept for the assertions.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import exoscaleDriver from '../../src/drivers/exoscale.ts';
import { EXOSCALE_FAKE_NETWORK, EXOSCALE_FAKE_TEMPLATES, exoscaleFake } from '../../src/fakes/exoscale.ts';
import { TEST_KEY } from './_keys.ts';
import type { Server } from '../../src/types.ts';
import { testBacking } from './_backing.ts';

const KEY = 'EXObacked0123';
const SECRET = 'exo-backed-secret-4e2f';

type Backing = ReturnType<typeof testBacking>;
type Fake = ReturnType<typeof exoscaleFake>;

async function withBackedFake<T>(run: (fake: Fake, baseUrl: string, b: Backing) => Promise<T>, b: Backing = testBacking()): Promise<T> {
  const fake = exoscaleFake({ apiKey: KEY, apiSecret: SECRET, backing: b.backing });
  const baseUrl = await fake.listen();
  try {
    return await run(fake, baseUrl, b);
  } finally {
    await fake.close();
  }
}

const driver = (baseUrl: string, o: { privateNetwork?: string; sshKey?: string } = { privateNetwork: EXOSCALE_FAKE_NETWORK }) =>
  exoscaleDriver({ apiKey: KEY, apiSecret: SECRET, baseUrl, baseDelayMs: 5, maxDelayMs: 20, operationIntervalMs: 1, ...o });

const test = suite('exoscale driver on a backed fake');

test('create: the backing gets the name, role, build, decoded user-data, stock image, keys and tags; the operation is polled', () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const userData = '#!/bin/sh\necho "hällo" > /tmp/x\n';
    const created = await cloud.create({ name: 'ws-b7-k3f9', role: 'webserver', buildId: 'b7', userData, sshKeys: [TEST_KEY.line] });
    assert.is(b.creates.length, 1);
    const c = b.creates[0]!;
    assert.is(c.name, 'ws-b7-k3f9');
    assert.is(c.role, 'webserver');
    assert.is(c.buildId, 'b7');
    assert.is(c.userData, userData, 'user-data decoded from base64');
    assert.is(c.image, 'debian-12-local', 'the Debian 12 template is the backing stock image');
    assert.equal(c.sshKeys, [TEST_KEY.line], 'the public key of the registered name');
    assert.equal(c.tags, ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver'], 'the label keys');
    assert.is(created.name, 'ws-b7-k3f9');
    // The driver reads the instance twice after its operation (the network check, then the answer):
    // the backing's first read is `creating`, its second the running server.
    assert.is(created.state, 'running');
    assert.is(created.publicIp, b.memory.servers.get('ws-b7-k3f9')!.publicIp);
    const instance = fake.state.instances.get(created.id)!;
    assert.is(instance.backing_id, 'ws-b7-k3f9');
    const post = fake.log.findIndex((l) => l.method === 'POST' && l.path === '/instance');
    assert.not.ok('backing_id' in (fake.log[post]!.body as object), 'sanity: the request has no backing id');
    assert.ok(
      fake.log.slice(post).some((l) => l.path.startsWith('/operation/') && l.status === 200),
      "the instance's operation was polled to its end",
    );
    assert.not.ok(
      fake.log.some((l) => l.path.endsWith(':attach')),
      'on the private network already: no attach',
    );
    const raw = await cloud.api.get<Record<string, unknown>>(`/instance/${created.id}`);
    assert.not.ok('backing_id' in raw || 'private_ip' in raw, 'internal fields are not answered');
    assert.equal(raw['private-networks'], [{ id: EXOSCALE_FAKE_NETWORK }]);
  }));

test("waitUntilRunning reports the backing's public address as public-ip and its private one as the network's lease", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const created = await cloud.create({ name: 'db-b7-aaaa', role: 'database', buildId: 'b7', userData: '#!/bin/sh\n' });
    const running = await cloud.waitUntilRunning(created.id, { intervalMs: 1, timeoutMs: 5_000 });
    const real = b.memory.servers.get('db-b7-aaaa')!;
    assert.match(real.publicIp!, /^198\.18\./);
    assert.match(real.privateIp!, /^198\.19\./);
    assert.is(running.state, 'running');
    assert.is(running.publicIp, real.publicIp);
    assert.is(running.privateIp, real.privateIp);
    const instance = await cloud.api.get<{ 'public-ip'?: string }>(`/instance/${created.id}`);
    assert.is(instance['public-ip'], real.publicIp);
    const net = await cloud.api.get<Record<string, unknown>>(`/private-network/${EXOSCALE_FAKE_NETWORK}`);
    assert.equal(net, {
      id: EXOSCALE_FAKE_NETWORK,
      name: 'local',
      description: "the local cloud's private network",
      'start-ip': '198.19.0.1',
      'end-ip': '198.19.255.254',
      netmask: '255.255.0.0',
      leases: [{ 'instance-id': created.id, ip: real.privateIp }],
    });
    // A driver without the privateNetwork option reads the lease too (the instance is attached).
    assert.is((await driver(baseUrl, {}).get(created.id))?.privateIp, real.privateIp);
    // An attach to it is answered as done; there is no other network.
    await cloud.api.put(`/private-network/${EXOSCALE_FAKE_NETWORK}:attach`, { instance: { id: created.id } });
    await rejects(
      cloud.api.put('/private-network/00000000-0000-4000-8000-000000000000:attach', { instance: { id: created.id } }),
      /HTTP 404: Private network not found/,
    );
    assert.is(fake.state.leases.length, 0, 'the leases are the servers, not kept');
  }));

test('list, get and destroy follow the backing; a server gone from it is an instance gone', () =>
  withBackedFake(async (_fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const base = { role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n' } as const;
    const one = await cloud.create({ ...base, name: 'ws-b8-1111' });
    const two = await cloud.create({ ...base, name: 'ws-b8-2222' });
    await cloud.create({ name: 'db-b9-3333', role: 'database', buildId: 'b9', userData: '#!/bin/sh\n' });
    const byName = (xs: Server[]) => xs.sort((x, y) => x.name.localeCompare(y.name));
    const listed = byName(await cloud.list({ buildId: 'b8', role: 'webserver' }));
    assert.equal(
      listed.map((s) => [s.name, s.state, s.publicIp, s.privateIp]),
      ['ws-b8-1111', 'ws-b8-2222'].map((n) => {
        const real = b.memory.servers.get(n)!;
        return [n, 'running', real.publicIp, real.privateIp];
      }),
    );
    assert.is((await cloud.get(one.id))?.publicIp, b.memory.servers.get('ws-b8-1111')!.publicIp);
    await cloud.destroy(one.id);
    assert.not.ok(b.memory.servers.has('ws-b8-1111'), 'the backing server is destroyed');
    assert.is(await cloud.get(one.id), null);
    await b.memory.destroy('ws-b8-2222');
    assert.is(await cloud.get(two.id), null, 'gone from the backing: 404');
    assert.equal(await cloud.list({ buildId: 'b8' }), []);
    assert.equal(
      (await cloud.list()).map((s) => s.name),
      ['db-b9-3333'],
    );
    b.memory.servers.get('db-b9-3333')!.state = 'stopped';
    assert.is((await cloud.list())[0]?.state, 'stopped', 'stopped, as the backing reports it');
  }));

test('what the backing cannot run is refused with a 400 that says so, and nothing is created', () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const raw = {
      'instance-type': { id: '21624abb-764e-4def-81d7-9fc54b5957fb' },
      template: { id: EXOSCALE_FAKE_TEMPLATES[0]!.id },
    };
    await rejects(
      cloud.api.post('/instance', { ...raw, name: 'my-own-box' }),
      /HTTP 400: name "my-own-box": the local cloud runs instances named/,
    );
    // A public template the backing has no image for.
    const ubuntu = '7c1e7e51-0fa0-46f2-b4f5-c3a5d0a6e4b5';
    fake.state.templates.set(ubuntu, { id: ubuntu, name: 'Linux Ubuntu 24.04 LTS 64-bit', visibility: 'public' });
    await rejects(
      cloud.create({
        name: 'ws-b7-aaaa',
        role: 'webserver',
        buildId: 'b7',
        userData: '#!/bin/sh\n',
        image: 'Linux Ubuntu 24.04 LTS 64-bit',
      }),
      /HTTP 400: template Linux Ubuntu 24.04 LTS 64-bit is not backed by the local cloud: it has Linux Debian 12 \(Bookworm\) 64-bit/,
    );
    assert.is(b.creates.length, 0);
    assert.is(fake.state.instances.size, 0);
    // The backing's own refusal: Exoscale's 400 with its message.
    fake.state.templates.set('8c1e7e51-0fa0-46f2-b4f5-c3a5d0a6e4b6', {
      id: '8c1e7e51-0fa0-46f2-b4f5-c3a5d0a6e4b6',
      name: 'stale',
      visibility: 'private',
    });
    fake.state.backingImages.set('8c1e7e51-0fa0-46f2-b4f5-c3a5d0a6e4b6', 'snap-gone');
    await rejects(cloud.create({ name: 'ws-b7-bbbb', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: 'stale' }), {
      exitCode: 2,
      message: /HTTP 400: the local cloud: image snap-gone not found/,
    });
    assert.is(fake.state.instances.size, 0);
    await rejects(
      cloud.databases.create({ name: 'adt-b7-db', buildId: 'b7', engine: 'mysql', allow: ['198.18.0.0/15'] }),
      /HTTP 400: managed databases are not backed by the local cloud yet/,
    );
    assert.is(fake.state.services.size, 0);
  }));

test('snapshots of a backing whose compute takes none are refused with a 400 that says so', () =>
  withBackedFake(
    async (fake, baseUrl, b) => {
      const cloud = driver(baseUrl);
      const s = await cloud.create({ name: 'ws-b7-cccc', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
      await rejects(
        cloud.snapshot(s.id, 'adt-webserver-0a1b', { intervalMs: 1 }),
        /HTTP 400: snapshots are not backed by the local cloud: its compute \(test-backing\) takes none/,
      );
      assert.is(fake.state.snapshots.size, 0);
      assert.is(b.creates.length, 1);
    },
    testBacking({ snapshots: false }),
  ));

// A prepared image as the toolkit makes one (`fleet/images.ts`): a builder powers off, its disk is snapshotted, servers boot from it.
test("a snapshot is the backing's snapshot of the instance's server; its template makes the backing's servers from that image", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const builder = await cloud.create({ name: 'bm-b7-1111', role: 'build', buildId: 'b7', userData: '#!/bin/sh\npoweroff\n' });
    await cloud.waitUntilRunning(builder.id, { intervalMs: 1, timeoutMs: 5_000 });
    // Still running: the backing refuses, and its message is Exoscale's 400.
    await rejects(cloud.snapshot(builder.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 }), {
      message: /HTTP 400: the local cloud: server bm-b7-1111 is running: the local cloud snapshots stopped servers only/,
    });
    assert.is(fake.state.snapshots.size, 0, 'nothing kept');
    b.memory.servers.get('bm-b7-1111')!.state = 'stopped';
    assert.is((await cloud.get(builder.id))?.state, 'stopped');

    const template = await cloud.snapshot(builder.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 });
    const [snap] = [...fake.state.snapshots.values()];
    assert.is(snap?.state, 'ready');
    assert.equal(b.snapshotCalls.at(-1), { id: 'bm-b7-1111', name: snap!.name }, "the instance's server, by the snapshot's name");
    assert.match(snap!.name, /^bm-b7-1111-\d{8}T\d{6}$/);
    assert.is(fake.state.backingImages.get(snap!.id), 'snap-1');
    assert.is(fake.state.backingImages.get(template), 'snap-1', 'the template stands for the same image');
    assert.is(fake.state.templates.get(template)?.name, 'adt-webserver-0a1b2c3d4e5f');

    // The builder goes; its template stays, and a webserver is made from it (by name, as the driver looks it up).
    await cloud.destroy(builder.id);
    const ws = await cloud.create({
      name: 'ws-b7-2222',
      role: 'webserver',
      buildId: 'b7',
      userData: '#!/bin/sh\n',
      image: 'adt-webserver-0a1b2c3d4e5f',
    });
    assert.is(b.creates.at(-1)?.image, 'snap-1', "the backing's image of the template");
    assert.equal(fake.state.instances.get(ws.id)?.template, { id: template });
    assert.is(b.memory.servers.get('ws-b7-2222')?.image, 'snap-1');

    // Deleted: forgotten (the backing's image stays), and no instance is made from it any more.
    await cloud.api.delete(`/template/${template}`);
    await cloud.api.delete(`/snapshot/${snap!.id}`);
    assert.is(fake.state.backingImages.size, 0);
    assert.ok(b.images.has('snap-1'), "the backing's image is not deleted (ComputeProvider has no image deletion)");
    await rejects(
      cloud.create({ name: 'ws-b7-3333', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: template }),
      /HTTP 400: Invalid template/,
    );
  }));

test("security groups are the backing's firewalls of build roles: each rule change applies the whole rule set", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const ws = await cloud.create({ name: 'ws-b7-1111', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    const db = await cloud.create({ name: 'db-b7-2222', role: 'database', buildId: 'b7', userData: '#!/bin/sh\n' });
    await cloud.firewall.apply('b7', 'webserver', [
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'] },
      { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1'], description: 'metrics' },
      { protocol: 'icmp', sources: [] },
    ]);
    const final = [
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'], description: 'adt' },
      { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1/32'], description: 'metrics' },
      { protocol: 'icmp', sources: ['0.0.0.0/0', '::/0'], description: 'adt' },
    ];
    assert.equal(
      b.firewallCalls.map((c) => [c.op, c.buildId, c.role, c.rules?.length]),
      [
        ['apply', 'b7', 'webserver', 0],
        ['apply', 'b7', 'webserver', 1],
        ['apply', 'b7', 'webserver', 2],
        ['apply', 'b7', 'webserver', 3],
        ['apply', 'b7', 'webserver', 3],
      ],
      'made with no rules, then the whole set after each added rule (icmpv6 merged into icmp)',
    );
    assert.equal(b.firewallCalls.at(-1)?.rules, final);
    assert.equal(await b.nativeFirewall.get('b7', 'webserver'), final);
    const group = [...fake.state.groups.values()][0]!;
    assert.is(group.name, 'adt-b7-webserver');
    assert.equal(fake.state.instances.get(ws.id)!['security-groups'], [{ id: group.id }], 'the webserver attached');

    // A rule removed: the rest applied again.
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'] }]);
    assert.equal(await b.nativeFirewall.get('b7', 'webserver'), [
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'], description: 'adt' },
    ]);
    assert.equal(await cloud.firewall.get('b7', 'webserver'), [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'] }]);

    // Another role's group: the database may not join the webservers', nor a webserver be made outside its own.
    await rejects(
      cloud.api.put(`/security-group/${group.id}:attach`, { instance: { id: db.id } }),
      /HTTP 400: instance db-b7-2222 may join the security group of its own build role only/,
    );
    const raw = {
      'instance-type': { id: '21624abb-764e-4def-81d7-9fc54b5957fb' },
      template: { id: EXOSCALE_FAKE_TEMPLATES[0]!.id },
      labels: { adt: '1' },
    };
    await rejects(
      cloud.api.post('/instance', { ...raw, name: 'ws-b7-3333' }),
      /HTTP 400: the local cloud's firewall adt-b7-webserver covers every webserver server of build b7: create the instance in security/,
    );
    await rejects(
      cloud.api.post('/instance', { ...raw, name: 'db-b7-4444', 'security-groups': [{ id: group.id }] }),
      /HTTP 400: security group adt-b7-webserver is not that of database servers of build b7/,
    );
    const next = await cloud.create({ name: 'ws-b7-5555', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    assert.equal(fake.state.instances.get(next.id)!['security-groups'], [{ id: group.id }], 'a new one is created in the group');

    // Removed: the instances detached, the group deleted, the backing's firewall removed.
    await cloud.firewall.remove('b7', 'webserver');
    assert.equal(b.firewallCalls.at(-1), { op: 'remove', buildId: 'b7', role: 'webserver' });
    assert.is(await b.nativeFirewall.get('b7', 'webserver'), null);
    assert.is(fake.state.groups.size, 0);
  }));

test('security groups and rules the backing cannot hold are refused: other names, egress, other protocols, group sources', () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    await rejects(
      cloud.api.post('/security-group', { name: 'office' }),
      /HTTP 400: security group "office" is not backed by the local cloud: its firewalls are a build role's, named adt-<build>-<role>/,
    );
    await cloud.firewall.apply('b7', 'database', []);
    const g = [...fake.state.groups.values()][0]!;
    const rule = { 'flow-direction': 'ingress', protocol: 'tcp', 'start-port': 3306, 'end-port': 3306, network: '198.19.0.0/16' };
    await rejects(
      cloud.api.post(`/security-group/${g.id}/rules`, { ...rule, 'flow-direction': 'egress' }),
      /HTTP 400: egress rules are not backed by the local cloud/,
    );
    await rejects(
      cloud.api.post(`/security-group/${g.id}/rules`, { 'flow-direction': 'ingress', protocol: 'gre', network: '198.19.0.0/16' }),
      /HTTP 400: protocol gre is not backed by the local cloud/,
    );
    await rejects(
      cloud.api.post(`/security-group/${g.id}/rules`, { ...rule, network: undefined, 'security-group': { id: g.id } }),
      /HTTP 400: a rule whose source is a security group is not backed/,
    );
    await rejects(
      cloud.api.post(`/security-group/${g.id}/rules`, {
        'flow-direction': 'ingress',
        protocol: 'icmp',
        network: '0.0.0.0/0',
        icmp: { type: 8, code: 0 },
      }),
      /HTTP 400: an icmp rule of type 8 code 0 is not backed/,
    );
    assert.is(g.rules.length, 0);
    assert.equal(
      b.firewallCalls.map((c) => c.op),
      ['apply'],
      'only the group made',
    );
  }));

test('DNS: the zone and every change of its records reach the backing as FQDN records; a deleted domain is removed', () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const dns = cloud.dns('example.com', 30);
    await dns.ensureZone('example.com');
    assert.equal(b.zones, [{ zone: 'example.com', records: [] }]);
    await dns.addA('www.example.com', '198.18.0.5');
    await dns.addA('example.com', '198.18.0.6');
    assert.equal(b.zones.at(-1), {
      zone: 'example.com',
      records: [
        { name: 'www.example.com', type: 'A', content: '198.18.0.5', ttl: 30 },
        { name: 'example.com', type: 'A', content: '198.18.0.6', ttl: 30 },
      ],
    });
    const domain = [...fake.state.domains.values()][0]!;
    await cloud.api.post(`/dns-domain/${domain.id}/record`, { name: '_acme-challenge', type: 'TXT', content: '"token-xyz"', ttl: 120 });
    assert.equal(b.zones.at(-1)?.records?.at(-1), { name: '_acme-challenge.example.com', type: 'TXT', content: 'token-xyz', ttl: 120 });
    await dns.removeA('www.example.com', '198.18.0.5');
    assert.equal(b.zones.at(-1), {
      zone: 'example.com',
      records: [
        { name: 'example.com', type: 'A', content: '198.18.0.6', ttl: 30 },
        { name: '_acme-challenge.example.com', type: 'TXT', content: 'token-xyz', ttl: 120 },
      ],
    });
    assert.equal(
      (await dns.listA('example.com')).map((r) => r.content),
      ['198.18.0.6'],
    );
    const calls = b.zones.length;
    await rejects(
      cloud.api.post(`/dns-domain/${domain.id}/record`, { name: 'w', type: 'CNAME', content: 'example.com' }),
      /HTTP 400: a CNAME record is not backed by the local cloud/,
    );
    assert.is(b.zones.length, calls, 'a refused record changes nothing');
    await cloud.api.delete(`/dns-domain/${domain.id}`);
    assert.equal(b.zones.at(-1), { zone: 'example.com', records: null });
    assert.is(fake.state.domains.size, 0);
  }));

test('exportState/importState: a restarted fake keeps its account (instances, groups, domains, keys, templates) and its ids', async () => {
  const b = testBacking();
  const saved = await withBackedFake(async (fake, baseUrl) => {
    const cloud = driver(baseUrl);
    const s = await cloud.create({
      name: 'ws-b7-1111',
      role: 'webserver',
      buildId: 'b7',
      userData: '#!/bin/sh\n',
      sshKeys: [TEST_KEY.line],
    });
    await cloud.waitUntilRunning(s.id, { intervalMs: 1, timeoutMs: 5_000 });
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'] }]);
    const dns = cloud.dns('example.com', 30);
    await dns.ensureZone('example.com');
    await dns.addA('www.example.com', '198.18.0.9');
    const builder = await cloud.create({ name: 'bm-b7-9999', role: 'build', buildId: 'b7', userData: '#!/bin/sh\n' });
    b.memory.servers.get('bm-b7-9999')!.state = 'stopped';
    const template = await cloud.snapshot(builder.id, 'adt-webserver-abcdef012345', { intervalMs: 1 });
    await cloud.destroy(builder.id);
    return { state: JSON.parse(JSON.stringify(fake.exportState())) as ReturnType<Fake['exportState']>, id: s.id, template };
  }, b);
  await withBackedFake(async (fake, baseUrl) => {
    fake.importState(saved.state);
    const cloud = driver(baseUrl);
    const [s] = await cloud.list({ buildId: 'b7' });
    assert.is(s?.id, saved.id);
    assert.is(s?.publicIp, b.memory.servers.get('ws-b7-1111')!.publicIp);
    assert.is(s?.privateIp, b.memory.servers.get('ws-b7-1111')!.privateIp);
    assert.equal(await cloud.firewall.get('b7', 'webserver'), [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'] }]);
    assert.equal(
      (await cloud.dns('example.com').listA('www.example.com')).map((r) => r.content),
      ['198.18.0.9'],
    );
    // The template: still the backing's image it was; the registered key is found, not registered again.
    const next = await cloud.create({
      name: 'ws-b7-2222',
      role: 'webserver',
      buildId: 'b7',
      userData: '#!/bin/sh\n',
      image: 'adt-webserver-abcdef012345',
      sshKeys: [TEST_KEY.line],
    });
    assert.is(b.creates.at(-1)?.image, 'snap-1');
    assert.equal(b.creates.at(-1)?.sshKeys, [TEST_KEY.line]);
    assert.not.ok(fake.log.some((l) => l.method === 'POST' && l.path === '/ssh-key'));
    assert.ok(!saved.state.instances.some((i) => i.id === next.id) && next.id !== saved.id, 'a new id');
    assert.ok(fake.state.templates.has(saved.template));
    assert.equal(fake.state.instances.get(next.id)!['security-groups'], fake.state.instances.get(saved.id)!['security-groups']);
  }, b);
});

test('a state without the later fields (keys, snapshots, templates, images, operations) loads', async () => {
  const b = testBacking();
  const saved = await withBackedFake(async (fake, baseUrl) => {
    await driver(baseUrl).create({ name: 'ws-b7-1111', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    const { ids, n, instances, groups, domains } = JSON.parse(JSON.stringify(fake.exportState())) as ReturnType<Fake['exportState']>;
    return { ids, n, instances, groups, domains };
  }, b);
  await withBackedFake(async (fake, baseUrl) => {
    fake.importState(saved);
    const cloud = driver(baseUrl);
    assert.is((await cloud.list({ buildId: 'b7' })).length, 1);
    assert.equal((await cloud.api.get<{ templates: unknown[] }>('/template', { query: { visibility: 'private' } })).templates, []);
    assert.is(fake.state.backingImages.size, 0);
  }, b);
});

test('authorize replaces the signature check', async () => {
  const b = testBacking();
  const fake = exoscaleFake({
    backing: b.backing,
    authorize: (req) =>
      /credential=EXOother,/.test(req.headers.authorization ?? '') ? null : { status: 403, body: { message: 'invalid API key' } },
  });
  const baseUrl = await fake.listen();
  try {
    await rejects(driver(baseUrl).list(), /HTTP 403: invalid API key/);
    assert.equal(await exoscaleDriver({ apiKey: 'EXOother', apiSecret: 'anything', baseUrl, baseDelayMs: 5 }).list(), []);
  } finally {
    await fake.close();
  }
});

test.run();
