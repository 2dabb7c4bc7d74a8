/** The deployment file's rules and the user-data, as data. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { isAdtError } from '@adt/core';
import { throws } from '@adt/test-utils';
import { exampleFile, readDeployment, zoneOf, VARIABLE_NAMES } from '../src/settings.ts';

const test = suite('deployment settings');
const example = join(resolve(import.meta.dirname, '../../..'), 'roles/build/deployment.example.env');

test('the example file is the one the settings table makes (npm run example-env), and says exactly the defaults', () => {
  assert.is(readFileSync(example, 'utf8'), exampleFile(), 'roles/build/deployment.example.env is current: run npm run example-env');
  assert.equal(readDeployment(example, {}), { ...readDeployment(undefined, {}), source: example });
  const d = readDeployment(undefined, {});
  assert.is(d.siteUrl, 'https://www.adt.test/');
  assert.is(d.configBucket, 'www-adt-test-config-dev1');
  assert.is(VARIABLE_NAMES.length, 53);
  const text = readFileSync(example, 'utf8');
  for (const name of VARIABLE_NAMES) assert.match(text, new RegExp(`^${name}=`, 'm'), `${name} documented in the example file`);
});

test('the environment sets variables (ADT_<NAME>); a file wins over it', () => {
  const d = readDeployment(undefined, { ADT_SITE_URL: 'shop.example.org', ADT_BUILD_ID: 'b2' });
  assert.is(d.host, 'shop.example.org');
  assert.is(d.configBucket, 'shop-example-org-config-b2');
  assert.is(readDeployment(example, { ADT_BUILD_ID: 'b2' }).buildId, 'dev1');
});

test('not-yet-built choices are refused with what is possible', () => {
  {
    const e = throws(
      () =>
        readDeployment(undefined, {
          ADT_MODE: 'staging',
          ADT_WEBSERVER: 'lighttpd',
          ADT_PROVIDER: 'hetzner',
          ADT_READY_TIMEOUT: '5',
          ADT_LOCAL_PRIVATE_CIDR: '198.18.0.0/24',
        }),
      { exitCode: 2 },
    );
    assert.ok(isAdtError(e));
    assert.is((e as { exitCode: number }).exitCode, 2);
    const m = (e as Error).message;
    for (const s of [
      'MODE="staging": one of "development", "production"',
      'WEBSERVER="lighttpd": one of "nginx", "apache"',
      'PROVIDER="hetzner": one of "local", "digitalocean", "linode", "vultr", "exoscale"',
      'READY_TIMEOUT="5"',
      'LOCAL_PRIVATE_CIDR="198.18.0.0/24": must differ',
    ])
      assert.ok(m.includes(s), `${s} in ${m}`);
  }
});

test('a real cloud: its defaults, and what it requires (build machine address, ACME with a contact)', () => {
  const d = readDeployment(undefined, {
    ADT_PROVIDER: 'linode',
    ADT_BUILD_MACHINE_IP: '203.0.113.10',
    ADT_TLS: 'acme',
    ADT_ACME_EMAIL: 'Ops@Example.com',
    ADT_DATABASE_SERVICE: 'managed',
  });
  assert.equal(
    [d.provider, d.region, d.serverSize, d.dnsProvider, d.databaseService, d.buildMachineIp],
    ['linode', 'eu-west', 'g6-standard-1', 'linode', 'managed', '203.0.113.10'],
  );
  assert.equal(d.tls, {
    mode: 'acme',
    acmeServer: 'https://acme-v02.api.letsencrypt.org/directory',
    acmeEmail: 'ops@example.com',
    renewDays: 30,
  });
  assert.is(
    readDeployment(undefined, {
      ADT_PROVIDER: 'vultr',
      ADT_BUILD_MACHINE_IP: '203.0.113.10',
      ADT_TLS: 'acme',
      ADT_ACME_EMAIL: 'a@b.org',
      ADT_DNS_PROVIDER: 'cloudflare',
    }).dnsProvider,
    'cloudflare',
  );
  const local = readDeployment(undefined, {});
  assert.equal([local.region, local.serverSize, local.dnsProvider, local.tls.mode], ['local', 'small', 'powerdns', 'local-ca']);
  {
    const e = throws(
      () =>
        readDeployment(undefined, {
          ADT_PROVIDER: 'digitalocean',
          ADT_DNS_PROVIDER: 'powerdns',
          ADT_REGION: 'local',
          ADT_TLS_RENEW_DAYS: '90',
          ADT_ACME_SERVER: 'http://insecure/dir',
        }),
      { exitCode: 2 },
    );
    assert.is((e as { exitCode: number }).exitCode, 2);
    const m = (e as Error).message;
    for (const s of [
      'DNS_PROVIDER="powerdns": "digitalocean" (the cloud\'s DNS) or "cloudflare"',
      'REGION="local": a digitalocean region, such as lon1',
      'BUILD_MACHINE_IP="": with PROVIDER=digitalocean',
      'TLS="local-ca": with PROVIDER=digitalocean',
      'ACME_SERVER="http://insecure/dir"',
      'TLS_RENEW_DAYS="90"',
    ])
      assert.ok(m.includes(s), `${s} in ${m}`);
  }
  {
    const e = throws(
      () =>
        readDeployment(undefined, {
          ADT_DATABASE_SERVICE: 'managed',
          ADT_BUILD_MACHINE_IP: '203.0.113.10',
          ADT_DNS_PROVIDER: 'cloudflare',
        }),
      { exitCode: 2 },
    );
    const m = (e as Error).message;
    for (const s of [
      'DATABASE_SERVICE="managed": a managed database needs a cloud PROVIDER',
      'BUILD_MACHINE_IP="203.0.113.10": only for a cloud PROVIDER',
      'DNS_PROVIDER="cloudflare": "powerdns" with PROVIDER=local',
    ])
      assert.ok(m.includes(s), `${s} in ${m}`);
  }
});

test('production settings: counts within their bounds, a schedule of HH:MM=N', () => {
  const d = readDeployment(undefined, {
    ADT_MODE: 'production',
    ADT_AUTOSCALERS: '3',
    ADT_WEBSERVERS: '10',
    ADT_SCALING_SCHEDULE: '08:30=10; 17:30=3',
  });
  assert.is(d.mode, 'production');
  assert.equal(d.scaling.schedule, { '08:30': 10, '17:30': 3 });
  {
    const e = throws(
      () =>
        readDeployment(undefined, {
          ADT_MODE: 'production',
          ADT_AUTOSCALERS: '0',
          ADT_WEBSERVERS: '11',
          ADT_SCALING_SCHEDULE: '25:00=3',
          ADT_CLOUD_API_PORT: '9700',
        }),
      { exitCode: 2 },
    );
    const m = (e as Error).message;
    for (const s of [
      'AUTOSCALERS="0"',
      'WEBSERVERS="11": webservers at deploy (at most MAX_WEBSERVERS), a whole number from 0 to 10',
      'SCALING_SCHEDULE item "25:00=3"',
      'CLOUD_API_PORT="9700": must differ from S3_PORT',
    ])
      assert.ok(m.includes(s), `${s} in ${m}`);
  }
});

test("auth settings: an allow-list of addresses, admins among them, a name in the site's zone", () => {
  const d = readDeployment(undefined, { ADT_WEB_FIREWALL: 'auth', ADT_AUTH_ALLOW: 'Ann@adt.test, bob@adt.test' });
  assert.equal(d.auth, {
    allow: ['ann@adt.test', 'bob@adt.test'],
    admins: ['ann@adt.test'],
    grantMinutes: 480,
    linkMinutes: 15,
    host: 'auth.adt.test',
    smtp: null,
    from: 'auth@adt.test',
  });
  {
    const e = throws(
      () =>
        readDeployment(undefined, {
          ADT_WEB_FIREWALL: 'auth',
          ADT_AUTH_ALLOW: 'not-an-address',
          ADT_AUTH_ADMINS: 'eve@adt.test',
          ADT_AUTH_HOST: 'auth.elsewhere.test',
          ADT_SMTP_RELAY: 'mail:99999',
        }),
      { exitCode: 2 },
    );
    const m = (e as Error).message;
    for (const s of [
      'AUTH_ALLOW: "not-an-address"',
      'AUTH_ADMINS: "eve@adt.test" must also be in AUTH_ALLOW',
      'AUTH_HOST="auth.elsewhere.test"',
      'SMTP_RELAY="mail:99999"',
    ])
      assert.ok(m.includes(s), `${s} in ${m}`);
  }
  assert.throws(() => readDeployment(undefined, { ADT_WEB_FIREWALL: 'auth' }), /AUTH_ALLOW="": with WEB_FIREWALL=auth/);
});

test('the zone of a site', () => {
  assert.is(zoneOf('www.adt.test'), 'adt.test');
  assert.is(zoneOf('shop.eu.example.com'), 'eu.example.com');
  assert.is(zoneOf('example.com'), 'example.com');
});

test.run();
