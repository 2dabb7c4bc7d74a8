/**
 * The deploy pipeline: the same ordered steps on every provider, through the provider's kit
 * (kit.ts), so that a dry run is this very code over transports that record (fleet.ts):
 *
 *  1. cloud              the provider's API (the local cloud is started when it does not run)
 *  2. config datastore   the deployment's bucket (emptied for a new build), its key (0600, on this
 *                        machine only), database credentials, the site's settings, the build's
 *                        SSH key (root's key on every server)
 *  3. DNS                the site's zone; its TLS certificate (local CA or ACME by DNS-01)
 *  4. role bundle        the bundle and Node runtime published (once per content); with
 *     and images         IMAGES=prepared, each role's prepared image (made once per package list)
 *  5. servers            kept, replaced or created (servers.ts), each launched with its user-data
 *                        and one-time envelope (@adt/launch); the cloud's firewall first
 *  6. waiting            each server's steps shown as it reports them, until all are ready; then
 *                        (DATABASE_SERVICE=managed) the cloud's managed database, allowed from
 *                        the fleet's addresses
 *  7. restoring          (RESTORE_FROM) the chosen backups, restored over SSH
 *  8. DNS records        the site's A records: its webservers (round robin)
 *  9. checking the site  the name through the cloud's DNS, the site over HTTPS
 */
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { generateSalts, httpsGet } from '@adt/webserver';
import { Backups, PARTS, backupPrefix, baselinePrefix, isPeriod, parseBaselineSpec, type Period } from '@adt/backup';
import { buildBundle, buildRuntime } from '@adt/bundle';
import { keys, parseSecretKey, registerServer, forgetServer, type DbCredentials, type JsonValue } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { AdtError, outputTail } from '@adt/core';
import { rollOut } from './operations.ts';
import { applyNative, nativePolicies, type FleetRole, type NativeSettings } from '@adt/firewall';
import { launchServer, removeEnvelope, type LaunchContext } from '@adt/launch';
import { serverName, type Server } from '@adt/providers';
import { splitDesired } from '@adt/scaling';
import type { Fleet } from './fleet.ts';
import { PROVIDER_DEFAULTS, onLocalCloud, whereIs } from './settings.ts';
import { canPrepareImages, ensurePreparedImages, recordWebserverImage } from './images.ts';
import { booting, bootFailure, waitReady, type Booting } from './readiness.ts';
import { ROLE_ORDER, decideServers, wantedServers, type FoundServer } from './servers.ts';
import { ensureAuthCertificate, ensureSiteCertificate, trustAnchorFile } from './tls.ts';

export const DB_PORT = 3306;

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) =>
  new AdtError(code, message, { pkg: 'fleet', driver: 'deploy', exitCode });

export interface DeployOptions {
  /** The toolkit's checkout (what the role bundle is made from). */
  root: string;
  /** Where built bundles and runtimes are kept on this machine. */
  cacheDir: string;
  /** A note written into the bundle's manifest (it changes the bundle). */
  bundleNote?: string;
  /** Prints a line of progress. */
  say(line: string): void;
  /** How a person reads a role's server log, for messages. */
  logHint?(role: FleetRole): string;
}

/** The steps of a deploy, in order (restoring only when starting from a backup). */
export function stepTitles(restoring: boolean): string[] {
  return [
    'cloud',
    'config datastore',
    'DNS',
    'role bundle and images',
    'servers',
    'waiting for the servers to be ready',
    ...(restoring ? ['restoring the backup'] : []),
    'DNS records',
    'checking the site',
  ];
}

export interface DeploySummary {
  url: string;
  buildId: string;
  mode: string;
  provider: string;
  seconds: number;
  steps: Record<string, number>;
  servers: { role: string; name: string; publicIp: string | null; privateIp: string | null; image?: string; kept: boolean }[];
  dns: { server: string | null; records: { name: string; type: 'A'; value: string }[] };
  caFile: string;
  authCaFile: string | null;
  configBucket: string;
  s3Endpoint: string;
  keyFile: string;
  sshKeyFile: string;
  bundle: { sha256: string; bytes: number; cached: boolean; seconds: number; runtime: string; runtimeBytes: number };
  images: { role: string; image: string; prepared: boolean; seconds: number | null }[];
  application: { name: string; status: number; location: string | null };
  tryIt: string | null;
  mailDir: string | null;
}

interface Ctx extends Fleet {
  o: DeployOptions;
  timings: Record<string, number>;
  titles: string[];
}

async function timed<T>(ctx: Ctx, title: string, fn: () => Promise<T>): Promise<T> {
  ctx.o.say(`[${ctx.titles.indexOf(title) + 1}/${ctx.titles.length}] ${title}`);
  const t = Date.now();
  const r = await fn();
  ctx.timings[title] = Number(((Date.now() - t) / 1000).toFixed(1));
  return r;
}

// --- 2. The config datastore ---

/** Generates what a new build needs in the datastore; keeps what a converging re-run finds. Returns whether the build is new. */
async function prepareDatastore(ctx: Ctx): Promise<boolean> {
  const { d, state, o } = ctx;
  const fresh = !state.exists();
  let store = ctx.store;
  if (fresh) {
    const key = await state.create();
    store = ctx.store = ctx.storeWithKey(key);
  }
  await store.ensureBucket();
  if (fresh) {
    const emptied = await store.emptyBucket();
    o.say(
      `      bucket ${d.configBucket} ready for a new build${emptied ? ` (emptied ${emptied} object(s) of an earlier one)` : ''}; ` +
        `key ${state.keyFile} (mode 0600)`,
    );
  } else o.say(`      bucket ${d.configBucket} of this build kept (re-run: converging)`);
  await store.put(keys.buildMarkers.key('started'), { at: new Date().toISOString(), by: 'deploy' });
  if (!(await store.get(keys.dbCredentials))) {
    const creds: DbCredentials = {
      engine: 'mariadb',
      port: DB_PORT,
      name: `app_${randomBytes(4).toString('hex')}`,
      user: `app_${randomBytes(4).toString('hex')}`,
      password: randomBytes(24).toString('base64url'),
    };
    await store.put(keys.dbCredentials, creds);
    o.say('      database credentials generated (stored encrypted; never shown)');
  }
  // One application configuration for the whole fleet: its keys and salts made once, so a session
  // started through one webserver is valid on every other, present and future.
  if (!(await store.get(keys.applicationSecrets))) {
    await store.put(keys.applicationSecrets, { wordpressSalts: generateSalts() });
    o.say(
      "      the application's keys and salts generated, one set for every webserver (stored encrypted; never shown)" +
        (fresh ? '' : ': webservers kept from before keep their own until they are replaced'),
    );
  }
  await store.putIfChanged(keys.backups, {
    bucket: d.backupBucket,
    keep: d.backupKeep,
    schedule: d.backupSchedule,
    encrypted: Boolean(d.backupKeyFile),
  });
  if (d.backupKeyFile)
    await store.putIfChanged(keys.backupKey, parseSecretKey(readFileSync(d.backupKeyFile, 'utf8'), 'BACKUP_KEY_FILE').toString('hex'));
  await store.putIfChanged(keys.site, {
    siteUrl: d.siteUrl,
    application: d.application,
    webserver: d.webserver,
    webMode: d.webMode,
    mode: d.mode,
  });
  // The site's shared files (uploads): one bucket every webserver mounts.
  await s3Driver({ bucket: d.filesBucket, client: ctx.s3 }).ensureBucket();
  await store.putIfChanged(keys.sharedFiles, { bucket: d.filesBucket });
  const at = new Date().toISOString();
  for (const ip of [ctx.kit.buildMachine.publicIp, ctx.kit.buildMachine.privateIp]) {
    if (ip && !(await store.exists(keys.buildMachineIps.key(ip))))
      await store.put(keys.buildMachineIps.key(ip), { name: 'build', role: 'build', at });
  }
  const ssh = await state.sshKey();
  await store.putIfChanged(keys.authorizedKeys, [ssh.publicKey]);
  o.say(`      SSH key of the build ${state.sshKeyFile} (root's key on every server; their host keys are pinned at creation)`);
  return fresh;
}

/** The datastore settings a server of `role` gets in its envelope. */
function datastoreEnv(ctx: Ctx): Record<string, string> {
  const s = ctx.kit.storage;
  const budget = s.writeBudget ? `${s.writeBudget.writes}/${s.writeBudget.perSeconds}` : 'none';
  return {
    ADT_S3_ENDPOINT: s.endpoint,
    ADT_S3_REGION: s.region,
    ADT_S3_ACCESS_KEY_ID: s.credentials.accessKeyId,
    ADT_S3_SECRET_ACCESS_KEY: s.credentials.secretAccessKey,
    ADT_CONFIG_BUCKET: ctx.d.configBucket,
    ADT_WRITE_BUDGET: budget,
    ADT_WEB_MODE: ctx.d.webMode,
    ADT_DB_PORT: String(DB_PORT),
    ADT_HTTP: 'yes',
  };
}

// --- The cloud's firewall, production, auth ---

/**
 * The cloud-level firewall: the coarse layer. Where the fleet has a private network, the fleet is
 * "the private network" (webservers an autoscaler adds later are let in without touching the
 * cloud's rules); elsewhere it is the servers' addresses, so it is applied again once they exist,
 * and the autoscalers apply it again as webservers come and go (its settings in the datastore).
 * The precise per-address rules are each host's own (SetupFirewall, following the datastore).
 */
async function applyNativePolicy(ctx: Ctx, fresh: Server[] = []): Promise<void> {
  // Every server of the build the cloud lists (a re-run's, and the webservers an autoscaler made:
  // rules computed without them would shut them out until the end of the run), as fresh as known.
  const byId = new Map((await ctx.kit.compute.list({ buildId: ctx.d.buildId })).map((s) => [s.id, s]));
  for (const s of fresh) byId.set(s.id, s);
  const servers = [...byId.values()];
  const settings: NativeSettings = {
    buildMachine: [ctx.kit.buildMachine.publicIp, ctx.kit.buildMachine.privateIp].filter((x): x is string => Boolean(x)),
    privateCidr: ctx.kit.privateCidr,
    webMode: ctx.d.webMode,
    dbPort: DB_PORT,
    http: true,
    roles: [...new Set(wantedServers(ctx.d).map((w) => w.role))],
  };
  await ctx.store.putIfChanged(keys.nativeFirewall, settings);
  await applyNative(ctx.kit.firewall, ctx.d.buildId, nativePolicies(servers, settings));
}

/** Production mode: the scaling settings, the schedule, and the desired count (set at the first deploy only). */
async function prepareScaling(ctx: Ctx): Promise<void> {
  const { d, store } = ctx;
  const { webservers: _initial, schedule, ...settings } = d.scaling;
  await store.putIfChanged(keys.scaling, settings);
  await store.putIfChanged(keys.scalingSchedule, schedule);
  const split = splitDesired(d.scaling.webservers, d.scaling.autoscalers);
  for (const [i, n] of split.entries()) {
    if ((await store.get(keys.desiredWebservers(i + 1))) === null) await store.put(keys.desiredWebservers(i + 1), n);
  }
  ctx.o.say(
    `      ${d.scaling.autoscalers} autoscaler(s); desired webservers ${split.join(' + ')} ` +
      '(first deploy; a re-run keeps the current scaling)',
  );
}

/** WEB_FIREWALL=auth: the sign-in app's settings and secrets, under the authentication server's own key. */
async function prepareAuth(ctx: Ctx): Promise<{ ca: string; mailDir: string | null }> {
  const { d } = ctx;
  const a = d.auth!;
  const own = a.smtp ? null : await ctx.kit.smtp?.();
  const smtp = a.smtp ?? (own ? { host: own.host, port: own.port } : null);
  if (!smtp) throw fail('NO_SMTP', `WEB_FIREWALL=auth on ${d.provider}: set SMTP_RELAY to host:port of an SMTP relay the servers reach`, 2);
  if (own) ctx.o.say(`      the cloud's mail catcher on ${own.host}:${own.port}: sign-in mails land in ${own.mailDir}`);
  const authStore = ctx.storeWithKey(await ctx.state.authKey());
  try {
    const cert = await ensureAuthCertificate({ d, state: ctx.state, kit: ctx.kit, certifier: ctx.certifier }, authStore);
    await ctx.store.putIfChanged(keys.auth, {
      allowList: a.allow,
      admins: a.admins,
      grantMinutes: a.grantMinutes,
      linkMinutes: a.linkMinutes,
      baseUrl: `https://${a.host}`,
      siteName: d.host,
      smtp,
      from: a.from,
      ca: cert.ca,
    });
    ctx.o.say(`      sign-in ${cert.line}`);
    ctx.o.say(`      authentication server https://${a.host}/ for ${a.allow.length} address(es); grants last ${a.grantMinutes} min`);
    return { ca: cert.ca, mailDir: own?.mailDir ?? null };
  } finally {
    await authStore.driver.dispose?.();
  }
}

// --- Restoring from a backup or a baseline ---

interface ChosenBackup {
  part: 'database' | 'webroot';
  id: string;
  period: string;
  createdAt: string;
  /** Arguments of the role's Restore command. */
  args: string[];
}

/** The backups a deploy with RESTORE_FROM starts from: the newest complete one of each part. */
async function chooseBackups(ctx: Ctx): Promise<ChosenBackup[]> {
  const d = ctx.d;
  const s = ctx.kit.storage;
  const baseline = parseBaselineSpec(d.restoreFrom ?? '');
  const bucket = baseline?.bucket ?? d.backupBucket;
  const driver = s3Driver({ bucket, endpoint: s.endpoint, region: s.region, credentials: s.credentials });
  try {
    const exists = await driver.bucketExists();
    const out: ChosenBackup[] = [];
    for (const part of PARTS) {
      if (baseline) {
        const b = new Backups({ client: driver.getInstance(), bucket, prefix: baselinePrefix(baseline.name, part), hostname: 'build' });
        const [m] = exists ? await b.list('manual') : [];
        if (!m) {
          throw fail(
            'NO_BASELINE',
            `RESTORE_FROM="${d.restoreFrom}": bucket ${bucket} has no baseline "${baseline.name}" with the site's ${part} ` +
              `(publish one with roles/build/PublishBaseline ${baseline.name})`,
            2,
          );
        }
        out.push({
          part,
          id: m.id,
          period: `baseline ${baseline.name}`,
          createdAt: m.createdAt,
          args: ['--baseline', d.restoreFrom!.slice('baseline:'.length)],
        });
        continue;
      }
      const key = d.backupKeyFile ? parseSecretKey(readFileSync(d.backupKeyFile, 'utf8'), 'BACKUP_KEY_FILE') : undefined;
      const backups = new Backups({
        client: driver.getInstance(),
        bucket,
        prefix: backupPrefix(part),
        encryptionKey: key,
        hostname: 'build',
      });
      const period = d.restoreFrom === 'latest' || !isPeriod(d.restoreFrom ?? '') ? undefined : (d.restoreFrom as Period);
      const all = exists ? await backups.list(period) : [];
      const newest = all.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
      if (!newest) {
        throw fail(
          'NO_BACKUP',
          `RESTORE_FROM="${d.restoreFrom}": there is no complete ${period ? `${period} ` : ''}backup of the site's ${part} ` +
            `in bucket ${bucket}`,
          2,
        );
      }
      if (newest.encrypted && !key)
        throw fail('NO_BACKUP_KEY', `RESTORE_FROM: backup ${newest.id} is encrypted: set BACKUP_KEY_FILE to the key it was made with`, 2);
      out.push({ part, id: newest.id, period: newest.period, createdAt: newest.createdAt, args: ['--id', newest.id] });
    }
    return out;
  } finally {
    await driver.dispose?.();
  }
}

// --- 5. Servers ---

async function findServers(ctx: Ctx, role: FleetRole): Promise<FoundServer[]> {
  const out: FoundServer[] = [];
  for (const s of await ctx.kit.compute.list({ buildId: ctx.d.buildId, role })) {
    const ready = await ctx.store.exists(keys.ready(role, s.name));
    const failed = ready ? false : (await bootFailure(ctx.store, ctx.kit.compute, s)) !== null;
    out.push({ server: s, ready, failed });
  }
  return out;
}

/** Forgets a server in the datastore and destroys it. */
async function removeServer(ctx: Ctx, s: Server): Promise<void> {
  await forgetServer(ctx.store, s);
  await ctx.store.deletePrefix(keys.bootPrefix(s.name));
  await ctx.store.delete(keys.hostKeys.key(s.name));
  await removeEnvelope(ctx.s3, ctx.d.configBucket, s.name).catch(() => {});
  await ctx.kit.compute.destroy(s.id);
}

async function ensureServers(ctx: Ctx, fresh: boolean, images: Map<FleetRole, string>): Promise<Booting[]> {
  const { d } = ctx;
  const wanted = wantedServers(d);
  const out: Booting[] = [];
  const launch: LaunchContext = {
    compute: ctx.kit.compute,
    store: ctx.store,
    s3: ctx.s3,
    linkSeconds: d.readyTimeout + 120,
    authorizedKeys: [(await ctx.state.sshKey()).publicKey],
  };
  const baseEnv = datastoreEnv(ctx);
  const deploymentKey = ctx.state.key()!.toString('hex');
  let databaseReplaced = false;
  for (const role of ROLE_ORDER) {
    const decision = decideServers(role, wanted, await findServers(ctx, role), { fresh, databaseReplaced, mode: d.mode });
    for (const r of decision.replace) {
      ctx.o.say(`      ${role} ${r.server.name} replaced (${r.reason})`);
      await removeServer(ctx, r.server);
    }
    if (role === 'database' && !decision.keep.length) databaseReplaced = true;
    for (const k of decision.keep) {
      ctx.o.say(`      ${role} ${k.server.name} kept (${k.reason})`);
      out.push(booting(role, k.server, d.readyTimeout, true));
    }
    const created = await Promise.all(
      decision.create.map(async (w) => {
        const name = serverName({ role, buildId: d.buildId, slot: w.slot });
        // An autoscaler's cloud access reaches it in its envelope only (a token scoped to the
        // build's webservers where the cloud can scope one).
        const secrets: Record<string, JsonValue> | undefined =
          role === 'autoscaler'
            ? { providerAccess: (await ctx.kit.autoscalerAccess(d.buildId, d.zone)) as unknown as JsonValue }
            : undefined;
        return launchServer(launch, {
          name,
          role,
          buildId: d.buildId,
          size: d.serverSize,
          region: d.region,
          image: images.get(role),
          secrets: {
            datastoreEnv: baseEnv,
            // The authentication server gets a key of its own: it decrypts its own secrets, not the deployment's.
            datastoreKey: role === 'auth' ? (await ctx.state.authKey()).toString('hex') : deploymentKey,
            ...(secrets ? { secrets } : {}),
          },
        });
      }),
    );
    for (const l of created) {
      ctx.o.say(
        `      ${role} ${l.server.name} created: public ${l.server.publicIp ?? '(pending)'}, private ${l.server.privateIp ?? '(pending)'}` +
          `${images.get(role) ? ` from image ${images.get(role)}` : ''}; user-data ${Buffer.byteLength(l.userData)} bytes, no secret in it`,
      );
      out.push(booting(role, l.server, d.readyTimeout));
    }
  }
  return out;
}

/**
 * DATABASE_SERVICE=managed: the cloud's managed MySQL, allowed only from the fleet's addresses
 * (private ones; a server without one, as on Exoscale, whose DBaaS is reached over the public
 * network filtered by address, by its public one). The database server still runs, for backups.
 */
async function ensureManagedDatabase(ctx: Ctx, servers: Server[]): Promise<void> {
  const { d } = ctx;
  const dbs = ctx.kit.databases;
  if (!dbs) throw fail('NO_MANAGED_DATABASE', `DATABASE_SERVICE=managed: no managed database on ${d.provider}`, 2);
  const allow = servers.map((s) => s.privateIp ?? s.publicIp).filter((x): x is string => Boolean(x));
  const name = `adt-${d.buildId}-db`;
  const size = PROVIDER_DEFAULTS[d.provider].dbSize;
  // A re-run converges: the build's database is kept, its allow-list set to the fleet's addresses now.
  const found = (await dbs.list({ buildId: d.buildId })).find((x) => x.name === name);
  if (found) await dbs.setAllowList(found.id, allow);
  const db = found ?? (await dbs.create({ name, buildId: d.buildId, engine: 'mysql', region: d.region, size, allow }));
  await dbs.waitUntilOnline(db.id, ctx.dryRun ? { intervalMs: 1, timeoutMs: 5_000 } : { timeoutMs: 1_800_000 });
  ctx.o.say(
    `      managed database ${name} (MySQL, ${size}) ${found ? 'kept' : 'created'}, allowed from ${allow.length} address(es) of the fleet`,
  );
}

// --- 9. Checking the site ---

async function checkSite(ctx: Ctx, web: Server): Promise<{ addresses: string[]; status: number; location?: string }> {
  const ip = web.publicIp!;
  if (ctx.dryRun) {
    ctx.dryRun.ssh.push(
      `GET https://${ctx.d.host}/ at ${ip} (the site as a visitor finds it, through ${ctx.kit.nameserver ?? 'the public DNS'})`,
    );
    return { addresses: [ip], status: 200 };
  }
  let addresses = [ip];
  if (ctx.kit.nameserver) {
    const resolver = new Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers([ctx.kit.nameserver]);
    addresses = await resolver.resolve4(ctx.d.host);
    if (!addresses.includes(ip))
      throw fail(
        'DNS_CHECK',
        `${ctx.d.host} resolves to ${addresses.join(', ') || 'nothing'} on the cloud's DNS, not to the webserver ${ip}`,
      );
  }
  const tls = await ctx.store.require(keys.siteTls);
  const r = await httpsGet(ip, ctx.d.host, tls.ca, 15_000);
  if (r.status !== 200 && r.status !== 302)
    throw fail('SITE_CHECK', `https://${ctx.d.host}/ (at ${ip}) answered HTTP ${r.status}, not the application's page`);
  return { addresses, ...r };
}

/** A dry run plays the servers: each reports its steps and ready, as a booted server would. */
async function simulateServers(ctx: Ctx, servers: Booting[]): Promise<void> {
  for (const b of servers) {
    if (await ctx.store.exists(keys.ready(b.role, b.server.name))) continue;
    // A server boots once its cloud runs it (with its addresses): the cloud's answers meanwhile are part of the plan.
    b.server = await ctx.kit.compute.waitUntilRunning(b.server.id, { intervalMs: 1, timeoutMs: 60_000 });
    await ctx.store.put(keys.bootStep(b.server.name, 0), {
      at: new Date().toISOString(),
      step: '(dry run: its bootstrap would run here)',
      seconds: 0,
    });
    await ctx.store.put(keys.ready(b.role, b.server.name), { at: new Date().toISOString() });
    if (b.role === 'webserver' && b.server.privateIp) await registerServer(ctx.store, { ...b.server, role: 'webserver' });
  }
}

// --- The pipeline ---

/** Deploys (or converges) `fleet`'s deployment. */
export async function deploy(fleet: Fleet, o: DeployOptions): Promise<DeploySummary> {
  const started = Date.now();
  const d = fleet.d;
  const record = fleet.state.record();
  if (record && record.siteUrl !== d.siteUrl) {
    throw fail(
      'BUILD_CLASH',
      `BUILD_ID="${d.buildId}" is already deployed for ${record.siteUrl} (${fleet.state.recordFile}): ` +
        'destroy it first (npx zx roles/build/destroy.mjs) or choose another BUILD_ID',
      2,
    );
  }
  const ctx: Ctx = { ...fleet, o, timings: {}, titles: stepTitles(Boolean(d.restoreFrom)) };
  const logHint = o.logHint ?? ((role: FleetRole) => `on the ${role}: /var/log/cloud-init-output.log`);

  await timed(ctx, 'cloud', async () => {
    const k = ctx.kit;
    o.say(
      `      ${
        onLocalCloud(d)
          ? `${whereIs(d)}: public ${d.local.publicCidr}, private ${d.local.privateCidr}; `
          : `${d.provider}, region ${d.region}; `
      }` + `build machine ${k.buildMachine.publicIp}${k.buildMachine.privateIp ? ` / ${k.buildMachine.privateIp}` : ''}`,
    );
  });
  // Starting from a backup: found now, before anything is made (no server, not even an image builder).
  const restore = d.restoreFrom ? await chooseBackups(ctx) : null;
  if (restore) o.say(`      will restore ${restore.map((m) => `${m.part} ${m.id} (${m.period}, ${m.createdAt})`).join(' and ')}`);
  const fresh = await timed(ctx, 'config datastore', () => prepareDatastore(ctx));
  const dns = ctx.kit.dns(d.zone);
  await timed(ctx, 'DNS', async () => {
    await dns.ensureZone(d.zone);
    o.say(
      `      zone ${d.zone} on ${d.provider === 'local' ? `the local cloud's PowerDNS (${ctx.kit.nameserver}:53)` : d.dnsProvider}` +
        `${d.emulator ? ` (emulated: served by the local cloud's PowerDNS, ${ctx.kit.nameserver}:53)` : ''}`,
    );
    o.say(`      ${(await ensureSiteCertificate({ d, state: ctx.state, kit: ctx.kit, certifier: ctx.certifier }, ctx.store)).line}`);
  });
  // The cloud's firewall before any new server of ours exists (image builders included).
  await applyNativePolicy(ctx);
  const images = new Map<FleetRole, string>();
  const prepared: DeploySummary['images'] = [];
  const bundle = await timed(ctx, 'role bundle and images', async () => {
    const { publishArtifacts } = await import('@adt/launch');
    const b = await buildBundle({ root: o.root, cacheDir: o.cacheDir, note: o.bundleNote });
    const rt = await buildRuntime({ cacheDir: o.cacheDir });
    const p = await publishArtifacts(ctx.store, ctx.s3, { bundle: b, runtime: rt });
    o.say(
      `      role bundle ${b.sha256.slice(0, 12)} (${(b.bytes / 1e6).toFixed(1)} MB, ` +
        `${b.cached ? 'unchanged since it was built' : `built in ${b.seconds} s`}), Node ${rt.node} (${(rt.bytes / 1e6).toFixed(0)} MB): ` +
        `${p.uploaded.length ? `published to ${d.configBucket}` : 'already in the bucket'}` +
        `${p.changed && !fresh ? '; servers running an older bundle keep it, servers made from now on get this one' : ''}`,
    );
    const roles = [...new Set(wantedServers(d).map((w) => w.role))];
    if (d.images === 'prepared') {
      if (canPrepareImages(ctx.kit.compute)) {
        const made = await ensurePreparedImages(
          {
            compute: ctx.kit.compute,
            store: ctx.store,
            s3: ctx.s3,
            linkSeconds: 3600,
            authorizedKeys: [],
            buildId: d.buildId,
            // The local cloud's stock image by name; a cloud's (emulated or not): its driver's default.
            stockImage: d.provider === 'local' ? 'debian-12' : null,
            timeoutSeconds: Math.max(900, d.readyTimeout),
            say: o.say,
          },
          roles,
        );
        for (const m of made) {
          images.set(m.role, m.image);
          prepared.push({ role: m.role, image: m.image, prepared: m.seconds !== null, seconds: m.seconds });
          if (m.seconds === null) o.say(`      ${m.role}: image ${m.name} (${m.image})`);
          if (m.role === 'webserver') await recordWebserverImage(ctx.store, m);
        }
      } else o.say(`      IMAGES=prepared: ${d.provider}'s driver cannot snapshot and find images here: servers boot from the stock image`);
    } else o.say('      IMAGES=stock: servers boot from the stock Debian 12 image and install their packages at boot');
    return { b, rt };
  });
  if (d.mode === 'production') await prepareScaling(ctx);
  const auth = d.auth ? await prepareAuth(ctx) : null;
  const servers = await timed(ctx, 'servers', () => ensureServers(ctx, fresh, images));
  await timed(ctx, 'waiting for the servers to be ready', async () => {
    await waitReady(ctx.store, ctx.kit.compute, servers, {
      say: o.say,
      logHint,
      onTick: ctx.dryRun ? () => simulateServers(ctx, servers) : undefined,
    });
    // Their envelopes are of no use any more: gone (each server deleted its own already).
    for (const b of servers) if (!b.kept) await removeEnvelope(ctx.s3, d.configBucket, b.server.name).catch(() => {});
    // The addresses are known now: where the cloud's firewall names servers, it gets them.
    const now = await Promise.all(servers.map(async (b) => (await ctx.kit.compute.get(b.server.id)) ?? b.server));
    for (const [i, s] of now.entries()) servers[i]!.server = s;
    if (!ctx.kit.privateCidr) await applyNativePolicy(ctx, now);
    if (d.databaseService === 'managed') await ensureManagedDatabase(ctx, now);
  });
  const webservers = servers.filter((s) => s.role === 'webserver').map((s) => s.server);
  if (restore) {
    await timed(ctx, 'restoring the backup', async () => {
      const made = servers.filter((s) => !s.kept);
      if (!made.length) return o.say('      servers kept from an earlier run: they already hold the site, nothing restored');
      await ctx.ssh.pin(
        ctx.store,
        made.map((b) => b.server),
      );
      for (const m of restore) {
        // The site's files go back once, into the shared files and a new release of the code, which
        // every webserver then serves (those built later boot with it).
        const targets = made.filter((s) => s.role === (m.part === 'database' ? 'database' : 'webserver')).slice(0, 1);
        for (const b of targets) {
          const r = await ctx.ssh.exec(b.server, [`/opt/adt/roles/${b.role}/backup/Restore`, ...m.args], { timeoutMs: 3_600_000 });
          if (r.exitCode !== 0)
            throw fail('RESTORE_FAILED', `restoring ${m.part} backup ${m.id} on ${b.server.name} failed: ${outputTail(r)}`);
          o.say(`      ${b.server.name}: ${r.stdout.trim()}`);
        }
        if (m.part === 'webroot' && targets.length) {
          const record = await ctx.store.require(keys.releases);
          await rollOut(ctx, record.current.id, (line) => o.say(`    ${line}`));
        }
      }
    });
  }
  await timed(ctx, 'DNS records', async () => {
    for (const w of webservers) await dns.addA(d.host, w.publicIp!, d.scaling.dnsTtlSeconds);
    // Records of servers that no longer exist go (a converging re-run replaced them).
    const live = new Set((await ctx.kit.compute.list()).map((s) => s.publicIp));
    for (const r of await dns.listA(d.host)) if (!live.has(r.content)) await dns.removeA(d.host, r.content);
    o.say(`      ${d.host} A ${webservers.map((w) => w.publicIp).join(', ') || '(none)'}`);
    const authServer = servers.find((s) => s.role === 'auth')?.server;
    if (authServer && d.auth) {
      for (const r of await dns.listA(d.auth.host)) if (r.content !== authServer.publicIp) await dns.removeA(d.auth.host, r.content);
      await dns.addA(d.auth.host, authServer.publicIp!, d.scaling.dnsTtlSeconds);
      o.say(`      ${d.auth.host} A ${authServer.publicIp}`);
    }
  });
  const site = await timed(ctx, 'checking the site', async () => {
    let r: Awaited<ReturnType<typeof checkSite>> | null = null;
    for (const w of webservers) {
      r = await checkSite(ctx, w);
      const moved = r.location ? ` (${r.location})` : '';
      o.say(`      ${d.host} -> ${r.addresses.join(', ')}; https://${d.host}/ at ${w.publicIp} answers HTTP ${r.status}${moved}`);
    }
    return r ?? { addresses: [], status: 0 };
  });
  await ctx.store.put(keys.installedSuccessfully, { at: new Date().toISOString(), by: 'deploy' });
  await dns.dispose?.();

  const caFile = trustAnchorFile({ d, state: ctx.state });
  const web = webservers[0];
  const order: FleetRole[] = ['database', 'webserver', 'autoscaler', 'auth'];
  return {
    url: d.siteUrl,
    buildId: d.buildId,
    mode: d.mode,
    provider: d.provider,
    seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
    steps: ctx.timings,
    servers: [...servers]
      .sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role))
      .map((b) => ({
        role: b.role,
        name: b.server.name,
        publicIp: b.server.publicIp,
        privateIp: b.server.privateIp,
        image: images.get(b.role),
        kept: b.kept,
      })),
    dns: {
      server: ctx.kit.nameserver ? `${ctx.kit.nameserver}:53` : null,
      records: webservers.map((w) => ({ name: d.host, type: 'A', value: w.publicIp! })),
    },
    caFile,
    // What a client trusts for the sign-in page: the same root as the site's.
    authCaFile: auth ? caFile : null,
    configBucket: d.configBucket,
    s3Endpoint: ctx.kit.storage.endpoint,
    keyFile: ctx.state.keyFile,
    sshKeyFile: ctx.state.sshKeyFile,
    bundle: {
      sha256: bundle.b.sha256,
      bytes: bundle.b.bytes,
      cached: bundle.b.cached,
      seconds: bundle.b.seconds,
      runtime: bundle.rt.node,
      runtimeBytes: bundle.rt.bytes,
    },
    images: prepared,
    application: { name: d.application, status: site.status, location: site.location ?? null },
    tryIt: web ? `curl --cacert ${caFile} --resolve ${d.host}:443:${web.publicIp} https://${d.host}/` : null,
    mailDir: auth?.mailDir ?? null,
  };
}
