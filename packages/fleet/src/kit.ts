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
  EMULATED_APIS,
  dnsDrivers,
  type ApiCall,
  type ComputeProvider,
  type EmulatedProvider,
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

type LocalDriver = ReturnType<(typeof import('@adt/providers/drivers/local'))['default']>;

/**
 * What a deploy uses of the local cloud through its driver: the cloud, its services, pebble, the
 * mail catcher, its teardown (waiting for its daemon, by PID, to be gone; a dry run's has none).
 */
async function localParts(d: Deployment, driver: LocalDriver, daemon: number | null) {
  return {
    driver,
    info: await driver.cloud(),
    services: await driver.services(),
    async acme(): Promise<AcmeService> {
      const a = await driver.acme();
      return { directoryUrl: a.directoryUrl, httpsCaPem: a.httpsCaPem, rootPem: a.rootPem, resolver: a.dnsServer };
    },
    smtp: async () => (await driver.services()).smtp,
    async teardown() {
      await driver.teardown();
      // The cloud answers at once and tears down after: done once its daemon has gone.
      if (daemon !== null)
        await pollUntil(async () => !processAlive(daemon), {
          timeoutMs: 60_000,
          intervalMs: 200,
          what: `the local cloud "${d.local.cloudId}" to tear down`,
        });
      return 'torn down (no server left on it): its networks and services stopped, its state removed';
    },
  };
}

/** The running local cloud (started for `apply` when it does not run; null for `attach` when it does not run). */
async function openLocal(d: Deployment, transport: 'apply' | 'attach') {
  const { default: localDriver } = await import('@adt/providers/drivers/local');
  const { ensureLocalCloud, attachLocalCloud } = await import('@adt/localcloud');
  const config = localCloudConfig(d);
  const access = transport === 'apply' ? await ensureLocalCloud(config) : await attachLocalCloud(config);
  if (!access) return null;
  const parts = await localParts(d, localDriver({ url: access.url, token: access.token }), access.pid);
  return { url: access.url, token: access.token, ...parts };
}

/** The local cloud's fake: a dry run's calls recorded, nothing started. */
async function openLocalDryRun(d: Deployment, calls: ApiCall[]) {
  const { default: localDriver } = await import('@adt/providers/drivers/local');
  const fake = (await apiFakes.local())({
    publicCidr: d.local.publicCidr,
    privateCidr: d.local.privateCidr,
    cloudId: d.local.cloudId,
    s3Port: d.local.ports.s3,
    smtpPort: d.local.ports.smtp,
    mirrorPort: d.local.ports.mirror,
  });
  const driver = localDriver({
    url: `http://${d.local.privateCidr.replace(/\.0\/24$/, '.1')}:${d.local.ports.api}`,
    token: 'dry-run',
    fetch: fake.dryRunFetch(calls),
  });
  return localParts(d, driver, null);
}

/** The local cloud: its API (started when it is not running), or, for a dry run, its fake. */
async function localKit(d: Deployment, transport: 'apply' | 'dry-run' | 'attach'): Promise<CloudKit | null> {
  const calls: ApiCall[] | null = transport === 'dry-run' ? [] : null;
  const local = calls ? await openLocalDryRun(d, calls) : await openLocal(d, transport as 'apply' | 'attach');
  if (!local) return null;
  const { driver, services, info } = local;
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
    acme: local.acme,
    smtp: local.smtp,
    async autoscalerAccess(buildId, zone): Promise<ProviderAccess> {
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
    teardown: local.teardown,
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
  defaultVpcCidr?(region?: string): Promise<string | null>;
};

/** A cloud driver's credentials (and its API's base URL when not the real one), as its options name them. */
type Credentials = Record<string, string>;

/** The environment variables of each cloud's API credentials, by the driver option each fills. */
export const CREDENTIAL_VARIABLES: Record<CloudProvider, Record<string, string>> = {
  digitalocean: { token: 'DIGITALOCEAN_TOKEN' },
  linode: { token: 'LINODE_TOKEN' },
  vultr: { apiKey: 'VULTR_API_KEY' },
  exoscale: { apiKey: 'EXOSCALE_API_KEY', apiSecret: 'EXOSCALE_API_SECRET' },
};

/** Each cloud's driver, from its credentials and a fetch (a dry run's sends nothing). */
const CLOUD_DRIVERS: Record<CloudProvider, (d: Deployment, creds: Credentials, fetch?: typeof globalThis.fetch) => Promise<CloudDriver>> = {
  digitalocean: async (d, creds, fetch) =>
    (await import('@adt/providers/drivers/digitalocean')).default({ token: '', ...creds, region: d.region, size: d.serverSize, fetch }),
  linode: async (d, creds, fetch) =>
    (await import('@adt/providers/drivers/linode')).default({ token: '', ...creds, region: d.region, size: d.serverSize, fetch }),
  vultr: async (d, creds, fetch) =>
    (await import('@adt/providers/drivers/vultr')).default({ apiKey: '', ...creds, region: d.region, size: d.serverSize, fetch }),
  exoscale: async (d, creds, fetch) =>
    (await import('@adt/providers/drivers/exoscale')).default({
      apiKey: '',
      apiSecret: '',
      ...creds,
      zone: d.region,
      size: d.serverSize,
      fetch,
      ...(fetch ? { operationIntervalMs: 1 } : {}),
    }),
};

/**
 * Writes per object each cloud's object storage documents, which the datastore keeps under.
 * - DigitalOcean Spaces: "5 PUT or COPY requests per 5 minutes on any one object" (earlier versions of
 *   https://docs.digitalocean.com/products/spaces/details/limits; the current one says at most 10
 *   concurrent PUTs on one object): the stricter, 5 per 300 s, is kept.
 * - Linode Object Storage: limits are per bucket (750 requests/s on E0/E1 endpoints, more on E2/E3,
 *   https://techdocs.akamai.com/cloud-computing/docs/object-storage-product-limits), none per object.
 * - Vultr Object Storage: per tier (`ratelimit_ops_secs` of GET /v2/object-storage/tiers), per
 *   subscription, none per object documented.
 * - Exoscale SOS: none documented.
 */
const WRITE_BUDGETS: Record<CloudProvider, WriteBudget | null> = {
  digitalocean: SPACES_WRITE_BUDGET,
  linode: null,
  vultr: null,
  exoscale: null,
};

/** The deploy's credentials of a real cloud from the environment: every missing variable named at once (exit 2). */
function credentialsFrom(d: Deployment, env: NodeJS.ProcessEnv) {
  const provider = d.provider as CloudProvider;
  const vars = { ...CREDENTIAL_VARIABLES[provider], storageKey: 'OBJECT_STORAGE_ACCESS_KEY', storageSecret: 'OBJECT_STORAGE_SECRET_KEY' };
  if (d.dnsProvider === 'cloudflare') Object.assign(vars, { cloudflare: 'CLOUDFLARE_API_TOKEN' });
  const missing = Object.values(vars).filter((v) => !env[v]);
  if (missing.length) {
    throw fail(
      'NO_CREDENTIALS',
      `PROVIDER=${provider}: set ${missing.join(', ')} in the environment (never in the deployment file): ` +
        `the API credentials of the account, and the object storage's key pair (README: "Deploy on a cloud")`,
      2,
    );
  }
  const api = Object.fromEntries(Object.entries(CREDENTIAL_VARIABLES[provider]).map(([k, v]) => [k, env[v]!]));
  return {
    api,
    storage: { accessKeyId: env.OBJECT_STORAGE_ACCESS_KEY!, secretAccessKey: env.OBJECT_STORAGE_SECRET_KEY! },
    cloudflare: env.CLOUDFLARE_API_TOKEN ?? null,
    // The autoscalers' token: a narrower one when the user made it (DigitalOcean's custom scopes).
    autoscaler: provider === 'digitalocean' && env.DIGITALOCEAN_AUTOSCALER_TOKEN ? { token: env.DIGITALOCEAN_AUTOSCALER_TOKEN } : null,
  };
}

/** How lego writes DNS-01 records on a cloud's DNS with these credentials. */
function cloudDnsAccess(provider: CloudProvider, creds: Credentials): AcmeDnsAccess {
  switch (provider) {
    case 'digitalocean':
      return { provider, token: creds.token!, ...(creds.baseUrl ? { apiUrl: creds.baseUrl.replace(/\/v2$/, '') } : {}) };
    case 'linode':
      return { provider, token: creds.token! };
    case 'vultr':
      return { provider, apiKey: creds.apiKey! };
    case 'exoscale':
      return { provider, apiKey: creds.apiKey!, apiSecret: creds.apiSecret! };
  }
}

/** A real cloud through its fake (a dry run): every call recorded, as a fresh account would answer. */
async function cloudDryRunKit(d: Deployment): Promise<CloudKit> {
  const provider = d.provider as CloudProvider;
  const calls: ApiCall[] = [];
  // An emulated cloud's fake answers as the emulation does: its default VPC is the local cloud's private network.
  const fake =
    provider === 'digitalocean' && d.emulator
      ? (await apiFakes.digitalocean())({ vpcCidr: d.local.privateCidr })
      : (await apiFakes[provider]())();
  const placeholder = Object.fromEntries(Object.keys(CREDENTIAL_VARIABLES[provider]).map((k) => [k, 'dry-run']));
  const c = await CLOUD_DRIVERS[provider](d, placeholder, fake.dryRunFetch(calls));
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
      endpoint: d.objectStorage.endpoint ?? objectStorageEndpoint(provider, d.region),
      region: d.objectStorage.region ?? d.region,
      credentials: { accessKeyId: 'dry-run', secretAccessKey: 'dry-run' },
      writeBudget: WRITE_BUDGETS[provider],
    },
    buildMachine: d.emulator ? localBuildMachine(d) : { publicIp: d.buildMachineIp!, privateIp: null },
    privateCidr: (await c.defaultVpcCidr?.(d.region)) ?? null,
    nameserver: d.emulator ? localBuildMachine(d).publicIp : null,
    acmeDns: async () =>
      d.dnsProvider === 'cloudflare'
        ? { provider: 'cloudflare', apiToken: '(CLOUDFLARE_API_TOKEN)' }
        : cloudDnsAccess(provider, placeholderNames(provider)),
    ...(d.emulator
      ? {
          // What the emulating local cloud would give: its pebble and its mail catcher.
          acme: async () => ({
            // A placeholder: the local cloud's pebble listens on a port of its own when it runs.
            directoryUrl: 'https://pebble.local-cloud.invalid/dir',
            httpsCaPem: null,
            rootPem: null,
            resolver: `${localBuildMachine(d).publicIp}:53`,
          }),
          smtp: async () => ({
            host: localBuildMachine(d).privateIp,
            port: d.local.ports.smtp,
            mailDir: "(the local cloud's mail catcher)",
          }),
        }
      : {}),
    autoscalerAccess: async (_buildId, zone) => ({
      compute: { driver: provider, options: { region: d.region, size: d.serverSize } },
      dns: { driver: d.dnsProvider === 'cloudflare' ? 'cloudflare' : provider, options: { zone } },
    }),
    calls,
    dispose: async () => {},
  };
}

/** The local cloud's build machine: `.1` of its public and private networks. */
function localBuildMachine(d: Deployment) {
  return { publicIp: d.local.publicCidr.replace(/\.0\/24$/, '.1'), privateIp: d.local.privateCidr.replace(/\.0\/24$/, '.1') };
}

/** The credentials as their variables' names (what a dry run shows instead of them). */
function placeholderNames(provider: CloudProvider): Credentials {
  return Object.fromEntries(Object.entries(CREDENTIAL_VARIABLES[provider]).map(([k, v]) => [k, `(${v})`]));
}

/**
 * A real cloud: its API with the account's credentials, its object storage with the key pair from
 * the environment. With EMULATOR=local the same driver talks to the local cloud's emulation of the
 * provider's API (emulators.ts of @adt/localcloud): servers, firewalls and DNS are the local cloud's,
 * the object storage its S3 (with the provider's write budget), ACME its pebble, mail its catcher.
 */
async function cloudKit(d: Deployment, transport: 'apply' | 'attach', env: NodeJS.ProcessEnv): Promise<CloudKit | null> {
  const provider = d.provider as CloudProvider;
  let local: Awaited<ReturnType<typeof openLocal>> | null = null;
  let creds: ReturnType<typeof credentialsFrom>;
  if (d.emulator === 'local') {
    local = await openLocal(d, transport);
    if (!local) return null;
    const s3 = local.services.s3;
    // The account token stands for the account's API credentials (the emulation takes the cloud's tokens).
    const api = {
      ...Object.fromEntries(Object.keys(CREDENTIAL_VARIABLES[provider]).map((k) => [k, local!.token])),
      baseUrl: `${local.url}/${provider}${EMULATED_APIS[provider as EmulatedProvider]}`,
    };
    creds = { api, storage: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }, cloudflare: null, autoscaler: null };
  } else creds = credentialsFrom(d, env);
  const c = await CLOUD_DRIVERS[provider](d, creds.api);
  const cloudflareDns = async (zone: string, token: string) =>
    (await dnsDrivers.cloudflare()).default({
      apiToken: token,
      zone,
      proxied: d.webMode === 'cloudflare',
      defaultTtl: d.scaling.dnsTtlSeconds,
    });
  const cf = d.dnsProvider === 'cloudflare' ? await cloudflareDns(d.zone, creds.cloudflare!) : null;
  const privateCidr = (await c.defaultVpcCidr?.(d.region)) ?? null;
  return {
    provider,
    compute: c,
    firewall: c.firewall,
    databases: c.databases,
    dns: (zone) => (cf && zone === d.zone ? cf : c.dns(zone, d.scaling.dnsTtlSeconds)),
    storage: local
      ? {
          endpoint: local.services.s3.endpoint,
          region: local.services.s3.region,
          credentials: creds.storage,
          writeBudget: WRITE_BUDGETS[provider],
        }
      : {
          endpoint: d.objectStorage.endpoint ?? objectStorageEndpoint(provider, d.region),
          region: d.objectStorage.region ?? d.region,
          credentials: creds.storage,
          writeBudget: WRITE_BUDGETS[provider],
        },
    buildMachine: local ? local.info.buildMachine : { publicIp: d.buildMachineIp!, privateIp: null },
    privateCidr,
    nameserver: local?.info.nameserver ?? null,
    acmeDns: async () =>
      d.dnsProvider === 'cloudflare' ? { provider: 'cloudflare', apiToken: creds.cloudflare! } : cloudDnsAccess(provider, creds.api),
    ...(local ? { acme: local.acme, smtp: local.smtp } : {}),
    async autoscalerAccess(buildId, zone): Promise<ProviderAccess> {
      // The emulation scopes a token to the build's webservers; DigitalOcean's custom scopes go by
      // resource type only (DIGITALOCEAN_AUTOSCALER_TOKEN); the others' tokens are the account's.
      const token = local ? (await local.driver.createScopedToken(buildId, ['webserver'], `autoscaler of build ${buildId}`)).token : null;
      const api = token
        ? Object.fromEntries(Object.entries(creds.api).map(([k, v]) => [k, k === 'baseUrl' ? v : token]))
        : { ...creds.api, ...creds.autoscaler };
      const dns: ProviderAccess['dns'] = cf
        ? {
            driver: 'cloudflare',
            options: { apiToken: creds.cloudflare!, zone, proxied: d.webMode === 'cloudflare', defaultTtl: d.scaling.dnsTtlSeconds },
          }
        : // The cloud's DNS shares the compute driver's client (its `dns(zone)`).
          { driver: provider, options: { zone, defaultTtl: d.scaling.dnsTtlSeconds } };
      return { compute: { driver: provider, options: { ...api, region: d.region, size: d.serverSize } }, dns };
    },
    ...(local ? { revokeAutoscalerAccess: (buildId: string) => local!.driver.revokeTokens(buildId), teardown: local.teardown } : {}),
    calls: null,
    dispose: async () => {},
  };
}

/**
 * The kit of the deployment's provider. `apply`: the real thing (the local cloud is started when it
 * does not run); `dry-run`: the provider's fake, nothing sent; `attach`: the running local cloud
 * only, never started (null when it does not run: status, destroy).
 */
export async function openKit(
  d: Deployment,
  transport: 'apply' | 'dry-run' | 'attach',
  env: NodeJS.ProcessEnv = process.env,
): Promise<CloudKit | null> {
  if (d.provider === 'local') return localKit(d, transport);
  if (transport === 'dry-run') return cloudDryRunKit(d);
  return cloudKit(d, transport, env);
}
