/**
 * The Vultr driver against the Vultr fake backed by a cloud (`fakes/backing.ts`): a small backing
 * in memory (the memory compute with snapshots of stopped servers, as the local cloud takes them,
 * a firewall and a DNS that record what they were asked), so what the driver asks of Vultr is
 * checked to reach the backing as its servers, firewalls, zones and images.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import vultrDriver from '../../src/drivers/vultr.ts';
import { MemoryCompute, MemoryNativeFirewall } from '../../src/drivers/memory.ts';
import type { BackingRecord, FakeBacking } from '../../src/fakes/backing.ts';
import { vultrFake } from '../../src/fakes/vultr.ts';
import type { CreateServerOptions, InboundRule, Role } from '../../src/types.ts';
import { TEST_KEY, freshKeyPair } from './_keys.ts';

const KEY = 'vultr-backed-key-41c7';

/** A refusal of the backing (the caller's error, exit code 2), as the local cloud's are. */
const refusal = (message: string) => Object.assign(new Error(message), { exitCode: 2 });

class RecordingCompute extends MemoryCompute {
  readonly created: CreateServerOptions[] = [];
  /** The backing's images made by `snapshot`: id -> name and server. */
  readonly images = new Map<string, { name: string; server: string }>();
  override async create(o: CreateServerOptions) {
    this.created.push(structuredClone(o));
    if (o.image && o.image !== 'debian-12' && !this.images.has(o.image)) throw refusal(`image ${o.image} not found`);
    return super.create(o);
  }
}

/** The memory compute with snapshots, as the local cloud takes them: of a stopped server only. */
class SnapshottingCompute extends RecordingCompute {
  override readonly flags = { snapshots: true, privateNetworking: true };
  readonly snapshotCalls: { id: string; name: string }[] = [];
  async snapshot(id: string, name: string): Promise<string> {
    this.snapshotCalls.push({ id, name });
    const s = this.servers.get(id);
    if (!s) throw refusal(`no server ${id}`);
    if (s.state !== 'stopped') throw refusal(`server ${id} is ${s.state}: the local cloud snapshots stopped servers only`);
    const image = `snap-${this.images.size + 1}`;
    this.images.set(image, { name, server: id });
    return image;
  }
}

class RecordingFirewall extends MemoryNativeFirewall {
  readonly calls: { op: 'apply' | 'remove'; buildId: string; role: Role; rules?: InboundRule[] }[] = [];
  override async apply(buildId: string, role: Role, rules: InboundRule[]) {
    this.calls.push({ op: 'apply', buildId, role, rules: structuredClone(rules) });
    await super.apply(buildId, role, rules);
  }
  override async remove(buildId: string, role: Role) {
    this.calls.push({ op: 'remove', buildId, role });
    await super.remove(buildId, role);
  }
}

function testBacking({ snapshots = true } = {}) {
  const o = { publicPrefix: '198.18', privatePrefix: '198.19' };
  const compute = snapshots ? new SnapshottingCompute(o) : new RecordingCompute(o);
  const firewall = new RecordingFirewall();
  const zones = new Map<string, BackingRecord[]>();
  const zoneCalls: { zone: string; records: BackingRecord[] | null }[] = [];
  const backing: FakeBacking = {
    compute,
    firewall,
    privateCidr: '198.19.0.0/16',
    stockImage: 'debian-12',
    async zone(zone, records) {
      zoneCalls.push({ zone, records: records ? structuredClone([...records]) : null });
      if (records) zones.set(zone, [...records]);
      else zones.delete(zone);
    },
  };
  return { backing, compute, firewall, zones, zoneCalls };
}

type Backed = ReturnType<typeof testBacking>;

async function withBacked(
  run: (x: Backed & { fake: ReturnType<typeof vultrFake>; baseUrl: string; cloud: ReturnType<typeof vultrDriver> }) => Promise<void>,
  b: Backed = testBacking(),
): Promise<void> {
  const fake = vultrFake({ apiKey: KEY, backing: b.backing });
  const baseUrl = await fake.listen();
  const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'ams', size: 'vc2-1c-2gb', baseDelayMs: 5, maxDelayMs: 20 });
  try {
    await run({ ...b, fake, baseUrl, cloud });
  } finally {
    await fake.close();
  }
}

/** A raw request to the fake (what the driver never sends). */
async function call(baseUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

const base = { role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\necho backed\n' } as const;

// ---

const instances = suite('vultr fake backed: instances');

instances("an instance is the backing's server: its label, decoded user-data, stock image, keys and tags", async () => {
  await withBacked(async ({ fake, baseUrl, cloud, compute }) => {
    const own = freshKeyPair('laptop');
    const k = (await call(baseUrl, 'POST', '/ssh-keys', { name: 'laptop', ssh_key: `${own.publicKey}\n` })).body as {
      ssh_key: { id: string };
    };
    const c = vultrDriver({ apiKey: KEY, baseUrl, region: 'ams', size: 'vc2-1c-2gb', baseDelayMs: 5, sshKeyIds: [k.ssh_key.id] });
    const s = await c.create({ ...base, name: 'ws-b7-1a2b', sshKeys: [TEST_KEY.line] });
    assert.is(compute.created.length, 1);
    const made = compute.created[0]!;
    assert.is(made.name, 'ws-b7-1a2b');
    assert.is(made.role, 'webserver');
    assert.is(made.buildId, 'b7');
    assert.is(made.userData, '#!/bin/sh\necho backed\n', 'the base64 user-data decoded');
    assert.is(made.image, 'debian-12', "os_id 2136 is the backing's stock image");
    assert.equal(made.sshKeys, [own.publicKey, TEST_KEY.line], 'the public key lines of sshkey_id, trimmed, in order');
    assert.equal(made.tags, ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver']);
    assert.is(compute.servers.get('ws-b7-1a2b')!.userData, '#!/bin/sh\necho backed\n');
    assert.is(fake.state.instances.get(s.id)!.backing_id, 'ws-b7-1a2b');
    assert.not.ok('backing_id' in ((await call(baseUrl, 'GET', `/instances/${s.id}`)).body as { instance: object }).instance);
    assert.is(s.publicIp, null, 'created: main_ip 0.0.0.0, as Vultr answers');
    assert.is((await cloud.list({ buildId: 'b7' })).length, 1);
  });
});

instances("waitUntilRunning reports the backing server's public and private addresses, each as what it is", async () => {
  await withBacked(async ({ baseUrl, cloud, compute }) => {
    const s = await cloud.create({ ...base, name: 'ws-b7-2c3d' });
    const server = compute.servers.get('ws-b7-2c3d')!;
    Object.assign(server, { state: 'creating' });
    const booting = await cloud.get(s.id);
    assert.is(booting?.state, 'creating');
    const raw = ((await call(baseUrl, 'GET', `/instances/${s.id}`)).body as { instance: { status: string; main_ip: string } }).instance;
    assert.is(raw.status, 'pending');
    Object.assign(server, { state: 'running' });
    const running = await cloud.waitUntilRunning(s.id, { intervalMs: 1, timeoutMs: 2_000 });
    assert.is(running.state, 'running');
    assert.is(running.publicIp, server.publicIp);
    assert.is(running.privateIp, server.privateIp);
    assert.match(running.publicIp!, /^198\.18\./);
    assert.match(running.privateIp!, /^198\.19\./);
    const vpcs = (await call(baseUrl, 'GET', `/instances/${s.id}/vpcs`)).body as { vpcs: { ip_address: string }[] };
    assert.equal(
      vpcs.vpcs.map((v) => v.ip_address),
      [server.privateIp],
    );
    const [listed] = await cloud.list({ buildId: 'b7', role: 'webserver' });
    assert.is(listed?.publicIp, server.publicIp, 'list: main_ip');
    assert.is(listed?.privateIp, server.privateIp, 'list: internal_ip');
    Object.assign(server, { state: 'error' });
    await rejects(cloud.waitUntilRunning(s.id, { intervalMs: 1, timeoutMs: 2_000 }), /in error/, 'a failed server fails the wait');
  });
});

instances('destroy destroys the backing server; a server gone from the backing is a gone instance', async () => {
  await withBacked(async ({ fake, baseUrl, cloud, compute }) => {
    const a = await cloud.create({ ...base, name: 'ws-b7-4e5f' });
    const b = await cloud.create({ ...base, name: 'ws-b7-6a7b' });
    await cloud.destroy(a.id);
    assert.not.ok(compute.servers.has('ws-b7-4e5f'));
    assert.ok(compute.servers.has('ws-b7-6a7b'));
    assert.is(await cloud.get(a.id), null);
    await compute.destroy('ws-b7-6a7b');
    assert.equal(await cloud.list({ buildId: 'b7' }), [], 'listed no more');
    assert.is(await cloud.get(b.id), null);
    assert.is((await call(baseUrl, 'GET', `/instances/${b.id}`)).status, 404);
    assert.is(fake.state.instances.size, 0);
  });
});

instances('what the backing cannot run is refused with a message that says so', async () => {
  await withBacked(async ({ baseUrl, compute }) => {
    const ok = {
      region: 'ams',
      plan: 'vc2-1c-2gb',
      os_id: 2136,
      enable_vpc: true,
      label: 'ws-b7-8c9d',
      user_data: Buffer.from('#!/bin/sh\n').toString('base64'),
    };
    const refused = async (body: Record<string, unknown>, re: RegExp) => {
      const r = await call(baseUrl, 'POST', '/instances', body);
      assert.is(r.status, 400, JSON.stringify(body));
      assert.match((r.body as { error: string }).error, re);
    };
    await refused({ ...ok, label: 'my-box' }, /named by the toolkit only/);
    await refused({ ...ok, os_id: 477 }, /Debian 12 x64 \(os_id 2136\) and this account's snapshots only/);
    await refused({ ...ok, enable_vpc: undefined }, /private network \(198\.19\.0\.0\/16\)/);
    // The backing's own refusal, in Vultr's error shape.
    await refused({ ...ok, user_data: Buffer.from('echo no shebang').toString('base64') }, /^the local cloud: .*starting with "#!"/);
    assert.is(compute.servers.size, 0, 'nothing made');
    assert.is((await call(baseUrl, 'POST', '/instances', ok)).status, 202);
    const id = [...compute.servers.keys()];
    assert.equal(id, ['ws-b7-8c9d']);
  });
});

// ---

const firewalls = suite('vultr fake backed: firewall groups');

const RULES: InboundRule[] = [
  { protocol: 'tcp', port: 22, sources: ['203.0.113.7/32'], description: 'ssh from the build machine' },
  { protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '198.51.100.0/24'] },
  { protocol: 'tcp', port: [8000, 8010], sources: ['198.19.0.0/16'] },
];

firewalls("apply and remove reach the backing's firewall of the group's build role, with the group's whole rule list", async () => {
  await withBacked(async ({ fake, cloud, firewall }) => {
    const s = await cloud.create({ ...base, name: 'ws-b7-aa11' });
    await cloud.firewall.apply('b7', 'webserver', RULES);
    assert.equal(await firewall.get('b7', 'webserver'), RULES, 'the backing has exactly the applied rules');
    assert.equal(await cloud.firewall.get('b7', 'webserver'), RULES, 'and Vultr reports them');
    const applies = firewall.calls.filter((c) => c.op === 'apply');
    assert.ok(
      applies.every((c) => c.buildId === 'b7' && c.role === 'webserver'),
      'only the group of webservers of b7',
    );
    // Group made (no rules), then one rule added at a time: each call carries every rule so far.
    assert.equal(
      applies.map((c) => c.rules!.flatMap((r) => r.sources).length),
      [0, 1, 2, 3, 4],
    );
    const group = [...fake.state.groups.values()][0]!;
    assert.is(fake.state.instances.get(s.id)!.firewall_group_id, group.id, 'the instance joined its group');

    firewall.calls.length = 0;
    const next: InboundRule[] = [
      { protocol: 'tcp', port: 22, sources: ['203.0.113.7/32'], description: 'ssh from the build machine' },
      { protocol: 'udp', port: 51820, sources: ['192.0.2.0/24'] },
    ];
    await cloud.firewall.apply('b7', 'webserver', next);
    assert.equal(await firewall.get('b7', 'webserver'), next);
    // Added first (the old rules and the new one), then the extra ones deleted, one by one.
    assert.equal(firewall.calls[0]!.rules, [...RULES, { protocol: 'udp', port: 51820, sources: ['192.0.2.0/24'] }]);
    assert.is(firewall.calls.length, 1 + 3, 'one add, three deletes');

    await cloud.firewall.apply('b7', 'database', [{ protocol: 'tcp', port: 3306, sources: ['198.19.0.0/16'] }]);
    assert.equal(await firewall.get('b7', 'database'), [{ protocol: 'tcp', port: 3306, sources: ['198.19.0.0/16'] }]);
    await cloud.firewall.remove('b7', 'webserver');
    assert.equal(firewall.calls.at(-1), { op: 'remove', buildId: 'b7', role: 'webserver' });
    assert.is(await firewall.get('b7', 'webserver'), null);
    assert.ok(await firewall.get('b7', 'database'), "the other role's firewall stays");
  });
});

firewalls("groups that are no build role's, a second group of a role and an instance in another role's group are refused", async () => {
  await withBacked(async ({ baseUrl, cloud, firewall }) => {
    const mine = await call(baseUrl, 'POST', '/firewalls', { description: 'my rules' });
    assert.is(mine.status, 400);
    assert.match((mine.body as { error: string }).error, /adt-<build>-<role>/);
    await cloud.firewall.apply('b7', 'database', [{ protocol: 'tcp', port: 3306, sources: ['198.19.0.0/16'] }]);
    const again = await call(baseUrl, 'POST', '/firewalls', { description: 'adt-b7-database' });
    assert.is(again.status, 400);
    assert.match((again.body as { error: string }).error, /one firewall per build role/);
    const groups = (await call(baseUrl, 'GET', '/firewalls')).body as { firewall_groups: { id: string; description: string }[] };
    const db = groups.firewall_groups.find((g) => g.description === 'adt-b7-database')!;
    const s = await cloud.create({ ...base, name: 'ws-b7-bb22' });
    const join = await call(baseUrl, 'PATCH', `/instances/${s.id}`, { firewall_group_id: db.id });
    assert.is(join.status, 400);
    assert.match((join.body as { error: string }).error, /its own build role only/);
    const gre = await call(baseUrl, 'POST', `/firewalls/${db.id}/rules`, {
      ip_type: 'v4',
      protocol: 'gre',
      subnet: '192.0.2.0',
      subnet_size: 24,
    });
    assert.is(gre.status, 400);
    assert.match((gre.body as { error: string }).error, /tcp, udp and icmp rules only/);
    assert.equal(await firewall.get('b7', 'database'), [{ protocol: 'tcp', port: 3306, sources: ['198.19.0.0/16'] }], 'unchanged');
  });
});

// ---

const dns = suite('vultr fake backed: DNS');

dns('records reach the backing zone, fully qualified, the whole zone each time; a deleted domain is no zone', async () => {
  await withBacked(async ({ baseUrl, cloud, zones, zoneCalls }) => {
    const d = cloud.dns('example.com', 120);
    await d.ensureZone('example.com');
    assert.equal(zoneCalls, [{ zone: 'example.com', records: [] }]);
    await d.addA('www.example.com', '198.18.0.5');
    await d.addA('example.com', '198.18.0.6');
    await d.addA('www.example.com', '198.18.0.7');
    assert.equal(zones.get('example.com'), [
      { name: 'www.example.com', type: 'A', content: '198.18.0.5', ttl: 120 },
      { name: 'example.com', type: 'A', content: '198.18.0.6', ttl: 120 },
      { name: 'www.example.com', type: 'A', content: '198.18.0.7', ttl: 120 },
    ]);
    await d.removeA('www.example.com', '198.18.0.5');
    assert.equal(zones.get('example.com'), [
      { name: 'example.com', type: 'A', content: '198.18.0.6', ttl: 120 },
      { name: 'www.example.com', type: 'A', content: '198.18.0.7', ttl: 120 },
    ]);
    // ACME's DNS-01 challenge, quoted as Vultr's clients send TXT data: served unquoted.
    const txt = await call(baseUrl, 'POST', '/domains/example.com/records', {
      name: '_acme-challenge',
      type: 'TXT',
      data: '"tok-123"',
      ttl: 60,
    });
    assert.is(txt.status, 201);
    assert.equal(zones.get('example.com')!.at(-1), { name: '_acme-challenge.example.com', type: 'TXT', content: 'tok-123', ttl: 60 });
    const cname = await call(baseUrl, 'POST', '/domains/example.com/records', { name: 'blog', type: 'CNAME', data: 'example.net' });
    assert.is(cname.status, 400);
    assert.match((cname.body as { error: string }).error, /A and TXT records only/);
    assert.is(zones.get('example.com')!.length, 3);
    assert.is((await call(baseUrl, 'DELETE', '/domains/example.com')).status, 204);
    assert.equal(zoneCalls.at(-1), { zone: 'example.com', records: null });
    assert.not.ok(zones.has('example.com'));
    assert.is((await call(baseUrl, 'GET', '/domains/example.com')).status, 404);
  });
});

// ---

const state = suite('vultr fake backed: state and refusals');

state('exportState and importState keep the account through a restart', async () => {
  const b = testBacking();
  let saved = '';
  let first = '';
  let snap = '';
  await withBacked(async ({ fake, cloud }) => {
    first = (await cloud.create({ ...base, name: 'ws-b7-cc33', sshKeys: [TEST_KEY.line] })).id;
    await cloud.firewall.apply('b7', 'webserver', RULES);
    await cloud.dns('example.com').ensureZone('example.com');
    await cloud.dns('example.com').addA('www.example.com', '198.18.0.9');
    const builder = await cloud.create({ ...base, role: 'build', name: 'bm-b7-9f9f' });
    b.compute.servers.get('bm-b7-9f9f')!.state = 'stopped';
    snap = await cloud.snapshot(builder.id, 'adt-webserver-abcdef012345', { intervalMs: 1 });
    await cloud.destroy(builder.id);
    saved = JSON.stringify(fake.exportState());
  }, b);
  await withBacked(async ({ fake, cloud, compute }) => {
    fake.importState(JSON.parse(saved) as ReturnType<typeof fake.exportState>);
    // The snapshot: listed by its description, and still the backing's image it was.
    const listed = await cloud.api.get<{ snapshots: { id: string; status: string }[] }>('/snapshots', {
      query: { description: 'adt-webserver-abcdef012345' },
    });
    assert.equal(listed.snapshots, [{ ...listed.snapshots[0]!, id: snap, status: 'complete' }]);
    const fromSnap = await cloud.create({ ...base, name: 'ws-b7-8e8e', image: snap });
    assert.is(compute.created.at(-1)?.image, 'snap-1');
    await cloud.destroy(fromSnap.id);
    const [s] = await cloud.list({ buildId: 'b7' });
    assert.is(s?.id, first);
    assert.is(s?.publicIp, compute.servers.get('ws-b7-cc33')!.publicIp);
    assert.equal(await cloud.firewall.get('b7', 'webserver'), RULES);
    assert.equal(await cloud.dns('example.com').listA('www.example.com'), [
      { name: 'www.example.com', type: 'A', content: '198.18.0.9', ttl: 60 },
    ]);
    const second = await cloud.create({ ...base, name: 'ws-b7-dd44', sshKeys: [TEST_KEY.line] });
    assert.is.not(second.id, first, 'ids go on from where they were');
    assert.is(fake.log.filter((l) => l.method === 'POST' && l.path === '/ssh-keys').length, 0, 'the key registered before is found');
    assert.is(fake.state.instances.get(second.id)!.firewall_group_id, [...fake.state.groups.keys()][0], "made in its role's group");
    assert.equal(compute.created.at(-1)!.sshKeys, [TEST_KEY.line]);
  }, b);
});

state('managed databases are refused: not backed yet; so are snapshots of a backing whose compute takes none', async () => {
  await withBacked(
    async ({ cloud, compute }) => {
      await rejects(
        cloud.databases.create({ name: 'b7-db', buildId: 'b7', engine: 'mysql', region: 'ams', allow: ['198.19.0.0/16'] }),
        /managed databases are not backed by the local cloud yet/,
      );
      const s = await cloud.create({ ...base, name: 'ws-b7-ee55' });
      await rejects(
        cloud.snapshot(s.id, 'adt-b7-webserver', { intervalMs: 1 }),
        /HTTP 400: snapshots are not backed by the local cloud: its compute \(memory\) takes none/,
      );
      await rejects(cloud.create({ ...base, name: 'ws-b7-ff66', image: 'snap-1' }), /HTTP 400: Invalid snapshot_id/);
      assert.equal([...compute.servers.keys()], ['ws-b7-ee55']);
    },
    testBacking({ snapshots: false }),
  );
});

// ---

const images = suite('vultr fake backed: snapshots');

// A prepared image as the toolkit makes one (`fleet/images.ts`): a builder powers off, it is snapshotted, servers boot from it.
images(
  "a snapshot is the backing's snapshot of the instance's server; instances created from it are the backing's servers from that image",
  async () => {
    await withBacked(async ({ fake, cloud, compute }) => {
      const snapshotting = compute as SnapshottingCompute;
      const builder = await cloud.create({ ...base, role: 'build', name: 'bm-b7-1a1a', userData: '#!/bin/sh\npoweroff\n' });
      // Still running: the backing refuses, and its message is Vultr's 400.
      await rejects(cloud.snapshot(builder.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 }), {
        message: /HTTP 400: the local cloud: server bm-b7-1a1a is running: the local cloud snapshots stopped servers only/,
      });
      assert.is(fake.state.snapshots.size, 0, 'nothing kept');
      compute.servers.get('bm-b7-1a1a')!.state = 'stopped';
      assert.is((await cloud.get(builder.id))?.state, 'stopped', 'power_status stopped, as the backing reports it');

      const snap = await cloud.snapshot(builder.id, 'adt-webserver-0a1b2c3d4e5f', { intervalMs: 1 });
      assert.is(fake.state.snapshots.get(snap)?.status, 'complete');
      assert.equal(snapshotting.snapshotCalls.at(-1), { id: 'bm-b7-1a1a', name: 'adt-webserver-0a1b2c3d4e5f' }, 'by the description');
      assert.equal(fake.state.backingImages.get(snap), 'snap-1');
      const posted = fake.log.find((l) => l.method === 'POST' && l.path === '/snapshots' && l.status === 201);
      assert.ok(posted, '201 on create');

      // An unknown outcome of the create (a 500 after it was made): the driver finds it by its description, not made twice.
      fake.fail({ match: 'POST /snapshots', status: 500, afterHandling: true });
      compute.servers.get('bm-b7-1a1a')!.state = 'stopped';
      const again = await cloud.snapshot(builder.id, 'adt-webserver-fedcba987654', { intervalMs: 1 });
      assert.ok(
        fake.log.some((l) => l.method === 'GET' && l.path === '/snapshots' && l.query.includes('description=adt-webserver-fedcba987654')),
        'looked up by description',
      );
      assert.is(fake.state.backingImages.get(again), 'snap-2');
      assert.is(snapshotting.snapshotCalls.length, 3, 'the refused one, then one each');

      // The builder goes; its snapshot stays, and a webserver is made from it.
      await cloud.destroy(builder.id);
      const ws = await cloud.create({ ...base, name: 'ws-b7-2b2b', image: snap });
      assert.is(compute.created.at(-1)?.name, 'ws-b7-2b2b');
      assert.is(compute.created.at(-1)?.image, 'snap-1', "the backing's image of the Vultr snapshot");
      assert.is(fake.state.instances.get(ws.id)?.snapshot_id, snap);
      assert.is(compute.servers.get('ws-b7-2b2b')?.image, 'snap-1');
      const post = fake.log.filter((l) => l.method === 'POST' && l.path === '/instances').at(-1)!.body as Record<string, unknown>;
      assert.is(post.snapshot_id, snap);
      assert.not.ok('os_id' in post);

      // Deleted (204): forgotten (the backing's image stays), and no instance is made from it any more.
      await cloud.api.delete(`/snapshots/${snap}`);
      assert.not.ok(fake.state.backingImages.has(snap));
      assert.ok(compute.images.has('snap-1'), "the backing's image is not deleted (ComputeProvider has no image deletion)");
      await rejects(cloud.create({ ...base, name: 'ws-b7-3c3c', image: snap }), { exitCode: 2, message: /HTTP 400: Invalid snapshot_id/ });
    });
  },
);

// How `fleet/images.ts` prepares an image and deploys from it: snapshot the stopped builder, find it by description, create from its id.
images(
  "findImage finds the snapshot of a stopped instance by its description; an instance made from it is the backing's server from it",
  async () => {
    await withBacked(async ({ fake, cloud, compute }) => {
      const name = 'adt-webserver-0a1b2c3d4e5f';
      assert.is(await cloud.findImage(name), null, 'not prepared yet');
      const builder = await cloud.create({ ...base, role: 'build', name: 'bm-b7-6a6a', userData: '#!/bin/sh\npoweroff\n' });
      compute.servers.get('bm-b7-6a6a')!.state = 'stopped';
      const snap = await cloud.snapshot(builder.id, name, { intervalMs: 1 });
      await cloud.destroy(builder.id);

      const found = await cloud.findImage(name);
      assert.equal(found, { id: snap, name });
      const ws = await cloud.create({ ...base, name: 'ws-b7-6b6b', image: found!.id });
      const post = fake.log.filter((l) => l.method === 'POST' && l.path === '/instances').at(-1)!.body as Record<string, unknown>;
      assert.is(post.snapshot_id, snap);
      assert.not.ok('os_id' in post);
      assert.is(compute.created.at(-1)?.image, 'snap-1', "the backing's image of the Vultr snapshot");
      assert.is(compute.servers.get('ws-b7-6b6b')?.image, 'snap-1');
      assert.is((await cloud.waitUntilRunning(ws.id, { intervalMs: 1, timeoutMs: 5_000 })).state, 'running');
    });
  },
);

images('a backing snapshot that fails after the answer is a deleted snapshot, which the driver reports', async () => {
  const b = testBacking();
  let fail: (e: Error) => void = () => {};
  // A snapshot that goes on past the answer, then fails (a copy that broke).
  (b.compute as SnapshottingCompute).snapshot = () => new Promise<string>((_resolve, reject) => (fail = reject));
  await withBacked(async ({ fake, cloud }) => {
    const s = await cloud.create({ ...base, role: 'build', name: 'bm-b7-4d4d' });
    const made = cloud.snapshot(s.id, 'adt-webserver-ffff', { intervalMs: 5, timeoutMs: 10_000 });
    for (let i = 0; i < 400 && fake.state.snapshots.size === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const [pending] = [...fake.state.snapshots.values()];
    assert.is(pending?.status, 'pending');
    assert.is(await cloud.findImage('adt-webserver-ffff'), null, 'not found while pending');
    // Not complete: no instance from it yet (guessed message).
    await rejects(cloud.create({ ...base, name: 'ws-b7-5e5e', image: pending!.id }), /HTTP 400: Snapshot .* is pending/);
    fail(new Error('copying the disk failed'));
    await rejects(made, { code: 'SNAPSHOT_FAILED', message: /was deleted before it completed/ });
    assert.is(fake.state.snapshots.get(pending!.id)?.status, 'deleted');
    assert.is(fake.state.backingImages.size, 0);
  }, b);
});

state('a state saved before snapshots were backed (no backingImages) loads', async () => {
  const b = testBacking();
  let saved = '';
  await withBacked(async ({ fake, cloud }) => {
    await cloud.create({ ...base, name: 'ws-b7-7a7a' });
    const { backingImages: _b, ...old } = fake.exportState();
    saved = JSON.stringify(old);
  }, b);
  await withBacked(async ({ fake, cloud }) => {
    fake.importState(JSON.parse(saved) as Omit<ReturnType<typeof fake.exportState>, 'backingImages'>);
    assert.is((await cloud.list({ buildId: 'b7' })).length, 1);
    assert.is(fake.state.backingImages.size, 0);
  }, b);
});

state('authorize replaces the bearer key check', async () => {
  const b = testBacking();
  const fake = vultrFake({
    backing: b.backing,
    authorize: (req) =>
      req.headers.authorization === 'Bearer cloud-token' ? null : { status: 403, body: { error: 'scoped', status: 403 } },
  });
  const baseUrl = await fake.listen();
  try {
    const good = vultrDriver({ apiKey: 'cloud-token', baseUrl, region: 'ams', size: 'vc2-1c-2gb', baseDelayMs: 5 });
    assert.equal(await good.list(), []);
    const bad = vultrDriver({ apiKey: 'vultr-test-key', baseUrl, region: 'ams', size: 'vc2-1c-2gb', baseDelayMs: 5 });
    await rejects(bad.list(), /403/);
  } finally {
    await fake.close();
  }
});

instances.run();
firewalls.run();
dns.run();
images.run();
state.run();
