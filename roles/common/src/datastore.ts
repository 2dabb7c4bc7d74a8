/**
 * How a host (or the build machine) reaches its deployment's config datastore: settings from the
 * environment, loaded from a dotenv file that the build writes on each server (mode 0600, like every
 * file holding a secret). Secrets never come from the command line.
 *
 * | variable | meaning |
 * |---|---|
 * | `ADT_DATASTORE_ENV` | the settings file (default `/etc/adt/datastore.env`) |
 * | `ADT_S3_ENDPOINT` | S3 endpoint URL (absent: AWS S3) |
 * | `ADT_S3_REGION` | region (default `us-east-1`) |
 * | `ADT_S3_ACCESS_KEY_ID`, `ADT_S3_SECRET_ACCESS_KEY` | the S3 key pair |
 * | `ADT_CONFIG_BUCKET` | the deployment's config bucket |
 * | `ADT_DATASTORE_KEY_FILE` | file with the deployment's 32-byte secret key (hex or base64), mode 0600 |
 * | `ADT_WRITE_BUDGET` | `<writes>/<seconds>` per object, or `none` (default `5/300`, DigitalOcean Spaces) |
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parse } from 'dotenv';
import { AdtError } from '@adt/core';
import { ConfigStore, parseSecretKey, SPACES_WRITE_BUDGET, type WriteBudget } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';

export const DEFAULT_DATASTORE_ENV = '/etc/adt/datastore.env';

/**
 * Silences the AWS SDK's notice that this Node version will lose support (printed once per process
 * when a client is made): it is not the operator's to act on. A value already set is kept. Roles
 * only: packages never read or write the environment.
 */
export function quietAwsSdk(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

const bad = (message: string) => new AdtError('BAD_SETTINGS', message, { pkg: 'roles', driver: 'datastore', exitCode: 2 });

/** Reads the settings file (if any) under the process environment, which wins. */
export function datastoreSettings(env: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> {
  const file = env.ADT_DATASTORE_ENV ?? DEFAULT_DATASTORE_ENV;
  let fromFile: Record<string, string> = {};
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077)
      throw bad(
        `${file}: holds credentials, so it must be readable by its owner only ` +
          `(mode 0600, found ${mode.toString(8).padStart(4, '0')}): run chmod 600 ${file}`,
      );
    fromFile = parse(readFileSync(file));
  } else if (env.ADT_DATASTORE_ENV) {
    throw bad(`ADT_DATASTORE_ENV: file ${file} does not exist`);
  }
  return { ...fromFile, ...Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('ADT_'))) };
}

function parseBudget(value: string | undefined): WriteBudget | null {
  if (value === undefined || value === '') return SPACES_WRITE_BUDGET;
  if (value === 'none') return null;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 2 || Number(m[2]) < 1)
    throw bad(`ADT_WRITE_BUDGET: "${value}" is not valid: use <writes>/<seconds> with at least 2 writes (e.g. 5/300), or none`);
  return { writes: Number(m[1]), perSeconds: Number(m[2]) };
}

/**
 * A driver for another bucket on the datastore's endpoint with the same credentials (the site's
 * backup bucket); its `getInstance()` is a configured S3Client.
 */
export function siblingBucket(bucket: string, env: NodeJS.ProcessEnv = process.env) {
  const s = datastoreSettings(env);
  if (!s.ADT_S3_ACCESS_KEY_ID || !s.ADT_S3_SECRET_ACCESS_KEY) throw bad('ADT_S3_ACCESS_KEY_ID and ADT_S3_SECRET_ACCESS_KEY are needed');
  quietAwsSdk();
  return s3Driver({
    bucket,
    endpoint: s.ADT_S3_ENDPOINT || undefined,
    region: s.ADT_S3_REGION || undefined,
    credentials: { accessKeyId: s.ADT_S3_ACCESS_KEY_ID, secretAccessKey: s.ADT_S3_SECRET_ACCESS_KEY },
    // Backup parts are 5 MiB and more.
    requestTimeoutMs: 120_000,
  });
}

/** A ConfigStore from the settings; every missing or malformed setting is reported at once. */
export function openDatastore(env: NodeJS.ProcessEnv = process.env): ConfigStore {
  const s = datastoreSettings(env);
  const problems: string[] = [];
  if (!s.ADT_CONFIG_BUCKET) problems.push("ADT_CONFIG_BUCKET: missing (the deployment's config bucket name)");
  if (!s.ADT_S3_ACCESS_KEY_ID) problems.push('ADT_S3_ACCESS_KEY_ID: missing');
  if (!s.ADT_S3_SECRET_ACCESS_KEY) problems.push('ADT_S3_SECRET_ACCESS_KEY: missing');
  if (s.ADT_S3_ENDPOINT && !/^https?:\/\/[^\s/]+/.test(s.ADT_S3_ENDPOINT))
    problems.push(`ADT_S3_ENDPOINT: "${s.ADT_S3_ENDPOINT}" is not an http(s) URL`);
  let secretKey: Buffer | undefined;
  if (s.ADT_DATASTORE_KEY_FILE) {
    const f = s.ADT_DATASTORE_KEY_FILE;
    if (!existsSync(f)) problems.push(`ADT_DATASTORE_KEY_FILE: ${f} does not exist`);
    else if (statSync(f).mode & 0o077) problems.push(`ADT_DATASTORE_KEY_FILE: ${f} must be mode 0600`);
    else {
      try {
        secretKey = parseSecretKey(readFileSync(f, 'utf8'), `ADT_DATASTORE_KEY_FILE (${f})`);
      } catch (e) {
        problems.push((e as Error).message.replace(/^\[adt:[^\]]+\] /, ''));
      }
    }
  }
  let writeBudget: WriteBudget | null = SPACES_WRITE_BUDGET;
  try {
    writeBudget = parseBudget(s.ADT_WRITE_BUDGET);
  } catch (e) {
    problems.push((e as Error).message.replace(/^\[adt:[^\]]+\] \[[^\]]+\] /, ''));
  }
  if (problems.length) {
    const file = env.ADT_DATASTORE_ENV ?? DEFAULT_DATASTORE_ENV;
    throw bad(`datastore settings (environment or ${file}):\n  - ${problems.join('\n  - ')}`);
  }
  quietAwsSdk();
  const driver = s3Driver({
    bucket: s.ADT_CONFIG_BUCKET!,
    endpoint: s.ADT_S3_ENDPOINT || undefined,
    region: s.ADT_S3_REGION || undefined,
    credentials: { accessKeyId: s.ADT_S3_ACCESS_KEY_ID!, secretAccessKey: s.ADT_S3_SECRET_ACCESS_KEY! },
  });
  return new ConfigStore({ driver, secretKey, writeBudget });
}
