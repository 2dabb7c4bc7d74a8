/**
 * A DigitalOcean deploy, proven on this machine: PROVIDER=digitalocean with EMULATOR=local (cloud
 * `tdo` on 198.19.60.0/24 + 198.19.61.0/24). Every call goes through the DigitalOcean driver to the
 * local cloud's emulation of DigitalOcean's API; its droplets are real local servers that run their
 * user-data, its firewalls the cloud's native rules, its domain served by the cloud's PowerDNS (where
 * lego's DigitalOcean provider writes the DNS-01 challenge), its object storage the local S3 with
 * Spaces' write budget. Production mode: the autoscaler holds a token of the emulation scoped to
 * the build's webservers and works through the same driver: it heals a killed webserver and scales.
 * Destroy leaves nothing on the emulated account or the cloud.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { localCloudConfig } from '@adt/fleet';
import { attachLocalCloud } from '@adt/localcloud';
import { cleanup, setup } from '@adt/test-utils';
import {
  aRecords,
  deploymentOf,
  fetchFromOutsider,
  helper,
  killWebStack,
  productionFleet,
  removeFleet,
  until,
  zx,
  type Fleet,
} from './_fleet.ts';
import { outsiderStatus } from './_site.ts';

const test = suite<{ f: Fleet; plan: string[] }>('DigitalOcean, emulated by the local cloud: deploy, heal, scale, destroy');

setup(test, async (ctx) => {
  ctx.f = await productionFleet('tdo', 60, ['PROVIDER=digitalocean', 'EMULATOR=local', 'WEBSERVERS=2', 'TLS=acme', 'READY_TIMEOUT=600']);
  ctx.f.caFile = join(ctx.f.dir, 'state/builds/tdo1/acme-root.pem');
  process.env.ADT_CRON_DIR = join(ctx.f.dir, 'cron.d');
});

test.after(async (ctx) => cleanup('the tdo fleet', [() => removeFleet(ctx.f)]));

/** A GET on the emulated DigitalOcean API with the cloud's account token (what the user's token is there). */
async function digitalocean<T>(f: Fleet, path: string): Promise<T> {
  const access = await attachLocalCloud(localCloudConfig(deploymentOf(f.file)));
  if (!access) throw new Error('the tdo cloud does not run');
  const r = await fetch(`${access.url}/digitalocean/v2${path}`, { headers: { authorization: `Bearer ${access.token}` } });
  if (!r.ok) throw new Error(`GET ${path}: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

interface Droplet {
  id: number;
  name: string;
  status: string;
  tags: string[];
  networks: { v4: { ip_address: string; type: string }[] };
}
const droplets = async (f: Fleet) =>
  (await digitalocean<{ droplets: Droplet[] }>(f, '/droplets?tag_name=adt-build-tdo1&per_page=200')).droplets;
const webDroplets = async (f: Fleet) => (await droplets(f)).filter((d) => d.tags.includes('adt-role-webserver'));
const publicIp = (d: Droplet) => d.networks.v4.find((n) => n.type === 'public')?.ip_address ?? '';
const siteRecords = async (f: Fleet) =>
  (
    await digitalocean<{ domain_records: { type: string; name: string; data: string }[] }>(f, '/domains/tdo.test/records?per_page=200')
  ).domain_records
    .filter((r) => r.type === 'A' && r.name === 'www')
    .map((r) => r.data)
    .sort();

/**
 * A call as both lists can be compared: ids and key fingerprints as placeholders, no paging, and
 * repeated reads of one thing as one (polls: a dry run's servers are ready at the second look).
 */
function comparable(calls: { method: string; path: string; query: string }[]): string[] {
  const out: string[] = [];
  for (const c of calls) {
    const q = new URLSearchParams(c.query);
    q.delete('page');
    q.delete('per_page');
    const path = c.path.replace(/\/(?:[0-9a-f]{2}:){15}[0-9a-f]{2}$/, '/:fingerprint').replace(/\/\d+(?=\/|$)/g, '/:id');
    const line = `${c.method} ${path}${q.size ? `?${q}` : ''}`;
    // Repeated reads (polls) count once; every change counts.
    if (out.at(-1) !== line || c.method !== 'GET') out.push(line);
  }
  return out;
}

test('the dry run lists its calls without starting anything', async (ctx) => {
  const r = await zx('deploy.mjs', ['--config', ctx.f.file, '--dry-run', '--json']);
  assert.is(r.exitCode, 0, r.stderr + r.stdout);
  const plan = JSON.parse(r.stdout) as { apiCalls: { method: string; url: string }[] };
  ctx.plan = comparable(
    plan.apiCalls.map((c) => {
      const u = new URL(c.url);
      return { method: c.method, path: u.pathname.replace(/^\/v2/, ''), query: u.search };
    }),
  );
  assert.ok(ctx.plan.includes('POST /droplets'), ctx.plan.join('\n'));
  assert.is(await attachLocalCloud(localCloudConfig(deploymentOf(ctx.f.file))), null, 'no cloud was started');
});

test("deploy goes through DigitalOcean's API: droplets, firewalls, the domain, ACME by DNS-01; the site answers on HTTPS", async (ctx) => {
  const { f } = ctx;
  const r = await zx('deploy.mjs', ['--config', f.file]);
  assert.is(r.exitCode, 0, r.stderr + r.stdout);
  // The emulation logged every call it answered: the deploy's own (the account's token, our driver;
  // not lego's, nor the autoscaler's scoped token) are the calls its dry run listed, in that order.
  const log = readFileSync(join(f.dir, 'state/cloud/tdo/emulated/digitalocean.calls.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { by: string; agent: string; method: string; path: string; query: string });
  assert.ok(
    log.some((c) => c.by === 'scoped:tdo1'),
    "the autoscaler's calls are in the log, with its scoped token",
  );
  // Our driver is Node's fetch; lego's DigitalOcean provider is Go's HTTP client.
  const lego = (c: { agent: string }) => c.agent !== 'node';
  assert.ok(log.some(lego), `lego's calls too (the DNS-01 challenge): agents ${[...new Set(log.map((c) => c.agent))].join(', ')}`);
  const made = comparable(log.filter((c) => c.by === 'account' && !lego(c)));
  // The site's A records: the deploy writes those the autoscaler has not written yet (it may be first).
  const record = (c: string) => /^POST \/domains\/[^/]+\/records$/.test(c);
  const changes = (calls: string[]) => calls.filter((c) => !c.startsWith('GET ') && !record(c));
  assert.equal(changes(made), changes(ctx.plan), 'the deploy made the changes its dry run listed, in that order');
  const records = comparable(log.filter((c) => !lego(c))).filter(record);
  assert.ok(records.length >= ctx.plan.filter(record).length, "the site's records, by the deploy or the autoscaler");
  for (const read of ctx.plan.filter((c) => c.startsWith('GET ')))
    assert.ok(made.includes(read), `the deploy read ${read} as its dry run listed`);
  assert.match(r.stdout, /on digitalocean \(emulated by the local cloud "tdo"\)/);
  assert.match(r.stdout, /zone tdo\.test on digitalocean \(emulated: served by the local cloud's PowerDNS/);
  assert.match(r.stdout, /TLS certificate for www\.tdo\.test by ACME from \S+ \(DNS-01\): issued/);
  const all = await droplets(f);
  assert.equal(all.map((d) => d.tags.find((t) => t.startsWith('adt-role-'))).sort(), [
    'adt-role-autoscaler',
    'adt-role-database',
    'adt-role-webserver',
    'adt-role-webserver',
  ]);
  for (const d of all) assert.is(d.status, 'active', `${d.name} is active`);
  // The firewalls are DigitalOcean's, by tag; the local cloud enforces them as its native rules.
  const fw = (await digitalocean<{ firewalls: { name: string; tags: string[] }[] }>(f, '/firewalls')).firewalls;
  assert.equal(fw.map((x) => x.name).sort(), ['adt-tdo1-autoscaler', 'adt-tdo1-database', 'adt-tdo1-webserver']);
  // The site's records: written through the API, served by the cloud's DNS to resolvers.
  const ips = (await webDroplets(f)).map(publicIp).sort();
  assert.equal(await siteRecords(f), ips);
  assert.equal(await aRecords(f), ips);
  for (const ip of ips) {
    const ok = await outsiderStatus(f.cloudId, f.host, ip, f.caFile);
    assert.ok(['200', '302'].includes(ok.stdout), `${ip}: ${ok.stdout} ${ok.stderr}`);
  }
  // Spaces' write budget reaches the servers (the datastore keeps under it there too).
  const env = await helper('ExecuteOnWebserver', ['--config', f.file, '--', 'grep', '-h', 'ADT_WRITE_BUDGET', '/etc/adt/datastore.env']);
  assert.match(env.stdout, /ADT_WRITE_BUDGET=5\/300/);
});

test('a re-run converges: nothing created, nothing destroyed', async ({ f }) => {
  const before = (await droplets(f)).map((d) => d.id).sort();
  const r = await zx('deploy.mjs', ['--config', f.file]);
  assert.is(r.exitCode, 0, r.stderr + r.stdout);
  assert.equal((await droplets(f)).map((d) => d.id).sort(), before);
});

test('the autoscaler, through the same driver, replaces a killed webserver and scales to 3', async ({ f }) => {
  const [dying] = await webDroplets(f);
  assert.ok(dying, 'a webserver to kill');
  const kill = await killWebStack(f, dying!.name);
  assert.is(kill.exitCode, 0, kill.stderr);
  assert.ok(await until(async () => !(await aRecords(f)).includes(publicIp(dying!)), 60_000), 'its record goes');
  assert.ok(
    await until(async () => {
      const web = await webDroplets(f);
      return web.length === 2 && !web.some((d) => d.id === dying!.id) && (await aRecords(f)).length === 2;
    }, 600_000),
    'a replacement droplet serves, and the dead one is destroyed through the API',
  );
  const scale = await helper('AdjustScaling', ['--config', f.file, '3']);
  assert.is(scale.exitCode, 0, scale.stderr);
  assert.ok(await until(async () => (await aRecords(f)).length === 3, 600_000), 'three webservers in DNS');
  for (const ip of await aRecords(f)) assert.ok([200, 302].includes(await fetchFromOutsider(f, ip)), `${ip} serves`);
  assert.equal(await siteRecords(f), await aRecords(f), "the cloud's DNS holds what the API holds");
});

test('destroy removes every droplet, firewall and record it made, and the cloud goes', async ({ f }) => {
  const r = await zx('destroy.mjs', ['--config', f.file], { timeoutMs: 300_000 });
  assert.is(r.exitCode, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /the cloud's firewall rules removed: webserver, database, autoscaler\n/, r.stdout);
  assert.match(r.stdout, /DNS records removed: www\.tdo\.test A/);
  assert.match(r.stdout, /digitalocean \(emulated by the local cloud "tdo"\): torn down/);
  assert.is(await attachLocalCloud(localCloudConfig(deploymentOf(f.file))), null, 'the cloud is gone');
});

test.run();
