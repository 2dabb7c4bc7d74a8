/**
 * ACME for real, on loopback only: a PowerDNS of ours (zone acme.test), Debian's pebble resolving
 * challenges through it, Debian's lego answering DNS-01 through PowerDNS's API. Everything started
 * here is stopped by PID in `after`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { execaRunner, processAlive } from '@adt/core';
import { startPowerDns, type PowerDnsServer } from '@adt/providers';
import powerdnsDriver from '@adt/providers/drivers/powerdns';
import { obtainCertificate, startPebble, type ObtainOptions, type Pebble } from '../src/index.ts';

interface Ctx {
  dir: string;
  pdns: PowerDnsServer;
  pebble: Pebble;
  options: ObtainOptions;
  first: { serial: string; chain: string; key: string };
}

const test = suite<Ctx>('ACME with lego and pebble through PowerDNS (DNS-01, loopback)');

test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'adt-acme-'));
  ctx.pdns = await startPowerDns({ dataDir: join(ctx.dir, 'pdns'), dnsPort: 0 });
  await powerdnsDriver({ apiUrl: ctx.pdns.apiUrl, apiKeyFile: ctx.pdns.apiKeyFile, zone: 'acme.test' }).ensureZone('acme.test');
  ctx.pebble = await startPebble({ dataDir: join(ctx.dir, 'pebble'), dnsServer: `${ctx.pdns.dnsAddress}:${ctx.pdns.dnsPort}` });
  ctx.options = {
    server: ctx.pebble.directoryUrl, email: 'ops@acme.test', domains: ['www.acme.test'], path: join(ctx.dir, 'lego'), dns: 'pdns',
    resolvers: [`${ctx.pdns.dnsAddress}:${ctx.pdns.dnsPort}`], disablePropagationCheck: true,
    access: { provider: 'pdns', apiUrl: ctx.pdns.apiUrl, apiKey: (await readFile(ctx.pdns.apiKeyFile, 'utf8')).trim() },
    serverCaFile: ctx.pebble.httpsCaFile, runner: execaRunner(),
  };
});

test.after(async (ctx) => {
  const pids = [ctx.pebble?.pid, ctx.pdns?.pid];
  await ctx.pebble?.stop();
  await ctx.pdns?.stop();
  for (const pid of pids) if (pid) assert.not.ok(processAlive(pid), `process ${pid} stopped`);
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

/** Serves `chain`/`key` on 127.0.0.1 and connects as www.acme.test trusting only `ca` (or the system's). */
async function handshake(chain: string, key: string, ca: string | undefined): Promise<string> {
  const server: Server = createServer({ cert: chain, key }, (_req, res) => res.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, servername: 'www.acme.test', headers: { host: 'www.acme.test' }, ...(ca ? { ca } : {}), timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test('lego obtains a certificate by DNS-01 through PowerDNS; a client trusting pebble\'s root accepts it, others refuse it', async (ctx) => {
  const c = await obtainCertificate(ctx.options);
  assert.ok(c.renewed, 'a new certificate');
  assert.ok(c.notAfter.getTime() > Date.now() + 86_400_000);
  const leaf = new X509Certificate(c.chain);
  assert.match(leaf.subjectAltName ?? '', /DNS:www\.acme\.test/);
  assert.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(c.key)), 'the key matches');
  const root = await ctx.pebble.rootPem();
  assert.ok(new X509Certificate(c.issuer).verify(new X509Certificate(root).publicKey), 'the issuer is signed by pebble\'s root');
  assert.is(await handshake(c.chain, c.key, root), 'hello');
  const refused = await handshake(c.chain, c.key, undefined).then(() => 'accepted', (e: Error) => e.message);
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

test('a refused challenge (a wrong PowerDNS key) is a clear error naming the domain, never the key', async (ctx) => {
  const wrong = 'not-the-pdns-key-4f1e';
  const e = await obtainCertificate({ ...ctx.options, domains: ['new.acme.test'], access: { provider: 'pdns', apiUrl: ctx.pdns.apiUrl, apiKey: wrong }, timeoutMs: 60_000 }).then(() => null, (x: Error) => x);
  assert.ok(e, 'it fails');
  assert.match(e!.message, /could not obtain a certificate for new\.acme\.test .*DNS-01 via pdns/);
  assert.not.ok(e!.message.includes(wrong), e!.message);
});

test('pebble is found again from its data dir (no second server), and starts only with a DNS server given as host:port', async (ctx) => {
  const again = await startPebble({ dataDir: join(ctx.dir, 'pebble'), dnsServer: `${ctx.pdns.dnsAddress}:${ctx.pdns.dnsPort}` });
  assert.is(again.pid, ctx.pebble.pid);
  const bad = await startPebble({ dataDir: join(ctx.dir, 'other'), dnsServer: 'nowhere' }).then(() => null, (x: { exitCode?: number }) => x);
  assert.is(bad?.exitCode, 2);
});

test.run();
