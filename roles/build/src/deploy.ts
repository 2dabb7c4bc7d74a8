/**
 * deploy: the main entry of the toolkit. On the local provider, in development mode, it builds a
 * database server and a webserver serving the site over HTTPS, step by step:
 *
 *  1. the local cloud's networks (bridges, outsider, native firewall chain);
 *  2. the config datastore: the embedded S3 server, the deployment's bucket (emptied for a new
 *     build), its key (0600), generated DB credentials and the site's TLS certificate (encrypted);
 *  3. DNS: PowerDNS of the local cloud and the site's zone;
 *  4. the servers, created with user-data that bootstraps their role from the datastore;
 *  5. waiting for each to report `ready` (their own progress shown as it comes), while the cloud's
 *     native firewall follows the fleet the datastore describes;
 *  6. the site's A record for the webserver;
 *  7. a check that the site answers through DNS and HTTPS, then a summary.
 *
 * Re-running for the same build converges: servers that are ready are kept, one that failed is
 * replaced, nothing is duplicated, credentials and certificate are kept.
 */
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdtError, execaRunner, sleep } from '@adt/core';
import { generateSecretKey, keys, parseSecretKey, type ConfigStore, type DbCredentials } from '@adt/configstore';
import { EMBEDDED_CREDENTIALS } from '@adt/configstore/embedded-s3';
import { applyNative, computePolicies, datastoreFleetSource, type FleetRole } from '@adt/firewall';
import { attachPowerDns, parseServerName, serverName, startPowerDns, type DnsProvider, type Server } from '@adt/providers';
import { ensureDaemon, tcpAnswers } from './daemon.ts';
import { splitDesired } from '@adt/scaling';
import { Backups, PARTS, backupPrefix, baselinePrefix, formatBaselineRef, parseBaselineSpec, type Period } from '@adt/backup';
import s3Driver from '@adt/configstore/drivers/s3';
import { ensureS3Daemon } from './s3-daemon.ts';
import { readDeployment, type Deployment } from './settings.ts';
import {
  CODE_ON_SERVERS,
  forgetServer,
  localEnv,
  openDns,
  openStore,
  readBuildRecord,
  type BuildRecord,
  type LocalEnv,
} from './local-env.ts';
import { httpsGet, userData } from '@adt/role-common';
import { ensureAuthCertificate, ensureSiteCertificate, installRenewalCron, trustAnchorFile, withAuthStore } from './tls.ts';
import { parseCommandLine } from './cli.ts';
import { followLog, type LogFollower } from './log-follow.ts';

const HELP = `usage: npx zx roles/build/deploy.mjs [--config FILE] [--dry-run] [--json]

  --config FILE   deployment file (dotenv format); see roles/build/deployment.example.env
  --dry-run       print the plan, change nothing
  --json          machine-readable summary on stdout (progress goes to stderr)

Every variable of the file may also be given as ADT_<NAME> in the environment.`;

export const DB_PORT = 3306;

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) =>
  new AdtError(code, message, { pkg: 'build', driver: 'deploy', exitCode });

export function plan(d: Deployment) {
  const env = localEnv(d);
  return {
    provider: d.provider,
    mode: d.mode,
    url: d.siteUrl,
    buildId: d.buildId,
    configBucket: d.configBucket,
    s3Endpoint: env.s3Endpoint,
    servers: wantedServers(d).map(({ role, slot }) => ({
      role,
      name: `${serverName({ role, buildId: d.buildId, slot }).replace(/-[a-z0-9]+$/, '')}-<random>`,
    })),
    dns: {
      server: `${env.cloud.buildMachine.publicIp}:53`,
      zone: env.zone,
      records: wantedServers(d)
        .filter((w) => w.role === 'webserver')
        .map(() => `${d.host} A <webserver public IP>`),
    },
    ...(d.mode === 'production'
      ? {
          scaling: {
            autoscalers: d.scaling.autoscalers,
            desired: splitDesired(d.scaling.webservers, d.scaling.autoscalers),
            max: d.scaling.maxWebservers,
            cloudApi: env.cloudApiUrl,
          },
        }
      : {}),
    application: d.application,
    webserver: d.webserver,
    database: d.database,
    webFirewall: d.webMode,
    cloud: { id: d.cloudId, public: d.publicCidr, private: d.privateCidr, stateDir: d.stateDir },
  };
}

/** The steps of a deploy, in order (restoring only when starting from a backup). */
export function stepTitles(d: Deployment): string[] {
  return [
    'cloud network',
    'config datastore',
    'DNS',
    'servers',
    'waiting for the servers to be ready',
    ...(d.restoreFrom ? ['restoring the backup'] : []),
    'DNS records',
    'checking the site',
  ];
}

export interface Ctx {
  d: Deployment;
  env: LocalEnv;
  say: (line: string) => void;
  timings: Record<string, number>;
}

async function timed<T>(ctx: Ctx, title: string, fn: () => Promise<T>): Promise<T> {
  const steps = stepTitles(ctx.d);
  ctx.say(`[${steps.indexOf(title) + 1}/${steps.length}] ${title}`);
  const t = Date.now();
  const r = await fn();
  ctx.timings[title] = Number(((Date.now() - t) / 1000).toFixed(1));
  return r;
}

/** Generates what a new build needs in the datastore; keeps what a converging re-run finds. */
async function prepareDatastore(ctx: Ctx): Promise<{ store: ConfigStore; fresh: boolean; emptied: number }> {
  const { env, d } = ctx;
  const s3 = await ensureS3Daemon({ stateDir: env.s3Dir, address: env.cloud.buildMachine.privateIp, port: d.s3Port });
  ctx.say(`      embedded S3 ${s3.started ? 'started' : 'already running'} at ${s3.endpoint} (pid ${s3.pid}, log ${s3.log})`);
  mkdirSync(env.buildDir, { recursive: true, mode: 0o700 });
  const fresh = !existsSync(env.keyFile);
  if (fresh) writeFileSync(env.keyFile, generateSecretKey().toString('hex'), { mode: 0o600 });
  const store = openStore(env);
  await store.ensureBucket();
  let emptied = 0;
  if (fresh) {
    emptied = await store.emptyBucket();
    const record: BuildRecord = {
      siteUrl: d.siteUrl,
      buildId: d.buildId,
      cloudId: d.cloudId,
      configBucket: d.configBucket,
      createdAt: new Date().toISOString(),
    };
    writeFileSync(env.recordFile, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    ctx.say(
      `      bucket ${d.configBucket} ready for a new build${emptied ? ` (emptied ${emptied} object(s) of an earlier one)` : ''}; key ${env.keyFile} (mode 0600)`,
    );
  } else {
    ctx.say(`      bucket ${d.configBucket} of this build kept (re-run: converging)`);
  }
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
    ctx.say('      database credentials generated (stored encrypted; never shown)');
  }
  await store.putIfChanged(keys.backups, {
    bucket: d.backupBucket,
    keep: d.backupKeep,
    schedule: d.backupSchedule,
    encrypted: Boolean(d.backupKeyFile),
  });
  if (d.backupKeyFile)
    await store.putIfChanged(keys.backupKey, parseSecretKey(readFileSync(d.backupKeyFile, 'utf8'), 'BACKUP_KEY_FILE').toString('hex'));
  await store.putIfChanged(keys.site, { siteUrl: d.siteUrl, application: d.application, webserver: d.webserver, webMode: d.webMode });
  const at = new Date().toISOString();
  for (const ip of [env.cloud.buildMachine.privateIp, env.cloud.buildMachine.publicIp]) {
    await store.putIfChanged(keys.buildMachineIps.key(ip), { name: 'build', role: 'build', at });
  }
  return { store, fresh, emptied };
}

/**
 * WEB_FIREWALL=auth: the sign-in app's settings and secrets (its signing secret, a certificate for
 * its name from the build's CA or, with TLS=acme, by ACME), and, unless SMTP_RELAY names a relay, the local mail catcher on
 * the build machine's private address (messages kept as files in STATE_DIR/mail/<cloud id>).
 */
async function prepareAuth(ctx: Ctx, store: ConfigStore): Promise<void> {
  const { env, d } = ctx;
  const a = d.auth!;
  let smtp = a.smtp;
  if (!smtp) {
    smtp = { host: env.cloud.buildMachine.privateIp, port: 2525 };
    const m = await ensureDaemon({
      name: 'mail',
      stateDir: env.mailDir,
      script: 'roles/build/src/mail-serve.ts',
      args: [join(env.mailDir, 'messages'), smtp.host, String(smtp.port)],
      endpoint: `http://${smtp.host}:${smtp.port}`,
      up: () => tcpAnswers(smtp!.host, smtp!.port),
      portSetting: 'SMTP_RELAY',
    });
    ctx.say(
      `      mail catcher ${m.started ? 'started' : 'already running'} on ${smtp.host}:${smtp.port}: sign-in mails land in ${join(env.mailDir, 'messages')}`,
    );
  }
  const cert = await withAuthStore(env, (authStore) => ensureAuthCertificate(env, authStore));
  await store.putIfChanged(keys.auth, {
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
  ctx.say(`      sign-in ${cert.line}`);
  ctx.say(`      authentication server https://${a.host}/ for ${a.allow.length} address(es); grants last ${a.grantMinutes} min`);
}

/**
 * Production mode: the local cloud's API for the autoscalers (a service of the build machine, like
 * a cloud's API), and in the datastore what they need: how to reach that API and DNS (secrets),
 * the scaling settings, the schedule, and the desired count (set at the first deploy only: a
 * re-run keeps what the operator scaled to).
 */
async function prepareScaling(ctx: Ctx, store: ConfigStore): Promise<void> {
  const { env, d } = ctx;
  mkdirSync(env.cloudApiDir, { recursive: true, mode: 0o700 });
  const configFile = join(env.cloudApiDir, 'config.json');
  let token = '';
  try {
    token = (JSON.parse(readFileSync(configFile, 'utf8')) as { token: string }).token;
  } catch {}
  if (!token) token = randomBytes(32).toString('base64url');
  writeFileSync(
    configFile,
    JSON.stringify({
      cloud: env.cloudOptions,
      buildId: d.buildId,
      address: env.cloud.buildMachine.privateIp,
      port: d.scaling.cloudApiPort,
      token,
    }),
    { mode: 0o600 },
  );
  const api = await ensureDaemon({
    name: 'cloud-api',
    stateDir: env.cloudApiDir,
    script: 'roles/build/src/cloud-api-serve.ts',
    args: [configFile],
    endpoint: `${env.cloudApiUrl}/v1/servers`,
    portSetting: 'CLOUD_API_PORT',
  });
  ctx.say(`      local cloud API ${api.started ? 'started' : 'already running'} at ${env.cloudApiUrl} (pid ${api.pid}, log ${api.log})`);
  const pdns = await attachPowerDns(env.dnsDir);
  if (!pdns) throw fail('DNS_NOT_RUNNING', 'PowerDNS is not running');
  await store.put(keys.providerAccess, {
    compute: { driver: 'local-remote', url: env.cloudApiUrl, token },
    dns: { driver: 'powerdns', apiUrl: pdns.apiUrl, apiKey: readFileSync(pdns.apiKeyFile, 'utf8').trim(), zone: env.zone },
  });
  const sc = d.scaling;
  const { webservers: _initial, schedule: _schedule, cloudApiPort: _port, ...settings } = sc;
  await store.putIfChanged(keys.scaling, settings);
  await store.putIfChanged(keys.scalingSchedule, sc.schedule);
  const split = splitDesired(sc.webservers, sc.autoscalers);
  for (const [i, n] of split.entries()) {
    if ((await store.get(keys.desiredWebservers(i + 1))) === null) await store.put(keys.desiredWebservers(i + 1), n);
  }
  ctx.say(
    `      ${sc.autoscalers} autoscaler(s); desired webservers ${split.join(' + ')} (first deploy; a re-run keeps the current scaling)`,
  );
}

/**
 * The cloud-level firewall. It is the coarse layer: the fleet's machines are "the private network"
 * (so webservers an autoscaler adds later are let in without touching the cloud's rules); the
 * precise per-address rules are each host's own (SetupFirewall, following the datastore).
 */
async function applyNativePolicy(ctx: Ctx, store: ConfigStore): Promise<void> {
  const fleet = await datastoreFleetSource(store).snapshot();
  const vpc = [ctx.d.privateCidr];
  // Grants come and go with each sign-in: the cloud layer leaves 443 open in auth mode, the hosts follow the grants.
  const webMode = ctx.d.webMode === 'auth' ? 'open' : ctx.d.webMode;
  const policies = computePolicies(
    { ...fleet, webservers: vpc, autoscalers: vpc, databases: vpc },
    { webMode, dbPort: DB_PORT, http: true },
  );
  await applyNative(ctx.env.cloud.firewall, ctx.d.buildId, policies);
}

export interface Booting {
  role: FleetRole;
  server: Server;
  log: LogFollower;
  deadline: number;
  lastStep: string;
  readyAt?: number;
}

/** The servers a deployment wants: development one of each; production autoscalers (a slot each) and the initial webservers split between their slots. */
export function wantedServers(d: Deployment): { role: FleetRole; slot?: number }[] {
  const auth = d.auth ? [{ role: 'auth' as const }] : [];
  if (d.mode === 'development') return [{ role: 'database' }, { role: 'webserver' }, ...auth];
  const web = splitDesired(d.scaling.webservers, d.scaling.autoscalers).flatMap((n, i) =>
    Array.from({ length: n }, () => ({ role: 'webserver' as const, slot: i + 1 })),
  );
  return [
    { role: 'database' },
    ...web,
    ...Array.from({ length: d.scaling.autoscalers }, (_, i) => ({ role: 'autoscaler' as const, slot: i + 1 })),
    ...auth,
  ];
}

/**
 * Servers of this build per role: keeps ready or booting ones, replaces failed ones, creates
 * missing ones. In production, once webservers exist the autoscalers own them: a re-run keeps the
 * ones there and creates none.
 */
async function ensureServers(ctx: Ctx, store: ConfigStore, fresh: boolean): Promise<Booting[]> {
  const { env, d } = ctx;
  const key = readFileSync(env.keyFile, 'utf8').trim();
  const out: Booting[] = [];
  const wanted = wantedServers(d);
  let databaseReplaced = false;
  for (const role of ['database', 'webserver', 'autoscaler', 'auth'] as const) {
    const wants = wanted.filter((w) => w.role === role);
    const existing = await env.cloud.list({ buildId: d.buildId, role });
    const kept: Server[] = [];
    for (const s of existing) {
      const ready = await store.exists(keys.ready(role, s.name));
      const boot = await env.cloud.bootStatus(s.id);
      const slot = parseServerName(s.name)?.slot;
      const wantedHere =
        d.mode === 'production' && role === 'webserver'
          ? true
          : wants.some((w) => w.slot === slot) && !kept.some((k) => parseServerName(k.name)?.slot === slot);
      const stale = role === 'webserver' && databaseReplaced;
      const usable = !fresh && !stale && wantedHere && s.state === 'running' && (ready || boot.exitCode === null);
      if (usable) {
        kept.push(s);
        ctx.say(`      ${role} ${s.name} kept (${ready ? 'ready' : 'still booting'})`);
      } else {
        ctx.say(
          `      ${role} ${s.name} replaced (${fresh ? 'from an earlier build' : stale ? 'the database was replaced' : boot.exitCode !== null && !ready ? `its bootstrap failed with exit code ${boot.exitCode}` : 'not usable'})`,
        );
        await forgetServer(store, s);
        await env.cloud.destroy(s.id);
      }
    }
    if (role === 'database' && !kept.length) databaseReplaced = true;
    for (const s of kept)
      out.push({
        role,
        server: s,
        log: followLog(env.cloud.userDataLog(s.id), { fromEnd: true }),
        deadline: Date.now() + d.readyTimeout * 1000,
        lastStep: 'kept',
      });
    // Production webservers already there belong to the autoscalers: they bring them to the desired count.
    const missing =
      d.mode === 'production' && role === 'webserver' && kept.length
        ? []
        : wants.filter((w) => !kept.some((k) => parseServerName(k.name)?.slot === w.slot) || (w.slot === undefined && !kept.length));
    const toCreate = role === 'webserver' && d.mode === 'production' ? missing : missing.slice(0, Math.max(0, wants.length - kept.length));
    const created = await Promise.all(
      toCreate.map((w) =>
        env.cloud.create({
          name: serverName({ role, buildId: d.buildId, slot: w.slot }),
          role,
          buildId: d.buildId,
          size: d.serverSize,
          region: d.region,
          userData: userData({
            role,
            s3Endpoint: env.s3Endpoint,
            s3AccessKeyId: EMBEDDED_CREDENTIALS.accessKeyId,
            s3SecretAccessKey: EMBEDDED_CREDENTIALS.secretAccessKey,
            configBucket: d.configBucket,
            // The authentication server gets a key of its own: it decrypts its own secrets, not the
            // deployment's (database credentials, the cloud API's token...).
            datastoreKey: role === 'auth' ? readFileSync(env.authKeyFile, 'utf8').trim() : key,
            webMode: d.webMode,
            dbPort: DB_PORT,
            codeDir: CODE_ON_SERVERS,
          }),
        }),
      ),
    );
    for (const server of created) {
      ctx.say(`      ${role} ${server.name} created: public ${server.publicIp}, private ${server.privateIp}`);
      out.push({
        role,
        server,
        log: followLog(env.cloud.userDataLog(server.id)),
        deadline: Date.now() + d.readyTimeout * 1000,
        lastStep: 'created',
      });
    }
  }
  return out;
}

/** Waits for every server's `ready` in the datastore, showing their progress; bounded per server. `onTick` runs on every poll. */
export async function waitReady(
  ctx: Ctx,
  store: ConfigStore,
  servers: Booting[],
  onTick: () => Promise<void> = async () => {},
): Promise<void> {
  const pending = new Set(servers);
  for (;;) {
    await onTick();
    for (const b of [...pending]) {
      for (const line of b.log.lines()) {
        // "<time> [role] step (12.3s)" -> "step (12.3s)"
        const m = /^\S+ \[[a-z]+\] (.*)$/.exec(line);
        if (m) b.lastStep = m[1]!;
        ctx.say(`      ${servers.filter((x) => x.role === b.role).length > 1 ? b.server.name : b.role}: ${m ? m[1] : line}`);
      }
      if (await store.exists(keys.ready(b.role, b.server.name))) {
        pending.delete(b);
        continue;
      }
      const boot = await ctx.env.cloud.bootStatus(b.server.id);
      const where = `its log: ${ctx.env.cloud.userDataLog(b.server.id)} (or roles/build/ExecuteOn${b.role[0]!.toUpperCase()}${b.role.slice(1)} -- cat /var/log/cloud-init-output.log)`;
      if (boot.exitCode !== null) {
        throw fail(
          'SERVER_FAILED',
          `the ${b.role} server ${b.server.name} stopped before it was ready (exit code ${boot.exitCode}); last step it finished: "${b.lastStep}".\nLast lines of ${where}:\n${b.log.tail(15)}`,
        );
      }
      if (Date.now() > b.deadline) {
        throw fail(
          'SERVER_TIMEOUT',
          `the ${b.role} server ${b.server.name} was not ready within ${ctx.d.readyTimeout} s (READY_TIMEOUT); last step it finished: "${b.lastStep}".\nLast lines of ${where}:\n${b.log.tail(15)}`,
        );
      }
    }
    if (pending.size === 0) return;
    await sleep(500);
  }
}

/** The backups a deploy with RESTORE_FROM starts from: the newest complete one of each part. */
async function chooseBackups(
  env: LocalEnv,
): Promise<{ part: 'database' | 'webroot'; id: string; period: string; createdAt: string; args: string[] }[]> {
  const d = env.d;
  const baseline = parseBaselineSpec(d.restoreFrom ?? '');
  if (baseline) {
    const { bucket = d.backupBucket, name } = baseline;
    const driver = s3Driver({ bucket, endpoint: env.s3Endpoint, credentials: { ...EMBEDDED_CREDENTIALS } });
    try {
      const out = [];
      for (const part of PARTS) {
        const b = new Backups({ client: driver.getInstance(), bucket, prefix: baselinePrefix(name, part), hostname: 'build' });
        const [m] = (await driver.bucketExists()) ? await b.list('manual') : [];
        if (!m)
          throw fail(
            'NO_BASELINE',
            `RESTORE_FROM="${d.restoreFrom}": bucket ${bucket} has no baseline "${name}" with the site's ${part} (publish one with roles/build/PublishBaseline ${name})`,
            2,
          );
        out.push({ part, id: m.id, period: `baseline ${name}`, createdAt: m.createdAt, args: ['--baseline', formatBaselineRef(baseline)] });
      }
      return out;
    } finally {
      await driver.dispose?.();
    }
  }
  const key = d.backupKeyFile ? parseSecretKey(readFileSync(d.backupKeyFile, 'utf8'), 'BACKUP_KEY_FILE') : undefined;
  const driver = s3Driver({ bucket: d.backupBucket, endpoint: env.s3Endpoint, credentials: { ...EMBEDDED_CREDENTIALS } });
  try {
    const out = [];
    for (const part of PARTS) {
      const backups = new Backups({
        client: driver.getInstance(),
        bucket: d.backupBucket,
        prefix: backupPrefix(part),
        encryptionKey: key,
        hostname: 'build',
      });
      const all = (await driver.bucketExists())
        ? await backups.list(d.restoreFrom === 'latest' ? undefined : (d.restoreFrom as Period))
        : [];
      const newest = all.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
      if (!newest)
        throw fail(
          'NO_BACKUP',
          `RESTORE_FROM="${d.restoreFrom}": there is no complete ${d.restoreFrom === 'latest' ? '' : `${d.restoreFrom} `}backup of the site's ${part} in bucket ${d.backupBucket}`,
          2,
        );
      if (newest.encrypted && !key)
        throw fail('NO_BACKUP_KEY', `RESTORE_FROM: backup ${newest.id} is encrypted: set BACKUP_KEY_FILE to the key it was made with`, 2);
      out.push({ part, id: newest.id, period: newest.period, createdAt: newest.createdAt, args: ['--id', newest.id] });
    }
    return out;
  } finally {
    await driver.dispose?.();
  }
}

/** The site as a visitor would find it: the name through the cloud's DNS, then HTTPS with the CA. */
async function checkSite(ctx: Ctx, store: ConfigStore, webIp: string): Promise<{ addresses: string[]; status: number; location?: string }> {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([ctx.env.cloud.buildMachine.publicIp]);
  const addresses = await resolver.resolve4(ctx.d.host);
  if (!addresses.includes(webIp))
    throw fail(
      'DNS_CHECK',
      `${ctx.d.host} resolves to ${addresses.join(', ') || 'nothing'} on the cloud's DNS, not to the webserver ${webIp}`,
    );
  const tls = await store.get(keys.siteTls);
  const r = await httpsGet(webIp, ctx.d.host, tls!.ca, 15_000);
  if (r.status !== 200 && r.status !== 302)
    throw fail('SITE_CHECK', `https://${ctx.d.host}/ (at ${webIp}) answered HTTP ${r.status}, not the application's page`);
  return { addresses, ...r };
}

/** The deploy command (run by deploy.mjs through runMain). */
async function main(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    { config: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
    HELP,
  );
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const started = Date.now();
  const d = readDeployment(values.config, process.env);
  const json = Boolean(values.json);
  const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
  if (d.provider !== 'local') {
    if (!values['dry-run']) {
      throw fail(
        'CLOUD_DEPLOY',
        `PROVIDER=${d.provider}: this version deploys on the local provider only (servers on a real cloud need the role code delivered as an artifact, which is not built yet); --dry-run prints every API call a deploy on ${d.provider} would make`,
        2,
      );
    }
    const { cloudDryRun, formatDryRun } = await import('./cloud-plan.ts');
    const r = await cloudDryRun(d);
    if (json) {
      process.stdout.write(`${JSON.stringify({ dryRun: true, ...r }, null, 2)}\n`);
      return 0;
    }
    say(
      `Plan (dry run, nothing sent) for ${d.siteUrl}, build ${d.buildId}, ${d.mode} mode, on ${d.provider} (region ${r.region}, size ${r.size}), DNS ${d.dnsProvider}, web firewall ${d.webMode}${d.databaseService === 'managed' ? ', managed database' : ''}:`,
    );
    for (const s of r.servers) say(`  server ${s.name} (${s.role})`);
    say(`API calls, in order, as a fresh account would answer them (user-data and passwords shown by size only):`);
    for (const line of formatDryRun(r)) say(line);
    say('Then the certificate by ACME:');
    for (const line of r.acme) say(`  ${line}`);
    return 0;
  }
  const p = plan(d);
  if (values['dry-run']) {
    if (json) process.stdout.write(`${JSON.stringify({ dryRun: true, plan: p }, null, 2)}\n`);
    else {
      say(`Plan (dry run, nothing changed) for ${p.url}, build ${d.buildId}, ${d.mode} mode, provider ${d.provider}:`);
      say(`  config bucket ${p.configBucket} on the embedded S3 at ${p.s3Endpoint}`);
      for (const s of p.servers) say(`  server ${s.name} (${s.role})`);
      say(`  DNS ${p.dns.records.join(', ')} in zone ${p.dns.zone} on PowerDNS ${p.dns.server}`);
      say(`  ${d.application} on ${d.webserver} + php-fpm, ${d.database}, web firewall ${d.webMode}`);
    }
    return 0;
  }
  if (process.getuid?.() !== 0) throw fail('NOT_ROOT', 'the local provider needs root (it creates network namespaces): run as root', 2);
  const env = localEnv(d);
  const record = readBuildRecord(env);
  if (record && record.siteUrl !== d.siteUrl) {
    throw fail(
      'BUILD_CLASH',
      `BUILD_ID="${d.buildId}" is already deployed for ${record.siteUrl} (${env.recordFile}): destroy it first (npx zx roles/build/destroy.mjs) or choose another BUILD_ID`,
      2,
    );
  }
  const ctx: Ctx = { d, env, say, timings: {} };
  say(`Deploying ${d.siteUrl} (build ${d.buildId}, ${d.mode} mode) on the local cloud "${d.cloudId}"`);

  await timed(ctx, 'cloud network', async () => {
    await env.cloud.ensureNetwork();
    say(
      `      public ${d.publicCidr}, private ${d.privateCidr}; build machine ${env.cloud.buildMachine.publicIp} / ${env.cloud.buildMachine.privateIp}`,
    );
  });
  const { store, fresh } = await timed(ctx, 'config datastore', () => prepareDatastore(ctx));
  let dns: DnsProvider | null = null;
  await timed(ctx, 'DNS', async () => {
    // Its API on the private network too: autoscalers change the site's records through it.
    const server = await startPowerDns({
      dataDir: env.dnsDir,
      listenAddress: env.cloud.buildMachine.publicIp,
      dnsPort: 53,
      apiAddress: env.cloud.buildMachine.privateIp,
      apiAllowFrom: [d.privateCidr, '127.0.0.0/8'],
      detached: true,
    });
    dns = await openDns(env);
    await dns!.ensureZone(env.zone);
    say(`      PowerDNS answering on ${server.dnsAddress}:53 (pid ${server.pid}), zone ${env.zone}`);
    say(`      ${await ensureSiteCertificate(env, store)}`);
    const cron = installRenewalCron(env);
    if (cron) say(`      renewal: daily from ${cron} (roles/build/RenewCertificate; renews within ${d.tls.renewDays} days of expiry)`);
  });
  // Starting from a backup: find it now, before any server is made.
  const restore = d.restoreFrom ? await chooseBackups(env) : null;
  if (restore) say(`      will restore ${restore.map((m) => `${m.part} ${m.id} (${m.period}, ${m.createdAt})`).join(' and ')}`);
  await applyNativePolicy(ctx, store);
  if (d.mode === 'production') await prepareScaling(ctx, store);
  if (d.auth) await prepareAuth(ctx, store);
  const servers = await timed(ctx, 'servers', () => ensureServers(ctx, store, fresh));
  await timed(ctx, 'waiting for the servers to be ready', () => waitReady(ctx, store, servers));
  const webservers = servers.filter((s) => s.role === 'webserver').map((s) => s.server);
  const web = webservers[0];
  const db = servers.find((s) => s.role === 'database')!.server;
  if (restore) {
    await timed(ctx, 'restoring the backup', async () => {
      const fresh = servers.filter((s) => s.lastStep !== 'kept');
      if (!fresh.length) return say('      servers kept from an earlier run: they already hold the site, nothing restored');
      for (const m of restore) {
        for (const b of servers.filter((s) => s.role === (m.part === 'database' ? 'database' : 'webserver') && s.lastStep !== 'kept')) {
          const r = await env.cloud.exec(b.server.id, [`${CODE_ON_SERVERS}/roles/${b.role}/backup/Restore`, ...m.args], {
            nothrow: true,
            timeoutMs: 3_600_000,
          });
          if (r.exitCode !== 0)
            throw fail(
              'RESTORE_FAILED',
              `restoring ${m.part} backup ${m.id} on ${b.server.name} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`,
            );
          say(`      ${b.server.name}: ${r.stdout.trim()}`);
        }
      }
    });
  }
  await timed(ctx, 'DNS records', async () => {
    for (const w of webservers) await dns!.addA(d.host, w.publicIp!, d.scaling.dnsTtlSeconds);
    // Records of servers that no longer exist go (a converging re-run replaced them).
    const live = new Set((await env.cloud.list()).map((s) => s.publicIp));
    for (const r of await dns!.listA(d.host)) if (!live.has(r.content)) await dns!.removeA(d.host, r.content);
    say(`      ${d.host} A ${webservers.map((w) => w.publicIp).join(', ')}`);
    const authServer = servers.find((s) => s.role === 'auth')?.server;
    if (authServer && d.auth) {
      for (const r of await dns!.listA(d.auth.host)) if (r.content !== authServer.publicIp) await dns!.removeA(d.auth.host, r.content);
      await dns!.addA(d.auth.host, authServer.publicIp!, d.scaling.dnsTtlSeconds);
      say(`      ${d.auth.host} A ${authServer.publicIp}`);
    }
  });
  const site = await timed(ctx, 'checking the site', async () => {
    let r: Awaited<ReturnType<typeof checkSite>> | null = null;
    for (const w of webservers) {
      r = await checkSite(ctx, store, w.publicIp!);
      say(
        `      ${d.host} -> ${r.addresses.join(', ')}; https://${d.host}/ at ${w.publicIp} answers HTTP ${r.status}${r.location ? ` (${r.location})` : ''}`,
      );
    }
    return r ?? { addresses: [], status: 0 };
  });
  await store.put(keys.installedSuccessfully, { at: new Date().toISOString(), by: 'deploy' });
  await store.driver.dispose?.();
  await dns!.dispose?.();

  const seconds = Number(((Date.now() - started) / 1000).toFixed(1));
  const caFile = trustAnchorFile(env);
  const summary = {
    url: d.siteUrl,
    buildId: d.buildId,
    mode: d.mode,
    seconds,
    steps: ctx.timings,
    servers: [db, ...webservers, ...servers.filter((s) => s.role === 'autoscaler' || s.role === 'auth').map((s) => s.server)].map((s) => ({
      role: s.role,
      name: s.name,
      publicIp: s.publicIp,
      privateIp: s.privateIp,
    })),
    dns: {
      server: `${env.cloud.buildMachine.publicIp}:53`,
      records: webservers.map((w) => ({ name: d.host, type: 'A', value: w.publicIp })),
    },
    caFile,
    // What a client trusts for the sign-in page: the same root as the site's.
    authCaFile: d.auth ? caFile : null,
    configBucket: d.configBucket,
    s3Endpoint: env.s3Endpoint,
    keyFile: env.keyFile,
    application: { name: d.application, status: site.status, location: site.location ?? null },
    tryIt: web ? `curl --cacert ${caFile} --resolve ${d.host}:443:${web.publicIp} https://${d.host}/` : null,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  }
  say('');
  say(`Done in ${seconds} s: ${d.siteUrl} is served.`);
  for (const s of summary.servers) say(`  ${s.role.padEnd(10)} ${s.name}  public ${s.publicIp}  private ${s.privateIp}`);
  say(
    `  DNS        ${d.host} A ${webservers.map((w) => w.publicIp).join(', ') || '(none: no webservers wanted)'} (PowerDNS on ${summary.dns.server})`,
  );
  if (d.auth)
    say(
      `  Sign in    https://${d.auth.host}/ (port 443 of the webservers is open only to signed-in people)${d.auth.smtp ? '' : `; mails in ${join(env.mailDir, 'messages')}`}`,
    );
  if (d.mode === 'production')
    say(
      `  Scaling    ${d.scaling.autoscalers} autoscaler(s) keep the desired webservers healthy: roles/build/AdjustScaling <n>, roles/build/status`,
    );
  say(
    `  TLS        ${d.tls.mode === 'acme' ? `certificate by ACME (${d.tls.acmeServer ?? 'the local pebble'}); its root: ${caFile}; renewal: roles/build/RenewCertificate` : `certificate from the local CA ${caFile}`}`,
  );
  if (site.location?.includes('install.php')) say(`  WordPress  a virgin install: finish it at https://${d.host}/wp-admin/install.php`);
  if (summary.tryIt) say(`  Try it     ${summary.tryIt}`);
  say(`  Datastore  bucket ${d.configBucket} at ${env.s3Endpoint} (key ${env.keyFile})`);
  say(
    `  Steps      ${Object.entries(ctx.timings)
      .map(([k, v]) => `${k} ${v} s`)
      .join(', ')}`,
  );
  say(
    '  Next       roles/build/status, roles/build/ExecuteOnWebserver -- <command>, roles/build/ConnectToDatabase, npx zx roles/build/destroy.mjs',
  );
  return 0;
}

export { main };
