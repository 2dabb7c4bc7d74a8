/**
 * Vultr drivers against the fake API (always) and the real API when VULTR_API_KEY and
 * VULTR_TEST_ZONE are set (it creates and destroys real, billed resources).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import vultrDriver from '../../src/drivers/vultr.ts';
import { vultrFake, vultrRateLimit } from '../../src/fakes/vultr.ts';
import { cloudConformance } from './_cloud-conformance.ts';

const KEY = 'vultr-test-key-5d20';

cloudConformance({
  title: 'vultr drivers (fake API)',
  createPath: 'POST /instances',
  listPath: 'GET /instances',
  pageSize: 2,
  setup: async () => {
    const fake = vultrFake({ apiKey: KEY });
    const baseUrl = await fake.listen();
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'lhr', size: 'vc2-1c-2gb', perPage: 2, baseDelayMs: 5, maxDelayMs: 50 });
    const zone = 'example.com';
    return { compute: cloud, firewall: cloud.firewall, dns: cloud.dns(zone), databases: cloud.databases, zone, fake, rateLimited: vultrRateLimit(), secret: KEY, close: () => fake.close() };
  },
});

const realKey = process.env.VULTR_API_KEY;
const realZone = process.env.VULTR_TEST_ZONE;
cloudConformance({
  title: 'vultr drivers (real API)',
  createPath: 'POST /instances',
  listPath: 'GET /instances',
  waitMs: 600_000,
  intervalMs: 5_000,
  skip: !realKey || !realZone ? 'set VULTR_API_KEY and VULTR_TEST_ZONE to run it against the real API (creates billed resources)' : false,
  setup: async () => {
    const cloud = vultrDriver({ apiKey: realKey!, region: process.env.VULTR_TEST_REGION ?? 'lhr', size: 'vc2-1c-1gb' });
    return { compute: cloud, firewall: cloud.firewall, dns: cloud.dns(realZone!), databases: cloud.databases, zone: realZone!, secret: realKey!, close: async () => {} };
  },
});

// ---

const test = suite('vultr specifics (fake API)');

test('requests follow the documented shapes: base64 user-data, Debian 12, a firewall group per role with from:to ports, cursor pages', async () => {
  const fake = vultrFake({ apiKey: KEY });
  const baseUrl = await fake.listen();
  try {
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'lhr', size: 'vc2-1c-2gb', baseDelayMs: 5 });
    const first = await cloud.create({ name: 'ws-b7-1234', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\necho hi\n' });
    const post = fake.log.find((l) => l.method === 'POST' && l.path === '/instances')!.body as Record<string, unknown>;
    assert.equal(post.tags, ['adt', 'adt-role-webserver', 'adt-build-b7', 'adt-b7-webserver']);
    assert.is(Buffer.from(String(post.user_data), 'base64').toString(), '#!/bin/sh\necho hi\n');
    assert.is(post.os_id, 2136);
    assert.is(post.enable_vpc, true);
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['0.0.0.0/0', '::/0'] }, { protocol: 'tcp', port: [8000, 8010], sources: ['198.51.100.1'] }]);
    const group = [...fake.state.groups.values()][0]!;
    assert.is(group.description, 'adt-b7-webserver');
    assert.equal(group.rules.map((r) => `${r.ip_type} ${r.protocol} ${r.port} ${r.subnet}/${r.subnet_size}`), ['v4 tcp 443 0.0.0.0/0', 'v6 tcp 443 ::/0', 'v4 tcp 8000:8010 198.51.100.1/32']);
    assert.is(fake.state.instances.get(first.id)!.firewall_group_id, group.id, 'the existing webserver moved into the group');
    // Replacing: the new rule is added before the old ones go.
    fake.log.length = 0;
    await cloud.firewall.apply('b7', 'webserver', [{ protocol: 'tcp', port: 443, sources: ['198.51.100.9/32'] }]);
    const writes = fake.log.filter((l) => l.method !== 'GET').map((l) => l.method);
    assert.equal(writes, ['POST', 'DELETE', 'DELETE', 'DELETE']);
    const second = await cloud.create({ name: 'ws-b7-5678', role: 'webserver', buildId: 'b7', userData: '#!/bin/sh\n' });
    assert.is(fake.state.instances.get(second.id)!.firewall_group_id, group.id, 'a new webserver is created in the group');
    const running = await cloud.waitUntilRunning(second.id, { intervalMs: 1 });
    assert.match(running.privateIp ?? '', /^198\.18\.130\.\d+$/, 'the VPC address');
  } finally {
    await fake.close();
  }
});

test('a 429 without a wait header is backed off; a wrong key is refused with Vultr\'s message, never echoed', async () => {
  const fake = vultrFake({ apiKey: KEY });
  const baseUrl = await fake.listen();
  try {
    const retries: number[] = [];
    const cloud = vultrDriver({ apiKey: KEY, baseUrl, region: 'lhr', size: 's', baseDelayMs: 5, maxDelayMs: 50, onRetry: (i) => retries.push(i.status ?? 0) });
    fake.fail({ match: 'GET /instances', ...vultrRateLimit(), times: 2 });
    assert.equal(await cloud.list(), []);
    assert.equal(retries, [429, 429]);
    const bad = vultrDriver({ apiKey: 'wrong-key-xyz', baseUrl, region: 'lhr', size: 's', baseDelayMs: 5 });
    const e = await bad.list().then(() => null, (x: Error & { code?: string }) => x);
    assert.is(e?.code, 'UNAUTHORIZED');
    assert.match(e!.message, /HTTP 401: Invalid API token\./);
    assert.not.ok(e!.message.includes('wrong-key-xyz'));
    const s = await cloud.create({ name: 'ws-b8-abcd', role: 'webserver', buildId: 'b8', userData: '#!/bin/sh\n' });
    assert.match(await cloud.snapshot(s.id, 'adt-b8-webserver', { intervalMs: 1 }), /^[0-9a-f-]{36}$/);
  } finally {
    await fake.close();
  }
});

test.run();
