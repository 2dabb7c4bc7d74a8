/**
 * The deployment file (the original's "template"): dotenv format, every variable optional, each
 * also settable as `ADT_<NAME>` in the environment (the file wins). The variables are one
 * declarative table (`SETTINGS`: name, default, section, documentation, parser); `readDeployment`
 * walks it and reports every problem at once, each naming the variable, the value and what is
 * allowed (exit 2); `exampleFile()` writes roles/build/deployment.example.env from it (CI checks
 * that the file is current).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { parse as parseEnv } from 'dotenv';
import { AdtError, validateCronExpression } from '@adt/core';
import {
  backupBucketName,
  configBucketName,
  filesBucketName,
  parseSecretKey,
  siteHost,
  validateBuildId,
  type ScalingSettings,
} from '@adt/configstore';
import { PERIODS, SCHEDULED_PERIODS, isPeriod, isScheduledPeriod, parseBaselineSpec } from '@adt/backup';
import { EMULATED_APIS } from '@adt/providers';
import { parseScalingSchedule } from '@adt/scaling';

export const CLOUD_PROVIDERS = ['digitalocean', 'linode', 'vultr', 'exoscale'] as const;
export type CloudProvider = (typeof CLOUD_PROVIDERS)[number];
export type Provider = 'local' | CloudProvider;

/** Region and size when REGION / SERVER_SIZE are empty: small, cheap defaults per provider. */
export const PROVIDER_DEFAULTS: Record<Provider, { region: string; size: string; dbSize: string }> = {
  local: { region: 'local', size: 'small', dbSize: 'small' },
  digitalocean: { region: 'lon1', size: 's-1vcpu-2gb', dbSize: 'db-s-1vcpu-1gb' },
  linode: { region: 'eu-west', size: 'g6-standard-1', dbSize: 'g6-nanode-1' },
  vultr: { region: 'lhr', size: 'vc2-1c-2gb', dbSize: 'vultr-dbaas-hobbyist-cc-1-25-1' },
  exoscale: { region: 'ch-gva-2', size: 'standard.small', dbSize: 'hobbyist-2' },
};

export interface Deployment {
  /** The file it came from, for messages (or "defaults"). */
  source: string;
  provider: Provider;
  /** https://<host>/ */
  siteUrl: string;
  host: string;
  /** The site's DNS zone (the host without its first label, or the host itself with two labels). */
  zone: string;
  buildId: string;
  mode: 'development' | 'production';
  webserver: 'nginx' | 'apache';
  database: 'mariadb';
  application: 'wordpress';
  dnsProvider: 'powerdns' | 'cloudflare' | CloudProvider;
  /** A database server of ours, or the cloud's managed database (the server still runs, for backups). */
  databaseService: 'server' | 'managed';
  /** Real clouds: the build machine's public IPv4 (SSH and health checks are allowed from it). */
  buildMachineIp: string | null;
  /** A cloud PROVIDER's API answered by the local cloud's emulation of it (its servers local ones), or the real API. */
  emulator: 'local' | null;
  /** The cloud's object storage (config, files and backup buckets); null: its default for the region. */
  objectStorage: { endpoint: string | null; region: string | null };
  /** Servers boot from images prepared per role (their packages installed), or from the stock image. */
  images: 'prepared' | 'stock';
  tls: { mode: 'local-ca' | 'acme'; acmeServer: string | null; acmeEmail: string | null; renewDays: number };
  webMode: 'open' | 'cloudflare' | 'auth';
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
  readyTimeout: number;
  configBucket: string;
  /** The bucket of the site's shared files (uploads), mounted by every webserver. */
  filesBucket: string;
  backupBucket: string;
  backupKeep: Record<string, number>;
  backupSchedule: Record<string, string>;
  backupKeyFile: string | null;
  /** The newest of a period, "latest", or baseline:NAME / baseline:BUCKET/NAME; null: a virgin install. */
  restoreFrom: string | null;
  scaling: ScalingSettings & { webservers: number; schedule: Record<string, number> };
  /** The local cloud (PROVIDER=local). */
  local: {
    cloudId: string;
    publicCidr: string;
    privateCidr: string;
    imageDir: string;
    ports: { api: number; s3: number; smtp: number; mirror: number };
  };
}

/** Whether the deployment's servers are the local cloud's (PROVIDER=local, or a cloud's API emulated by it). */
export function onLocalCloud(d: Pick<Deployment, 'provider' | 'emulator'>): boolean {
  return d.provider === 'local' || d.emulator === 'local';
}

/** Where a deployment runs, for people: `the local cloud "lc"`, `digitalocean (emulated by the local cloud "lc")`, `digitalocean`. */
export function whereIs(d: Pick<Deployment, 'provider' | 'emulator' | 'local'>): string {
  if (d.provider === 'local') return `the local cloud "${d.local.cloudId}"`;
  return d.emulator === 'local' ? `${d.provider} (emulated by the local cloud "${d.local.cloudId}")` : d.provider;
}

const EMAIL = /^[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,63}$/;
const CIDR24 = /^198\.(18|19)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.0\/24$/;

/** One variable of the deployment file. */
export interface Setting {
  name: string;
  /** Its default, as written in the example file. */
  default: string;
  /** The heading it is listed under in the example file. */
  section: string;
  /** Its documentation in the example file (comment lines, without `#`). */
  doc: string[];
}

// --- The table ---

const S =
  (section: string) =>
  (name: string, def: string, ...doc: string[]): Setting => ({ name, default: def, section, doc });
const site = S('');
const tls = S('TLS');
const backups = S("Backups (to the site's bucket <site with dashes>-backups, kept when a build is destroyed)");
const prod = S('Production mode (MODE=production)');
const auth = S('Authentication server (WEB_FIREWALL=auth)');
const local = S('The local provider');

export const SETTINGS: readonly Setting[] = [
  site(
    'PROVIDER',
    'local',
    'Where the fleet runs. "local": this machine, as a small cloud of its own (packages/localcloud).',
    'digitalocean, linode, vultr, exoscale: a real cloud; their API credentials come from the environment,',
    'never from this file: DIGITALOCEAN_TOKEN, LINODE_TOKEN, VULTR_API_KEY, EXOSCALE_API_KEY +',
    'EXOSCALE_API_SECRET (and CLOUDFLARE_API_TOKEN for DNS_PROVIDER=cloudflare); the object storage',
    'keys as OBJECT_STORAGE_ACCESS_KEY + OBJECT_STORAGE_SECRET_KEY. --dry-run prints every API call first.',
  ),
  site(
    'EMULATOR',
    '',
    "local: the cloud PROVIDER's API is answered by the local cloud's emulation of it (the same driver,",
    'requests and responses; its servers are local servers, its DNS the local PowerDNS, its object',
    'storage the local S3): the whole flow on this machine, no account needed. Empty: the real API.',
    'Emulated now: digitalocean, linode, vultr, exoscale (TLS=acme with digitalocean only: lego reaches the',
    "others' own APIs only; local-ca there).",
  ),
  site(
    'SITE_URL',
    'www.adt.test',
    "The site's host name (https://<it>/). Its DNS zone is the name without its first label",
    '(www.adt.test -> adt.test). It also names the config bucket: <host with dashes>-config-<build id>.',
  ),
  site(
    'BUILD_ID',
    'dev1',
    'Names this build: 1-24 lowercase letters and digits. Server names carry it (db-dev1-5f0fb6).',
    'Deploying again with the same id converges (keeps what is ready, replaces what failed);',
    'destroy it to start over.',
  ),
  site(
    'MODE',
    'development',
    'development: one webserver + one database.',
    'production: autoscalers keep the desired number of healthy webservers behind DNS round robin,',
    'with a database server (see "Production mode" below).',
  ),
  site('WEBSERVER', 'nginx', 'The webserver: nginx or apache, each with php8.2-fpm.'),
  site('DATABASE', 'mariadb', "The database server's engine. (postgres is not built yet.)"),
  site(
    'APPLICATION',
    'wordpress',
    "The application: wordpress = Debian's WordPress, finished at https://<site>/wp-admin/install.php",
    '(or the site of a backup or a baseline: see RESTORE_FROM).',
  ),
  site(
    'DNS_PROVIDER',
    '',
    "DNS for the site's name. Empty: the provider's own (on the local cloud its PowerDNS, on the build",
    "machine's public address, port 53; on a real cloud, that cloud's DNS). Or cloudflare",
    '(real clouds; records proxied when WEB_FIREWALL=cloudflare).',
  ),
  site(
    'WEB_FIREWALL',
    'open',
    "Who may reach 443 on the webservers: open (everyone), cloudflare (Cloudflare's ranges only), or",
    'auth (only people who signed in on the authentication server, from the address they signed in',
    'from, for AUTH_GRANT_MINUTES; see "Authentication server" below).',
  ),
  site(
    'REGION',
    '',
    'Region and server size (plan) on a real cloud. Empty: small defaults per provider',
    '(digitalocean lon1 s-1vcpu-2gb, linode eu-west g6-standard-1, vultr lhr vc2-1c-2gb,',
    'exoscale ch-gva-2 standard.small); the local provider ignores them.',
  ),
  site('SERVER_SIZE', ''),
  site(
    'DATABASE_SERVICE',
    'server',
    "The database: server = a MariaDB server of ours; managed = the cloud's managed MySQL (real",
    "clouds), reachable only from the fleet's private addresses (never 0.0.0.0/0).",
  ),
  site('BUILD_MACHINE_IP', '', "Real clouds: this build machine's public IPv4 (every server allows SSH and health checks from it)."),
  site(
    'OBJECT_STORAGE_ENDPOINT',
    '',
    "Real clouds: the S3 endpoint of the cloud's object storage, https://... Empty: the region's",
    '(digitalocean https://<region>.digitaloceanspaces.com, linode https://<region>-1.linodeobjects.com,',
    'vultr https://<region>.vultrobjects.com, exoscale https://sos-<region>.exo.io).',
  ),
  site('OBJECT_STORAGE_REGION', '', "Real clouds: the object storage's region (its signing region). Empty: REGION."),
  site(
    'IMAGES',
    '',
    'What servers boot from. prepared: an image made for each role (its Debian packages installed),',
    "once per package list, by snapshotting a server that installed them; stock: the cloud's Debian 12",
    'image, the packages installed at every boot (slower). Empty: prepared on the local provider, stock',
    'on a real cloud.',
  ),
  tls(
    'TLS',
    'local-ca',
    "local-ca: certificates from a CA made on this machine (the local provider's default).",
    'acme: a certificate by ACME with lego and a DNS-01 challenge on DNS_PROVIDER, stored encrypted',
    'in the datastore, installed on every webserver, renewed TLS_RENEW_DAYS days before it expires',
    "(real clouds need it; on the local provider it runs against the local cloud's pebble test server).",
  ),
  tls('ACME_SERVER', '', "The ACME directory. Empty: Let's Encrypt on a real cloud, the local cloud's pebble on the local provider."),
  tls('ACME_EMAIL', '', "The ACME account's contact address (required on a real cloud)."),
  tls('TLS_RENEW_DAYS', '30'),
  backups(
    'BACKUP_KEEP',
    'hourly=24,daily=7,weekly=4,monthly=12,bimonthly=6,manual=10,shutdown=3',
    'Generations kept per period (hourly, daily, weekly, monthly, bimonthly, manual, shutdown).',
  ),
  backups(
    'BACKUP_SCHEDULE',
    'hourly=17 * * * *;daily=30 3 * * *;weekly=45 3 * * 0;monthly=0 4 1 * *;bimonthly=15 4 1 */2 *',
    'When the servers take them (their cron runs them): <period>=<5 cron fields>, separated by ";"',
    '(empty: none scheduled).',
  ),
  backups(
    'BACKUP_KEY_FILE',
    '',
    'A key you hold (32 random bytes, hex or base64, mode 0600: openssl rand -hex 32 > backup.key):',
    "backups are then encrypted and the bucket's provider cannot read them. Empty: not encrypted.",
  ),
  backups(
    'RESTORE_FROM',
    '',
    'Start the site from a temporal backup instead of a virgin install: "latest", or the newest of a',
    "period (daily, shutdown...); or from a baseline: baseline:NAME (this site's backup bucket) or",
    "baseline:BUCKET/NAME (another site's). Empty: a virgin install.",
  ),
  backups('READY_TIMEOUT', '300', 'Seconds each server may take to report ready before deploy stops with its log (30-3600).'),
  prod('AUTOSCALERS', '1', 'Autoscalers (1-9); the desired total is split between them (10 over 3: 4 + 3 + 3).'),
  prod(
    'WEBSERVERS',
    '2',
    'Webservers at the first deploy (later: roles/build/AdjustScaling N, or ManuallyScale.ts N on an',
    'autoscaler; a re-run of deploy keeps the current count).',
  ),
  prod('MAX_WEBSERVERS', '10', 'The most webservers the fleet may have (a larger count is refused).'),
  prod(
    'SCALING_INTERVAL',
    '2',
    'Health probes: every SCALING_INTERVAL seconds, PROBE_TIMEOUT seconds each; a webserver that',
    'served is unhealthy after FAILURES_BEFORE_UNHEALTHY failed probes in a row (its A record goes at',
    'once, a replacement is built). A new one has SCALING_BUILD_TIMEOUT seconds to serve.',
  ),
  prod('PROBE_TIMEOUT', '2'),
  prod('FAILURES_BEFORE_UNHEALTHY', '2'),
  prod('SCALING_BUILD_TIMEOUT', '300'),
  prod('DRAIN_SECONDS', '5', 'Seconds a surplus webserver keeps running after its A record is removed (in-flight requests).'),
  prod(
    'LEASE_TTL',
    '15',
    "Seconds an autoscaler's lease on its slot lasts: another autoscaler takes a dead one's slot over",
    'after it expires.',
  ),
  prod('DNS_TTL', '10', "TTL of the site's A records, in seconds."),
  prod('SCALING_SCHEDULE', '', 'Scheduled scaling: HH:MM=<webservers>, separated by ";" (e.g. 08:30=10;17:30=3). Empty: none.'),
  auth(
    'AUTH_ALLOW',
    '',
    'Email addresses that may sign in (comma-separated; required with WEB_FIREWALL=auth), and which of',
    'them may list and revoke grants (default: the first).',
  ),
  auth('AUTH_ADMINS', ''),
  auth('AUTH_GRANT_MINUTES', '480', 'Minutes a sign-in grants access (1-10080), and a sign-in link lives (1-120).'),
  auth('AUTH_LINK_MINUTES', '15'),
  auth('AUTH_HOST', '', "Its name, in the site's zone (default auth.<zone>)."),
  auth(
    'SMTP_RELAY',
    '',
    'host:port of the SMTP relay that sends sign-in links (reachable from the private network).',
    "Empty: the local cloud's mail catcher, which keeps them in STATE_DIR/mail/<cloud id>/messages.",
  ),
  auth('MAIL_FROM', '', 'Sender of the sign-in mails (default auth@<zone>).'),
  local(
    'STATE_DIR',
    '/var/lib/adt-local',
    "Where the build keeps its state (each build's keys, CA, lego account) and the local cloud its",
    "own (servers, the embedded S3 server's data, PowerDNS, the mail catcher).",
  ),
  local(
    'LOCAL_IMAGE_DIR',
    '/var/cache/adt-local/images',
    "The local cloud's images (its stock Debian 12, and snapshots such as the prepared role images):",
    'built once, shared by every local cloud of the machine, kept by destroy.',
  ),
  local(
    'S3_PORT',
    '9700',
    "The local cloud's services, on the build machine's private address: its S3 server (the config",
    "datastore), its API (what the build and the autoscalers call, like a cloud's API), its mail",
    "catcher (SMTP) and its package mirror (a caching proxy of Debian's archive, for the servers' apt).",
  ),
  local('CLOUD_API_PORT', '9701'),
  local('LOCAL_SMTP_PORT', '2525'),
  local('LOCAL_MIRROR_PORT', '3142'),
  local(
    'LOCAL_CLOUD_ID',
    'adt',
    'The local cloud: its name (1-5 letters/digits; several clouds can coexist) and its two networks,',
    '/24s inside 198.18.0.0/15 (the build machine is .1 on both; the "outsider" is .254 on the public one).',
  ),
  local('LOCAL_PUBLIC_CIDR', '198.18.0.0/24'),
  local('LOCAL_PRIVATE_CIDR', '198.18.1.0/24'),
];

/** Every variable's name. */
export const VARIABLE_NAMES = SETTINGS.map((s) => s.name);
const DEFAULTS: Record<string, string> = Object.fromEntries(SETTINGS.map((s) => [s.name, s.default]));

/**
 * The DNS zone of the site: its host name without the first label (www.example.com -> example.com),
 * or the name itself when it has only two labels (example.com).
 */
export function zoneOf(host: string): string {
  const labels = host.split('.');
  return labels.length > 2 ? labels.slice(1).join('.') : host;
}

// --- Parsing ---

/** The values of a deployment file as read, and every problem found so far. */
class Reader {
  readonly problems: string[] = [];
  readonly #vars: Record<string, string>;
  readonly #env: NodeJS.ProcessEnv;

  constructor(vars: Record<string, string>, env: NodeJS.ProcessEnv) {
    this.#vars = vars;
    this.#env = env;
  }

  raw(name: string): string {
    return (this.#vars[name] ?? this.#env[`ADT_${name}`] ?? DEFAULTS[name] ?? '').trim();
  }

  problem(text: string) {
    this.problems.push(text);
  }

  /** One of `allowed`; `later` explains values not built yet. */
  oneOf<T extends string>(name: string, allowed: readonly T[], later: Record<string, string> = {}): T {
    const v = this.raw(name);
    if ((allowed as readonly string[]).includes(v)) return v as T;
    this.problem(`${name}="${v}": ${later[v] ?? `one of ${allowed.map((a) => `"${a}"`).join(', ')}`}`);
    return allowed[0]!;
  }

  int(name: string, min: number, max: number, what: string): number {
    const v = this.raw(name);
    if (!/^\d{1,5}$/.test(v) || Number(v) < min || Number(v) > max) {
      this.problem(`${name}="${v}": ${what}, a whole number from ${min} to ${max}`);
      return min;
    }
    return Number(v);
  }

  port(name: string, what: string): number {
    return this.int(name, 1024, 65535, what);
  }

  list(name: string): string[] {
    return this.raw(name)
      .split(',')
      .map((x) => x.trim().toLowerCase())
      .filter(Boolean);
  }
}

function keepList(r: Reader): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of r
    .raw('BACKUP_KEEP')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const [period = '', n = ''] = item.split('=');
    if (!isPeriod(period) || !/^\d{1,4}$/.test(n) || Number(n) < 1) {
      r.problem(`BACKUP_KEEP item "${item}": <period>=<generations>, period one of ${PERIODS.join(', ')}, at least 1`);
    } else out[period] = Number(n);
  }
  return out;
}

function scheduleList(r: Reader): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of r
    .raw('BACKUP_SCHEDULE')
    .split(';')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const i = item.indexOf('=');
    const period = item.slice(0, i).trim();
    const expr = item
      .slice(i + 1)
      .trim()
      .replace(/\s+/g, ' ');
    const cron = i < 1 ? 'no "="' : validateCronExpression(expr);
    if (i < 1 || !isScheduledPeriod(period) || cron) {
      r.problem(
        `BACKUP_SCHEDULE item "${item}": <period>=<5 cron fields>, period one of ${SCHEDULED_PERIODS.join(', ')}, e.g. daily=30 3 * * *` +
          (cron && i >= 1 && isScheduledPeriod(period) ? ` (${cron})` : ''),
      );
    } else out[period] = expr;
  }
  return out;
}

function backupKeyFile(r: Reader): string | null {
  const f = r.raw('BACKUP_KEY_FILE') || null;
  if (!f) return null;
  if (!existsSync(f)) {
    r.problem(
      `BACKUP_KEY_FILE="${f}": the file does not exist (32 random bytes, hex or base64, e.g. openssl rand -hex 32 > key; chmod 600 key)`,
    );
  } else if (statSync(f).mode & 0o077) r.problem(`BACKUP_KEY_FILE="${f}": must be readable by its owner only (chmod 600)`);
  else {
    try {
      parseSecretKey(readFileSync(f, 'utf8'), 'BACKUP_KEY_FILE');
    } catch {
      r.problem(`BACKUP_KEY_FILE="${f}": must hold 32 bytes as 64 hex digits or base64`);
    }
  }
  return f;
}

function authSettings(r: Reader, host: string): Deployment['auth'] {
  const allow = r.list('AUTH_ALLOW');
  const bad = allow.filter((e) => !EMAIL.test(e));
  if (!allow.length) r.problem('AUTH_ALLOW="": with WEB_FIREWALL=auth, the email addresses that may sign in, separated by commas');
  if (bad.length) r.problem(`AUTH_ALLOW: "${bad.join(', ')}" not email addresses`);
  const admins = r.list('AUTH_ADMINS').length ? r.list('AUTH_ADMINS') : allow.slice(0, 1);
  const notAllowed = admins.filter((a) => !allow.includes(a));
  if (notAllowed.length) r.problem(`AUTH_ADMINS: "${notAllowed.join(', ')}" must also be in AUTH_ALLOW`);
  const zone = host ? zoneOf(host) : '';
  const authHost = r.raw('AUTH_HOST') || (host ? `auth.${zone}` : '');
  try {
    siteHost(authHost);
    if (host && !authHost.endsWith(`.${zone}`)) throw new Error('zone');
    if (authHost === host) throw new Error('the site itself');
  } catch {
    r.problem(
      `AUTH_HOST="${authHost}": a DNS host name in the site's zone ${zone} other than the site's, e.g. auth.${zone || 'example.com'}`,
    );
  }
  const relay = r.raw('SMTP_RELAY');
  const m = /^([a-z0-9.-]+):(\d{1,5})$/i.exec(relay);
  if (relay && (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)) {
    r.problem(`SMTP_RELAY="${relay}": host:port of an SMTP relay reachable from the private network (empty: the local mail catcher)`);
  }
  const from = r.raw('MAIL_FROM') || (host ? `auth@${zone}` : '');
  if (!EMAIL.test(from)) r.problem(`MAIL_FROM="${from}": an email address`);
  return {
    allow,
    admins,
    grantMinutes: r.int('AUTH_GRANT_MINUTES', 1, 10080, 'minutes a grant lasts'),
    linkMinutes: r.int('AUTH_LINK_MINUTES', 1, 120, 'minutes a sign-in link lives'),
    host: authHost,
    smtp: m ? { host: m[1]!, port: Number(m[2]) } : null,
    from,
  };
}

function bad(message: string): AdtError {
  return new AdtError('USAGE', message, { pkg: 'fleet', driver: 'settings', exitCode: 2 });
}

/**
 * Reads a deployment: the file (when given) over the environment's ADT_<NAME> over the defaults.
 * Every problem is reported at once (exit 2).
 */
export function readDeployment(file: string | undefined, env: NodeJS.ProcessEnv = {}): Deployment {
  let vars: Record<string, string> = {};
  if (file) {
    if (!existsSync(file)) throw bad(`--config: ${file} does not exist`);
    vars = parseEnv(readFileSync(file));
  }
  const r = new Reader(vars, env);
  const provider = r.oneOf('PROVIDER', ['local', ...CLOUD_PROVIDERS] as const);
  const cloud = provider !== 'local';
  let host = '';
  try {
    host = siteHost(r.raw('SITE_URL'));
    if (host.split('.').length < 2) throw new Error('one label');
  } catch {
    r.problem(`SITE_URL="${r.raw('SITE_URL')}": a DNS host name with at least two labels, such as www.example.com`);
  }
  const buildId = r.raw('BUILD_ID');
  try {
    validateBuildId(buildId);
  } catch {
    r.problem(`BUILD_ID="${buildId}": 1-24 lowercase letters and digits`);
  }
  const mode = r.oneOf('MODE', ['development', 'production'] as const);
  const webserver = r.oneOf('WEBSERVER', ['nginx', 'apache'] as const);
  r.oneOf('DATABASE', ['mariadb'] as const, { postgres: '"mariadb" only in this version (Postgres is not built yet)' });
  r.oneOf('APPLICATION', ['wordpress'] as const, {
    baseline: '"wordpress" (a virgin install; start from a baseline with RESTORE_FROM=baseline:NAME)',
    backup: '"wordpress" (a virgin install; start from a backup with RESTORE_FROM=latest)',
  });
  if (!r.raw('DNS_PROVIDER')) vars.DNS_PROVIDER = cloud ? provider : 'powerdns';
  const dnsProvider = cloud
    ? r.oneOf('DNS_PROVIDER', [provider, 'cloudflare'] as const, {
        powerdns: `"${provider}" (the cloud's DNS) or "cloudflare" (the local PowerDNS serves the local provider only)`,
      })
    : r.oneOf(
        'DNS_PROVIDER',
        ['powerdns'] as const,
        Object.fromEntries(
          [...CLOUD_PROVIDERS, 'cloudflare'].map((p) => [
            p,
            '"powerdns" with PROVIDER=local (the local cloud\'s own DNS; the others need the internet)',
          ]),
        ),
      );
  const webMode = r.oneOf('WEB_FIREWALL', ['open', 'cloudflare', 'auth'] as const);
  const region = r.raw('REGION') || PROVIDER_DEFAULTS[provider].region;
  const serverSize = r.raw('SERVER_SIZE') || PROVIDER_DEFAULTS[provider].size;
  for (const [name, v, field] of [
    ['REGION', region, 'region'],
    ['SERVER_SIZE', serverSize, 'size'],
  ] as const) {
    if (!/^[a-z0-9][a-z0-9.-]{0,39}$/.test(v)) {
      r.problem(
        `${name}="${v}": 1-40 lowercase letters, digits, dots and hyphens (empty: ${PROVIDER_DEFAULTS[provider][field]} for ${provider})`,
      );
    }
  }
  if (cloud && region === 'local')
    r.problem(`REGION="local": a ${provider} region, such as ${PROVIDER_DEFAULTS[provider].region} (empty: that one)`);
  const databaseService = r.oneOf('DATABASE_SERVICE', ['server', 'managed'] as const);
  if (databaseService === 'managed' && !cloud) {
    r.problem(
      'DATABASE_SERVICE="managed": a managed database needs a cloud PROVIDER (digitalocean, linode, vultr, exoscale); ' +
        'the local provider runs a database server',
    );
  }
  const buildMachineIp = r.raw('BUILD_MACHINE_IP') || null;
  const emulator = r.raw('EMULATOR') || null;
  const emulatedApis = Object.keys(EMULATED_APIS);
  if (emulator && (emulator !== 'local' || !cloud || !emulatedApis.includes(provider))) {
    r.problem(
      `EMULATOR="${emulator}": "local" with PROVIDER=${emulatedApis.join(', ')} (the local cloud emulates that API), ` +
        'or empty (the real API)',
    );
  }
  const emulated = emulator === 'local';
  if (emulated && dnsProvider === 'cloudflare')
    r.problem(`DNS_PROVIDER="cloudflare": not with EMULATOR=local (Cloudflare is not emulated): ${provider} or empty`);
  if (emulated && webMode === 'cloudflare')
    r.problem('WEB_FIREWALL="cloudflare": not with EMULATOR=local (no Cloudflare proxy reaches local servers): open or auth');
  if (emulated && databaseService === 'managed')
    r.problem('DATABASE_SERVICE="managed": the local cloud does not emulate managed databases yet (EMULATOR=local): server');
  if (cloud && !emulated && !buildMachineIp) {
    r.problem(
      `BUILD_MACHINE_IP="": with PROVIDER=${provider}, this machine's public IPv4 address ` +
        '(the servers allow SSH and health checks from it)',
    );
  } else if (buildMachineIp && (!isIPv4(buildMachineIp) || !cloud || emulated)) {
    r.problem(
      `BUILD_MACHINE_IP="${buildMachineIp}": ` +
        (cloud && !emulated
          ? 'an IPv4 address such as 203.0.113.10'
          : 'only for a cloud PROVIDER on its real API (the local cloud knows its build machine)'),
    );
  }
  const storageEndpoint = r.raw('OBJECT_STORAGE_ENDPOINT') || null;
  const storageRegion = r.raw('OBJECT_STORAGE_REGION') || null;
  if (storageEndpoint && (!cloud || emulated || !/^https:\/\/[a-z0-9.-]+(:\d+)?\/?$/.test(storageEndpoint)))
    r.problem(
      `OBJECT_STORAGE_ENDPOINT="${storageEndpoint}": ` +
        (cloud && !emulated
          ? 'an https:// URL of a host, such as https://fra1.digitaloceanspaces.com'
          : 'only for a cloud PROVIDER on its real API'),
    );
  if (storageRegion && (!cloud || emulated || !/^[a-z0-9][a-z0-9-]{0,39}$/.test(storageRegion)))
    r.problem(
      `OBJECT_STORAGE_REGION="${storageRegion}": ` +
        (cloud && !emulated
          ? 'a region name such as fra1 (lowercase letters, digits, hyphens)'
          : 'only for a cloud PROVIDER on its real API'),
    );
  if (!r.raw('IMAGES')) vars.IMAGES = cloud ? 'stock' : 'prepared';
  const images = r.oneOf('IMAGES', ['prepared', 'stock'] as const);
  const tlsMode = r.oneOf('TLS', ['local-ca', 'acme'] as const);
  // lego's DNS providers for these clouds have no setting for another API address (DigitalOcean's has DO_API_URL).
  if (emulated && tlsMode === 'acme' && provider !== 'digitalocean')
    r.problem(
      `TLS="acme": not with EMULATOR=local on ${provider} (lego's ${provider} DNS-01 provider talks to ${provider}'s own API only, ` +
        'so the emulation cannot answer it): local-ca',
    );
  if (cloud && !emulated && tlsMode === 'local-ca')
    r.problem(`TLS="local-ca": with PROVIDER=${provider} visitors need a certificate they trust: TLS=acme`);
  let acmeServer = r.raw('ACME_SERVER') || null;
  if (acmeServer && !/^https:\/\/[^\s/]+(\/\S*)?$/.test(acmeServer)) {
    r.problem(
      `ACME_SERVER="${acmeServer}": the https:// URL of an ACME directory (empty: ${cloud ? "Let's Encrypt" : "the local cloud's pebble"})`,
    );
  }
  if (!acmeServer && tlsMode === 'acme' && cloud && !emulated) acmeServer = 'https://acme-v02.api.letsencrypt.org/directory';
  const acmeEmail = r.raw('ACME_EMAIL').toLowerCase() || null;
  if (acmeEmail && !EMAIL.test(acmeEmail)) r.problem(`ACME_EMAIL="${acmeEmail}": an email address (the ACME account's contact)`);
  if (tlsMode === 'acme' && cloud && !emulated && !acmeEmail) {
    r.problem(`ACME_EMAIL="": with TLS=acme on ${provider}, the contact address of the ACME account (expiry warnings go there)`);
  }
  const renewDays = r.int('TLS_RENEW_DAYS', 1, 60, 'days before expiry a certificate is renewed');
  const stateDir = r.raw('STATE_DIR');
  if (!/^\/(var|srv|opt|tmp|root|home)\/[A-Za-z0-9._/-]+$/.test(stateDir) || stateDir.includes('..')) {
    r.problem(`STATE_DIR="${stateDir}": an absolute path under /var, /srv, /opt, /root, /home or /tmp`);
  }
  const imageDir = r.raw('LOCAL_IMAGE_DIR');
  if (!/^\/[A-Za-z0-9._/-]+$/.test(imageDir) || imageDir.includes('..')) {
    r.problem(`LOCAL_IMAGE_DIR="${imageDir}": an absolute path of letters, digits, . _ / -`);
  }
  const ports = {
    s3: r.port('S3_PORT', "the local cloud's S3 server's port"),
    api: r.port('CLOUD_API_PORT', "the local cloud API's port"),
    smtp: r.port('LOCAL_SMTP_PORT', "the local cloud's mail catcher's port"),
    // apt-cacher-ng listens on ports up to 32767 only.
    mirror: r.int('LOCAL_MIRROR_PORT', 1024, 32767, "the local cloud's package mirror's port"),
  };
  const taken = new Map<number, string>();
  for (const [name, p] of [
    ['S3_PORT', ports.s3],
    ['CLOUD_API_PORT', ports.api],
    ['LOCAL_SMTP_PORT', ports.smtp],
    ['LOCAL_MIRROR_PORT', ports.mirror],
  ] as const) {
    const other = taken.get(p);
    if (other) r.problem(`${name}="${p}": must differ from ${other}`);
    else taken.set(p, name);
  }
  const cloudId = r.raw('LOCAL_CLOUD_ID');
  if (!/^[a-z][a-z0-9]{0,4}$/.test(cloudId))
    r.problem(`LOCAL_CLOUD_ID="${cloudId}": 1-5 lowercase letters and digits, starting with a letter`);
  const publicCidr = r.raw('LOCAL_PUBLIC_CIDR');
  const privateCidr = r.raw('LOCAL_PRIVATE_CIDR');
  for (const [name, v] of [
    ['LOCAL_PUBLIC_CIDR', publicCidr],
    ['LOCAL_PRIVATE_CIDR', privateCidr],
  ] as const) {
    if (!CIDR24.test(v)) r.problem(`${name}="${v}": a /24 inside 198.18.0.0/15, such as 198.18.0.0/24`);
  }
  if (publicCidr === privateCidr) r.problem(`LOCAL_PRIVATE_CIDR="${privateCidr}": must differ from LOCAL_PUBLIC_CIDR`);
  const readyTimeout = r.int('READY_TIMEOUT', 30, 3600, 'seconds a server may take to report ready');
  const backupKeep = keepList(r);
  const backupSchedule = scheduleList(r);
  const keyFile = backupKeyFile(r);
  const restoreFrom = r.raw('RESTORE_FROM') || null;
  if (restoreFrom && restoreFrom !== 'latest' && !isPeriod(restoreFrom) && !parseBaselineSpec(restoreFrom)) {
    r.problem(
      `RESTORE_FROM="${restoreFrom}": empty (a virgin install), "latest", a period (${PERIODS.join(', ')}), ` +
        'or baseline:NAME / baseline:BUCKET/NAME',
    );
  }
  const maxWebservers = r.int('MAX_WEBSERVERS', 1, 200, 'the most webservers the fleet may have');
  const scaling: Deployment['scaling'] = {
    autoscalers: r.int('AUTOSCALERS', 1, 9, 'autoscalers'),
    webservers: r.int('WEBSERVERS', 0, maxWebservers, 'webservers at deploy (at most MAX_WEBSERVERS)'),
    maxWebservers,
    probeIntervalSeconds: r.int('SCALING_INTERVAL', 1, 300, 'seconds between health probes'),
    probeTimeoutSeconds: r.int('PROBE_TIMEOUT', 1, 60, 'seconds a probe may take'),
    failuresBeforeUnhealthy: r.int('FAILURES_BEFORE_UNHEALTHY', 1, 20, 'failed probes in a row'),
    buildTimeoutSeconds: r.int('SCALING_BUILD_TIMEOUT', 30, 3600, 'seconds a new webserver has to serve'),
    drainSeconds: r.int('DRAIN_SECONDS', 0, 600, 'seconds a surplus webserver keeps running after its record goes'),
    leaseTtlSeconds: r.int('LEASE_TTL', 5, 3600, "seconds an autoscaler's lease lasts"),
    dnsTtlSeconds: r.int('DNS_TTL', 1, 86400, "seconds of the A records' TTL"),
    schedule: {},
  };
  try {
    scaling.schedule = parseScalingSchedule(r.raw('SCALING_SCHEDULE'), maxWebservers);
  } catch (e) {
    r.problem(`SCALING_SCHEDULE item ${(e as Error).message}`);
  }
  const authSet = webMode === 'auth' ? authSettings(r, host) : null;
  for (const k of Object.keys(vars)) if (!(k in DEFAULTS)) r.problem(`${k}: unknown variable (known: ${VARIABLE_NAMES.join(', ')})`);
  if (r.problems.length) throw bad(`${file ?? 'deployment settings'}: ${r.problems.length} problem(s):\n  - ${r.problems.join('\n  - ')}`);
  return {
    source: file ?? 'defaults',
    provider,
    siteUrl: `https://${host}/`,
    host,
    zone: zoneOf(host),
    buildId,
    mode,
    webserver,
    database: 'mariadb',
    application: 'wordpress',
    dnsProvider,
    databaseService,
    buildMachineIp,
    emulator: emulated ? 'local' : null,
    objectStorage: { endpoint: storageEndpoint?.replace(/\/$/, '') ?? null, region: storageRegion },
    images,
    tls: { mode: tlsMode, acmeServer, acmeEmail, renewDays },
    webMode,
    auth: authSet,
    region,
    serverSize,
    stateDir,
    readyTimeout,
    configBucket: configBucketName(host, buildId),
    filesBucket: filesBucketName(host, buildId),
    backupBucket: backupBucketName(host),
    backupKeep,
    backupSchedule,
    backupKeyFile: keyFile,
    restoreFrom,
    scaling,
    local: { cloudId, publicCidr, privateCidr, imageDir, ports },
  };
}

// --- The example file ---

const EXAMPLE_HEAD = [
  '# A deployment file (the original\'s "template"), dotenv format. Every variable is optional: the',
  '# values below are the defaults, which deploy a development fleet on this machine (the local',
  '# provider). Each may also be given as ADT_<NAME> in the environment (the file wins).',
  '#',
  '#   npx zx roles/build/deploy.mjs --config my-site.env [--dry-run] [--json]',
  '#   npx zx roles/build/destroy.mjs --config my-site.env [--keep-bucket]',
  '#',
  '# deploy checks every variable first and reports every problem at once (exit 2, nothing created).',
  '# This file is generated from packages/fleet/src/settings.ts (npm run example-env); CI checks it.',
];

/** roles/build/deployment.example.env, from the table. */
export function exampleFile(): string {
  const out = [...EXAMPLE_HEAD];
  let section: string | null = null;
  for (const s of SETTINGS) {
    if (s.section !== section) {
      section = s.section;
      if (section) out.push('', `# --- ${section} ---`);
    }
    for (const line of s.doc) out.push(`# ${line}`);
    out.push(`${s.name}=${s.default}`);
  }
  return `${out.join('\n')}\n`;
}
