/**
 * Bucket naming: one config bucket per deployment, named from the site and the build identifier,
 * valid under the S3 bucket rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
 * 3-63 characters, lowercase letters, digits and hyphens, starting and ending with a letter or digit,
 * not shaped like an IP address, no `xn--` prefix nor `-s3alias` / `--ol-s3` suffix.
 */
import { createHash } from 'node:crypto';
import { storeError } from './errors.ts';

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
// No hyphens: server names use them to separate their fields (see @adt/providers naming).
const BUILD_ID = /^[a-z0-9]{1,24}$/;

/** Build identifiers: 1-24 lowercase letters and digits. */
export function validateBuildId(buildId: unknown): string {
  if (typeof buildId !== 'string' || !BUILD_ID.test(buildId)) {
    throw storeError('INVALID_BUCKET_NAME', `invalid build identifier "${String(buildId)}": use 1-24 lowercase letters and digits`, {
      exitCode: 2,
    });
  }
  return buildId;
}

/** Accepts `www.example.com` or `https://www.example.com/`; returns the lowercase host name. */
export function siteHost(siteUrl: unknown): string {
  if (typeof siteUrl !== 'string' || siteUrl.trim() === '') {
    throw storeError('INVALID_BUCKET_NAME', 'invalid site URL "": give a host name such as www.example.com', { exitCode: 2 });
  }
  let host = siteUrl.trim().toLowerCase();
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(host)) {
    try {
      host = new URL(host).hostname;
    } catch {
      host = '';
    }
  }
  host = host.replace(/\.$/, '');
  if (!HOSTNAME.test(host) || /^[0-9.]+$/.test(host)) {
    throw storeError(
      'INVALID_BUCKET_NAME',
      `invalid site URL "${siteUrl}": give a DNS host name such as www.example.com (letters, digits, hyphens and dots)`,
      { exitCode: 2 },
    );
  }
  return host;
}

/**
 * The config bucket of a deployment: `<site with dots as hyphens>-config-<buildId>`, e.g.
 * `www-example-com-config-prod1`. A long site name is shortened and given a 6-character hash so
 * that two long names never collide.
 */
export function configBucketName(siteUrl: string, buildId: string): string {
  validateBuildId(buildId);
  return siteBucketName(siteUrl, `-config-${buildId}`);
}

/**
 * The bucket of a deployment's shared files (the application's uploads, mounted by every
 * webserver): `<site with dots as hyphens>-files-<buildId>`. It belongs to the build, as the
 * database does: a new build starts from a backup (RESTORE_FROM), not from another build's files.
 */
export function filesBucketName(siteUrl: string, buildId: string): string {
  validateBuildId(buildId);
  return siteBucketName(siteUrl, `-files-${buildId}`);
}

/**
 * The backup bucket of a site: `<site with dots as hyphens>-backups`. It belongs to the site, not
 * to a build, so that a new build can start from the backups of an earlier one.
 */
export function backupBucketName(siteUrl: string): string {
  return siteBucketName(siteUrl, '-backups');
}

function siteBucketName(siteUrl: string, suffix: string): string {
  const host = siteHost(siteUrl);
  let base = host.replace(/\./g, '-');
  if (base.length + suffix.length > 63) {
    const hash = createHash('sha256').update(host).digest('hex').slice(0, 6);
    base = `${base.slice(0, 63 - suffix.length - 7).replace(/-+$/, '')}-${hash}`;
  }
  return validateBucketName(base + suffix);
}

/** Checks a bucket name given directly (e.g. from the deployment file). */
export function validateBucketName(name: unknown): string {
  const problems: string[] = [];
  if (typeof name !== 'string') problems.push('must be a string');
  else {
    if (name.length < 3 || name.length > 63) problems.push('must be 3-63 characters long');
    if (!/^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(name))
      problems.push('must use only lowercase letters, digits and hyphens, starting and ending with a letter or digit');
    if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) problems.push('must not look like an IP address');
    if (name.startsWith('xn--') || name.startsWith('sthree-')) problems.push('must not start with "xn--" or "sthree-"');
    if (name.endsWith('-s3alias') || name.endsWith('--ol-s3')) problems.push('must not end with "-s3alias" or "--ol-s3"');
  }
  if (problems.length) {
    throw storeError('INVALID_BUCKET_NAME', `invalid bucket name "${String(name)}": ${problems.join('; ')}`, { exitCode: 2 });
  }
  return name as string;
}
