/**
 * Development mode with WEB_FIREWALL=auth on DigitalOcean, emulated by the local cloud (cloud
 * `tda`, 198.19.66.0/24 + 198.19.67.0/24): the site's and the sign-in host's certificates by ACME
 * through DigitalOcean's DNS, the sign-in host's record written through DigitalOcean's API, port 443
 * of the webserver closed to the outsider until a real browser signs in (the mail through the
 * cloud's mail catcher), and destroy leaving nothing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { localCloudConfig } from '@adt/fleet';
import { attachLocalCloud } from '@adt/localcloud';
import { cleanup, setup } from '@adt/test-utils';
import { deploymentOf, fetchFromOutsider, productionFleet, removeFleet, root, until, zx, type Fleet } from './_fleet.ts';
import { outsiderStatus } from './_site.ts';

const test = suite<{ f: Fleet; web: string; auth: string }>('DigitalOcean, emulated: development mode behind the sign-in (auth)');

setup(test, async (ctx) => {
  ctx.f = await productionFleet('tda', 66, [
    'PROVIDER=digitalocean',
    'EMULATOR=local',
    'MODE=development',
    'WEB_FIREWALL=auth',
    'AUTH_ALLOW=ann@tda.test',
    'TLS=acme',
    'READY_TIMEOUT=600',
  ]);
  ctx.f.caFile = join(ctx.f.dir, 'state/builds/tda1/acme-root.pem');
  process.env.ADT_CRON_DIR = join(ctx.f.dir, 'cron.d');
});

test.after(async (ctx) => cleanup('the tda fleet', [() => removeFleet(ctx.f)]));

async function digitalocean<T>(f: Fleet, path: string): Promise<T> {
  const access = await attachLocalCloud(localCloudConfig(deploymentOf(f.file)));
  if (!access) throw new Error('the tda cloud does not run');
  const r = await fetch(`${access.url}/digitalocean/v2${path}`, { headers: { authorization: `Bearer ${access.token}` } });
  if (!r.ok) throw new Error(`GET ${path}: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

/** What the cloud's DNS answers for `name`. */
async function resolve(f: Fleet, name: string): Promise<string[]> {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([f.dnsIp]);
  return (await r.resolve4(name).catch(() => [] as string[])).sort();
}

const refused = async (f: Fleet, ip: string) => (await fetchFromOutsider(f, ip)) === 0;

test('deploy: both certificates by ACME through its DNS; the sign-in host answers, the site refuses the outsider', async (ctx) => {
  const { f } = ctx;
  const r = await zx('deploy.mjs', ['--config', f.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr + r.stdout);
  const out = JSON.parse(r.stdout) as { servers: { role: string; publicIp: string }[]; authCaFile: string | null };
  assert.equal(out.servers.map((s) => s.role).sort(), ['auth', 'database', 'webserver']);
  assert.is(out.authCaFile, f.caFile, "the sign-in page is trusted through pebble's root");
  ctx.web = out.servers.find((s) => s.role === 'webserver')!.publicIp;
  ctx.auth = out.servers.find((s) => s.role === 'auth')!.publicIp;
  const records = (await digitalocean<{ domain_records: { type: string; name: string; data: string }[] }>(f, '/domains/tda.test/records'))
    .domain_records;
  assert.ok(
    records.some((x) => x.type === 'A' && x.name === 'auth' && x.data === ctx.auth),
    'the sign-in host, through the API',
  );
  assert.equal(await resolve(f, 'auth.tda.test'), [ctx.auth], "and served by the cloud's DNS");
  assert.equal(await resolve(f, f.host), [ctx.web]);
  const fw = (await digitalocean<{ firewalls: { name: string }[] }>(f, '/firewalls')).firewalls.map((x) => x.name).sort();
  assert.equal(fw, ['adt-tda1-auth', 'adt-tda1-database', 'adt-tda1-webserver']);
  assert.is((await outsiderStatus(f.cloudId, 'auth.tda.test', ctx.auth, f.caFile)).stdout, '200');
  assert.ok(await refused(f, ctx.web), 'port 443 of the webserver is closed to the outsider');
});

test('a real browser signs in through the emailed link, and the site opens to it', async (ctx) => {
  const { f } = ctx;
  const state = join(f.dir, 'state');
  // The browser trusts the build's two certificates by their keys (lego's copies of them).
  const spki = (host: string) =>
    createHash('sha256')
      .update(
        new X509Certificate(readFileSync(join(state, `builds/tda1/lego/certificates/${host}.crt`))).publicKey.export({
          type: 'spki',
          format: 'der',
        }),
      )
      .digest('base64');
  const options = {
    authUrl: 'https://auth.tda.test/',
    email: 'ann@tda.test',
    mailDir: join(state, 'mail/tda/messages'),
    hosts: [
      ['auth.tda.test', ctx.auth],
      ['www.tda.test', ctx.web],
    ],
    spki: [spki('auth.tda.test'), spki('www.tda.test')],
  };
  const b = await execa(
    'ip',
    ['netns', 'exec', 'tda-outsider', process.execPath, join(root, 'roles/build/test/browser/sign-in.mjs'), JSON.stringify(options)],
    { cwd: root, reject: false, timeout: 120_000 },
  );
  assert.is(b.exitCode, 0, b.stderr);
  const seen = JSON.parse(b.stdout.trim().split('\n').pop()!) as Record<string, string | boolean>;
  assert.is(seen.afterVerify, 'Access granted');
  assert.ok(await until(async () => !(await refused(f, ctx.web)), 30_000), 'the site answers the outsider within a firewall period');
});

test('destroy removes every droplet, firewall and record, and the cloud goes', async ({ f }) => {
  const r = await zx('destroy.mjs', ['--config', f.file], { timeoutMs: 300_000 });
  assert.is(r.exitCode, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /the cloud's firewall rules removed: webserver, database, auth\n/, r.stdout);
  assert.match(r.stdout, /digitalocean \(emulated by the local cloud "tda"\): torn down/);
  assert.is(await attachLocalCloud(localCloudConfig(deploymentOf(f.file))), null, 'the cloud is gone');
});

test.run();
