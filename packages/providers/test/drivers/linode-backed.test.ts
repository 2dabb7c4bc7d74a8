/**
 * The Linode driver against the Linode fake backed by a cloud (`backing` option): instances are
 * the backing's servers with its addresses, firewalls its native rules, domains its zones. The
 * backing here is the memory compute (a first GET of a new server answers `creating`) with
 * snapshots of stopped servers (as the local cloud takes them; `snapshots: false` for a backing
 * without), the memory native firewall and a record of the zones, each call kept for the assertions.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import linodeDriver from '../../src/drivers/linode.ts';
import { linodeFake } from '../../src/fakes/linode.ts';
import { freshKeyPair, TEST_KEY } from './_keys.ts';
import type { Server } from '../../src/types.ts';
import { PRIVATE_CIDR, testBacking } from './_backing.ts';

const TOKEN = 'linode-backed-token-5c1d';

type Backing = ReturnType<typeof testBacking>;
type Fake = ReturnType<typeof linodeFake>;

async function withBackedFake<T>(run: (fake: Fake, baseUrl: string, b: Backing) => Promise<T>, b: Backing = testBacking()): Promise<T> {
  const fake = linodeFake({ token: TOKEN, backing: b.backing });
  const baseUrl = await fake.listen();
  try {
    return await run(fake, baseUrl, b);
  } finally {
    await fake.close();
  }
}

const driver = (baseUrl: string, authorizedKeys?: string[]) =>
  linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-standard-1', baseDelayMs: 5, maxDelayMs: 20, authorizedKeys });

const test = suite('linode driver on a backed fake');

test('create: the backing gets the name, role, build, decoded user-data, stock image, keys and tags', () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const laptop = freshKeyPair('laptop').publicKey;
    const cloud = driver(baseUrl, [laptop]);
    const userData = '#!/bin/sh\necho "hällo" > /tmp/x\n';
    const created = await cloud.create({ name: 'ws-b7-k3f9', role: 'webserver', buildId: 'b7', userData, sshKeys: [TEST_KEY.line] });
    assert.is(b.creates.length, 1);
    const c = b.creates[0]!;
    assert.is(c.name, 'ws-b7-k3f9');
    assert.is(c.role, 'webserver');
    assert.is(c.buildId, 'b7');
    assert.is(c.userData, userData, 'metadata.user_data decoded from base64');
    assert.is(c.image, 'debian-12-local', 'linode/debian12 is the backing stock image');
    assert.equal(c.sshKeys, [laptop, TEST_KEY.line]);
    assert.equal(c.tags, ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver']);
    assert.is(created.name, 'ws-b7-k3f9');
    assert.is(created.state, 'creating');
    assert.is(created.publicIp, null);
    const instance = fake.state.instances.get(Number(created.id))!;
    assert.is(instance.backing_id, 'ws-b7-k3f9');
    assert.not.ok('backing_id' in (fake.log.find((l) => l.method === 'POST')!.body as object), 'sanity: the request has no backing id');
  }));

test("waitUntilRunning reports the backing's public address as public and its private one as private", () =>
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
    // The private address is a VPC interface's, in the VPC standing for the backing's private network.
    const vpcs = await cloud.api.get<{ data: { label: string; subnets: { ipv4: string; linodes: { id: number }[] }[] }[] }>('/vpcs');
    assert.equal(
      vpcs.data.map((v) => [v.label, v.subnets.map((s) => [s.ipv4, s.linodes.map((l) => l.id)])]),
      [['local-eu-west', [[PRIVATE_CIDR, [Number(created.id)]]]]],
    );
    const instance = await cloud.api.get<{ ipv4: string[] }>(`/linode/instances/${created.id}`);
    assert.equal(instance.ipv4, [real.publicIp]);
    assert.ok(fake.log.some((l) => l.path === `/linode/instances/${created.id}/ips`));
  }));

test('list, get and destroy follow the backing; a server gone from it is an instance gone', () =>
  withBackedFake(async (_fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const base = { role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n' } as const;
    const one = await cloud.create({ ...base, name: 'ws-b8-1111' });
    const two = await cloud.create({ ...base, name: 'ws-b8-2222' });
    await cloud.create({ name: 'db-b9-3333', role: 'database', buildId: 'b9', userData: '#!/bin/sh\n' });
    const byName = (xs: Server[]) => xs.sort((x, y) => x.name.localeCompare(y.name));
    assert.equal(
      byName(await cloud.list({ buildId: 'b8', role: 'webserver' })).map((s) => [s.name, s.state, s.publicIp]),
      [
        ['ws-b8-1111', 'creating', null],
        ['ws-b8-2222', 'creating', null],
      ],
      'still booting on the backing',
    );
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
  }));

test('what the backing cannot run is refused with a 400 that says so, and nothing is created', () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    await rejects(
      cloud.create({ name: 'ws-b7-aaaa', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: 'linode/ubuntu24.04' }),
      /HTTP 400: image: image "linode\/ubuntu24.04" is not backed by the local cloud: it has linode\/debian12 and this account's images/,
    );
    await rejects(
      cloud.create({ name: 'ws-b7-aaaa', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: 'private/12' }),
      { exitCode: 2, message: /HTTP 400: image: image is not valid$/ },
      "an image the account does not have: Linode's answer",
    );
    const raw = { region: 'eu-west', type: 'g6-nanode-1', image: 'linode/debian12', root_pass: 'aA1!aA1!aA1!aA1!' };
    await rejects(
      cloud.api.post('/linode/instances', { ...raw, label: 'my-own-box' }),
      /HTTP 400: label: the local cloud runs instances labelled/,
    );
    const vpc = await cloud.api.post<{ subnets: { id: number }[] }>('/vpcs', {
      label: 'mine',
      region: 'eu-west',
      subnets: [{ label: 'a', ipv4: '198.18.200.0/24' }],
    });
    await rejects(
      cloud.create({ name: 'ws-b7-bbbb', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', vpc: String(vpc.subnets[0]!.id) }),
      /HTTP 400: interfaces: VPC \d+ is not backed by the local cloud/,
    );
    assert.is(b.creates.length, 0);
    assert.is(fake.state.instances.size, 0);
    await rejects(
      cloud.databases.create({ name: 'adt-b7-db', buildId: 'b7', engine: 'mysql', region: 'eu-west', allow: ['198.18.0.0/15'] }),
      /HTTP 400: managed databases are not backed by the local cloud yet/,
    );
    assert.is(fake.state.databases.size, 0);
  }));

test('images of a backing whose compute takes no snapshots are refused with a 400 that says so', () =>
  withBackedFake(
    async (fake, baseUrl, b) => {
      const cloud = driver(baseUrl);
      const s = await cloud.create({ name: 'ws-b7-cccc', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
      await rejects(
        cloud.snapshot(s.id, 'snap', { intervalMs: 1 }),
        /HTTP 400: images are not backed by the local cloud: its compute \(test-backing\) takes no snapshots/,
      );
      assert.is(fake.state.images.size, 0);
      assert.is(b.creates.length, 1);
    },
    testBacking({ snapshots: false }),
  ));

// A prepared image as the toolkit makes one (`fleet/images.ts`): a builder powers off, its disk is imaged, servers boot from it.
test("an image is the backing's snapshot of the instance's server; instances made from it are the backing's servers from it", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const builder = await cloud.create({ name: 'bm-b7-1111', role: 'build', buildId: 'b7', userData: '#!/bin/sh\npoweroff\n' });
    await cloud.waitUntilRunning(builder.id, { intervalMs: 1, timeoutMs: 5_000 });
    // Still running: the backing refuses, and its message is Linode's 400.
    await rejects(cloud.snapshot(builder.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 }), {
      message: /HTTP 400: disk_id: the local cloud: server bm-b7-1111 is running: the local cloud snapshots stopped servers only/,
    });
    assert.is(fake.state.images.size, 0, 'nothing kept');
    b.memory.servers.get('bm-b7-1111')!.state = 'stopped';
    assert.is((await cloud.get(builder.id))?.state, 'stopped', 'offline, as the backing reports it');

    const image = await cloud.snapshot(builder.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 });
    assert.match(image, /^private\/\d+$/);
    assert.equal(b.snapshotCalls.at(-1), { id: 'bm-b7-1111', name: 'adt-webserver-0a1b2c3d4e5f' }, "the instance's server, by the label");
    assert.equal(fake.state.backingImages.get(image), 'snap-1');
    const post = fake.log.find((l) => l.method === 'POST' && l.path === '/images' && l.status === 200)!;
    assert.equal(post.body, {
      disk_id: Number(builder.id) * 10,
      label: 'adt-webserver-0a1b2c3d4e5f',
      description: `adt image of ${builder.id}`,
    });
    assert.ok(
      fake.log.some((l) => l.method === 'GET' && l.path === `/images/${image}` && l.status === 200),
      'polled until available',
    );

    // Found by its label, as a lookup by name does (`GET /images` with X-Filter), through the driver's client.
    const found = await cloud.api.get<{ data: { id: string; label: string; status: string; is_public: boolean }[] }>('/images', {
      headers: { 'X-Filter': JSON.stringify({ label: 'adt-webserver-0a1b2c3d4e5f' }) },
    });
    assert.equal(
      found.data.map((i) => [i.id, i.label, i.status, i.is_public]),
      [[image, 'adt-webserver-0a1b2c3d4e5f', 'available', false]],
    );

    // The builder goes; its image stays, and a webserver is made from it.
    await cloud.destroy(builder.id);
    const ws = await cloud.create({ name: 'ws-b7-2222', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image });
    assert.is(b.creates.at(-1)?.name, 'ws-b7-2222');
    assert.is(b.creates.at(-1)?.image, 'snap-1', "the backing's image of the Linode image");
    assert.is(fake.state.instances.get(Number(ws.id))?.image, image, 'the instance reports the image it was made from');
    assert.is(b.memory.servers.get('ws-b7-2222')?.image, 'snap-1');

    // Deleted: forgotten (the backing's image stays), and no instance is made from it any more.
    await cloud.api.delete(`/images/${image}`);
    assert.is(fake.state.backingImages.size, 0);
    assert.ok(b.images.has('snap-1'), "the backing's image is not deleted (ComputeProvider has no image deletion)");
    await rejects(cloud.create({ name: 'ws-b7-3333', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image }), {
      message: /HTTP 400: image: image is not valid/,
    });
  }));

// How `fleet/images.ts` prepares an image and deploys from it: image the stopped builder, find it by label, create from its id.
test("findImage finds the image of a stopped instance by its label; an instance made from its id is the backing's server from it", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const name = 'adt-webserver-0a1b2c3d4e5f';
    assert.is(await cloud.findImage(name), null, 'not prepared yet');
    const builder = await cloud.create({ name: 'bm-b7-6666', role: 'build', buildId: 'b7', userData: '#!/bin/sh\npoweroff\n' });
    await cloud.waitUntilRunning(builder.id, { intervalMs: 1, timeoutMs: 5_000 });
    b.memory.servers.get('bm-b7-6666')!.state = 'stopped';
    const image = await cloud.snapshot(builder.id, name, { intervalMs: 1 });
    await cloud.destroy(builder.id);

    const found = await cloud.findImage(name);
    assert.equal(found, { id: image, name });
    assert.is(await cloud.findImage('linode/debian12'), null, 'the stock image is no private image');
    const ws = await cloud.create({ name: 'ws-b7-6767', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n', image: found!.id });
    const post = fake.log.filter((l) => l.method === 'POST' && l.path === '/linode/instances').at(-1)!.body as { image: unknown };
    assert.is(post.image, image);
    assert.is(b.creates.at(-1)?.image, 'snap-1', "the backing's image of the Linode image");
    assert.is(b.memory.servers.get('ws-b7-6767')?.image, 'snap-1');
    assert.is((await cloud.waitUntilRunning(ws.id, { intervalMs: 1, timeoutMs: 5_000 })).state, 'running');
  }));

test('a backing snapshot that fails after the answer leaves no image: 404 with its reason', () => {
  const b = testBacking();
  let fail: (e: Error) => void = () => {};
  // A snapshot that goes on past the answer, then fails (a copy that broke).
  b.backing.compute.snapshot = () => new Promise<string>((_resolve, reject) => (fail = reject));
  return withBackedFake(async (fake, baseUrl) => {
    const cloud = driver(baseUrl);
    const s = await cloud.create({ name: 'bm-b7-4444', role: 'build', buildId: 'b7', userData: '#!/bin/sh\n' });
    const made = cloud.snapshot(s.id, 'adt-webserver-ffff', { intervalMs: 5, timeoutMs: 10_000 });
    // The image is `creating` while the backing works.
    for (let i = 0; i < 400 && fake.state.images.size === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const [img] = [...fake.state.images.values()];
    assert.is(img?.status, 'creating');
    assert.is(await cloud.findImage('adt-webserver-ffff'), null, 'not found while creating');
    fail(new Error('copying the disk failed'));
    await rejects(made, /HTTP 404: Not found: the local cloud could not make image private\/\d+: copying the disk failed/);
    assert.is(fake.state.images.size, 0);
    assert.is(fake.state.backingImages.size, 0);
  }, b);
});

test("firewall apply and remove reach the backing's native firewall with the build, the role and the rules", () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const base = { role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' } as const;
    const first = await cloud.create({ ...base, name: 'ws-b7-1111' });
    await cloud.create({ name: 'db-b7-2222', role: 'database', buildId: 'b7', userData: '#!/bin/sh\n' });
    await cloud.firewall.apply('b7', 'webserver', [
      { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'], description: 'https' },
      { protocol: 'tcp', port: [8000, 8010], sources: ['203.0.113.9'] },
      { protocol: 'icmp', sources: [] },
    ]);
    assert.equal(b.firewallCalls, [
      {
        op: 'apply',
        buildId: 'b7',
        role: 'webserver',
        rules: [
          { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'], description: 'https' },
          { protocol: 'tcp', port: [8000, 8010], sources: ['203.0.113.9/32'] },
          { protocol: 'icmp', sources: ['0.0.0.0/0', '::/0'] },
        ],
      },
    ]);
    const fw = [...fake.state.firewalls.values()][0]!;
    assert.is(fw.label, 'adt-b7-ws');
    assert.equal(fw.devices, [Number(first.id)], 'the webserver, not the database server');
    // A new webserver is created inside it; one created without it would not be what the backing does.
    const second = await cloud.create({ ...base, name: 'ws-b7-3333' });
    assert.equal(fw.devices, [Number(first.id), Number(second.id)]);
    const raw = { region: 'eu-west', type: 'g6-nanode-1', image: 'linode/debian12', root_pass: 'aA1!aA1!aA1!aA1!' };
    await rejects(
      cloud.api.post('/linode/instances', { ...raw, label: 'ws-b7-4444' }),
      /HTTP 400: firewall_id: the local cloud's firewall adt-b7-ws covers every webserver server of build b7/,
    );
    const db = [...fake.state.instances.values()].find((i) => i.label === 'db-b7-2222')!;
    await rejects(
      cloud.api.post(`/networking/firewalls/${fw.id}/devices`, { id: db.id, type: 'linode' }),
      /HTTP 400: id: Linode \d+ is not a webserver server of build b7/,
    );
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'udp', port: 51820, sources: ['198.51.100.0/24'] }]);
    assert.equal(b.firewallCalls[1], {
      op: 'apply',
      buildId: 'b7',
      role: 'webserver',
      rules: [{ protocol: 'udp', port: 51820, sources: ['198.51.100.0/24'] }],
    });
    assert.equal(await b.nativeFirewall.get('b7', 'webserver'), [{ protocol: 'udp', port: 51820, sources: ['198.51.100.0/24'] }]);
    await cloud.firewall.apply('b7', 'database', [{ protocol: 'tcp', port: 3306, sources: [PRIVATE_CIDR] }]);
    assert.equal(b.firewallCalls[2]?.role, 'database');
    await cloud.firewall.remove('b7', 'webserver');
    assert.equal(b.firewallCalls[3], { op: 'remove', buildId: 'b7', role: 'webserver' });
    assert.is(await b.nativeFirewall.get('b7', 'webserver'), null);
    assert.ok(await b.nativeFirewall.get('b7', 'database'), "the other role's firewall stays");
  }));

test('firewalls the backing cannot hold are refused: no build role in the label, an ACCEPT policy, DROP rules', () =>
  withBackedFake(async (fake, baseUrl, b) => {
    const cloud = driver(baseUrl);
    const rule = { action: 'ACCEPT', protocol: 'TCP', ports: '22', addresses: { ipv4: ['203.0.113.9/32'] } };
    const drop = { inbound: [rule], inbound_policy: 'DROP', outbound: [], outbound_policy: 'ACCEPT' };
    await rejects(
      cloud.api.post('/networking/firewalls', { label: 'office', rules: drop }),
      /HTTP 400: label: a firewall of no build role/,
    );
    await rejects(
      cloud.api.post('/networking/firewalls', { label: 'adt-b7-ws', rules: { ...drop, inbound_policy: 'ACCEPT' } }),
      /HTTP 400: rules: inbound_policy ACCEPT is not backed/,
    );
    await rejects(
      cloud.api.post('/networking/firewalls', { label: 'adt-b7-ws', rules: { ...drop, inbound: [{ ...rule, action: 'DROP' }] } }),
      /HTTP 400: rules: inbound\[0\]: a DROP rule is not backed/,
    );
    assert.is(fake.state.firewalls.size, 0);
    assert.equal(b.firewallCalls, []);
    // Ports as a list: one backing rule per port or range.
    await cloud.api.post('/networking/firewalls', { label: 'adt-b7-db', rules: { ...drop, inbound: [{ ...rule, ports: '22,80-81' }] } });
    assert.equal(b.firewallCalls[0]?.rules, [
      { protocol: 'tcp', port: 22, sources: ['203.0.113.9/32'] },
      { protocol: 'tcp', port: [80, 81], sources: ['203.0.113.9/32'] },
    ]);
    assert.is(b.firewallCalls[0]?.role, 'database');
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
    await cloud.api.post(`/domains/${domain.id}/records`, { type: 'TXT', name: '_acme-challenge', target: 'token-xyz', ttl_sec: 120 });
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
      cloud.api.post(`/domains/${domain.id}/records`, { type: 'CNAME', name: 'w', target: 'example.com' }),
      /HTTP 400: type: a CNAME record is not backed/,
    );
    assert.is(b.zones.length, calls, 'a refused record changes nothing');
    await cloud.api.delete(`/domains/${domain.id}`);
    assert.equal(b.zones.at(-1), { zone: 'example.com', records: null });
    assert.is(fake.state.domains.size, 0);
  }));

test('exportState/importState: a restarted fake keeps its account (instances, firewalls, domains) and its ids', async () => {
  const b = testBacking();
  const saved = await withBackedFake(async (fake, baseUrl) => {
    const cloud = driver(baseUrl);
    const s = await cloud.create({ name: 'ws-b7-1111', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    await cloud.waitUntilRunning(s.id, { intervalMs: 1, timeoutMs: 5_000 });
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'] }]);
    const dns = cloud.dns('example.com', 30);
    await dns.ensureZone('example.com');
    await dns.addA('www.example.com', '198.18.0.9');
    const builder = await cloud.create({ name: 'bm-b7-9999', role: 'build', buildId: 'b7', userData: '#!/bin/sh\n' });
    b.memory.servers.get('bm-b7-9999')!.state = 'stopped';
    const image = await cloud.snapshot(builder.id, 'adt-webserver-abcdef012345', { intervalMs: 1 });
    await cloud.destroy(builder.id);
    return { state: JSON.parse(JSON.stringify(fake.exportState())) as ReturnType<Fake['exportState']>, id: s.id, image };
  }, b);
  await withBackedFake(async (fake, baseUrl) => {
    fake.importState(saved.state);
    const cloud = driver(baseUrl);
    // The image: listed, and still the backing's image it was.
    const images = await cloud.api.get<{ data: { id: string; label: string; status: string }[] }>('/images');
    assert.equal(
      images.data.map((i) => [i.id, i.label, i.status]),
      [[saved.image, 'adt-webserver-abcdef012345', 'available']],
    );
    const fromImage = await cloud.create({
      name: 'ws-b7-8888',
      role: 'webserver',
      buildId: 'b7',
      userData: '#!/bin/sh\n',
      image: saved.image,
    });
    assert.is(b.creates.at(-1)?.image, 'snap-1');
    await cloud.destroy(fromImage.id);
    const [s] = await cloud.list({ buildId: 'b7' });
    assert.is(s?.id, saved.id);
    assert.is(s?.publicIp, b.memory.servers.get('ws-b7-1111')!.publicIp);
    assert.is(s?.privateIp, b.memory.servers.get('ws-b7-1111')!.privateIp);
    assert.equal(await cloud.firewall.get('b7', 'webserver'), [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0'] }]);
    assert.equal(
      (await cloud.dns('example.com').listA('www.example.com')).map((r) => r.content),
      ['198.18.0.9'],
    );
    // A new webserver: a new id, inside the role's firewall, on the same backing VPC.
    const next = await cloud.create({ name: 'ws-b7-2222', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    assert.ok(Number(next.id) > Math.max(...saved.state.instances.map((i) => i.id), ...saved.state.vpcs.map((v) => v.id)));
    assert.equal([...fake.state.firewalls.values()][0]!.devices, [Number(saved.id), Number(next.id)]);
    assert.equal(
      [...fake.state.vpcs.keys()],
      saved.state.vpcs.map((v) => v.id),
      'the same VPC of the private network, not a second one',
    );
  }, b);
});

test('a state saved before images were kept (no images, no backingImages) loads, with no image', async () => {
  const b = testBacking();
  const saved = await withBackedFake(async (fake, baseUrl) => {
    await driver(baseUrl).create({ name: 'ws-b7-1111', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    const { images: _i, backingImages: _b, ...old } = JSON.parse(JSON.stringify(fake.exportState())) as ReturnType<Fake['exportState']>;
    return old;
  }, b);
  await withBackedFake(async (fake, baseUrl) => {
    fake.importState(saved);
    const cloud = driver(baseUrl);
    assert.is((await cloud.list({ buildId: 'b7' })).length, 1);
    assert.equal((await cloud.api.get<{ data: unknown[] }>('/images')).data, []);
    assert.is(fake.state.backingImages.size, 0);
  }, b);
});

test('authorize replaces the bearer check', async () => {
  const b = testBacking();
  const fake = linodeFake({
    backing: b.backing,
    authorize: (req) => (req.headers.authorization === 'Bearer other' ? null : fake.error(401, 'Invalid Token')),
  });
  const baseUrl = await fake.listen();
  try {
    await rejects(driver(baseUrl).list(), /HTTP 401/);
    assert.equal(await linodeDriver({ token: 'other', baseUrl, baseDelayMs: 5 }).list(), []);
  } finally {
    await fake.close();
  }
});

test.run();
