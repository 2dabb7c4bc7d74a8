/**
 * Every key of the config datastore, in one place: roles build keys here and never spell a path
 * by hand. A `Key<T>` carries the type of its value, so `store.get(keys.desiredWebservers(1))` is
 * a `number | null`.
 *
 * Layout of a deployment's config bucket:
 *
 * | key | value | written by |
 * |---|---|---|
 * | `webserverips/<private ip>` | `Registration` | each webserver, on change |
 * | `webserverpublicips/<public ip>` | `Registration` | each webserver, on change |
 * | `autoscalerips/<private ip>` | `Registration` | each autoscaler |
 * | `databaseip/<private ip>` | `Registration` | the database server |
 * | `authip/<private ip>` | `Registration` | the authentication server |
 * | `buildmachineip/<ip>` | `Registration` | the build machine |
 * | `credentials/database` | `DbCredentials` (secret) | the build machine |
 * | `credentials/<name>` | any (secret) | the build machine |
 * | `scaling/<autoscaler>/desired` | number | AdjustScaling / ManuallyScale |
 * | `leases/<name>` | `LeaseRecord` | the lease functions only |
 * | `authorised-ips/<ip>` | `Grant` | the authentication server |
 * | `build/<marker>` | `BuildMarker` | the build machine (e.g. `build/installed-successfully`) |
 * | `ready/<role>/<name>` | `Readiness` | each server when its role is configured |
 * | `boot/<name>/<nnn>` | `BootStep` | each server, one object per bootstrap step (progress the build shows) |
 * | `boot/<name>/failed` | `BootFailure` | a server whose bootstrap failed: the step, the error, its log's end |
 * | `hostkeys/<name>` | `HostKey` | whoever created the server (its SSH host key, pinned by the build's helpers) |
 * | `config/bundle` | `BundleRecord` | the build: the role bundle and Node runtime servers boot from |
 * | `config/ssh-authorized-keys` | string[] | the build: the public keys of root on every server (its own) |
 * | `config/shared-files` | `SharedFiles` | the build: the bucket every webserver mounts as the site's uploads |
 * | `config/releases` | `Releases` | whoever publishes a release (the first webserver, roles/build/Release) |
 * | `releases/<id>.tar.gz` | a release's code (not JSON) | the same, before it names the release in `config/releases` |
 *
 * Keys under `credentials/` and `secrets/` are secret: encrypted at rest, refused without the key.
 */
import { isIP } from 'node:net';
import { storeError } from './errors.ts';
import { validateKey } from './_validate.ts';

/** A typed key. `T` is the type of the JSON value stored at `path` (phantom: no runtime field). */
export interface Key<T> {
  readonly path: string;
  /** @internal phantom type carrier */
  readonly __value?: T;
}

/** A typed family of keys sharing a prefix, e.g. every `webserverips/<ip>`. */
export interface KeyFamily<T, A = string> {
  readonly prefix: string;
  key(arg: A): Key<T>;
  /** The argument back from a full key (`webserverips/198.18.1.5` -> `198.18.1.5`), or null if not of this family. */
  parse(path: string): string | null;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** A machine announcing itself. */
export interface Registration {
  name: string;
  role: string;
  privateIp?: string;
  publicIp?: string;
  /** ISO 8601 time of the registration. */
  at: string;
}
export interface DbCredentials {
  engine: 'mariadb' | 'postgres';
  host?: string;
  port: number;
  name: string;
  user: string;
  password: string;
}
export interface LeaseRecord {
  owner: string;
  token: string;
  ttlSeconds: number;
  state: 'held' | 'released';
  acquiredAt: string;
}
export interface Grant {
  /** ISO 8601 expiry; the firewall ignores a grant past it. */
  expiresAt: string;
  /** Who was granted (an email address), for the admin's list. */
  subject?: string;
}
export interface BuildMarker {
  at: string;
  by?: string;
}
/** What every server of a deployment needs to know about the site. */
export interface SiteSettings {
  /** https://www.example.com/ */
  siteUrl: string;
  /** The application installed on webservers (e.g. `wordpress`). */
  application: string;
  /** The web server software on webservers. */
  webserver: 'nginx' | 'apache';
  /** The web firewall mode the deployment chose. */
  webMode: 'open' | 'cloudflare' | 'auth';
  /** Development (the code is changed on the webserver) or production (the code comes in releases). Absent: development. */
  mode?: 'development' | 'production';
}
/** The site's shared files: one bucket, mounted by every webserver (s3fs) as the application's uploads. */
export interface SharedFiles {
  bucket: string;
}
/** One release of the site's code: an archive `releases/<id>.tar.gz` in the config bucket. */
export interface Release {
  /** `r<yyyymmddThhmmss>-<6 hex>`: sorts by time. */
  id: string;
  sha256: string;
  bytes: number;
  createdAt: string;
  /** What it was made from (`stock wordpress 6.1.1`, `webserver w-1`, `directory ./site`, `backup <id>`...). */
  source: string;
}
/** The site's releases: the one every webserver serves, and the ones before it (newest first, for rollbacks). */
export interface Releases {
  current: Release;
  previous: Release[];
  /**
   * While a rollout replaces it: the release webservers served before (still healthy until each is
   * switched). Cleared when the rollout ends.
   */
  replacing?: string;
}
/** The site's TLS certificate (a secret: the key). */
export interface SiteTls {
  /** Certificate followed by its issuer's (PEM). */
  chain: string;
  /** Private key (PEM). */
  key: string;
  /** The issuing CA (PEM), for self-checks. */
  ca: string;
}
/** Where and how the site's temporal backups are kept (written by the build). */
export interface BackupSettings {
  /** The site's backup bucket, on the datastore's S3 endpoint. */
  bucket: string;
  /** Generations kept per period. */
  keep: Record<string, number>;
  /** Cron schedule (5 fields) per period that runs on the hosts. */
  schedule: Record<string, string>;
  /** Whether backups are encrypted with the key in `secrets/backup-key`. */
  encrypted: boolean;
}
/** How the autoscalers work (written by the build in production mode). */
export interface ScalingSettings {
  /** Number of autoscalers (slots 1..n); the desired total is split between them. */
  autoscalers: number;
  /** Most webservers the whole fleet may have. */
  maxWebservers: number;
  /** Seconds between ticks (probes, decisions). */
  probeIntervalSeconds: number;
  /** Seconds a health probe may take. */
  probeTimeoutSeconds: number;
  /** Probes failed in a row before a webserver that served is unhealthy. */
  failuresBeforeUnhealthy: number;
  /** Seconds a new webserver has to pass its first probe. */
  buildTimeoutSeconds: number;
  /** Seconds a surplus webserver keeps running after its A record is removed. */
  drainSeconds: number;
  /** Seconds a slot's lease lasts without renewal (then another autoscaler takes the slot over). */
  leaseTtlSeconds: number;
  /** TTL of the site's A records. */
  dnsTtlSeconds: number;
}
/** A snapshot to build webservers from. */
export interface WebserverImage {
  /** The provider's image/snapshot id. */
  image: string;
  /** The webserver it was taken from, and when. */
  from: string;
  at: string;
}
/**
 * What the cloud-level firewall is computed from besides the servers (written by the deploy, read
 * by the autoscalers, which apply it again as webservers come and go where `privateCidr` is null).
 */
export interface NativeFirewall {
  buildMachine: string[];
  /** The fleet's private network (its VPC range), or null: the rules name the servers' addresses. */
  privateCidr: string | null;
  webMode: 'open' | 'cloudflare' | 'auth';
  dbPort: number;
  http: boolean;
  roles: ('webserver' | 'database' | 'autoscaler' | 'auth')[];
}
/**
 * How an autoscaler reaches the cloud's API and DNS: each a driver of the providers' registry and
 * its options (a token scoped to the build where the cloud can scope it). Secrets: they reach the
 * autoscaler in its envelope only, never the datastore.
 */
export interface ProviderAccess {
  compute: { driver: string; options: Record<string, JsonValue> };
  dns: { driver: string; options: Record<string, JsonValue> };
}
/** One thing an autoscaler did, for `status`. */
export interface ScalingEvent {
  at: string;
  autoscaler: string;
  slot: number;
  action: string;
  server?: string;
  ip?: string;
  reason: string;
}
/** The authentication server's settings (WEB_FIREWALL=auth). */
export interface AuthSettings {
  allowList: string[];
  admins: string[];
  grantMinutes: number;
  linkMinutes: number;
  /** https://auth.example.com */
  baseUrl: string;
  siteName: string;
  smtp: { host: string; port: number };
  from: string;
  /** The CA of the build's certificates (public), for the server's own checks. */
  ca: string;
}
/** The authentication server's secrets: the app's signing secret (hex) and its TLS certificate. */
export interface AuthSecrets {
  secret: string;
  tls: { chain: string; key: string };
}
/** One step of a server's bootstrap, as it happened (for the build's progress). */
export interface BootStep {
  at: string;
  step: string;
  /** Seconds since the bootstrap started. */
  seconds: number;
}
/** Why a server's bootstrap stopped. */
export interface BootFailure {
  at: string;
  /** The last step it finished. */
  lastStep: string;
  error: string;
  /** The end of its bootstrap's output. */
  log: string;
}
/** A server's SSH host key (public), recorded when it was created, so no one trusts it on first use. */
export interface HostKey {
  server: string;
  publicKey: string;
  at: string;
}
/** The role bundle and the Node runtime the deployment's servers boot from (objects in the config bucket). */
export interface BundleRecord {
  bundle: { key: string; sha256: string; bytes: number; version: string; inputs: string };
  runtime: { key: string; sha256: string; bytes: number; node: string; dir: string };
  publishedAt: string;
}
export interface Readiness {
  at: string;
  steps?: Record<string, string>;
}

/**
 * The application's own secrets, made once per deployment by the build and the same on every
 * webserver, present and future. WordPress: its eight authentication keys and salts (AUTH_KEY ...
 * NONCE_SALT), so a session started through one webserver is valid on the others.
 */
export interface ApplicationSecrets {
  wordpressSalts: Record<string, string>;
}

const SECRET_PREFIXES = ['credentials/', 'secrets/'];

/** True for keys whose values must be encrypted at rest. */
export function isSecretKey(path: string): boolean {
  return SECRET_PREFIXES.some((p) => path.startsWith(p));
}

function key<T>(path: string): Key<T> {
  return { path: validateKey(path) };
}

function ipFamily<T>(prefix: string): KeyFamily<T> {
  return {
    prefix,
    key(ip: string) {
      if (isIP(ip) === 0) throw storeError('INVALID_KEY', `invalid IP address "${ip}" for ${prefix}<ip>`, { exitCode: 2 });
      return key<T>(prefix + ip);
    },
    parse(path: string) {
      if (!path.startsWith(prefix)) return null;
      const rest = path.slice(prefix.length);
      return isIP(rest) ? rest : null;
    },
  };
}

function nameFamily<T>(prefix: string): KeyFamily<T> {
  return {
    prefix,
    key(name: string) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) {
        throw storeError('INVALID_KEY', `invalid name "${name}" for ${prefix}<name>: use letters, digits, ".", "_" or "-" (1-128)`, {
          exitCode: 2,
        });
      }
      return key<T>(prefix + name);
    },
    parse(path: string) {
      if (!path.startsWith(prefix)) return null;
      const rest = path.slice(prefix.length);
      return rest && !rest.includes('/') ? rest : null;
    },
  };
}

export const keys = {
  webserverIps: ipFamily<Registration>('webserverips/'),
  webserverPublicIps: ipFamily<Registration>('webserverpublicips/'),
  autoscalerIps: ipFamily<Registration>('autoscalerips/'),
  databaseIps: ipFamily<Registration>('databaseip/'),
  authIps: ipFamily<Registration>('authip/'),
  buildMachineIps: ipFamily<Registration>('buildmachineip/'),
  authorisedIps: ipFamily<Grant>('authorised-ips/'),
  leases: nameFamily<LeaseRecord>('leases/'),
  buildMarkers: nameFamily<BuildMarker>('build/'),
  credentials: nameFamily<JsonValue>('credentials/'),
  dbCredentials: key<DbCredentials>('credentials/database'),
  /** The site settings the build writes before it creates servers. */
  site: key<SiteSettings>('config/site'),
  /** The site's TLS certificate and key (encrypted at rest). */
  siteTls: key<SiteTls>('secrets/tls'),
  /** Backup bucket, retention and schedule. */
  backups: key<BackupSettings>('config/backups'),
  /** The bucket of the site's shared files (uploads), mounted by every webserver. */
  sharedFiles: key<SharedFiles>('config/shared-files'),
  /** The release of the site's code every webserver serves, and the earlier ones. */
  releases: key<Releases>('config/releases'),
  /** The application's keys and salts, shared by every webserver (encrypted at rest). */
  applicationSecrets: key<ApplicationSecrets>('secrets/application'),
  /** The user's backup encryption key, hex (encrypted at rest with the deployment key). */
  backupKey: key<string>('secrets/backup-key'),
  /** Autoscaling settings (production mode). */
  scaling: key<ScalingSettings>('config/scaling'),
  /**
   * The image new webservers are built from (a snapshot of a configured webserver, on clouds that
   * have them), instead of the default OS image: faster builds. Absent: the OS image.
   */
  webserverImage: key<WebserverImage>('config/webserver-image'),
  /** The cloud-level firewall's settings (a real or emulated cloud; see NativeFirewall). */
  nativeFirewall: key<NativeFirewall>('config/native-firewall'),
  /** Scheduled scaling: { "08:30": 10, "17:30": 3 }. */
  scalingSchedule: key<Record<string, number>>('config/scaling-schedule'),
  /** The autoscalers' event log: `events/<time>-<random>`. */
  events: nameFamily<ScalingEvent>('events/'),
  /** The authentication server's settings and secrets. */
  auth: key<AuthSettings>('config/auth'),
  authSecrets: key<AuthSecrets>('secrets/auth'),
  /** The build is complete: gates periodic jobs, like the original's INSTALLED_SUCCESSFULLY. */
  installedSuccessfully: key<BuildMarker>('build/installed-successfully'),
  /** Desired webserver count of autoscaler `n` (1-based). */
  desiredWebservers(autoscaler: number): Key<number> {
    if (!Number.isInteger(autoscaler) || autoscaler < 1 || autoscaler > 99) {
      throw storeError('INVALID_KEY', `invalid autoscaler number "${autoscaler}": use a whole number from 1 to 99`, { exitCode: 2 });
    }
    return key<number>(`scaling/${autoscaler}/desired`);
  },
  /**
   * The autoscaler of slot `n` claims its slot back (`scaling/<n>/claim`): another autoscaler that
   * took the slot over while it was away hands the lease back when it sees this.
   */
  slotClaim(autoscaler: number): Key<{ by: string; at: string }> {
    if (!Number.isInteger(autoscaler) || autoscaler < 1 || autoscaler > 99) {
      throw storeError('INVALID_KEY', `invalid autoscaler number "${autoscaler}": use a whole number from 1 to 99`, { exitCode: 2 });
    }
    return key<{ by: string; at: string }>(`scaling/${autoscaler}/claim`);
  },
  /** Parses `scaling/<n>/desired` back to `n`. */
  parseDesiredWebservers(path: string): number | null {
    const m = /^scaling\/([1-9][0-9]?)\/desired$/.exec(path);
    return m ? Number(m[1]) : null;
  },
  /** A server's bootstrap steps: `boot/<name>/<nnn>`, one object each (no object is written twice). */
  bootStep(name: string, n: number): Key<BootStep> {
    if (!Number.isInteger(n) || n < 0 || n > 999) throw storeError('INVALID_KEY', `invalid boot step number ${n}: 0-999`, { exitCode: 2 });
    return key<BootStep>(`${nameFamily('boot/').key(name).path}/${String(n).padStart(3, '0')}`);
  },
  bootFailure(name: string): Key<BootFailure> {
    return key<BootFailure>(`${nameFamily('boot/').key(name).path}/failed`);
  },
  /** Every key under a server's `boot/<name>/`. */
  bootPrefix(name: string): string {
    return `${nameFamily('boot/').key(name).path}/`;
  },
  hostKeys: nameFamily<HostKey>('hostkeys/'),
  bundle: key<BundleRecord>('config/bundle'),
  authorizedKeys: key<string[]>('config/ssh-authorized-keys'),
  ready(role: string, name: string): Key<Readiness> {
    if (!/^[a-z]+$/.test(role) || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) {
      throw storeError('INVALID_KEY', `invalid readiness key "${role}/${name}"`, { exitCode: 2 });
    }
    return key<Readiness>(`ready/${role}/${name}`);
  },
} as const;
