/**
 * Cloudflare DNS (the official `cloudflare` package) against the fake API (always) and against the
 * real API when CLOUDFLARE_API_TOKEN and CLOUDFLARE_TEST_ZONE are set.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '@adt/test-utils';
import cloudflareDriver from '../../src/drivers/cloudflare.ts';
import { cloudflareFake } from '../../src/fakes/cloudflare.ts';

const TOKEN = 'cf-test-token-91c2';

const test = suite<{ fake: ReturnType<typeof cloudflareFake>; baseUrl: string }>('cloudflare dns (fake API, official package)');

test.before.each(async (ctx) => {
  ctx.fake = cloudflareFake({ token: TOKEN });
  ctx.baseUrl = await ctx.fake.listen();
});
test.after.each(async (ctx) => {
  await ctx.fake.close();
});

test('round robin: proxied A records added once, listed across pages, removed; absent is not an error', async ({ fake, baseUrl }) => {
  fake.addZone('example.com');
  const dns = cloudflareDriver({ apiToken: TOKEN, zone: 'example.com', baseUrl, maxRetries: 2 });
  await dns.ensureZone('example.com');
  for (let i = 1; i <= 120; i++) await dns.addA('www.example.com', `198.51.100.${i}`);
  await dns.addA('www.example.com', '198.51.100.7');
  await dns.addA('other.example.com', '198.51.100.200');
  const listed = await dns.listA('www.example.com');
  assert.is(listed.length, 120, 'all 120, across two pages of 100');
  assert.ok(
    listed.every((r) => r.ttl === 1 && r.name === 'www.example.com'),
    'proxied records have the automatic TTL',
  );
  const created = fake.log.find((l) => l.method === 'POST')!.body as Record<string, unknown>;
  assert.equal(created, { type: 'A', name: 'www.example.com', content: '198.51.100.1', proxied: true, ttl: 1, comment: 'adt webserver' });
  assert.ok(
    fake.log.some((l) => l.method === 'GET' && /name\.exact=www\.example\.com/.test(l.query)),
    'the exact-name filter is used',
  );
  await dns.removeA('www.example.com', '198.51.100.7');
  await dns.removeA('www.example.com', '198.51.100.7');
  await dns.removeA('nothing.example.com', '198.51.100.7');
  assert.is((await dns.listA('www.example.com')).length, 119);
  assert.is((await dns.listA('other.example.com')).length, 1);
});

test("unproxied records keep their TTL (at least Cloudflare's 60 s)", async ({ fake, baseUrl }) => {
  fake.addZone('example.com');
  const dns = cloudflareDriver({ apiToken: TOKEN, zone: 'example.com', baseUrl, proxied: false });
  await dns.addA('example.com', '198.51.100.1', 300);
  await dns.addA('a.example.com', '198.51.100.2', 30);
  assert.equal(
    (await dns.listA('example.com')).map((r) => r.ttl),
    [300],
  );
  assert.equal(
    (await dns.listA('a.example.com')).map((r) => r.ttl),
    [60],
  );
});

test('a 429 and a 500 mid-operation are retried by the package; the record is made once', async ({ fake, baseUrl }) => {
  fake.addZone('example.com');
  const dns = cloudflareDriver({ apiToken: TOKEN, zone: 'example.com', baseUrl, maxRetries: 3 });
  fake.fail({ match: 'GET /zones/', status: 429, headers: { 'retry-after': '0' } });
  fake.fail({ match: 'POST /zones/', status: 500 });
  await dns.addA('www.example.com', '198.51.100.9');
  assert.equal(
    (await dns.listA('www.example.com')).map((r) => r.content),
    ['198.51.100.9'],
  );
  const statuses = fake.log.map((l) => l.status);
  assert.ok(statuses.includes(429) && statuses.includes(500), statuses.join(','));
});

test('a missing zone, a name outside it and a bad token are clear errors; the token never shows', async ({ fake, baseUrl }) => {
  const dns = cloudflareDriver({ apiToken: TOKEN, zone: 'example.com', baseUrl });
  await rejects(dns.addA('www.example.com', '198.51.100.1'), {
    message: /zone example\.com is not in this Cloudflare account/,
    exitCode: 2,
  });
  await rejects(dns.ensureZone('example.com'), /no account id/);
  const created = cloudflareDriver({ apiToken: TOKEN, zone: 'example.com', baseUrl, accountId: 'acc1' });
  await created.ensureZone('example.com');
  assert.is([...fake.state.zones.values()][0]!.name, 'example.com');
  await rejects(created.addA('www.elsewhere.org', '198.51.100.1'), { exitCode: 2 });
  const badToken = cloudflareDriver({ apiToken: 'not-the-token-5a', zone: 'example.com', baseUrl, maxRetries: 0 });
  const e = await rejects(badToken.listA('www.example.com'), {
    code: 'UNAUTHORIZED',
    message: /HTTP 401: 10000 Authentication error \(check the API token/,
  });
  assert.not.ok(e.message.includes('not-the-token-5a'));
});

test.run();

// ---

const real = suite('cloudflare dns (real API)');
const token = process.env.CLOUDFLARE_API_TOKEN;
const zone = process.env.CLOUDFLARE_TEST_ZONE;
if (!token || !zone) {
  console.log('SKIPPED cloudflare dns (real API): set CLOUDFLARE_API_TOKEN and CLOUDFLARE_TEST_ZONE to run it against the real API');
} else {
  real('records are added, listed and removed for real', async () => {
    const dns = cloudflareDriver({ apiToken: token, zone, proxied: false });
    const name = `adt-test-${Date.now().toString(36)}.${zone}`;
    await dns.addA(name, '192.0.2.10', 60);
    assert.equal(
      (await dns.listA(name)).map((r) => r.content),
      ['192.0.2.10'],
    );
    await dns.removeA(name, '192.0.2.10');
    assert.equal(await dns.listA(name), []);
  });
  real.run();
}
