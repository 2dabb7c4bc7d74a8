/**
 * The site on a webserver, as every webserver of a deployment has it (see @adt/webserver's
 * release.ts for the layout): the current release of its code, from the deployment's config
 * bucket, and its shared files, the deployment's files bucket mounted with s3fs (Debian's package,
 * over FUSE) at SITE.siteDir/uploads. Used by the webserver's bootstrap and commands and by the
 * webserver's backup part (a webroot backup is the current release with the shared
 * files in it).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { constants, hostname } from 'node:os';
import { join } from 'node:path';
import { keys, type ConfigStore, type Release, type Releases, type SharedFiles } from '@adt/configstore';
import { AdtError, execaRunner, pollUntil, retry } from '@adt/core';
import { downloadRelease, makeReleaseCurrent, uploadRelease } from '@adt/launch';
import * as web from '@adt/webserver';
import { datastoreSettings, siblingBucket } from './datastore.ts';
import { JOB_LOG_DIR, SITE_DIR } from './layout.ts';
import { logLine } from './main.ts';

/** Where the site lives on a webserver. */
export const SITE: web.SiteLayout = { siteDir: SITE_DIR };
/** The application as Debian's package installs it: the first release is made of it. */
export const STOCK_CORE_DIR = '/usr/share/wordpress';
export const STOCK_CONTENT_DIR = '/var/lib/wordpress/wp-content';
/** The credentials file of the shared files' mount (KEY:SECRET, mode 0600). */
export const S3FS_PASSWD = '/etc/adt/s3fs.passwd';
/** The uid and gid of PHP's user (www-data on Debian): owner of every shared file, as s3fs presents them. */
export const WEB_UID = 33;

const fail = (code: string, message: string) => new AdtError(code, message, { pkg: 'roles', driver: 'site' });
const runner = execaRunner({ timeoutMs: 600_000 });

/** A client of the config bucket (releases live there), with this server's datastore credentials. */
export function configBucketClient(store: ConfigStore) {
  return siblingBucket(store.bucket).getInstance();
}

// --- Shared files ---

/** s3fs's arguments for the files bucket: no secret in them (the key pair is in S3FS_PASSWD). */
export function s3fsArgv(files: SharedFiles, env: Record<string, string | undefined> = datastoreSettings()): string[] {
  const options = [
    `passwd_file=${S3FS_PASSWD}`,
    // PHP (www-data) owns every file; others read (nginx serves them).
    'allow_other',
    `uid=${WEB_UID}`,
    `gid=${WEB_UID}`,
    'umask=0022',
    'mp_umask=0022',
    // A file another webserver changed is seen within 1 s; listings are never cached, and s3fs 1.90
    // has no negative cache unless asked (a new file is seen at once).
    'stat_cache_expire=1',
    'enable_content_md5',
    'retries=5',
    'connect_timeout=10',
    'readwrite_timeout=60',
    'dbglevel=warn',
  ];
  if (env.ADT_S3_ENDPOINT) options.push(`url=${env.ADT_S3_ENDPOINT}`, 'use_path_request_style');
  if (env.ADT_S3_REGION) options.push(`endpoint=${env.ADT_S3_REGION}`);
  return ['s3fs', files.bucket, web.uploadsDir(SITE), '-f', '-o', options.join(',')];
}

/** The mount at the shared files' mount point, as /proc/self/mountinfo lists it (null: none). */
async function sharedFilesMount(): Promise<string | null> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return info.split('\n').find((l) => l.split(' ')[4] === web.uploadsDir(SITE)) ?? null;
}

/** Whether the shared files are mounted (s3fs at the mount point, answering). */
export async function sharedFilesMounted(): Promise<boolean> {
  const line = await sharedFilesMount();
  if (!line || !line.includes(' - fuse.s3fs ')) return false;
  return stat(web.uploadsDir(SITE)).then(
    () => true,
    () => false,
  );
}

/**
 * `SharedFiles` (a supervised service): mounts the files bucket at the mount point and stays with
 * s3fs in the foreground until it ends; a mount left by an s3fs that died ("Transport endpoint is
 * not connected") is taken down first, so the supervisor's restart mounts it again.
 */
export async function sharedFilesService(store: ConfigStore): Promise<number> {
  const files = await store.require(keys.sharedFiles, 'the build');
  const env = datastoreSettings();
  if (!env.ADT_S3_ACCESS_KEY_ID || !env.ADT_S3_SECRET_ACCESS_KEY)
    throw fail('NO_CREDENTIALS', 'the datastore settings hold no S3 key pair');
  await mkdir('/etc/adt', { recursive: true, mode: 0o700 });
  await writeFile(S3FS_PASSWD, `${env.ADT_S3_ACCESS_KEY_ID}:${env.ADT_S3_SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
  const mp = web.uploadsDir(SITE);
  if (await sharedFilesMount()) {
    logLine(`${mp}: a mount left by an s3fs that ended ("Transport endpoint is not connected"): unmounted`);
    await runner.run(['umount', '-l', mp], { nothrow: true });
  }
  await mkdir(mp, { recursive: true });
  logLine(`mounting bucket ${files.bucket} at ${mp} (s3fs)`);
  const [file, ...args] = s3fsArgv(files, env);
  const child = spawn(file!, args, { stdio: 'inherit' });
  // Every hour while mounted: the coming month's upload folder exists before its first upload.
  const folders = setInterval(() => {
    void sharedFilesMounted().then((up) =>
      up ? ensureUploadFolders().catch((e: Error) => logLine(`upload folders not made: ${e.message}`)) : undefined,
    );
  }, 3_600_000);
  const stop = () => child.kill('SIGTERM');
  process.on('SIGTERM', stop);
  const code = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('exit', (c, signal) => resolve(c ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
  });
  process.off('SIGTERM', stop);
  clearInterval(folders);
  // s3fs in the foreground ends only when something is wrong, or when it was told to stop.
  return code === 0 ? 1 : code;
}

/**
 * The folders WordPress puts this month's and next month's uploads in (`uploads/YYYY/MM`, UTC),
 * made ahead of time. WordPress makes a month's folder on its first upload with a check-then-mkdir
 * that fails ("Unable to create directory") when another request makes the same folder at the same
 * moment: on a shared store that is another webserver, or WP-Cron's own request (its privacy-export
 * cleanup asks for the upload folder too), and s3fs's round trips widen the window.
 */
export async function ensureUploadFolders(now = new Date()): Promise<string[]> {
  const made: string[] = [];
  for (const offset of [0, 1]) {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
    const dir = join(web.uploadsDir(SITE), String(d.getUTCFullYear()), String(d.getUTCMonth() + 1).padStart(2, '0'));
    await mkdir(dir, { recursive: true });
    made.push(dir);
  }
  return made;
}

/**
 * Waits for the shared files to be mounted and proves them: a file written through the mount is
 * read back and removed. Throws, naming the service's log, when they are not there in time.
 */
export async function waitForSharedFiles(timeoutMs = 60_000): Promise<void> {
  const log = join(JOB_LOG_DIR, 'shared-files.log');
  await pollUntil(async () => ((await sharedFilesMounted()) ? true : null), {
    what: `the shared files to be mounted at ${web.uploadsDir(SITE)} (see ${log})`,
    timeoutMs,
    intervalMs: 250,
  });
  const probe = join(web.uploadsDir(SITE), `.adt-probe-${hostname()}`);
  const token = `${Date.now()}`;
  await writeFile(probe, token);
  const back = await readFile(probe, 'utf8');
  await rm(probe, { force: true });
  if (back !== token)
    throw fail('SHARED_FILES_BROKEN', `the shared files at ${web.uploadsDir(SITE)} gave back another content than written`);
  await ensureUploadFolders();
}

// --- Releases ---

/** Packs `code` (a webroot), uploads it and makes it the site's current release. */
export async function publishCode(store: ConfigStore, code: string, source: string): Promise<{ release: Release; record: Releases }> {
  await mkdir(join(SITE.siteDir, 'tmp'), { recursive: true, mode: 0o700 });
  const file = join(SITE.siteDir, 'tmp', `pack-${process.pid}-${Date.now()}.tar.gz`);
  try {
    const packed = await web.packRelease(code, file, runner);
    const release = await uploadRelease(configBucketClient(store), store.bucket, packed, source);
    return { release, record: await makeReleaseCurrent(store, release) };
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * The site's current release; when it has none yet, this webserver makes the first one from the
 * application as its package installed it (one webserver only: the others wait for it).
 */
export async function currentOrFirstRelease(store: ConfigStore, say: (line: string) => Promise<void>): Promise<Release> {
  const found = await store.get(keys.releases);
  if (found) return found.current;
  const made = await store.withLease('release-first', Math.max(600, store.minLeaseTtlSeconds()), hostname(), async () => {
    const again = await store.get(keys.releases);
    if (again) return again.current;
    const code = await web.stockCode(STOCK_CORE_DIR, STOCK_CONTENT_DIR, join(SITE.siteDir, 'tmp', 'stock'), runner);
    try {
      const version = await wordpressVersion(code);
      const { release } = await publishCode(store, code, `stock wordpress ${version} (Debian's package, on ${hostname()})`);
      await say(`first release ${release.id} published (stock WordPress ${version}, ${(release.bytes / 1e6).toFixed(1)} MB)`);
      return release;
    } finally {
      await rm(code, { recursive: true, force: true });
    }
  });
  if (made.acquired) return made.value;
  const record = await pollUntil(() => store.get(keys.releases), {
    what: 'another webserver to publish the first release',
    timeoutMs: 600_000,
    intervalMs: 2000,
    ignoreErrors: true,
  });
  return record.current;
}

/** Downloads (checked by SHA-256) and unpacks `release` if this webserver does not have it; returns its code directory. */
export async function installReleaseHere(store: ConfigStore, release: Release, writable: boolean): Promise<string> {
  const code = web.codeDir(SITE, release.id);
  if (existsSync(join(code, 'wp-load.php'))) return code;
  await mkdir(web.releasesDir(SITE), { recursive: true, mode: 0o755 });
  const archive = join(web.releasesDir(SITE), `${release.id}.tar.gz.download`);
  try {
    // A download that failed is tried again; an archive that is not the release's is not.
    await retry(() => downloadRelease(configBucketClient(store), store.bucket, release, archive), {
      attempts: 3,
      baseMs: 2000,
      maxMs: 8000,
      retryable: (e) => (e as AdtError).code !== 'RELEASE_MISMATCH',
    });
    return await web.installRelease(SITE, release.id, archive, { writable, owner: { uid: WEB_UID, gid: WEB_UID }, runner });
  } finally {
    await rm(archive, { force: true });
  }
}

async function wordpressVersion(code: string): Promise<string> {
  const text = await readFile(join(code, 'wp-includes', 'version.php'), 'utf8').catch(() => '');
  return /\$wp_version\s*=\s*'([^']+)'/.exec(text)?.[1] ?? 'unknown';
}
