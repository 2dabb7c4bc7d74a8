/**
 * The local provider's environment of a deployment, shared by deploy, destroy, status and the
 * ExecuteOn/ConnectTo helpers: the local cloud, the embedded S3 daemon and the PowerDNS server of
 * that cloud, and the build's own files (datastore key, local CA), all under STATE_DIR.
 *
 *   STATE_DIR/cloud/<cloud id>/     the local cloud (servers, namespaces)
 *   STATE_DIR/s3/<cloud id>/        the embedded S3 server (data, pid file, log)
 *   STATE_DIR/dns/<cloud id>/       PowerDNS (config, sqlite, API key, log)
 *   STATE_DIR/builds/<build id>/    datastore.key (0600), deployment.json, ca/ (the local CA)
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigStore, parseSecretKey, type Registration } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { EMBEDDED_CREDENTIALS } from '@adt/configstore/embedded-s3';
import localDriver, { type LocalCloud, type LocalCloudOptions } from '@adt/providers/drivers/local';
import powerdnsDriver from '@adt/providers/drivers/powerdns';
import { attachPowerDns, type DnsProvider } from '@adt/providers';
import type { Deployment } from './settings.ts';
import { zoneOf } from './settings.ts';

/** The toolkit's checkout: shared read-only into every server at /opt/adt (its role code). */
export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const CODE_ON_SERVERS = '/opt/adt';

export interface LocalEnv {
  d: Deployment;
  cloud: LocalCloud;
  /** The options the cloud was made with (the cloud API daemon makes the same one). */
  cloudOptions: LocalCloudOptions;
  buildDir: string;
  keyFile: string;
  /** The authentication server's own datastore key (it never gets the deployment's). */
  authKeyFile: string;
  recordFile: string;
  caDir: string;
  s3Dir: string;
  dnsDir: string;
  /** The build machine's address on the private network: where servers reach the S3 server. */
  s3Endpoint: string;
  zone: string;
  /** The local cloud API of this build (production mode): its files and URL. */
  cloudApiDir: string;
  cloudApiUrl: string;
  /** The local mail catcher (WEB_FIREWALL=auth without SMTP_RELAY). */
  mailDir: string;
}

export function localEnv(d: Deployment): LocalEnv {
  const cloudOptions: LocalCloudOptions = {
    cloudId: d.cloudId,
    stateDir: join(d.stateDir, 'cloud', d.cloudId),
    publicCidr: d.publicCidr,
    privateCidr: d.privateCidr,
    hiddenPaths: [d.stateDir],
    shares: [{ hostPath: REPO_ROOT, target: CODE_ON_SERVERS }],
  };
  const cloud = localDriver(cloudOptions);
  const buildDir = join(d.stateDir, 'builds', d.buildId);
  return {
    d,
    cloud,
    cloudOptions,
    buildDir,
    keyFile: join(buildDir, 'datastore.key'),
    authKeyFile: join(buildDir, 'auth.key'),
    recordFile: join(buildDir, 'deployment.json'),
    caDir: join(buildDir, 'ca'),
    s3Dir: join(d.stateDir, 's3', d.cloudId),
    dnsDir: join(d.stateDir, 'dns', d.cloudId),
    s3Endpoint: `http://${cloud.buildMachine.privateIp}:${d.s3Port}`,
    zone: zoneOf(d.host),
    cloudApiDir: join(buildDir, 'cloud-api'),
    cloudApiUrl: `http://${cloud.buildMachine.privateIp}:${d.scaling.cloudApiPort}`,
    mailDir: join(d.stateDir, 'mail', d.cloudId),
  };
}

/** What a build directory records about its deployment (to refuse a clash on re-runs). */
export interface BuildRecord {
  siteUrl: string;
  buildId: string;
  cloudId: string;
  configBucket: string;
  createdAt: string;
}

export function readBuildRecord(env: LocalEnv): BuildRecord | null {
  try {
    return JSON.parse(readFileSync(env.recordFile, 'utf8')) as BuildRecord;
  } catch {
    return null;
  }
}

/** Other builds recorded in the same STATE_DIR on the same cloud. */
export function otherBuilds(env: LocalEnv): string[] {
  const dir = join(env.d.stateDir, 'builds');
  const names = existsSync(dir) ? readdirSync(dir) : [];
  return names.filter((n) => {
    if (n === env.d.buildId) return false;
    try {
      return (JSON.parse(readFileSync(join(dir, n, 'deployment.json'), 'utf8')) as BuildRecord).cloudId === env.d.cloudId;
    } catch {
      return false;
    }
  });
}

/** The deployment's datastore, with its key when the build has one. */
export function openStore(env: LocalEnv, secretKey?: Buffer): ConfigStore {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const key = secretKey ?? (existsSync(env.keyFile) ? parseSecretKey(readFileSync(env.keyFile, 'utf8'), env.keyFile) : undefined);
  return new ConfigStore({
    driver: s3Driver({ bucket: env.d.configBucket, endpoint: env.s3Endpoint, credentials: { ...EMBEDDED_CREDENTIALS } }),
    secretKey: key,
    // The embedded S3 has no per-object write limit.
    writeBudget: null,
  });
}

/** The cloud's DNS, when its PowerDNS runs. */
export async function openDns(env: LocalEnv): Promise<DnsProvider | null> {
  const server = await attachPowerDns(env.dnsDir);
  if (!server) return null;
  return powerdnsDriver({ apiUrl: server.apiUrl, apiKeyFile: server.apiKeyFile, zone: env.zone });
}

// Forgetting a server (its registrations in every family, its readiness) is the datastore's: deploy uses it from here.
export { forgetServer } from '@adt/configstore';

export type { Registration };
