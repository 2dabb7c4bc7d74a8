/**
 * The scaling service of an autoscaler: a Scaler ticking every `probeIntervalSeconds` until
 * stopped (SIGTERM: it gives its slots' leases back, so another autoscaler takes over at once).
 * Run by the supervisor (roles/common/src/supervise.ts), which restarts it if it dies.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { sleep } from '@adt/core';
import { keys, type ConfigStore, type ProviderAccess } from '@adt/configstore';
import {
  parseServerName,
  computeDrivers,
  dnsDrivers,
  type ComputeProvider,
  type DnsProvider,
  type NativeFirewallProvider,
} from '@adt/providers';
import { launchServer } from '@adt/launch';
import { SECRETS_FILE, datastoreSettings, httpsGet, logLine as log, openDatastore, siblingBucket } from '@adt/role-common';
import { NativeFollower } from './native-firewall.ts';
import { Scaler } from './scaler.ts';

/**
 * True when the webserver at `ip` serves this site: WordPress answered its home page over HTTPS
 * (200, or 302 to its installer: it read the database) from one of the `releases` (the site's
 * current one, or the one a rollout is replacing), named in its X-ADT-Release header.
 */
export function httpsProbe(ip: string, host: string, ca: string, timeoutMs: number, releases: ReadonlySet<string>): Promise<boolean> {
  return httpsGet(ip, host, ca, timeoutMs).then(
    (r) => (r.status === 200 || r.status === 302) && r.release !== null && releases.has(r.release),
    () => false,
  );
}

/** What a healthy webserver may serve: the current release, and the one before while a rollout replaces it (read every 5 s at most). */
function servableReleases(store: ConfigStore): () => Promise<ReadonlySet<string>> {
  let cached: { at: number; ids: ReadonlySet<string> } | null = null;
  return async () => {
    if (cached && Date.now() - cached.at < 5000) return cached.ids;
    const r = await store.get(keys.releases).catch(() => null);
    const ids = new Set(r ? [r.current.id, ...(r.replacing ? [r.replacing] : [])] : []);
    cached = { at: Date.now(), ids };
    return ids;
  };
}

/** What a cloud's compute driver has besides compute: its DNS and its native firewall. */
interface CloudDns {
  dns?(zone: string, defaultTtl?: number): DnsProvider;
  firewall?: NativeFirewallProvider;
}

function cloudDnsOf(compute: ComputeProvider & CloudDns, options: Record<string, unknown>): DnsProvider {
  if (!compute.dns || typeof options.zone !== 'string')
    throw new Error(`the ${compute.name} driver has no DNS for ${String(options.zone)}`);
  return compute.dns(options.zone, typeof options.defaultTtl === 'number' ? options.defaultTtl : undefined);
}

export async function main(): Promise<number> {
  const store = openDatastore();
  const [settings, site, tls] = await store.requireAll([keys.scaling, keys.site, keys.siteTls] as const, 'the build, in production mode,');
  const me = parseServerName(hostname());
  if (!me || me.role !== 'autoscaler' || !me.slot) throw new Error(`this server's name "${hostname()}" is not an autoscaler's with a slot`);
  // The cloud's API and DNS, as the build handed them to this server in its envelope (a 0600 file).
  const { providerAccess: access } = JSON.parse(readFileSync(SECRETS_FILE, 'utf8')) as { providerAccess: ProviderAccess };
  const computeName = access.compute.driver as keyof typeof computeDrivers;
  const dnsName = access.dns.driver;
  // A cloud's own DNS (DNS driver named as the compute one) comes from its compute driver, sharing its client.
  const cloudDns = dnsName === computeName;
  if (!(computeName in computeDrivers) || (!cloudDns && !(dnsName in dnsDrivers)))
    throw new Error(`unknown drivers ${access.compute.driver} / ${access.dns.driver} in ${SECRETS_FILE}`);
  const compute = ((await computeDrivers[computeName]()).default as (o: unknown) => ComputeProvider & CloudDns)(access.compute.options);
  const dns = cloudDns
    ? cloudDnsOf(compute, access.dns.options)
    : ((await dnsDrivers[dnsName as keyof typeof dnsDrivers]()).default as (o: unknown) => DnsProvider)(access.dns.options);
  // New webservers get what the build gives a webserver: this server's own datastore settings and key.
  const env = datastoreSettings();
  const datastoreEnv = Object.fromEntries(
    Object.entries(env).filter(
      (e): e is [string, string] =>
        e[0].startsWith('ADT_') && e[0] !== 'ADT_DATASTORE_KEY_FILE' && e[0] !== 'ADT_DATASTORE_ENV' && e[1] !== undefined,
    ),
  );
  const datastoreKey = readFileSync(env.ADT_DATASTORE_KEY_FILE ?? '/etc/adt/datastore.key', 'utf8').trim();
  const authorizedKeys = (await store.get(keys.authorizedKeys)) ?? [];
  const launchContext = {
    compute,
    store,
    s3: siblingBucket(store.bucket).getInstance(),
    linkSeconds: settings.buildTimeoutSeconds + 60,
    authorizedKeys,
  };
  const host = new URL(site.siteUrl).hostname;
  const releases = servableReleases(store);
  const scaler = new Scaler({
    store,
    compute,
    dns,
    buildId: me.buildId,
    host,
    self: { name: hostname(), slot: me.slot },
    settings,
    log,
    probe: async (ip) => httpsProbe(ip, host, tls.ca, settings.probeTimeoutSeconds * 1000, await releases()),
    launch: async ({ name, image }) =>
      (await launchServer(launchContext, { name, role: 'webserver', buildId: me.buildId, image, secrets: { datastoreEnv, datastoreKey } }))
        .server,
  });
  const native = new NativeFollower({ store, compute, firewall: compute.firewall ?? null, buildId: me.buildId, log });
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  log(`scaling service of slot ${me.slot} started (every ${settings.probeIntervalSeconds} s)`);
  let last = '';
  while (!stopping) {
    const started = Date.now();
    try {
      const r = await scaler.tick();
      const line =
        Object.entries(r.summary)
          .map(
            ([slot, s]) =>
              `slot ${slot}: ${s.healthy}/${s.desired} healthy${s.building ? `, ${s.building} building` : ''}` +
              `${s.unhealthy ? `, ${s.unhealthy} unhealthy` : ''}${s.draining ? `, ${s.draining} draining` : ''}`,
          )
          .join('; ') || 'no slot held';
      if (line !== last) log(line);
      last = line;
    } catch (e) {
      log(`tick failed: ${(e as Error).message} (next tick in ${settings.probeIntervalSeconds} s)`);
    }
    // After the tick's creates and destroys: the cloud's firewall lets in the webservers there are now.
    await native.follow().catch((e: Error) => log(`cloud firewall not applied: ${e.message} (again next tick)`));
    const wait = settings.probeIntervalSeconds * 1000 - (Date.now() - started);
    for (let waited = 0; waited < wait && !stopping; waited += 100) await sleep(100);
  }
  await scaler.release();
  log('stopped; slot leases released');
  return 0;
}
