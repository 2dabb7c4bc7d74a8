/**
 * DNS for real: a PowerDNS of our own on loopback (free ports, data in a temporary directory), the
 * conformance suite against it and against the memory driver, and real DNS queries with dig: from
 * this machine, and from inside a local-cloud server whose resolver points at PowerDNS.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { processAlive } from '@adt/core';
import { startPowerDns, type PowerDnsServer } from '../../src/pdns-server.ts';
import powerdnsDriver from '../../src/drivers/powerdns.ts';
import memoryDnsDriver from '../../src/drivers/memory-dns.ts';
import localDriver from '../../src/drivers/local.ts';
import { serverName } from '../../src/naming.ts';
import { testDnsProvider } from '../fixtures/dns-conformance.ts';

testDnsProvider('memory', async () => {
  const dns = memoryDnsDriver();
  await dns.ensureZone('adt.test');
  return { dns, zone: 'adt.test', close: async () => {} };
});

testDnsProvider('powerdns (real server)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'adt-pdns-'));
  const pdns = await startPowerDns({ dataDir: dir, dnsPort: 0 });
  const dns = powerdnsDriver({ apiUrl: pdns.apiUrl, apiKeyFile: pdns.apiKeyFile, zone: 'adt.test' });
  await dns.ensureZone('adt.test');
  return {
    dns,
    zone: 'adt.test',
    close: async () => {
      await pdns.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

// ---

const real = suite<{ dir: string; pdns: PowerDnsServer }>('PowerDNS server and queries');

real.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-pdns-'));
  ctx.pdns = await startPowerDns({ dataDir: ctx.dir, dnsPort: 0 });
});
real.after(async (ctx) => {
  await ctx.pdns?.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

real('three addA answer a real DNS query (dig) with all three; removeA removes exactly one', async ({ pdns }) => {
  const dns = powerdnsDriver({ apiUrl: pdns.apiUrl, apiKeyFile: pdns.apiKeyFile, zone: 'site.test' });
  await dns.ensureZone('site.test');
  for (const ip of ['198.18.0.21', '198.18.0.22', '198.18.0.23']) await dns.addA('www.site.test', ip);
  const dig = async () =>
    (await execa('dig', [`@${pdns.dnsAddress}`, '-p', String(pdns.dnsPort), '+short', '+time=2', '+tries=2', 'www.site.test', 'A'])).stdout
      .split('\n')
      .filter(Boolean)
      .sort();
  assert.equal(await dig(), ['198.18.0.21', '198.18.0.22', '198.18.0.23']);
  await dns.removeA('www.site.test', '198.18.0.22');
  assert.equal(await dig(), ['198.18.0.21', '198.18.0.23']);
});

real('the API key is in 0600 files only: not on the command line, not in errors', async ({ pdns, dir }) => {
  const key = (await readFile(pdns.apiKeyFile, 'utf8')).trim();
  assert.ok(key.length >= 24);
  assert.is((await stat(pdns.apiKeyFile)).mode & 0o777, 0o600);
  assert.is((await stat(join(dir, 'pdns.conf'))).mode & 0o777, 0o600);
  const cmdline = await readFile(`/proc/${pdns.pid}/cmdline`, 'utf8');
  assert.not.ok(cmdline.includes(key));
  const wrong = powerdnsDriver({ apiUrl: pdns.apiUrl, apiKey: 'wrong-key', zone: 'site.test' });
  const e = await wrong.listA('www.site.test').then(
    () => null,
    (err) => err,
  );
  assert.match(e?.message ?? '', /HTTP 401/);
  assert.not.ok(e.message.includes(key));
});

real('starting again from the same directory reattaches; stop leaves no process', async ({ pdns, dir }) => {
  const again = await startPowerDns({ dataDir: dir, dnsPort: 0 });
  assert.is(again.pid, pdns.pid);
  await again.stop();
  assert.not.ok(processAlive(pdns.pid));
});

real.run();

// ---

const inCloud = suite<{ cloud: ReturnType<typeof localDriver>; pdns?: PowerDnsServer; dir: string }>('DNS inside the local cloud');

inCloud.before(async (ctx) => {
  ctx.cloud = localDriver({
    cloudId: 'tdn',
    stateDir: '/var/lib/adt-local/test-tdn',
    publicCidr: '198.19.12.0/24',
    privateCidr: '198.19.13.0/24',
  });
  await ctx.cloud.teardown();
  await ctx.cloud.ensureNetwork();
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-pdns-cloud-'));
});
inCloud.after(async (ctx) => {
  await ctx.pdns?.stop();
  await ctx.cloud?.teardown();
  await rm(ctx.dir, { recursive: true, force: true });
});

inCloud('a server resolves the site through its own resolver and gets every A record', async (ctx) => {
  // PowerDNS on the build machine's address of this cloud, port 53: what the servers' resolv.conf names.
  ctx.pdns = await startPowerDns({ dataDir: ctx.dir, listenAddress: ctx.cloud.buildMachine.publicIp, dnsPort: 53 });
  const dns = powerdnsDriver({ apiUrl: ctx.pdns.apiUrl, apiKeyFile: ctx.pdns.apiKeyFile, zone: 'adt.test' });
  await dns.ensureZone('adt.test');
  for (const ip of ['198.19.12.50', '198.19.12.51', '198.19.12.52']) await dns.addA('www.adt.test', ip);
  const s = await ctx.cloud.create({
    name: serverName({ role: 'webserver', buildId: 'tdn' }),
    role: 'webserver',
    buildId: 'tdn',
    userData: '#!/bin/sh\n',
  });
  await ctx.cloud.waitUntilRunning(s.id);
  const r = await ctx.cloud.exec(s.id, ['dig', '+short', '+time=2', '+tries=2', 'www.adt.test', 'A']);
  assert.equal(r.stdout.split('\n').filter(Boolean).sort(), ['198.19.12.50', '198.19.12.51', '198.19.12.52']);
  await dns.removeA('www.adt.test', '198.19.12.51');
  const r2 = await ctx.cloud.exec(s.id, ['dig', '+short', '+time=2', '+tries=2', 'www.adt.test', 'A']);
  assert.equal(r2.stdout.split('\n').filter(Boolean).sort(), ['198.19.12.50', '198.19.12.52']);
});

inCloud.run();
