/** lego's command line and environment, as data: every provider's variables, no secret in argv. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { recordingRunner } from '@adt/core';
import { rejects, throws, withTempDir } from '@adt/test-utils';
import { certificateFiles, legoArgv, legoEnv, obtainCertificate, type AcmeDnsAccess } from '../src/lego.ts';

const test = suite('lego argv and environment');
const base = {
  server: 'https://acme-v02.api.letsencrypt.org/directory',
  email: 'ops@example.com',
  domains: ['www.example.com', 'auth.example.com'],
  path: '/var/lib/adt/lego',
  dns: 'cloudflare' as const,
};

test('run and renew command lines', () => {
  assert.is(
    legoArgv(base, 'run').join(' '),
    'lego --server https://acme-v02.api.letsencrypt.org/directory --email ops@example.com --accept-tos --path /var/lib/adt/lego ' +
      '--key-type ec256 --dns cloudflare --domains www.example.com --domains auth.example.com run',
  );
  assert.is(
    legoArgv({ ...base, dns: 'pdns', resolvers: ['198.18.0.1:53'], disablePropagationCheck: true }, 'renew', { days: 20 })
      .join(' ')
      .split(' --dns pdns ')[1],
    '--domains www.example.com --domains auth.example.com --dns.resolvers 198.18.0.1:53 --dns.disable-cp renew --days 20 --no-random-sleep',
  );
});

test('bad input is refused before lego runs', () => {
  for (const bad of [{ server: 'http://x/dir' }, { email: 'nobody' }, { domains: [] }, { domains: ['not a name'] }]) {
    throws(() => legoArgv({ ...base, ...bad }, 'run'), { exitCode: 2 }, JSON.stringify(bad));
  }
});

test("each DNS provider's credentials go in lego's environment, never in its argv", () => {
  const cases: [AcmeDnsAccess, Record<string, string>][] = [
    [{ provider: 'cloudflare', apiToken: 's1' }, { CF_DNS_API_TOKEN: 's1' }],
    [{ provider: 'digitalocean', token: 's2' }, { DO_AUTH_TOKEN: 's2' }],
    [
      { provider: 'digitalocean', token: 's2', apiUrl: 'http://127.0.0.1:8080' },
      { DO_AUTH_TOKEN: 's2', DO_API_URL: 'http://127.0.0.1:8080' },
    ],
    [{ provider: 'linode', token: 's3' }, { LINODE_TOKEN: 's3' }],
    [{ provider: 'vultr', apiKey: 's4' }, { VULTR_API_KEY: 's4' }],
    [
      { provider: 'exoscale', apiKey: 's5', apiSecret: 's6' },
      { EXOSCALE_API_KEY: 's5', EXOSCALE_API_SECRET: 's6' },
    ],
  ];
  for (const [access, env] of cases) {
    assert.equal(legoEnv(access), env);
    const argv = legoArgv({ ...base, dns: access.provider }, 'run').join(' ');
    for (const v of Object.values(env)) assert.not.ok(argv.includes(v));
  }
  assert.equal(legoEnv({ provider: 'pdns', apiUrl: 'http://198.18.0.1:8081', apiKey: 'k' }, '/x/ca.crt'), {
    PDNS_API_URL: 'http://198.18.0.1:8081',
    PDNS_API_KEY: 'k',
    PDNS_PROPAGATION_TIMEOUT: '60',
    PDNS_POLLING_INTERVAL: '1',
    PDNS_TTL: '60',
    LEGO_CA_CERTIFICATES: '/x/ca.crt',
  });
  assert.is(legoEnv({ provider: 'pdns', apiUrl: 'http://h:8081', apiKey: 'k', serverName: 'ns1' }).PDNS_SERVER_NAME, 'ns1');
  const argv = legoArgv({ ...base, dns: 'pdns' }, 'run').join(' ');
  assert.not.ok(argv.includes('PDNS') || argv.includes('198.18.0.1:8081'), 'neither the key nor the API URL');
});

test("a failed run quotes lego's last lines with every credential value removed", () =>
  withTempDir('acme-unit', async (path) => {
    // A real lego never prints the token; a fake one does, to prove the message would not.
    const runner = recordingRunner(() => ({
      exitCode: 1,
      stderr: 'acme: error presenting token\nCloudflare said: bad token sEcReT-tok3n (403)\n',
    }));
    const obtained = obtainCertificate({ ...base, path, access: { provider: 'cloudflare', apiToken: 'sEcReT-tok3n' }, runner });
    const e = await rejects(obtained, {
      code: 'ACME_FAILED',
      message: /could not obtain a certificate for www\.example\.com, auth\.example\.com .*exit 1/,
    });
    assert.match(e.message, /bad token <secret> \(403\)/);
    assert.not.ok(e.message.includes('sEcReT-tok3n'));
    assert.is(runner.calls.length, 1);
    assert.is(runner.calls[0]!.argv.at(-1), 'run', 'no certificate yet: lego run');
  }));

test('obtainCertificate refuses bad input before lego runs', async () => {
  const runner = recordingRunner();
  for (const bad of [{ domains: ['../etc/x'] }, { trustedRoot: 'not a certificate' }]) {
    const obtained = obtainCertificate({
      ...base,
      path: '/nonexistent',
      access: { provider: 'cloudflare', apiToken: 't' },
      runner,
      ...bad,
    });
    await rejects(obtained, { exitCode: 2 }, JSON.stringify(bad));
  }
  assert.is(runner.calls.length, 0);
});

test("lego's file names, wildcards included", () => {
  assert.is(certificateFiles('/p', 'www.example.com').crt, '/p/certificates/www.example.com.crt');
  assert.is(certificateFiles('/p', '*.example.com').key, '/p/certificates/_.example.com.key');
});

test.run();
