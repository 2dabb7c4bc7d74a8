/**
 * DNS for real: a PowerDNS of our own on loopback (free ports, data in a temporary directory), the
 * DnsProvider conformance suite against it and against the memory driver, and real DNS queries:
 * with dig from this machine, and from inside a local-cloud server whose resolver is that PowerDNS
 * (cloud `tdn` on 198.19.16.0/24 + 198.19.17.0/24). startPowerDns runs PowerDNS detached (pid file
 * in its data dir): every one started here is stopped by its suite.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort, processAlive } from '@adt/core';
import { serverName } from '@adt/providers';
import memoryDnsDriver from '@adt/providers/drivers/memory-dns';
import powerdnsDriver from '@adt/providers/drivers/powerdns';
// The one DnsProvider conformance suite lives with the interface, in providers' test fixtures (a test-only import).
import { testDnsProvider } from '../../../providers/test/fixtures/dns-conformance.ts';
import { LocalCloud } from '../../src/cloud.ts';
import { startPowerDns, type PowerDnsServer } from '../../src/services/powerdns.ts';
import { cleanup, setup } from '@adt/test-utils';

testDnsProvider('memory', async () => {
  const dns = memoryDnsDriver();
  await dns.ensureZone('adt.test');
  return { dns, zone: 'adt.test', close: async () => {} };
});

// The conformance suite's before hook is not ours: uvu would swallow a failure there (0 tests, green), so the
// suite after it checks that the real server was set up.
let conformanceSetUp: unknown = 'not run';
testDnsProvider('powerdns (real server)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'adt-pdns-'));
  let pdns: PowerDnsServer | null = null;
  const close = async () => {
    await pdns?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    pdns = await startPowerDns({ dataDir: dir, dnsPort: 0 });
    const dns = powerdnsDriver({ apiUrl: pdns.apiUrl, apiKeyFile: pdns.apiKeyFile, zone: 'adt.test' });
    await dns.ensureZone('adt.test');
    conformanceSetUp = true;
    return { dns, zone: 'adt.test', close };
  } catch (e) {
    conformanceSetUp = e;
    await close();
    throw e;
  }
});

const conformance = suite('DnsProvider conformance: powerdns (real server) was set up');
conformance('the conformance suite ran against a real PowerDNS', () => {
  if (conformanceSetUp !== true) throw conformanceSetUp instanceof Error ? conformanceSetUp : new Error(String(conformanceSetUp));
});
conformance.run();

// ---

const real = suite<{ dir: string; pdns: PowerDnsServer }>('PowerDNS server and queries');

setup(real, async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-pdns-'));
  ctx.pdns = await startPowerDns({ dataDir: ctx.dir, dnsPort: 0 });
});
real.after(async (ctx) => {
  await cleanup('the PowerDNS suite', [() => ctx.pdns?.stop(), () => ctx.dir && rm(ctx.dir, { recursive: true, force: true })]);
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
  assert.is(again.dnsPort, pdns.dnsPort);
  await again.stop();
  assert.not.ok(processAlive(pdns.pid));
});

real('asked for another port, it is restarted there and keeps its zones', async (ctx) => {
  const first = await startPowerDns({ dataDir: ctx.dir, dnsPort: 0 });
  ctx.pdns = first;
  let port = await freePort();
  for (let i = 0; i < 5 && port === first.dnsPort; i++) port = await freePort();
  const moved = await startPowerDns({ dataDir: ctx.dir, dnsPort: port });
  ctx.pdns = moved;
  assert.is(moved.dnsPort, port);
  assert.is.not(moved.pid, first.pid);
  assert.not.ok(processAlive(first.pid), 'the old one is stopped');
  const r = await execa('dig', [`@${moved.dnsAddress}`, '-p', String(port), '+short', '+time=2', '+tries=2', 'www.site.test', 'A']);
  assert.equal(r.stdout.split('\n').filter(Boolean).sort(), ['198.18.0.21', '198.18.0.23']);
  await moved.stop();
  assert.not.ok(processAlive(moved.pid));
});

real.run();

// ---

const inCloud = suite<{ cloud: LocalCloud; pdns?: PowerDnsServer; dir: string }>('DNS inside the local cloud');

setup(inCloud, async (ctx) => {
  ctx.cloud = new LocalCloud({
    cloudId: 'tdn',
    stateDir: join(tmpdir(), 'adt-test-tdn'),
    publicCidr: '198.19.16.0/24',
    privateCidr: '198.19.17.0/24',
  });
  await ctx.cloud.teardown(); // a run that died leaves nothing in the way
  await ctx.cloud.ensureNetwork();
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-pdns-cloud-'));
});
inCloud.after(async (ctx) => {
  await cleanup('the DNS-in-the-cloud suite', [
    () => ctx.pdns?.stop(),
    () => ctx.cloud?.teardown(),
    () => ctx.dir && rm(ctx.dir, { recursive: true, force: true }),
  ]);
});

/** The A records a server's resolver gets for `name` (getent: the stock image has no dig). */
async function resolveIn(cloud: LocalCloud, id: string, name: string): Promise<string[]> {
  const r = await cloud.exec(id, ['getent', 'ahostsv4', name], { nothrow: true });
  return [
    ...new Set(
      r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/)[0]!),
    ),
  ].sort();
}

inCloud('a server resolves the site through its own resolver and gets every A record', async (ctx) => {
  // PowerDNS on the build machine's address of this cloud, port 53: what the servers' resolv.conf names.
  ctx.pdns = await startPowerDns({ dataDir: ctx.dir, listenAddress: ctx.cloud.buildMachine.publicIp, dnsPort: 53 });
  const dns = powerdnsDriver({ apiUrl: ctx.pdns.apiUrl, apiKeyFile: ctx.pdns.apiKeyFile, zone: 'adt.test' });
  await dns.ensureZone('adt.test');
  for (const ip of ['198.19.16.50', '198.19.16.51', '198.19.16.52']) await dns.addA('www.adt.test', ip);
  const s = await ctx.cloud.create({
    name: serverName({ role: 'webserver', buildId: 'tdn' }),
    role: 'webserver',
    buildId: 'tdn',
    userData: '#!/bin/sh\n',
  });
  await ctx.cloud.waitUntilRunning(s.id, { timeoutMs: 60_000 });
  assert.is((await ctx.cloud.exec(s.id, ['cat', '/etc/resolv.conf'])).stdout.trim(), `nameserver ${ctx.cloud.nameserver}`);
  assert.equal(await resolveIn(ctx.cloud, s.id, 'www.adt.test'), ['198.19.16.50', '198.19.16.51', '198.19.16.52']);
  await dns.removeA('www.adt.test', '198.19.16.51');
  assert.equal(await resolveIn(ctx.cloud, s.id, 'www.adt.test'), ['198.19.16.50', '198.19.16.52']);
  assert.equal(await resolveIn(ctx.cloud, s.id, 'nothing.adt.test'), []);
});

inCloud.run();
