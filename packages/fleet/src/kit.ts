/**
 * What a deploy gets from its provider: one `CloudKit` per provider, the same shape for the local
 * cloud and the four real clouds, so the pipeline (deploy.ts) has no branch per provider. What only
 * one cloud can do is an optional member (the local cloud's mail catcher and ACME test server, its
 * console, its teardown once empty).
 *
 * Each kit comes in two transports: `apply` (the provider's real API) and `dry-run` (the same
 * driver whose `fetch` is the provider's fake: every call is recorded in `calls`, nothing is sent).
 */
import { join } from 'node:path';
import { SPACES_WRITE_BUDGET, type ProviderAccess, type WriteBudget } from '@adt/configstore';
import { AdtError, pollUntil, processAlive } from '@adt/core';
import {
  apiFakes,
  dnsDrivers,
  type ApiCall,
  type ComputeProvider,
  type DnsProvider,
  type ManagedDatabaseProvider,
  type NativeFirewallProvider,
} from '@adt/providers';
import type { AcmeDnsAccess } from '@adt/acme';
import type { CloudProvider, Deployment } from './settings.ts';

export interface ObjectStorage {
  /** The S3 endpoint servers and the build use (reachable from the servers). */
  endpoint: string;
  region: string;
  /** The build's credentials (servers get theirs in their envelope). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Writes per object the service allows (null: no such limit). */
  writeBudget: WriteBudget | null;
}

export interface AcmeService {
  directoryUrl: string;
  /** The CA of the ACME server's own HTTPS (a test server's), as PEM; null: a public one. */
  httpsCaPem: string | null;
  /** The root its certificates chain to (a test server's changes at its start), null: a public one. */
  rootPem: string | null;
  /** The resolver lego finds zones with (the cloud's DNS), host:port; null: the system's. */
  resolver: string | null;
}

export interface CloudKit {
  provider: Deployment['provider'];
  compute: ComputeProvider;
  firewall: NativeFirewallProvider;
  dns(zone: string): DnsProvider;
  databases?: ManagedDatabaseProvider;
  storage: ObjectStorage;
  /** The build machine as the servers see it (its addresses are let in by every firewall). */
  buildMachine: { publicIp: string; privateIp: string | null };
  /** The private network's CIDR (the cloud's coarse firewall lets the fleet in by it), when known. */
  privateCidr: string | null;
  /** Where the site's name is resolved to check it (the cloud's DNS server), host; null: the system's resolver. */
  nameserver: string | null;
  /** How lego writes DNS-01 records on this cloud's DNS. */
  acmeDns(): Promise<AcmeDnsAccess>;
  /** The cloud's own ACME server (the local cloud's pebble), when ACME_SERVER names none. */
  acme?(): Promise<AcmeService>;
  /** The cloud's SMTP relay (the local cloud's mail catcher), when SMTP_RELAY names none. */
  smtp?(): Promise<{ host: string; port: number; mailDir: string }>;
  /** What an autoscaler gets to reach the cloud: a token scoped to the build's webservers where the cloud can scope one. */
  autoscalerAccess(buildId: string, zone: string): Promise<ProviderAccess>;
  /** Revokes what autoscalerAccess made (destroy); how many it revoked. */
  revokeAutoscalerAccess?(buildId: string): Promise<number>;
  /** Removes the cloud itself once nothing is left on it (the local cloud's networks and services). */
  teardown?(): Promise<string>;
  /** A dry run's recorded calls. */
  calls: ApiCall[] | null;
  dispose(): Promise<void>;
}

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) => new AdtError(code, message, { pkg: 'fleet', driver: 'kit', exitCode });

/** The local cloud's configuration from a deployment (STATE_DIR/<service>/<cloud id> for each service). */
export function localCloudConfig(d: Deployment) {
  const id = d.local.cloudId;
  return {
    cloudId: id,
    stateDir: join(d.stateDir, 'cloud', id),
    publicCidr: d.local.publicCidr,
    privateCidr: d.local.privateCidr,
    imageDir: d.local.imageDir,
    ports: { ...d.local.ports, dns: 53 },
    dirs: {
      s3: join(d.stateDir, 's3', id),
      dns: join(d.stateDir, 'dns', id),
      acme: join(d.stateDir, 'acme', id),
      mail: join(d.stateDir, 'mail', id),
      mirror: join(d.stateDir, 'mirror', id),
    },
  };
}

/** The local cloud: its API (started when it is not running), or, for a dry run, its fake. */
async function localKit(d: Deployment, transport: 'apply' | 'dry-run' | 'attach'): Promise<CloudKit | null> {
  const { default: localDriver } = await import('@adt/providers/drivers/local');
  const config = localCloudConfig(d);
  let calls: ApiCall[] | null = null;
  let driver;
  let daemon: number | null = null;
  if (transport === 'dry-run') {
    calls = [];
    const fake = (await apiFakes.local())({
      publicCidr: d.local.publicCidr,
      privateCidr: d.local.privateCidr,
      cloudId: d.local.cloudId,
      s3Port: d.local.ports.s3,
      smtpPort: d.local.ports.smtp,
      mirrorPort: d.local.ports.mirror,
    });
    driver = localDriver({
      url: `http://${d.local.privateCidr.replace(/\.0\/24$/, '.1')}:${d.local.ports.api}`,
      token: 'dry-run',
      fetch: fake.dryRunFetch(calls),
    });
  } else {
    const { ensureLocalCloud, attachLocalCloud } = await import('@adt/localcloud');
    const access = transport === 'apply' ? await ensureLocalCloud(config) : await attachLocalCloud(config);
    if (!access) return null;
    daemon = access.pid;
    driver = localDriver({ url: access.url, token: access.token });
  }
  const info = await driver.cloud();
  const services = await driver.services();
  return {
    provider: 'local',
    compute: driver,
    firewall: driver.firewall,
    dns: (zone) => driver.dns(zone, d.scaling.dnsTtlSeconds),
    storage: {
      endpoint: services.s3.endpoint,
      region: services.s3.region,
      credentials: { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey },
      // The embedded S3 server has no per-object write limit.
      writeBudget: null,
    },
    buildMachine: info.buildMachine,
    privateCidr: info.privateCidr,
    nameserver: info.nameserver,
    acmeDns: async () => ({ provider: 'pdns', apiUrl: services.dns.apiUrl, apiKey: services.dns.apiKey }),
    async acme() {
      const a = await driver.acme();
      return { directoryUrl: a.directoryUrl, httpsCaPem: a.httpsCaPem, rootPem: a.rootPem, resolver: a.dnsServer };
    },
    smtp: async () => services.smtp,
    async autoscalerAccess(buildId, zone) {
      const t = await driver.createScopedToken(buildId, ['webserver'], `autoscaler of build ${buildId}`);
      return {
        compute: { driver: 'local', options: { url: driver.url, token: t.token } },
        dns: {
          driver: 'powerdns',
          options: { apiUrl: services.dns.apiUrl, apiKey: services.dns.apiKey, zone, defaultTtl: d.scaling.dnsTtlSeconds },
        },
      };
    },
    revokeAutoscalerAccess: (buildId) => driver.revokeTokens(buildId),
    async teardown() {
      await driver.teardown();
      // The cloud answers at once and tears down after: done once its daemon (by PID) has gone.
      await pollUntil(async () => daemon !== null && !processAlive(daemon), {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: `the local cloud "${d.local.cloudId}" to tear down`,
      });
      return 'torn down (no server left on it): its networks and services stopped, its state removed';
    },
    calls,
    dispose: async () => {},
  };
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

/** Writes per object each cloud's object storage documents (DigitalOcean Spaces: 5 per 5 minutes). */
const WRITE_BUDGETS: Record<CloudProvider, WriteBudget | null> = {
  digitalocean: SPACES_WRITE_BUDGET,
  linode: null,
  vultr: null,
  exoscale: null,
};

/** A real cloud through its fake (a dry run): every call recorded, as a fresh account would answer. */
async function cloudDryRunKit(d: Deployment): Promise<CloudKit> {
  const provider = d.provider as CloudProvider;
  const calls: ApiCall[] = [];
  const fake = (await apiFakes[provider]())();
  const c = await DRY_RUN_DRIVERS[provider](d, fake.dryRunFetch(calls));
  let dns = (zone: string): DnsProvider => c.dns(zone, d.scaling.dnsTtlSeconds);
  if (d.dnsProvider === 'cloudflare') {
    const cf = (await apiFakes.cloudflare())();
    const { default: cloudflare } = await dnsDrivers.cloudflare();
    // A fresh deploy on Cloudflare expects the zone to be there already (added in the dashboard).
    cf.addZone(d.zone);
    const proxied = d.webMode === 'cloudflare';
    dns = (zone) =>
      cloudflare({ apiToken: 'dry-run', zone, proxied, defaultTtl: d.scaling.dnsTtlSeconds, fetch: cf.dryRunFetch(calls), maxRetries: 0 });
  }
  return {
    provider,
    compute: c,
    firewall: c.firewall,
    databases: c.databases,
    dns,
    storage: {
      endpoint: objectStorageEndpoint(provider, d.region),
      region: d.region,
      credentials: { accessKeyId: 'dry-run', secretAccessKey: 'dry-run' },
      writeBudget: WRITE_BUDGETS[provider],
    },
    buildMachine: { publicIp: d.buildMachineIp!, privateIp: null },
    privateCidr: null,
    nameserver: null,
    acmeDns: async () =>
      d.dnsProvider === 'cloudflare' ? { provider: 'cloudflare', apiToken: '(CLOUDFLARE_API_TOKEN)' } : cloudDnsAccess(provider),
    autoscalerAccess: async (_buildId, zone) => ({
      compute: { driver: provider, options: { region: d.region, size: d.serverSize } },
      dns: { driver: d.dnsProvider === 'cloudflare' ? 'cloudflare' : provider, options: { zone } },
    }),
    calls,
    dispose: async () => {},
  };
}

function cloudDnsAccess(provider: CloudProvider): AcmeDnsAccess {
  switch (provider) {
    case 'digitalocean':
      return { provider, token: '(DIGITALOCEAN_TOKEN)' };
    case 'linode':
      return { provider, token: '(LINODE_TOKEN)' };
    case 'vultr':
      return { provider, apiKey: '(VULTR_API_KEY)' };
    case 'exoscale':
      return { provider, apiKey: '(EXOSCALE_API_KEY)', apiSecret: '(EXOSCALE_API_SECRET)' };
  }
}

/**
 * The kit of the deployment's provider. `apply`: the real thing (the local cloud is started when it
 * does not run); `dry-run`: the provider's fake, nothing sent; `attach`: the running local cloud
 * only, never started (null when it does not run: status, destroy).
 */
export async function openKit(d: Deployment, transport: 'apply' | 'dry-run' | 'attach'): Promise<CloudKit | null> {
  if (d.provider === 'local') return localKit(d, transport);
  if (transport === 'dry-run') return cloudDryRunKit(d);
  throw fail(
    'CLOUD_DEPLOY',
    `PROVIDER=${d.provider}: this version deploys on the local provider only (the role bundle, the one-time secrets and the pipeline ` +
      `are the same on every cloud; the clouds' object storage keys and deploy are not built yet); --dry-run prints every API call ` +
      `a deploy on ${d.provider} would make`,
    2,
  );
}
