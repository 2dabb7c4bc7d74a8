/**
 * ACME for real, on loopback only: a PowerDNS of ours (zone acme.test), Debian's pebble resolving
 * challenges through it, Debian's lego answering DNS-01 through PowerDNS's API. Everything started
 * here is stopped by PID in `after`.
 *
 * Each new authorization takes about 1 s, or about 6 s when lego's first look at it comes before
 * pebble has validated it: lego then waits 5 s (pebble sends no Retry-After; lego 4.9 has no
 * option for it). The suite takes 10 to 50 s.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { execaRunner, processAlive } from '@adt/core';
import { rejects, removeTempDir, tempDir } from '@adt/test-utils';
import { startPowerDns, type PowerDnsServer } from '@adt/localcloud/services/powerdns';
import { startPebble, type Pebble } from '@adt/localcloud/services/pebble';
import powerdnsDriver from '@adt/providers/drivers/powerdns';
import { digitaloceanFake } from '@adt/providers/fakes/digitalocean';
import { certificateInfo, obtainCertificate, type ObtainOptions } from '../src/index.ts';

interface Ctx {
  dir: string;
  pdns: PowerDnsServer;
  pebble: Pebble;
  /** Other pebbles started by a test (stopped in `after` too). */
  extra: Pebble[];
  options: ObtainOptions;
  first: { serial: string; chain: string; key: string };
}

const test = suite<Ctx>('ACME with lego and pebble through PowerDNS (DNS-01, loopback)');

test.before(async (ctx) => {
  ctx.extra = [];
  ctx.dir = await tempDir('acme');
  ctx.pdns = await startPowerDns({ dataDir: join(ctx.dir, 'pdns'), dnsPort: 0 });
  await powerdnsDriver({ apiUrl: ctx.pdns.apiUrl, apiKeyFile: ctx.pdns.apiKeyFile, zone: 'acme.test' }).ensureZone('acme.test');
  ctx.pebble = await startPebble({ dataDir: join(ctx.dir, 'pebble'), dnsServer: `${ctx.pdns.dnsAddress}:${ctx.pdns.dnsPort}` });
  ctx.options = {
    server: ctx.pebble.directoryUrl,
    email: 'ops@acme.test',
    domains: ['www.acme.test'],
    path: join(ctx.dir, 'lego'),
    dns: 'pdns',
    resolvers: [`${ctx.pdns.dnsAddress}:${ctx.pdns.dnsPort}`],
    disablePropagationCheck: true,
    access: { provider: 'pdns', apiUrl: ctx.pdns.apiUrl, apiKey: (await readFile(ctx.pdns.apiKeyFile, 'utf8')).trim() },
    serverCaFile: ctx.pebble.httpsCaFile,
    runner: execaRunner(),
  };
});

test.after(async (ctx) => {
  const pids = [ctx.pebble?.pid, ctx.pdns?.pid, ...(ctx.extra ?? []).map((p) => p.pid)];
  for (const p of ctx.extra ?? []) await p.stop();
  await ctx.pebble?.stop();
  await ctx.pdns?.stop();
  for (const pid of pids) if (pid) assert.not.ok(processAlive(pid), `process ${pid} stopped`);
  await removeTempDir(ctx.dir);
});

/** Serves `chain`/`key` on 127.0.0.1 and connects as `servername` trusting only `ca` (or the system's). */
async function handshake(chain: string, key: string, ca: string | undefined, servername = 'www.acme.test'): Promise<string> {
  const server: Server = createServer({ cert: chain, key }, (_req, res) => res.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise<string>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, servername, headers: { host: servername }, ...(ca ? { ca } : {}), timeout: 5000 },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test("lego obtains a certificate by DNS-01 through PowerDNS; a client trusting pebble's root accepts it, others refuse it", async (ctx) => {
  const c = await obtainCertificate(ctx.options);
  assert.ok(c.renewed, 'a new certificate');
  assert.ok(c.notAfter.getTime() > Date.now() + 86_400_000);
  assert.ok(existsSync(join(ctx.options.path, 'certificates', 'www.acme.test.crt')), "lego's file");
  const leaf = new X509Certificate(c.chain);
  assert.match(leaf.subjectAltName ?? '', /DNS:www\.acme\.test/);
  assert.ok(leaf.checkPrivateKey(createPrivateKey(c.key)), 'the key matches');
  // leaf <- intermediate (lego's issuer file, also second in the chain) <- pebble's root
  const root = await ctx.pebble.rootPem();
  const [issuer, rootCert] = [new X509Certificate(c.issuer), new X509Certificate(root)];
  assert.ok(leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey), 'the leaf is signed by the intermediate');
  assert.ok(issuer.checkIssued(rootCert) && issuer.verify(rootCert.publicKey), "the intermediate is signed by pebble's root");
  assert.ok(c.chain.includes(c.issuer.trim()), 'the chain carries the intermediate');
  const files = { root: join(ctx.dir, 'root.pem'), issuer: join(ctx.dir, 'issuer.pem'), leaf: join(ctx.dir, 'leaf.pem') };
  await Promise.all([writeFile(files.root, root), writeFile(files.issuer, c.issuer), writeFile(files.leaf, c.chain)]);
  const verified = await execaRunner().run(['openssl', 'verify', '-CAfile', files.root, '-untrusted', files.issuer, files.leaf], {
    nothrow: true,
  });
  assert.is(verified.exitCode, 0, verified.stderr);
  const foreign = await execaRunner().run(
    ['openssl', 'verify', '-CAfile', ctx.pebble.httpsCaFile, '-untrusted', files.issuer, files.leaf],
    { nothrow: true },
  );
  assert.is.not(foreign.exitCode, 0, 'another root does not verify it');
  assert.is(await handshake(c.chain, c.key, root), 'hello');
  const refused = await handshake(c.chain, c.key, undefined).then(
    () => 'accepted',
    (e: Error) => e.message,
  );
  assert.match(refused, /unable to get local issuer certificate|self[- ]signed|unable to verify/);
  ctx.first = { serial: c.serial, chain: c.chain, key: c.key };
});

test('asked again, it keeps a certificate that is not due; forced, it renews (a new serial and key)', async (ctx) => {
  const same = await obtainCertificate(ctx.options);
  assert.is(same.renewed, false);
  assert.is(same.serial, ctx.first.serial);
  const renewed = await obtainCertificate({ ...ctx.options, force: true });
  assert.ok(renewed.renewed);
  assert.is.not(renewed.serial, ctx.first.serial);
  assert.is.not(renewed.key, ctx.first.key, 'a new key too');
  assert.is(await handshake(renewed.chain, renewed.key, await ctx.pebble.rootPem()), 'hello');
});

test('a certificate that does not chain to the expected root (pebble restarted) is replaced; one that does is kept', async (ctx) => {
  const before = await obtainCertificate(ctx.options);
  const elsewhere = await obtainCertificate({ ...ctx.options, trustedRoot: await readFile(ctx.pebble.httpsCaFile, 'utf8') });
  assert.ok(elsewhere.renewed, 'another root: a new certificate');
  assert.is.not(elsewhere.serial, before.serial);
  const kept = await obtainCertificate({ ...ctx.options, trustedRoot: await ctx.pebble.rootPem() });
  assert.is(kept.renewed, false);
  assert.is(kept.serial, elsewhere.serial);
});

test('a changed list of names gets a new certificate with exactly those names (lego renew would keep the old ones)', async (ctx) => {
  const both = await obtainCertificate({ ...ctx.options, domains: ['www.acme.test', 'api.acme.test'] });
  assert.ok(both.renewed);
  assert.equal(certificateInfo(both.chain).names.sort(), ['api.acme.test', 'www.acme.test']);
  const again = await obtainCertificate({ ...ctx.options, domains: ['www.acme.test', 'api.acme.test'] });
  assert.is(again.renewed, false, 'the same names: kept');
  const one = await obtainCertificate(ctx.options);
  assert.ok(one.renewed);
  assert.equal(certificateInfo(one.chain).names, ['www.acme.test']);
});

test("a wildcard certificate (lego's files are named _.acme.test) serves any name under the zone", async (ctx) => {
  const o = { ...ctx.options, domains: ['*.acme.test', 'acme.test'], path: join(ctx.dir, 'lego-wildcard') };
  const c = await obtainCertificate(o);
  assert.ok(c.renewed);
  assert.ok(existsSync(join(o.path, 'certificates', '_.acme.test.crt')));
  assert.equal(certificateInfo(c.chain).names.sort(), ['*.acme.test', 'acme.test']);
  assert.is(await handshake(c.chain, c.key, await ctx.pebble.rootPem(), 'anything.acme.test'), 'hello');
  assert.is((await obtainCertificate(o)).renewed, false);
});

test('a refused challenge (a wrong PowerDNS key) is a clear error naming the domain, never the key', async (ctx) => {
  const wrong = 'not-the-pdns-key-4f1e';
  const obtained = obtainCertificate({
    ...ctx.options,
    domains: ['new.acme.test'],
    access: { provider: 'pdns', apiUrl: ctx.pdns.apiUrl, apiKey: wrong },
    timeoutMs: 60_000,
  });
  const e = await rejects(
    obtained,
    { code: 'ACME_FAILED', message: /could not obtain a certificate for new\.acme\.test .*DNS-01 via pdns/ },
    'it fails',
  );
  assert.not.ok(e.message.includes(wrong), e.message);
});

/** Serves a fake DNS API's TXT records from PowerDNS (what pebble asks): one REPLACE or DELETE per name. */
function txtToPowerDns(apiUrl: string, apiKey: string) {
  const seen = new Set<string>();
  return async (zone: string, records: readonly { type: string; name: string; data: string; ttl: number }[]) => {
    const fqdn = (name: string) => `${name === '@' ? zone : `${name}.${zone}`}.`;
    const txt = records.filter((r) => r.type === 'TXT');
    for (const r of txt) seen.add(fqdn(r.name));
    const rrsets = [...seen].map((name) => {
      const rs = txt.filter((r) => fqdn(r.name) === name);
      return rs.length
        ? {
            name,
            type: 'TXT',
            ttl: 60,
            changetype: 'REPLACE',
            records: rs.map((r) => ({ content: JSON.stringify(r.data), disabled: false })),
          }
        : { name, type: 'TXT', changetype: 'DELETE' };
    });
    const res = await fetch(`${apiUrl}/api/v1/servers/localhost/zones/${zone}.`, {
      method: 'PATCH',
      headers: { 'X-API-Key': apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ rrsets }),
    });
    if (!res.ok) throw new Error(`PowerDNS: HTTP ${res.status} ${await res.text()}`);
  };
}

test(
  "lego's DigitalOcean DNS provider through the DigitalOcean fake (its records served by PowerDNS): " +
    "issued, the record cleaned up, the token only in lego's environment",
  async (ctx) => {
    const token = 'do-acme-token-5e1f9c';
    const fake = digitaloceanFake({
      token,
      onRecordsChanged: txtToPowerDns(ctx.pdns.apiUrl, (await readFile(ctx.pdns.apiKeyFile, 'utf8')).trim()),
    });
    const base = await fake.listen();
    fake.state.domains.set('acme.test', []);
    const argvs: string[][] = [];
    const runner = execaRunner();
    try {
      const c = await obtainCertificate({
        ...ctx.options,
        path: join(ctx.dir, 'lego-do'),
        domains: ['do.acme.test'],
        dns: 'digitalocean',
        access: { provider: 'digitalocean', token, apiUrl: base.replace(/\/v2$/, '') },
        runner: { run: (argv, o) => (argvs.push([...argv]), runner.run(argv, o)) },
      });
      assert.ok(c.renewed);
      assert.equal(certificateInfo(c.chain).names, ['do.acme.test']);
      assert.is(await handshake(c.chain, c.key, await ctx.pebble.rootPem(), 'do.acme.test'), 'hello');
      const posted = fake.log
        .filter((l) => l.method === 'POST' && l.path === '/domains/acme.test/records')
        .map((l) => l.body as { type: string; name: string });
      assert.equal(
        posted.map((b) => `${b.type} ${b.name}`),
        ['TXT _acme-challenge.do.acme.test.'],
        'lego wrote its challenge through the API',
      );
      assert.ok(
        fake.log.some((l) => l.method === 'DELETE' && l.path.startsWith('/domains/acme.test/records/')),
        'and removed it',
      );
      assert.equal(fake.state.domains.get('acme.test'), []);
      assert.ok(argvs.length > 0 && argvs.every((a) => !a.join(' ').includes(token)), "the token is never on lego's command line");
    } finally {
      await fake.close();
    }
  },
);

test('pebble is found again from its data dir (no second server), and starts only with a DNS server given as host:port', async (ctx) => {
  const again = await startPebble({ dataDir: join(ctx.dir, 'pebble'), dnsServer: `${ctx.pdns.dnsAddress}:${ctx.pdns.dnsPort}` });
  assert.is(again.pid, ctx.pebble.pid);
  assert.is(again.dnsServer, `${ctx.pdns.dnsAddress}:${ctx.pdns.dnsPort}`);
  await rejects(startPebble({ dataDir: join(ctx.dir, 'other'), dnsServer: 'nowhere' }), { exitCode: 2 });
});

test('a pebble asked for another DNS server is stopped by PID and started again (with a new root)', async (ctx) => {
  const dataDir = join(ctx.dir, 'pebble-2');
  const first = await startPebble({ dataDir, dnsServer: `${ctx.pdns.dnsAddress}:${ctx.pdns.dnsPort}` });
  ctx.extra.push(first);
  const firstRoot = await first.rootPem();
  const second = await startPebble({ dataDir, dnsServer: '127.0.0.1:9' });
  ctx.extra.push(second);
  assert.is.not(second.pid, first.pid);
  assert.not.ok(processAlive(first.pid), 'the first one is gone');
  assert.is(second.dnsServer, '127.0.0.1:9');
  assert.is.not(await second.rootPem(), firstRoot, 'a new root at every start');
  await second.stop();
  assert.not.ok(processAlive(second.pid));
});

test.run();
