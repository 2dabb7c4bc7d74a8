/** Cloudflare's list: bundled, refreshed through an injected fetch (Cloudflare is not reachable here), validated, never empty. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BUNDLED_CLOUDFLARE, parseRangeList, refreshCloudflareRanges } from '../src/index.ts';

const fakeFetch = (bodies: Record<string, string | number | Error>): typeof fetch =>
  (async (url: string | URL | Request) => {
    const b = bodies[String(url)];
    if (b instanceof Error) throw b;
    if (typeof b === 'number') return new Response('error', { status: b });
    return new Response(b ?? '', { status: 200 });
  }) as typeof fetch;

const test = suite('Cloudflare ranges');

test('the bundled list is well-formed and not empty', () => {
  assert.ok(parseRangeList(BUNDLED_CLOUDFLARE.v4.join('\n'), 4).length >= 10);
  assert.ok(parseRangeList(BUNDLED_CLOUDFLARE.v6.join('\n'), 6).length >= 5);
});

test('a good published list replaces the bundled one', async () => {
  const r = await refreshCloudflareRanges(
    fakeFetch({
      'https://www.cloudflare.com/ips-v4': '173.245.48.0/20\n103.21.244.0/22\n',
      'https://www.cloudflare.com/ips-v6': '2400:cb00::/32\n',
    }),
  );
  assert.equal(r.v4, ['173.245.48.0/20', '103.21.244.0/22']);
  assert.equal(r.v6, ['2400:cb00::/32']);
  assert.match(r.source, /^fetched /);
});

test('an unreachable, failing, empty or malformed answer keeps the bundled list and says why', async () => {
  for (const [bodies, why] of [
    [{ 'https://www.cloudflare.com/ips-v4': new Error('getaddrinfo ENOTFOUND') }, /ENOTFOUND/],
    [{ 'https://www.cloudflare.com/ips-v4': 503 }, /HTTP 503/],
    [{ 'https://www.cloudflare.com/ips-v4': '', 'https://www.cloudflare.com/ips-v6': '2400:cb00::/32' }, /empty/],
    [
      { 'https://www.cloudflare.com/ips-v4': '<html>captive portal</html>', 'https://www.cloudflare.com/ips-v6': '2400:cb00::/32' },
      /not an IPv4 CIDR/,
    ],
  ] as const) {
    const r = await refreshCloudflareRanges(fakeFetch(bodies as Record<string, string | number | Error>));
    assert.equal(r.v4, [...BUNDLED_CLOUDFLARE.v4]);
    assert.match(r.source, /^bundled list of \d{4}-\d{2}-\d{2}/);
    assert.match(r.source, why);
  }
});

test.run();
