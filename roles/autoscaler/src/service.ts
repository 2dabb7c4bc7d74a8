/**
 * The scaling service of an autoscaler: a Scaler ticking every `probeIntervalSeconds` until
 * stopped (SIGTERM: it gives its slots' leases back, so another autoscaler takes over at once).
 * Run by the supervisor (roles/common/src/supervise.ts), which restarts it if it dies.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { sleep } from '@adt/core';
import { keys } from '@adt/configstore';
import { parseServerName, computeDrivers, dnsDrivers, type ComputeProvider, type DnsProvider } from '@adt/providers';
import { datastoreSettings, httpsGet, openDatastore, runMain, userData, CODE_DIR } from '@adt/role-common';
import { Scaler } from './scaler.ts';

/** True when the site answers over HTTPS at `ip` (any status below 500: the application ran). */
export function httpsProbe(ip: string, host: string, ca: string, timeoutMs: number): Promise<boolean> {
  return httpsGet(ip, host, ca, timeoutMs).then(
    (r) => r.status < 500,
    () => false,
  );
}

async function main(): Promise<number> {
  const store = openDatastore();
  const [settings, access, site, tls] = await Promise.all([
    store.get(keys.scaling),
    store.get(keys.providerAccess),
    store.get(keys.site),
    store.get(keys.siteTls),
  ]);
  if (!settings || !access || !site || !tls)
    throw new Error(
      `${[
        [keys.scaling, settings],
        [keys.providerAccess, access],
        [keys.site, site],
        [keys.siteTls, tls],
      ]
        .filter(([, v]) => !v)
        .map(([k]) => (k as { path: string }).path)
        .join(', ')} missing from the datastore: the build writes them in production mode`,
    );
  const me = parseServerName(hostname());
  if (!me || me.role !== 'autoscaler' || !me.slot) throw new Error(`this server's name "${hostname()}" is not an autoscaler's with a slot`);
  const computeName = access.compute.driver as keyof typeof computeDrivers;
  const dnsName = access.dns.driver as keyof typeof dnsDrivers;
  if (!(computeName in computeDrivers) || !(dnsName in dnsDrivers))
    throw new Error(`unknown drivers ${access.compute.driver} / ${access.dns.driver}`);
  const compute = ((await computeDrivers[computeName]()).default as (o: unknown) => ComputeProvider)({
    url: access.compute.url,
    token: access.compute.token,
  });
  const dns = ((await dnsDrivers[dnsName]()).default as (o: unknown) => DnsProvider)({
    apiUrl: access.dns.apiUrl,
    apiKey: access.dns.apiKey,
    zone: access.dns.zone,
  });
  // New webservers get the same user-data as the build gives: this server's own datastore settings.
  const env = datastoreSettings();
  const key = readFileSync(env.ADT_DATASTORE_KEY_FILE ?? '/etc/adt/datastore.key', 'utf8').trim();
  const webUserData = userData({
    role: 'webserver',
    s3Endpoint: env.ADT_S3_ENDPOINT!,
    s3AccessKeyId: env.ADT_S3_ACCESS_KEY_ID!,
    s3SecretAccessKey: env.ADT_S3_SECRET_ACCESS_KEY!,
    configBucket: env.ADT_CONFIG_BUCKET!,
    datastoreKey: key,
    webMode: site.webMode,
    dbPort: (await store.get(keys.dbCredentials))?.port ?? 3306,
    codeDir: CODE_DIR,
  });
  const host = new URL(site.siteUrl).hostname;
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const scaler = new Scaler({
    store,
    compute,
    dns,
    buildId: me.buildId,
    host,
    self: { name: hostname(), slot: me.slot },
    settings,
    log,
    probe: (ip) => httpsProbe(ip, host, tls.ca, settings.probeTimeoutSeconds * 1000),
    userData: () => webUserData,
  });
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
              `slot ${slot}: ${s.healthy}/${s.desired} healthy${s.building ? `, ${s.building} building` : ''}${s.unhealthy ? `, ${s.unhealthy} unhealthy` : ''}${s.draining ? `, ${s.draining} draining` : ''}`,
          )
          .join('; ') || 'no slot held';
      if (line !== last) log(line);
      last = line;
    } catch (e) {
      log(`tick failed: ${(e as Error).message} (next tick in ${settings.probeIntervalSeconds} s)`);
    }
    const wait = settings.probeIntervalSeconds * 1000 - (Date.now() - started);
    for (let waited = 0; waited < wait && !stopping; waited += 100) await sleep(100);
  }
  await scaler.release();
  log('stopped; slot leases released');
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) void runMain(main);
