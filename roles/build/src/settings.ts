/**
 * The deployment file (the original's "template"): dotenv format, every variable optional, each
 * also settable as `ADT_<NAME>` in the environment (the file wins). Validation reports every
 * problem at once, each naming the variable, the value and what is allowed (exit 2).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { parse as parseEnv } from 'dotenv';
import { validateCronExpression } from '@adt/core';
import { backupBucketName, configBucketName, parseSecretKey, siteHost, validateBuildId, type ScalingSettings } from '@adt/configstore';
import { usage } from '@adt/role-common';
import { PERIODS, SCHEDULED_PERIODS, isPeriod, isScheduledPeriod, parseBaselineSpec } from '@adt/backup';
import { parseScalingSchedule } from '@adt/scaling';

export interface Deployment {
  /** The file it came from, for messages (or "defaults"). */
  source: string;
  provider: Provider;
  /** https://<host>/ */
  siteUrl: string;
  host: string;
  buildId: string;
  mode: 'development' | 'production';
  webserver: 'nginx' | 'apache';
  database: 'mariadb';
  application: 'wordpress';
  dnsProvider: 'powerdns' | 'cloudflare' | CloudProvider;
  /** DATABASE_SERVICE: a database server of ours, or the cloud's managed database (the server still runs, for backups). */
  databaseService: 'server' | 'managed';
  /** Real clouds: the build machine's public IPv4 (SSH and health checks are allowed from it). */
  buildMachineIp: string | null;
  /** TLS: certificates from the local CA, or by ACME (DNS-01 with lego). */
  tls: { mode: 'local-ca' | 'acme'; acmeServer: string | null; acmeEmail: string | null; renewDays: number };
  webMode: 'open' | 'cloudflare' | 'auth';
  /** WEB_FIREWALL=auth: the authentication server. */
  auth: {
    allow: string[];
    admins: string[];
    grantMinutes: number;
    linkMinutes: number;
    host: string;
    smtp: { host: string; port: number } | null;
    from: string;
  } | null;
  region: string;
  serverSize: string;
  stateDir: string;
  s3Port: number;
  cloudId: string;
  publicCidr: string;
  privateCidr: string;
  /** Seconds a server may take to report ready. */
  readyTimeout: number;
  configBucket: string;
  backupBucket: string;
  /** Generations kept per backup period. */
  backupKeep: Record<string, number>;
  /** Cron schedule per backup period (periods absent: not scheduled). */
  backupSchedule: Record<string, string>;
  /** The user's backup encryption key file (32 bytes, hex or base64, mode 0600), or null: not encrypted. */
  backupKeyFile: string | null;
  /** Start from a temporal backup: the newest of a period, or the newest of all ("latest"); null: a virgin install. */
  restoreFrom: string | null;
  /** Production mode: autoscaling (what the autoscalers get, and what only the build uses). */
  scaling: ScalingSettings & {
    /** The desired total of webservers at deploy (split between the autoscalers). */
    webservers: number;
    /** "HH:MM" -> webservers. */
    schedule: Record<string, number>;
    cloudApiPort: number;
  };
}

export const CLOUD_PROVIDERS = ['digitalocean', 'linode', 'vultr', 'exoscale'] as const;
export type CloudProvider = (typeof CLOUD_PROVIDERS)[number];
export type Provider = 'local' | CloudProvider;

/**
 * Region and size when REGION / SERVER_SIZE are left empty: small, cheap defaults per provider
 * (Exoscale sizes are instance-type names resolved by its driver).
 */
export const PROVIDER_DEFAULTS: Record<Provider, { region: string; size: string; dbSize: string }> = {
  local: { region: 'local', size: 'small', dbSize: 'small' },
  digitalocean: { region: 'lon1', size: 's-1vcpu-2gb', dbSize: 'db-s-1vcpu-1gb' },
  linode: { region: 'eu-west', size: 'g6-standard-1', dbSize: 'g6-nanode-1' },
  vultr: { region: 'lhr', size: 'vc2-1c-2gb', dbSize: 'vultr-dbaas-hobbyist-cc-1-25-1' },
  exoscale: { region: 'ch-gva-2', size: 'standard.small', dbSize: 'hobbyist-2' },
};

/** Variables, their defaults, and what is allowed (also the source of the example file's help). */
export const VARIABLES = {
  PROVIDER: 'local',
  SITE_URL: 'www.adt.test',
  BUILD_ID: 'dev1',
  MODE: 'development',
  WEBSERVER: 'nginx',
  DATABASE: 'mariadb',
  APPLICATION: 'wordpress',
  DNS_PROVIDER: '',
  WEB_FIREWALL: 'open',
  REGION: '',
  SERVER_SIZE: '',
  DATABASE_SERVICE: 'server',
  BUILD_MACHINE_IP: '',
  TLS: 'local-ca',
  ACME_SERVER: '',
  ACME_EMAIL: '',
  TLS_RENEW_DAYS: '30',
  STATE_DIR: '/var/lib/adt-local',
  S3_PORT: '9700',
  LOCAL_CLOUD_ID: 'adt',
  LOCAL_PUBLIC_CIDR: '198.18.0.0/24',
  LOCAL_PRIVATE_CIDR: '198.18.1.0/24',
  READY_TIMEOUT: '300',
  BACKUP_KEEP: 'hourly=24,daily=7,weekly=4,monthly=12,bimonthly=6,manual=10,shutdown=3',
  BACKUP_SCHEDULE: 'hourly=17 * * * *;daily=30 3 * * *;weekly=45 3 * * 0;monthly=0 4 1 * *;bimonthly=15 4 1 */2 *',
  BACKUP_KEY_FILE: '',
  RESTORE_FROM: '',
  AUTOSCALERS: '1',
  WEBSERVERS: '2',
  MAX_WEBSERVERS: '10',
  SCALING_INTERVAL: '2',
  PROBE_TIMEOUT: '2',
  FAILURES_BEFORE_UNHEALTHY: '2',
  SCALING_BUILD_TIMEOUT: '300',
  DRAIN_SECONDS: '5',
  LEASE_TTL: '15',
  DNS_TTL: '10',
  SCALING_SCHEDULE: '',
  CLOUD_API_PORT: '9701',
  AUTH_ALLOW: '',
  AUTH_ADMINS: '',
  AUTH_GRANT_MINUTES: '480',
  AUTH_LINK_MINUTES: '15',
  AUTH_HOST: '',
  SMTP_RELAY: '',
  MAIL_FROM: '',
} as const;

const EMAIL = /^[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,63}$/;

type Name = keyof typeof VARIABLES;

const CIDR24 = /^198\.(18|19)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.0\/24$/;

export function readDeployment(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Deployment {
  let vars: Record<string, string> = {};
  if (file) {
    if (!existsSync(file)) throw usage(`--config: ${file} does not exist`);
    vars = parseEnv(readFileSync(file));
  }
  const get = (k: Name) => (vars[k] ?? env[`ADT_${k}`] ?? VARIABLES[k]).trim();
  const problems: string[] = [];
  const oneOf = (name: Name, allowed: string[], later: Record<string, string> = {}) => {
    const v = get(name);
    if (allowed.includes(v)) return v;
    problems.push(`${name}="${v}": ${later[v] ?? `one of ${allowed.map((a) => `"${a}"`).join(', ')}`}`);
    return allowed[0];
  };
  const provider = oneOf('PROVIDER', ['local', ...CLOUD_PROVIDERS]) as Provider;
  const cloud = provider !== 'local';
  let host = '';
  try {
    host = siteHost(get('SITE_URL'));
    if (host.split('.').length < 2) throw new Error('one label');
  } catch {
    problems.push(`SITE_URL="${get('SITE_URL')}": a DNS host name with at least two labels, such as www.example.com`);
  }
  const buildId = get('BUILD_ID');
  try {
    validateBuildId(buildId);
  } catch {
    problems.push(`BUILD_ID="${buildId}": 1-24 lowercase letters and digits`);
  }
  const mode = oneOf('MODE', ['development', 'production']);
  const webserver = oneOf('WEBSERVER', ['nginx', 'apache']);
  oneOf('DATABASE', ['mariadb'], { postgres: '"mariadb" only in this version (Postgres is not built yet)' });
  oneOf('APPLICATION', ['wordpress'], {
    baseline: '"wordpress" (a virgin install) only in this version',
    backup: '"wordpress" (a virgin install) only in this version',
  });
  if (!get('DNS_PROVIDER')) vars.DNS_PROVIDER = cloud ? provider : 'powerdns';
  const dnsProvider = cloud
    ? oneOf('DNS_PROVIDER', [provider, 'cloudflare'], {
        powerdns: `"${provider}" (the cloud's DNS) or "cloudflare" (the local PowerDNS serves the local provider only)`,
      })
    : oneOf(
        'DNS_PROVIDER',
        ['powerdns'],
        Object.fromEntries(
          [...CLOUD_PROVIDERS, 'cloudflare'].map((p) => [
            p,
            '"powerdns" with PROVIDER=local (the local cloud\'s own DNS; the others need the internet)',
          ]),
        ),
      );
  const webMode = oneOf('WEB_FIREWALL', ['open', 'cloudflare', 'auth']);
  const region = get('REGION') || PROVIDER_DEFAULTS[provider].region;
  const serverSize = get('SERVER_SIZE') || PROVIDER_DEFAULTS[provider].size;
  for (const [name, v] of [
    ['REGION', region],
    ['SERVER_SIZE', serverSize],
  ] as const) {
    if (!/^[a-z0-9][a-z0-9.-]{0,39}$/.test(v))
      problems.push(
        `${name}="${v}": 1-40 lowercase letters, digits, dots and hyphens (empty: ${PROVIDER_DEFAULTS[provider][name === 'REGION' ? 'region' : 'size']} for ${provider})`,
      );
  }
  if (cloud && region === 'local')
    problems.push(`REGION="local": a ${provider} region, such as ${PROVIDER_DEFAULTS[provider].region} (empty: that one)`);
  const databaseService = oneOf('DATABASE_SERVICE', ['server', 'managed']) as Deployment['databaseService'];
  if (databaseService === 'managed' && !cloud)
    problems.push(
      'DATABASE_SERVICE="managed": a managed database needs a cloud PROVIDER (digitalocean, linode, vultr, exoscale); the local provider runs a database server',
    );
  const buildMachineIp = get('BUILD_MACHINE_IP') || null;
  if (cloud && !buildMachineIp)
    problems.push(
      `BUILD_MACHINE_IP="": with PROVIDER=${provider}, this machine's public IPv4 address (the servers allow SSH and health checks from it)`,
    );
  else if (buildMachineIp && (!isIPv4(buildMachineIp) || !cloud))
    problems.push(
      `BUILD_MACHINE_IP="${buildMachineIp}": ${cloud ? 'an IPv4 address such as 203.0.113.10' : 'only for a cloud PROVIDER (the local cloud knows its build machine)'}`,
    );
  const tlsMode = oneOf('TLS', ['local-ca', 'acme']) as Deployment['tls']['mode'];
  if (cloud && tlsMode === 'local-ca')
    problems.push(`TLS="local-ca": with PROVIDER=${provider} visitors need a certificate they trust: TLS=acme`);
  let acmeServer = get('ACME_SERVER') || null;
  if (acmeServer && !/^https:\/\/[^\s/]+(\/\S*)?$/.test(acmeServer))
    problems.push(
      `ACME_SERVER="${acmeServer}": the https:// URL of an ACME directory (empty: ${cloud ? "Let's Encrypt" : 'a local pebble test server'})`,
    );
  if (!acmeServer && tlsMode === 'acme' && cloud) acmeServer = 'https://acme-v02.api.letsencrypt.org/directory';
  const acmeEmail = get('ACME_EMAIL').toLowerCase() || null;
  if (acmeEmail && !EMAIL.test(acmeEmail)) problems.push(`ACME_EMAIL="${acmeEmail}": an email address (the ACME account's contact)`);
  if (tlsMode === 'acme' && cloud && !acmeEmail)
    problems.push(`ACME_EMAIL="": with TLS=acme on ${provider}, the contact address of the ACME account (expiry warnings go there)`);
  const stateDir = get('STATE_DIR');
  if (!/^\/(var|srv|opt|tmp|root|home)\/[A-Za-z0-9._/-]+$/.test(stateDir) || stateDir.includes('..')) {
    problems.push(`STATE_DIR="${stateDir}": an absolute path under /var, /srv, /opt, /root, /home or /tmp (hidden from the servers)`);
  }
  const s3Port = Number(get('S3_PORT'));
  if (!Number.isInteger(s3Port) || s3Port < 1024 || s3Port > 65535)
    problems.push(`S3_PORT="${get('S3_PORT')}": a port number from 1024 to 65535`);
  const cloudId = get('LOCAL_CLOUD_ID');
  if (!/^[a-z][a-z0-9]{0,4}$/.test(cloudId))
    problems.push(`LOCAL_CLOUD_ID="${cloudId}": 1-5 lowercase letters and digits, starting with a letter`);
  const publicCidr = get('LOCAL_PUBLIC_CIDR');
  const privateCidr = get('LOCAL_PRIVATE_CIDR');
  for (const [name, v] of [
    ['LOCAL_PUBLIC_CIDR', publicCidr],
    ['LOCAL_PRIVATE_CIDR', privateCidr],
  ] as const) {
    if (!CIDR24.test(v)) problems.push(`${name}="${v}": a /24 inside 198.18.0.0/15, such as 198.18.0.0/24`);
  }
  if (publicCidr === privateCidr) problems.push(`LOCAL_PRIVATE_CIDR="${privateCidr}": must differ from LOCAL_PUBLIC_CIDR`);
  const readyTimeout = Number(get('READY_TIMEOUT'));
  if (!Number.isInteger(readyTimeout) || readyTimeout < 30 || readyTimeout > 3600)
    problems.push(`READY_TIMEOUT="${get('READY_TIMEOUT')}": whole seconds from 30 to 3600`);
  const backupKeep: Record<string, number> = {};
  for (const item of get('BACKUP_KEEP')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const [period = '', n = ''] = item.split('=');
    if (!isPeriod(period) || !/^\d{1,4}$/.test(n) || Number(n) < 1)
      problems.push(`BACKUP_KEEP item "${item}": <period>=<generations>, period one of ${PERIODS.join(', ')}, at least 1`);
    else backupKeep[period] = Number(n);
  }
  const backupSchedule: Record<string, string> = {};
  for (const item of get('BACKUP_SCHEDULE')
    .split(';')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const i = item.indexOf('=');
    const period = item.slice(0, i).trim();
    const expr = item
      .slice(i + 1)
      .trim()
      .replace(/\s+/g, ' ');
    const cron = validateCronExpression(expr);
    if (i < 1 || !isScheduledPeriod(period)) {
      problems.push(
        `BACKUP_SCHEDULE item "${item}": <period>=<5 cron fields>, period one of ${SCHEDULED_PERIODS.join(', ')}, e.g. daily=30 3 * * *`,
      );
    } else if (cron) problems.push(`BACKUP_SCHEDULE item "${item}": ${cron}`);
    else backupSchedule[period] = expr;
  }
  const backupKeyFile = get('BACKUP_KEY_FILE') || null;
  if (backupKeyFile) {
    if (!existsSync(backupKeyFile))
      problems.push(
        `BACKUP_KEY_FILE="${backupKeyFile}": the file does not exist (32 random bytes, hex or base64, e.g. openssl rand -hex 32 > key; chmod 600 key)`,
      );
    else if (statSync(backupKeyFile).mode & 0o077)
      problems.push(`BACKUP_KEY_FILE="${backupKeyFile}": must be readable by its owner only (chmod 600)`);
    else {
      try {
        parseSecretKey(readFileSync(backupKeyFile, 'utf8'), 'BACKUP_KEY_FILE');
      } catch {
        problems.push(`BACKUP_KEY_FILE="${backupKeyFile}": must hold 32 bytes as 64 hex digits or base64`);
      }
    }
  }
  const restoreFrom = get('RESTORE_FROM') || null;
  if (restoreFrom && restoreFrom !== 'latest' && !isPeriod(restoreFrom) && !parseBaselineSpec(restoreFrom)) {
    problems.push(
      `RESTORE_FROM="${restoreFrom}": empty (a virgin install), "latest", a period (${PERIODS.join(', ')}), ` +
        'or baseline:NAME / baseline:BUCKET/NAME',
    );
  }
  const int = (name: Name, min: number, max: number, what: string) => {
    const v = get(name);
    if (!/^\d{1,5}$/.test(v) || Number(v) < min || Number(v) > max) {
      problems.push(`${name}="${v}": ${what}, a whole number from ${min} to ${max}`);
      return min;
    }
    return Number(v);
  };
  const renewDays = int('TLS_RENEW_DAYS', 1, 60, 'days before expiry a certificate is renewed');
  const maxWebservers = int('MAX_WEBSERVERS', 1, 200, 'the most webservers the fleet may have');
  const scaling = {
    autoscalers: int('AUTOSCALERS', 1, 9, 'autoscalers'),
    webservers: int('WEBSERVERS', 0, maxWebservers, 'webservers at deploy (at most MAX_WEBSERVERS)'),
    maxWebservers,
    probeIntervalSeconds: int('SCALING_INTERVAL', 1, 300, 'seconds between health probes'),
    probeTimeoutSeconds: int('PROBE_TIMEOUT', 1, 60, 'seconds a probe may take'),
    failuresBeforeUnhealthy: int('FAILURES_BEFORE_UNHEALTHY', 1, 20, 'failed probes in a row'),
    buildTimeoutSeconds: int('SCALING_BUILD_TIMEOUT', 30, 3600, 'seconds a new webserver has to serve'),
    drainSeconds: int('DRAIN_SECONDS', 0, 600, 'seconds a surplus webserver keeps running after its record goes'),
    leaseTtlSeconds: int('LEASE_TTL', 5, 3600, "seconds an autoscaler's lease lasts"),
    dnsTtlSeconds: int('DNS_TTL', 1, 86400, "seconds of the A records' TTL"),
    schedule: {} as Record<string, number>,
    cloudApiPort: int('CLOUD_API_PORT', 1024, 65535, "the local cloud API's port"),
  };
  try {
    scaling.schedule = parseScalingSchedule(get('SCALING_SCHEDULE'), maxWebservers);
  } catch (e) {
    problems.push(`SCALING_SCHEDULE item ${(e as Error).message}`);
  }
  let auth: Deployment['auth'] = null;
  if (webMode === 'auth') {
    const list = (name: Name) =>
      get(name)
        .split(',')
        .map((x) => x.trim().toLowerCase())
        .filter(Boolean);
    const allowList = list('AUTH_ALLOW');
    const bad = allowList.filter((e) => !EMAIL.test(e));
    if (!allowList.length)
      problems.push('AUTH_ALLOW="": with WEB_FIREWALL=auth, the email addresses that may sign in, separated by commas');
    if (bad.length) problems.push(`AUTH_ALLOW: "${bad.join(', ')}" not email addresses`);
    const admins = list('AUTH_ADMINS').length ? list('AUTH_ADMINS') : allowList.slice(0, 1);
    const notAllowed = admins.filter((a) => !allowList.includes(a));
    if (notAllowed.length) problems.push(`AUTH_ADMINS: "${notAllowed.join(', ')}" must also be in AUTH_ALLOW`);
    const authHost = get('AUTH_HOST') || (host ? `auth.${zoneOf(host)}` : '');
    try {
      siteHost(authHost);
      if (host && !authHost.endsWith(`.${zoneOf(host)}`)) throw new Error('zone');
    } catch {
      problems.push(
        `AUTH_HOST="${authHost}": a DNS host name in the site's zone ${host ? zoneOf(host) : ''}, e.g. auth.${host ? zoneOf(host) : 'example.com'}`,
      );
    }
    const relay = get('SMTP_RELAY');
    const rm = /^([a-z0-9.-]+):(\d{1,5})$/i.exec(relay);
    if (relay && (!rm || Number(rm[2]) < 1 || Number(rm[2]) > 65535))
      problems.push(`SMTP_RELAY="${relay}": host:port of an SMTP relay reachable from the private network (empty: the local mail catcher)`);
    const from = get('MAIL_FROM') || (host ? `auth@${zoneOf(host)}` : '');
    if (!EMAIL.test(from)) problems.push(`MAIL_FROM="${from}": an email address`);
    auth = {
      allow: allowList,
      admins,
      grantMinutes: int('AUTH_GRANT_MINUTES', 1, 10080, 'minutes a grant lasts'),
      linkMinutes: int('AUTH_LINK_MINUTES', 1, 120, 'minutes a sign-in link lives'),
      host: authHost,
      smtp: rm ? { host: rm[1]!, port: Number(rm[2]) } : null,
      from,
    };
  }
  if (scaling.cloudApiPort === s3Port) problems.push(`CLOUD_API_PORT="${scaling.cloudApiPort}": must differ from S3_PORT`);
  for (const k of Object.keys(vars))
    if (!(k in VARIABLES)) problems.push(`${k}: unknown variable (known: ${Object.keys(VARIABLES).join(', ')})`);
  if (problems.length) throw usage(`${file ?? 'deployment settings'}: ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);
  return {
    source: file ?? 'defaults',
    provider,
    siteUrl: `https://${host}/`,
    host,
    buildId,
    mode: mode as Deployment['mode'],
    webserver: webserver as Deployment['webserver'],
    database: 'mariadb',
    application: 'wordpress',
    dnsProvider: dnsProvider as Deployment['dnsProvider'],
    databaseService,
    buildMachineIp,
    tls: { mode: tlsMode, acmeServer, acmeEmail, renewDays },
    webMode: webMode as Deployment['webMode'],
    region,
    serverSize,
    stateDir,
    s3Port,
    cloudId,
    publicCidr,
    privateCidr,
    readyTimeout,
    configBucket: configBucketName(host, buildId),
    backupBucket: backupBucketName(host),
    backupKeep,
    backupSchedule,
    backupKeyFile,
    restoreFrom,
    scaling,
    auth,
  };
}

/**
 * The DNS zone of the site: its host name without the first label (www.example.com -> example.com),
 * or the name itself when it has only two labels (example.com).
 */
export function zoneOf(host: string): string {
  const labels = host.split('.');
  return labels.length > 2 ? labels.slice(1).join('.') : host;
}
