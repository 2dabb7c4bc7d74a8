/**
 * `deploy --dry-run` on a real cloud: the exact API calls, in the deploy's order, answered by the
 * provider's fake (nothing sent; the object storage played by a throwaway S3 server, nothing under
 * STATE_DIR); credentials and user-data never shown; a real deploy without credentials refused. The JSON is
 * { dryRun, provider, region, size, plan: { configBucket, servers, dns }, apiCalls, s3Calls, acme, commands }.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

const root = join(import.meta.dirname, '../../..');
const SECRET = 'tok-3b9f1c7e5a';

async function dryRun(vars: Record<string, string>, extra: string[] = [], env: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'adt-dry-'));
  try {
    const file = join(dir, 'cloud.env');
    const state = join(dir, 'state');
    await writeFile(
      file,
      Object.entries({ STATE_DIR: state, ...vars })
        .map(([k, v]) => `${k}=${v}`)
        .join('\n'),
    );
    const r = await execa(join(root, 'node_modules/.bin/zx'), [join(root, 'roles/build/deploy.mjs'), '--config', file, ...extra], {
      cwd: root,
      reject: false,
      timeout: 120_000,
      env,
    });
    // A dry run keeps its build's files in a throwaway directory of its own: nothing under STATE_DIR.
    return Object.assign(r, { stateLeft: existsSync(state) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const BASE = {
  SITE_URL: 'www.example.com',
  BUILD_ID: 'prod1',
  BUILD_MACHINE_IP: '203.0.113.10',
  TLS: 'acme',
  ACME_EMAIL: 'ops@example.com',
};
const test = suite('deploy --dry-run on a real cloud');

const SHAPES = {
  digitalocean: {
    server: 'POST /droplets',
    firewall: 'POST /firewalls',
    // The region's default VPC is the fleet's private network: the firewalls are right from the start.
    firewallAgain: null as string | null,
    zone: 'POST /domains',
    db: 'POST /databases',
    record: 'POST /domains/example.com/records',
    userData: (b: Record<string, unknown>) => b.user_data,
  },
  linode: {
    server: 'POST /linode/instances',
    firewall: 'POST /networking/firewalls',
    firewallAgain: 'PUT /networking/firewalls/ID/rules',
    zone: 'POST /domains',
    db: 'POST /databases/mysql/instances',
    record: 'POST /domains/ID/records',
    userData: (b: Record<string, unknown>) => (b.metadata as { user_data: string }).user_data,
  },
  vultr: {
    server: 'POST /instances',
    firewall: 'POST /firewalls/ID/rules',
    firewallAgain: 'POST /firewalls/ID/rules',
    zone: 'POST /domains',
    db: 'POST /databases',
    record: 'POST /domains/example.com/records',
    userData: (b: Record<string, unknown>) => b.user_data,
  },
  exoscale: {
    server: 'POST /instance',
    firewall: 'POST /security-group/ID/rules',
    firewallAgain: 'POST /security-group/ID/rules',
    zone: 'POST /dns-domain',
    db: 'POST /dbaas-mysql/adt-prod1-db',
    record: 'POST /dns-domain/ID/record',
    userData: (b: Record<string, unknown>) => b['user-data'],
  },
} as const;

for (const [provider, shape] of Object.entries(SHAPES)) {
  test(`${provider}: every call in the deploy's order, as JSON, with no secret and no user-data`, async () => {
    const r = await dryRun(
      { ...BASE, PROVIDER: provider, MODE: 'production', WEBSERVERS: '2', DATABASE_SERVICE: 'managed' },
      ['--dry-run', '--json'],
      { DIGITALOCEAN_TOKEN: SECRET, LINODE_TOKEN: SECRET, VULTR_API_KEY: SECRET, EXOSCALE_API_SECRET: SECRET },
    );
    assert.is(r.exitCode, 0, r.stderr);
    assert.not.ok(r.stateLeft, 'nothing under STATE_DIR');
    assert.not.ok(r.stdout.includes(SECRET) || r.stderr.includes(SECRET), 'no credential in the output');
    assert.not.match(r.stdout, /#!\/bin\/sh|ADT_S3_SECRET|datastore\.key|IyEvYmluL3No/, 'no user-data in the output (plain or base64)');
    const out = JSON.parse(r.stdout) as {
      dryRun: boolean;
      provider: string;
      plan: { configBucket: string; servers: { role: string }[]; dns: { zone: string; records: string[] } };
      apiCalls: { method: string; url: string; body?: Record<string, unknown> }[];
      s3Calls: string[];
      acme: string[];
    };
    assert.is(out.dryRun, true);
    assert.is(out.provider, provider);
    assert.is(out.plan.configBucket, 'www-example-com-config-prod1');
    assert.equal(
      out.plan.servers.map((s) => s.role),
      ['database', 'webserver', 'webserver', 'autoscaler'],
    );
    assert.equal(out.plan.dns, { zone: 'example.com', records: Array(2).fill('www.example.com A <webserver public IP>') });
    assert.ok(
      out.s3Calls.some((c) => c.startsWith('CreateBucketCommand www-example-com-config-prod1')),
      'the config bucket, on the throwaway S3 server',
    );
    const writes = out.apiCalls.filter((c) => c.method !== 'GET');
    // Ids (numbers, UUIDs, fw-/db- ids) as ID, without the API's version.
    const ID = /\/[0-9a-f]{8}-[0-9a-f-]{27,}|\/\d+|\/fw-\d+|\/db-\d+/g;
    const kinds = writes.map((c) => `${c.method} ${new URL(c.url).pathname.replace(/^\/v[24]/, '').replace(ID, '/ID')}`);
    // Zone, firewalls, servers, firewalls again with addresses, the database and its allow-list, the records.
    const first = (prefix: string) => kinds.findIndex((k) => k.startsWith(prefix));
    const all = kinds.join('\n');
    for (const k of [shape.zone, shape.firewall, shape.server, shape.firewallAgain, shape.db, shape.record])
      if (k) assert.ok(first(k) >= 0, `${k} in\n${all}`);
    if (!shape.firewallAgain)
      assert.not.ok(
        kinds.some((k) => k.startsWith('PUT /firewalls')),
        `no firewall applied again in\n${all}`,
      );
    assert.ok(first(shape.zone) < first(shape.firewall), all);
    assert.ok(first(shape.firewall) < first(shape.server), all);
    if (shape.firewallAgain) assert.ok(first(shape.server) < kinds.map((k) => k.startsWith(shape.firewallAgain!)).lastIndexOf(true), all);
    assert.ok(first(shape.db) < first(shape.record), all);
    assert.is(kinds.filter((k) => k === shape.server).length, 4);
    assert.is(kinds.filter((k) => k.startsWith(shape.record)).length, 2);
    for (const c of writes.filter((x) => `${x.method} ${new URL(x.url).pathname}`.endsWith(shape.server.split(' ')[1]!)))
      assert.match(String(shape.userData(c.body!)), /^<\d+ bytes, not shown>$/);
    assert.match(
      out.acme[0]!,
      new RegExp(
        `lego --server https://acme-v02\\.api\\.letsencrypt\\.org/directory --email ops@example\\.com --accept-tos ` +
          `--path \\S+ --key-type ec256 ` +
          `--dns ${provider} --domains www\\.example\\.com run`,
      ),
    );
  });
}

test('a readable list: numbered, polling collapsed, Cloudflare as the DNS', async () => {
  const r = await dryRun({ ...BASE, PROVIDER: 'digitalocean', DNS_PROVIDER: 'cloudflare', WEB_FIREWALL: 'cloudflare' }, ['--dry-run'], {
    CLOUDFLARE_API_TOKEN: SECRET,
  });
  assert.is(r.exitCode, 0, r.stderr);
  assert.ok(
    r.stdout.includes(
      'Plan (dry run, nothing sent) for https://www.example.com/, build prod1, development mode, on digitalocean ' +
        '(region lon1, size s-1vcpu-2gb), DNS cloudflare, web firewall cloudflare',
    ),
    r.stdout,
  );
  // After the region's VPC (DigitalOcean's API), the zone is Cloudflare's.
  assert.match(r.stdout, /^ +1\. GET https:\/\/api\.digitalocean\.com\/v2\/vpcs/m);
  assert.match(r.stdout, /^ +2\. GET https:\/\/api\.cloudflare\.com\/client\/v4\/zones\?name=example\.com/m);
  assert.match(
    r.stdout,
    new RegExp(
      'POST https://api\\.cloudflare\\.com/client/v4/zones/\\w+/dns_records ' +
        '\\{"type":"A","name":"www\\.example\\.com","content":"[\\d.]+","proxied":true,"ttl":1,',
    ),
  );
  assert.match(r.stdout, / {3}\(x\d+\)$/m, 'repeated calls (polling) collapsed');
  assert.match(r.stdout, /"ports":"443","sources":\{"addresses":\["103\.21\.244\.0\/22"/, "HTTPS only from Cloudflare's ranges");
  assert.not.ok(r.stdout.includes(SECRET));
});

test('without credentials a real deploy is refused (exit 2, each missing variable named, nothing made); bad settings named', async () => {
  const none = { DIGITALOCEAN_TOKEN: '', OBJECT_STORAGE_ACCESS_KEY: '', OBJECT_STORAGE_SECRET_KEY: '' };
  const r = await dryRun({ ...BASE, PROVIDER: 'digitalocean' }, [], none);
  assert.is(r.exitCode, 2, r.stderr);
  assert.match(
    r.stderr,
    /PROVIDER=digitalocean: set DIGITALOCEAN_TOKEN, OBJECT_STORAGE_ACCESS_KEY, OBJECT_STORAGE_SECRET_KEY in the environment/,
  );
  assert.not.ok(r.stateLeft, 'nothing under STATE_DIR');
  const other = await dryRun({ ...BASE, PROVIDER: 'exoscale', EMULATOR: 'remote' }, ['--dry-run']);
  assert.is(other.exitCode, 2);
  assert.match(other.stderr, /EMULATOR="remote": "local" with PROVIDER=digitalocean, linode, vultr, exoscale/);
  const emulated = await dryRun({ ...BASE, PROVIDER: 'exoscale', EMULATOR: 'local', DATABASE_SERVICE: 'managed' }, ['--dry-run']);
  assert.is(emulated.exitCode, 2);
  assert.match(emulated.stderr, /BUILD_MACHINE_IP="203\.0\.113\.10": only for a cloud PROVIDER on its real API/);
  assert.match(emulated.stderr, /DATABASE_SERVICE="managed": the local cloud does not emulate managed databases yet/);
  const acme = await dryRun({ ...BASE, PROVIDER: 'linode', EMULATOR: 'local', BUILD_MACHINE_IP: '', TLS: 'acme' }, ['--dry-run']);
  assert.is(acme.exitCode, 2);
  assert.match(acme.stderr, /TLS="acme": not with EMULATOR=local on linode .*: local-ca/);
  const bad = await dryRun({ ...BASE, PROVIDER: 'digitalocean', BUILD_MACHINE_IP: '198.18.0.300', ACME_EMAIL: '' }, ['--dry-run']);
  assert.is(bad.exitCode, 2);
  assert.match(bad.stderr, /BUILD_MACHINE_IP="198\.18\.0\.300": an IPv4 address/);
  assert.match(bad.stderr, /ACME_EMAIL="": with TLS=acme on digitalocean/);
});

test.run();
