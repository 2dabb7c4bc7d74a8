/**
 * `deploy --dry-run` on a real cloud: the deploy's cloud steps run for real through the provider's
 * drivers, but their `fetch` is the provider's built-in fake (`@adt/providers/fakes/*`): nothing is
 * sent, every call is recorded, and the answers are those a fresh account would give. The output
 * is the exact list of API calls (user-data and passwords shown by size only), in order.
 *
 * The order is the deploy's: the DNS zone; each role's native firewall (first with the build
 * machine only, so servers are protected from their first boot); the servers, created and waited
 * for; the firewalls again with the fleet's addresses; a managed database allowed only from the
 * fleet's addresses, private ones where the cloud has them (DATABASE_SERVICE=managed); the site's A records; the certificate by
 * ACME (lego, DNS-01 on the DNS provider).
 */
import { computePolicies, applyNative, type FleetRole, type FleetSnapshot } from '@adt/firewall';
import {
  apiFakes,
  dnsDrivers,
  formatCalls,
  redactBody,
  serverName,
  type ApiCall,
  type ComputeProvider,
  type DnsProvider,
  type ManagedDatabaseProvider,
  type NativeFirewallProvider,
  type Server,
} from '@adt/providers';
import { userData } from '@adt/role-common';
import { PROVIDER_DEFAULTS, zoneOf, type CloudProvider, type Deployment } from './settings.ts';
import { DB_PORT, wantedServers } from './deploy.ts';

interface CloudDrivers {
  compute: ComputeProvider;
  firewall: NativeFirewallProvider;
  databases: ManagedDatabaseProvider;
  dns: DnsProvider;
}

/** The object storage endpoint of a provider's region (where the config bucket lives). */
export function objectStorageEndpoint(provider: CloudProvider, region: string): string {
  switch (provider) {
    case 'digitalocean':
      return `https://${region}.digitaloceanspaces.com`;
    case 'linode':
      return `https://${region}-1.linodeobjects.com`;
    case 'vultr':
      return `https://${region}.vultrobjects.com`;
    case 'exoscale':
      return `https://sos-${region}.exo.io`;
  }
}

type CloudDriver = ComputeProvider & {
  firewall: NativeFirewallProvider;
  databases: ManagedDatabaseProvider;
  dns(zone: string, ttl?: number): DnsProvider;
};

/** Each cloud's driver, made with placeholder credentials and a given fetch (a dry run sends nothing). */
const DRY_RUN_DRIVERS: Record<CloudProvider, (d: Deployment, fetch: typeof globalThis.fetch) => Promise<CloudDriver>> = {
  digitalocean: async (d, fetch) =>
    (await import('@adt/providers/drivers/digitalocean')).default({ token: 'dry-run', region: d.region, size: d.serverSize, fetch }),
  linode: async (d, fetch) =>
    (await import('@adt/providers/drivers/linode')).default({ token: 'dry-run', region: d.region, size: d.serverSize, fetch }),
  vultr: async (d, fetch) =>
    (await import('@adt/providers/drivers/vultr')).default({ apiKey: 'dry-run', region: d.region, size: d.serverSize, fetch }),
  exoscale: async (d, fetch) =>
    (await import('@adt/providers/drivers/exoscale')).default({
      apiKey: 'dry-run',
      apiSecret: 'dry-run',
      zone: d.region,
      size: d.serverSize,
      fetch,
      operationIntervalMs: 1,
    }),
};

/** Drivers of `provider` whose requests go to its fake and are recorded in `calls`. */
async function dryRunDrivers(d: Deployment, provider: CloudProvider, calls: ApiCall[]): Promise<CloudDrivers> {
  const zone = zoneOf(d.host);
  const fake = (await apiFakes[provider]())();
  const c = await DRY_RUN_DRIVERS[provider](d, fake.dryRunFetch(calls));
  const drivers = { compute: c, firewall: c.firewall, databases: c.databases, cloudDns: (z: string) => c.dns(z, d.scaling.dnsTtlSeconds) };
  let dns = drivers.cloudDns(zone);
  if (d.dnsProvider === 'cloudflare') {
    const cf = (await apiFakes.cloudflare())();
    const { default: cloudflare } = await dnsDrivers.cloudflare();
    // A fresh deploy on Cloudflare expects the zone to be there already (added in the dashboard).
    cf.addZone(zone);
    dns = cloudflare({
      apiToken: 'dry-run',
      zone,
      proxied: d.webMode === 'cloudflare',
      defaultTtl: d.scaling.dnsTtlSeconds,
      fetch: cf.dryRunFetch(calls),
      maxRetries: 0,
    });
  }
  return { ...drivers, dns };
}

export interface CloudDryRun {
  provider: CloudProvider;
  region: string;
  size: string;
  servers: { name: string; role: FleetRole }[];
  apiCalls: ApiCall[];
  acme: string[];
}

/** Runs the deploy's cloud steps against the provider's fake and returns the calls made. */
export async function cloudDryRun(d: Deployment): Promise<CloudDryRun> {
  const provider = d.provider as CloudProvider;
  const calls: ApiCall[] = [];
  const c = await dryRunDrivers(d, provider, calls);
  const zone = zoneOf(d.host);
  const fleet: FleetSnapshot = {
    buildMachine: [d.buildMachineIp!],
    webservers: [],
    autoscalers: [],
    databases: [],
    auth: [],
    authorisedClients: [],
  };
  const roles = [...new Set(wantedServers(d).map((w) => w.role))];
  const policyOptions = { webMode: d.webMode, dbPort: DB_PORT, http: true } as const;
  const applyFor = async () => {
    const all = computePolicies(fleet, policyOptions);
    await applyNative(c.firewall, d.buildId, Object.fromEntries(roles.map((r) => [r, all[r]])) as typeof all);
  };

  await c.dns.ensureZone(zone);
  await applyFor();
  const created: Server[] = [];
  for (const w of wantedServers(d)) {
    const name = serverName({ role: w.role, buildId: d.buildId, slot: w.slot });
    created.push(
      await c.compute.create({
        name,
        role: w.role,
        buildId: d.buildId,
        region: d.region,
        size: d.serverSize,
        userData: userData({
          role: w.role,
          s3Endpoint: objectStorageEndpoint(provider, d.region),
          s3AccessKeyId: 'KEY',
          s3SecretAccessKey: 'SECRET',
          configBucket: d.configBucket,
          datastoreKey: '0'.repeat(64),
          webMode: d.webMode,
          dbPort: DB_PORT,
          codeDir: '/opt/adt',
        }),
      }),
    );
  }
  const running: Server[] = [];
  for (const s of created) running.push(await c.compute.waitUntilRunning(s.id, { intervalMs: 1, timeoutMs: 5_000 }));
  const ips = (role: FleetRole) =>
    running
      .filter((s) => s.role === role)
      .flatMap((s) => [s.publicIp, s.privateIp])
      .filter((x): x is string => Boolean(x));
  Object.assign(fleet, { webservers: ips('webserver'), autoscalers: ips('autoscaler'), databases: ips('database'), auth: ips('auth') });
  await applyFor();
  if (d.databaseService === 'managed') {
    // The fleet's private addresses; a server without one (Exoscale's DBaaS is reached over the
    // public network, filtered by address) is allowed by its public address.
    const allow = running.map((s) => s.privateIp ?? s.publicIp).filter((x): x is string => Boolean(x));
    const db = await c.databases.create({
      name: `adt-${d.buildId}-db`,
      buildId: d.buildId,
      engine: 'mysql',
      region: d.region,
      size: PROVIDER_DEFAULTS[provider].dbSize,
      allow,
    });
    await c.databases.waitUntilOnline(db.id, { intervalMs: 1, timeoutMs: 5_000 });
  }
  for (const s of running.filter((x) => x.role === 'webserver')) await c.dns.addA(d.host, s.publicIp!, d.scaling.dnsTtlSeconds);
  if (d.auth) {
    const auth = running.find((x) => x.role === 'auth');
    if (auth) await c.dns.addA(d.auth.host, auth.publicIp!, d.scaling.dnsTtlSeconds);
  }
  // One certificate for the site and, with WEB_FIREWALL=auth, one for the sign-in host (its own secrets).
  const names = [d.host, ...(d.auth ? [d.auth.host] : [])];
  const acme = names.map(
    (n) =>
      `lego --server ${d.tls.acmeServer} --email ${d.tls.acmeEmail} --accept-tos --dns ${d.dnsProvider} --domains ${n} run   (DNS-01: a TXT record _acme-challenge.${n} through the ${d.dnsProvider} API, removed after)`,
  );
  return {
    provider,
    region: d.region,
    size: d.serverSize,
    servers: created.map((s) => ({ name: s.name, role: s.role as FleetRole })),
    apiCalls: calls.map((x) => ({ ...x, ...(x.body === undefined ? {} : { body: redactBody(x.body) }) })),
    acme,
  };
}

/** Human-readable lines: consecutive identical calls (polling, repeated reads) collapsed with a count. */
export function formatDryRun(r: CloudDryRun): string[] {
  const lines = formatCalls(r.apiCalls);
  const out: string[] = [];
  for (let i = 0; i < lines.length;) {
    let j = i + 1;
    while (j < lines.length && lines[j] === lines[i]) j++;
    out.push(`${String(out.length + 1).padStart(4)}. ${lines[i]}${j - i > 1 ? `   (x${j - i})` : ''}`);
    i = j;
  }
  return out;
}
