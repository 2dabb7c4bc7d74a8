/** lego's command line and environment, as data: every provider's variables, no secret in argv. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { certificateFiles, legoArgv, legoEnv, type AcmeDnsAccess } from '../src/lego.ts';

const test = suite('lego argv and environment');
const base = { server: 'https://acme-v02.api.letsencrypt.org/directory', email: 'ops@example.com', domains: ['www.example.com', 'auth.example.com'], path: '/var/lib/adt/lego', dns: 'cloudflare' as const };

test('run and renew command lines', () => {
  assert.is(legoArgv(base, 'run').join(' '), 'lego --server https://acme-v02.api.letsencrypt.org/directory --email ops@example.com --accept-tos --path /var/lib/adt/lego --key-type ec256 --dns cloudflare --domains www.example.com --domains auth.example.com run');
  assert.is(legoArgv({ ...base, dns: 'pdns', resolvers: ['198.18.0.1:53'], disablePropagationCheck: true }, 'renew', { days: 20 }).join(' ').split(' --dns pdns ')[1], '--domains www.example.com --domains auth.example.com --dns.resolvers 198.18.0.1:53 --dns.disable-cp renew --days 20 --no-random-sleep');
});

test('bad input is refused before lego runs', () => {
  for (const bad of [{ server: 'http://x/dir' }, { email: 'nobody' }, { domains: [] }, { domains: ['not a name'] }]) {
    assert.throws(() => legoArgv({ ...base, ...bad }, 'run'), (e: { exitCode?: number }) => e.exitCode === 2);
  }
});

test('each DNS provider\'s credentials go in lego\'s environment, never in its argv', () => {
  const cases: [AcmeDnsAccess, Record<string, string>][] = [
    [{ provider: 'cloudflare', apiToken: 's1' }, { CF_DNS_API_TOKEN: 's1' }],
    [{ provider: 'digitalocean', token: 's2' }, { DO_AUTH_TOKEN: 's2' }],
    [{ provider: 'linode', token: 's3' }, { LINODE_TOKEN: 's3' }],
    [{ provider: 'vultr', apiKey: 's4' }, { VULTR_API_KEY: 's4' }],
    [{ provider: 'exoscale', apiKey: 's5', apiSecret: 's6' }, { EXOSCALE_API_KEY: 's5', EXOSCALE_API_SECRET: 's6' }],
  ];
  for (const [access, env] of cases) {
    assert.equal(legoEnv(access), env);
    const argv = legoArgv({ ...base, dns: access.provider }, 'run').join(' ');
    for (const v of Object.values(env)) assert.not.ok(argv.includes(v));
  }
  const pdns = legoEnv({ provider: 'pdns', apiUrl: 'http://198.18.0.1:8081', apiKey: 'k' }, '/x/ca.crt');
  assert.equal([pdns.PDNS_API_URL, pdns.PDNS_API_KEY, pdns.LEGO_CA_CERTIFICATES], ['http://198.18.0.1:8081', 'k', '/x/ca.crt']);
});

test('lego\'s file names, wildcards included', () => {
  assert.is(certificateFiles('/p', 'www.example.com').crt, '/p/certificates/www.example.com.crt');
  assert.is(certificateFiles('/p', '*.example.com').key, '/p/certificates/_.example.com.key');
});

test.run();
