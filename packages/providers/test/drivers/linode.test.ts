/**
 * Linode drivers against the fake API (always) and the real API when LINODE_TOKEN and
 * LINODE_TEST_ZONE are set (it creates and destroys real, billed resources).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import linodeDriver from '../../src/drivers/linode.ts';
import { linodeFake, linodeRateLimit } from '../../src/fakes/linode.ts';
import { cloudConformance } from './_cloud-conformance.ts';

const TOKEN = 'linode-test-token-e81b';

cloudConformance({
  title: 'linode drivers (fake API)',
  createPath: 'POST /linode/instances',
  listPath: 'GET /linode/instances',
  pageSize: 25,
  setup: async () => {
    const fake = linodeFake({ token: TOKEN });
    const baseUrl = await fake.listen();
    const cloud = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-standard-1', pageSize: 25, baseDelayMs: 5, maxDelayMs: 50 });
    const zone = 'example.com';
    return { compute: cloud, firewall: cloud.firewall, dns: cloud.dns(zone), databases: cloud.databases, zone, fake, rateLimited: linodeRateLimit(0), secret: TOKEN, close: () => fake.close() };
  },
});

const realToken = process.env.LINODE_TOKEN;
const realZone = process.env.LINODE_TEST_ZONE;
cloudConformance({
  title: 'linode drivers (real API)',
  createPath: 'POST /linode/instances',
  listPath: 'GET /linode/instances',
  waitMs: 600_000,
  intervalMs: 5_000,
  skip: !realToken || !realZone ? 'set LINODE_TOKEN and LINODE_TEST_ZONE to run it against the real API (creates billed resources)' : false,
  setup: async () => {
    const cloud = linodeDriver({ token: realToken!, region: process.env.LINODE_TEST_REGION ?? 'eu-west', size: 'g6-nanode-1' });
    return { compute: cloud, firewall: cloud.firewall, dns: cloud.dns(realZone!), databases: cloud.databases, zone: realZone!, secret: realToken!, close: async () => {} };
  },
});

// ---

const test = suite('linode specifics (fake API)');

test('requests follow the documented shapes: base64 user-data, a random root password, X-Filter, firewall by devices, relative record names', async () => {
  const fake = linodeFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    const cloud = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-standard-1', baseDelayMs: 5 });
    const first = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\necho hi\n' });
    const post = fake.log.find((l) => l.method === 'POST' && l.path === '/linode/instances')!.body as Record<string, unknown>;
    assert.equal(post.tags, ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver']);
    assert.is(Buffer.from((post.metadata as { user_data: string }).user_data, 'base64').toString(), '#!/bin/sh\necho hi\n');
    assert.match(String(post.root_pass), /^.{32,}$/);
    assert.is(post.image, 'linode/debian12');
    assert.is(post.private_ip, true);
    assert.is(post.firewall_id, undefined, 'no firewall for the role yet');
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'] }, { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1'] }]);
    const fw = [...fake.state.firewalls.values()][0]!;
    assert.is(fw.label, 'adt-b7-ws');
    assert.equal(fw.devices, [Number(first.id)], 'the existing webserver is attached');
    const inbound = (fw.rules as { inbound: { protocol: string; ports: string; addresses: { ipv4?: string[]; ipv6?: string[] } }[]; inbound_policy: string }).inbound;
    assert.equal(inbound.map((r) => `${r.protocol} ${r.ports} ${r.addresses.ipv4?.join(',')} ${r.addresses.ipv6?.join(',') ?? ''}`), ['TCP 443 0.0.0.0/0 ::/0', 'TCP 8000-8010 198.51.100.1/32 ']);
    assert.is((fw.rules as { inbound_policy: string }).inbound_policy, 'DROP');
    const second = await cloud.create({ name: 'ws-b7-5678', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    assert.equal(fw.devices, [Number(first.id), Number(second.id)], 'a new webserver is created inside the firewall');
    assert.ok(fake.log.some((l) => l.path === '/linode/instances' && l.method === 'GET'), 'lists use X-Filter');
    const dns = cloud.dns('example.com', 10);
    await dns.ensureZone('example.com');
    await dns.addA('www.example.com', '198.51.100.4');
    await dns.addA('example.com', '198.51.100.5');
    const d = [...fake.state.domains.values()][0]!;
    assert.is(d.soa_email, 'hostmaster@example.com');
    assert.equal(d.records.map((r) => `${r.name}=${r.target}/${r.ttl_sec}`), ['www=198.51.100.4/30', '=198.51.100.5/30']);
  } finally {
    await fake.close();
  }
});

test('a rate limit is waited out for the time Retry-After asks; an image is made from the boot disk', async () => {
  const fake = linodeFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    const retries: number[] = [];
    const cloud = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-nanode-1', baseDelayMs: 5, maxDelayMs: 5_000, onRetry: (i) => retries.push(i.delayMs) });
    fake.fail({ match: 'GET /linode/instances', ...linodeRateLimit(1) });
    assert.equal(await cloud.list(), []);
    assert.equal(retries, [1000]);
    const s = await cloud.create({ name: 'ws-b8-abcd', role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n' });
    assert.match(await cloud.snapshot(s.id, 'adt-b8-webserver', { intervalMs: 1 }), /^private\/\d+$/);
    const image = fake.log.find((l) => l.method === 'POST' && l.path === '/images')!.body as { disk_id: number };
    assert.is(image.disk_id, Number(s.id) * 10, 'the boot disk, not the swap');
  } finally {
    await fake.close();
  }
});

test('a wrong token is refused with the provider\'s message, never retried, never echoed; field errors are quoted', async () => {
  const fake = linodeFake({ token: TOKEN });
  const baseUrl = await fake.listen();
  try {
    const bad = linodeDriver({ token: 'wrong-token-xyz', baseUrl, region: 'eu-west', size: 'g6-nanode-1', baseDelayMs: 5 });
    const e = await bad.list().then(() => null, (x: Error & { code?: string }) => x);
    assert.is(e?.code, 'UNAUTHORIZED');
    assert.match(e!.message, /HTTP 401: Invalid Token/);
    assert.not.ok(e!.message.includes('wrong-token-xyz'));
    assert.is(fake.log.length, 1);
    const cloud = linodeDriver({ token: TOKEN, baseUrl, region: 'eu-west', size: 'g6-nanode-1', baseDelayMs: 5 });
    await cloud.create({ name: 'ws-b9-abcd', role: 'webserver', buildId: 'b9', userData: '#!/bin/sh\n' });
    const dup = await cloud.create({ name: 'ws-b9-abcd', role: 'webserver', buildId: 'b9', userData: '#!/bin/sh\n' }).then(() => null, (x: Error & { exitCode?: number }) => x);
    assert.match(dup!.message, /HTTP 400: label: Label must be unique among your Linodes/);
  } finally {
    await fake.close();
  }
});

test.run();
