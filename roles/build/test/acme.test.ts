/**
 * TLS by ACME on the local provider (cloud `tac` on 198.19.50.0/24 + 198.19.51.0/24): deploy gets
 * the site's certificate from the cloud's pebble by DNS-01 through its PowerDNS; a client trusting
 * pebble's root reaches every webserver; a renewal reaches every webserver; destroy stops pebble.
 * Then WEB_FIREWALL=auth with TLS=acme (cloud `taa` on 198.19.52.0/24 + 198.19.53.0/24): the sign-in
 * host gets its certificate by ACME too, and a renewal reaches the authentication server.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '@adt/core';
import { servedSerial } from '@adt/fleet';
import { cleanup, setup } from '@adt/test-utils';
import { aRecords, helper, productionFleet, removeFleet, until, zx, type Fleet } from './_fleet.ts';
import { outsiderStatus } from './_site.ts';

const test = suite<{ f: Fleet; root: string; serial: string; pebblePid: number }>(
  'TLS by ACME: pebble, lego and PowerDNS on the local cloud',
);

setup(test, async (ctx) => {
  ctx.f = await productionFleet('tac', 50, ['WEBSERVERS=2', 'TLS=acme', 'READY_TIMEOUT=600']);
  ctx.f.caFile = join(ctx.f.dir, 'state/builds/tac1/acme-root.pem');
  // The renewal's cron entry goes to a directory of the test's, not the machine's /etc/cron.d.
  process.env.ADT_CRON_DIR = join(ctx.f.dir, 'cron.d');
});

test.after(async (ctx) => cleanup('the tac fleet', [() => removeFleet(ctx.f)]));

const outsiderCurl = (f: Fleet, ip: string, cacert: string | null) => outsiderStatus(f.cloudId, f.host, ip, cacert);

test("deploy gets the certificate by ACME; every webserver serves it, trusted through pebble's root only", async (ctx) => {
  const r = await zx('deploy.mjs', ['--config', ctx.f.file]);
  assert.is(r.exitCode, 0, r.stderr + r.stdout);
  // The DNS-01 challenge goes to the zone's DNS: the local cloud's PowerDNS.
  assert.match(r.stdout, /zone tac\.test on the local cloud's PowerDNS/);
  assert.match(
    r.stdout,
    /TLS certificate for www\.tac\.test by ACME from https:\/\/127\.0\.0\.1:\d+\/dir \(DNS-01\): issued, serial (\w+)/,
  );
  ctx.serial = /by ACME from \S+ \(DNS-01\): issued, serial (\w+)/.exec(r.stdout)![1]!;
  assert.match(
    r.stdout,
    /TLS +certificate by ACME \(the local cloud's pebble\); its root: .*acme-root\.pem; renewal: roles\/build\/RenewCertificate/,
  );
  const cron = readFileSync(join(ctx.f.dir, 'cron.d/adt-tls-tac1'), 'utf8');
  assert.match(
    cron,
    new RegExp(
      `^\\d+ 4 \\* \\* \\* root \\S+/roles/build/RenewCertificate' --config '${ctx.f.file}' >> /var/log/adt-tls-tac1\\.log 2>&1$`,
      'm',
    ),
  );
  ctx.pebblePid = JSON.parse(readFileSync(join(ctx.f.dir, 'state/acme/tac/pebble.json'), 'utf8')).pid as number;
  const ips = await aRecords(ctx.f);
  assert.is(ips.length, 2);
  for (const ip of ips) {
    const ok = await outsiderCurl(ctx.f, ip, ctx.f.caFile);
    assert.ok(['200', '302'].includes(ok.stdout), `${ip}: ${ok.stdout} ${ok.stderr}`);
    const untrusted = await outsiderCurl(ctx.f, ip, null);
    assert.is(untrusted.exitCode, 60, "without pebble's root: certificate problem (curl exit 60)");
  }
});

test('a forced renewal reaches every webserver; the site stays trusted; a second one without --force is not due', async (ctx) => {
  const r = await helper('RenewCertificate', ['--config', ctx.f.file, '--force', '--wait', '--json'], 420_000);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { renewed: boolean; serial: string; webservers: { name: string; serving: string }[] };
  assert.ok(out.renewed);
  assert.is.not(out.serial, ctx.serial, 'a new certificate');
  assert.is(out.webservers.length, 2);
  for (const w of out.webservers) assert.is(w.serving, out.serial, `${w.name} serves the new certificate`);
  const status = await helper('ExecuteOnWebserver', ['--config', ctx.f.file, '--', 'cat', '/var/log/adt/certificate.log']);
  assert.match(status.stdout, new RegExp(`installed certificate ${out.serial}`));
  for (const ip of await aRecords(ctx.f)) {
    assert.is(await servedSerial(ip, ctx.f.host), out.serial, `${ip} (public) serves it too`);
    assert.ok(['200', '302'].includes((await outsiderCurl(ctx.f, ip, ctx.f.caFile)).stdout));
  }
  const st = await helper('status', ['--config', ctx.f.file]);
  assert.match(
    st.stdout,
    new RegExp(`TLS certificate ${out.serial} \\(ACME, CN=Pebble Intermediate CA [^)]*\\) valid until \\S+, \\d+ days left\\n`),
    st.stdout,
  );
  const again = await helper('RenewCertificate', ['--config', ctx.f.file]);
  assert.is(again.exitCode, 0, again.stderr);
  assert.match(again.stdout, /^not due \(renewal within 30 days of expiry; --force renews now\): certificate /);
});

test('destroy stops pebble and removes its files', async (ctx) => {
  const d = await zx('destroy.mjs', ['--config', ctx.f.file]);
  assert.is(d.exitCode, 0, d.stderr);
  // (A process just stopped may be a zombie for a moment, until its parent reaps it.)
  assert.ok(await until(async () => !processAlive(ctx.pebblePid), 10_000), 'pebble stopped');
  assert.not.ok(existsSync(join(ctx.f.dir, 'state/acme')));
  assert.not.ok(existsSync(join(ctx.f.dir, 'cron.d/adt-tls-tac1')), 'the renewal cron entry is gone');
});

test.run();

const auth = suite<{ f: Fleet; root: string; authIp: string; serial: string }>('TLS by ACME for the sign-in host (WEB_FIREWALL=auth)');

setup(auth, async (ctx) => {
  ctx.f = await productionFleet('taa', 52, [
    'MODE=development',
    'TLS=acme',
    'WEB_FIREWALL=auth',
    'AUTH_ALLOW=ann@taa.test',
    'READY_TIMEOUT=600',
  ]);
  ctx.root = join(ctx.f.dir, 'state/builds/taa1/acme-root.pem');
  process.env.ADT_CRON_DIR = join(ctx.f.dir, 'cron.d');
});

auth.after(async (ctx) => cleanup('the taa fleet', [() => removeFleet(ctx.f)]));

const authCurl = (f: Fleet, ip: string, cacert: string | null) => outsiderStatus(f.cloudId, `auth.${f.cloudId}.test`, ip, cacert);

auth("deploy gets the sign-in host's certificate by ACME: trusted through pebble's root only", async (ctx) => {
  const r = await zx('deploy.mjs', ['--config', ctx.f.file, '--json']);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { servers: { role: string; publicIp: string }[]; caFile: string; authCaFile: string };
  assert.is(out.authCaFile, ctx.root, "the summary names pebble's root for the sign-in page");
  assert.is(out.caFile, ctx.root);
  assert.match(r.stderr + r.stdout, /sign-in certificate for auth\.taa\.test by ACME: issued, serial \w+/);
  ctx.authIp = out.servers.find((s) => s.role === 'auth')!.publicIp;
  ctx.serial = await servedSerial(ctx.authIp, 'auth.taa.test');
  assert.is((await authCurl(ctx.f, ctx.authIp, ctx.root)).stdout, '200');
  assert.is((await authCurl(ctx.f, ctx.authIp, null)).exitCode, 60, "without pebble's root: certificate problem (curl exit 60)");
  assert.not.ok(existsSync(ctx.f.caFile), 'no local CA was needed');
});

auth('a forced renewal reaches the authentication server without a restart; a second one is not due', async (ctx) => {
  const r = await helper('RenewCertificate', ['--config', ctx.f.file, '--force', '--wait', '--json'], 420_000);
  assert.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { auth: { renewed: boolean; serial: string; servers: { name: string; serving: string }[] } };
  assert.ok(out.auth.renewed);
  assert.is.not(out.auth.serial, ctx.serial, 'a new certificate');
  assert.is(out.auth.servers.length, 1);
  assert.is(out.auth.servers[0]!.serving, out.auth.serial);
  assert.is(await servedSerial(ctx.authIp, 'auth.taa.test'), out.auth.serial);
  assert.is((await authCurl(ctx.f, ctx.authIp, ctx.root)).stdout, '200', "still trusted through pebble's root");
  const log = await helper('ExecuteOnAuth', ['--config', ctx.f.file, '--', 'cat', '/var/log/adt/auth.log']);
  assert.match(log.stdout, new RegExp(`installed certificate ${out.auth.serial}`));
  assert.is(log.stdout.match(/authentication app on https:/g)?.length, 1, 'the sign-in app was not restarted');
  const st = await helper('status', ['--config', ctx.f.file]);
  assert.match(st.stdout, new RegExp(`auth .* sign-in HTTPS 200, certificate ${out.auth.serial}(  bundle [0-9a-f]{12})?\\n`), st.stdout);
  const again = await helper('RenewCertificate', ['--config', ctx.f.file]);
  assert.is(again.exitCode, 0, again.stderr);
  assert.match(again.stdout, /not due \(renewal within 30 days of expiry; --force renews now\): certificate \w+ for auth\.taa\.test/);
});

auth.run();
