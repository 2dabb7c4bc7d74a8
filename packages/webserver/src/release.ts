/**
 * Releases of the site's code on a webserver: immutable trees under `<siteDir>/releases/<id>/code`
 * (the application's core and its wp-content: themes, plugins, mu-plugins, languages), one of them
 * `current` (a symlink, replaced atomically), and the shared files mounted at `<siteDir>/uploads`,
 * linked into every release as `wp-content/uploads`. The web server's root is a release's own path
 * (never the link), so a switch is a graceful reload: requests in flight finish on the old tree,
 * and PHP's opcache and realpath cache, keyed by path, never mix two releases.
 *
 * An archive of a release is a gzipped tar of its `code` directory without the uploads, every link
 * followed (a release holds no link to the machine it was made on): the same on every webserver.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { UNTRUSTED_EXTRACT, errorFactory, execaRunner, makeInert, outputTail, type Runner } from '@adt/core';

const fail = errorFactory('webserver', 'release');

export const RELEASE_ID = /^r\d{8}T\d{6}Z-[0-9a-f]{6}$/;

/** Where a webserver keeps the site: its releases, the link to the current one, the shared files' mount point. */
export interface SiteLayout {
  siteDir: string;
}

export const releasesDir = (l: SiteLayout) => join(l.siteDir, 'releases');
export const releaseDir = (l: SiteLayout, id: string) => join(releasesDir(l), checkId(id));
/** The code (document root) of a release. */
export const codeDir = (l: SiteLayout, id: string) => join(releaseDir(l, id), 'code');
export const currentLink = (l: SiteLayout) => join(l.siteDir, 'current');
/** The shared files' mount point (s3fs), the target of every release's wp-content/uploads. */
export const uploadsDir = (l: SiteLayout) => join(l.siteDir, 'uploads');

/** A new release id: `r<UTC time>-<6 hex>`, sorting by time. */
export function newReleaseId(now = new Date()): string {
  return `r${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export function checkId(id: string): string {
  if (!RELEASE_ID.test(id))
    throw fail('BAD_RELEASE_ID', `release id "${id}": r<yyyymmddThhmmssZ>-<6 hex>, as roles/build/Release list shows`, { exitCode: 2 });
  return id;
}

export interface PackedRelease {
  file: string;
  sha256: string;
  bytes: number;
}

/**
 * Packs a code directory (a webroot with wp-load.php and wp-content) into `file`: links followed,
 * `wp-content/uploads` and the application's caches left out, owners kept numerically.
 */
export async function packRelease(dir: string, file: string, runner: Runner = execaRunner({ timeoutMs: 600_000 })): Promise<PackedRelease> {
  for (const needed of ['wp-load.php', 'wp-content']) {
    if (!existsSync(join(dir, needed)))
      throw fail('NOT_A_SITE', `${dir}: not a WordPress code directory (it has no ${needed}); give the directory that holds wp-load.php`, {
        exitCode: 2,
      });
  }
  const r = await runner.run(
    [
      'tar',
      '--create',
      '--gzip',
      '--file',
      file,
      '--directory',
      dir,
      '--dereference',
      '--numeric-owner',
      '--exclude=./wp-content/uploads',
      '--exclude=./wp-content/cache',
      '--exclude=./wp-content/upgrade',
      '.',
    ],
    { nothrow: true },
  );
  if (r.exitCode !== 0) throw fail('PACK_FAILED', `packing ${dir} failed: ${outputTail(r)}`);
  return { file, ...(await fileDigest(file)) };
}

/** SHA-256 (hex) and size of a file, streamed. */
export async function fileDigest(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export interface InstallOptions {
  /** Production: the code belongs to root and is read only for PHP. Development: wp-content belongs to `owner` (plugins install). */
  writable: boolean;
  owner?: { uid: number; gid: number };
  runner?: Runner;
}

/**
 * Unpacks a release archive (already checked against its SHA-256) into `releases/<id>/code`, links
 * its uploads to the shared files, and sets its owners: ready to serve, not yet current. A release
 * already there is kept as it is.
 */
export async function installRelease(l: SiteLayout, id: string, archive: string, o: InstallOptions): Promise<string> {
  const dir = releaseDir(l, id);
  if (existsSync(join(dir, 'code', 'wp-load.php'))) return codeDir(l, id);
  const runner = o.runner ?? execaRunner({ timeoutMs: 600_000 });
  const staging = `${dir}.partial-${randomBytes(3).toString('hex')}`;
  await mkdir(join(staging, 'code'), { recursive: true, mode: 0o755 });
  try {
    const code = join(staging, 'code');
    const r = await runner.run(['tar', '--extract', '--gzip', '--file', archive, '--directory', code, ...UNTRUSTED_EXTRACT], {
      nothrow: true,
    });
    if (r.exitCode !== 0) throw fail('INSTALL_FAILED', `unpacking release ${id} failed: ${outputTail(r)}`);
    if (!existsSync(join(code, 'wp-load.php'))) throw fail('INSTALL_FAILED', `release ${id} holds no wp-load.php: not a WordPress release`);
    await rm(join(code, 'wp-content', 'uploads'), { recursive: true, force: true });
    // A release comes from the bucket: no links out of its tree, no device files, no setuid bits.
    // Checked without its uploads, which become a link to the shared files: a link through them would lead elsewhere then.
    await makeInert(code, `release ${id}`);
    await mkdir(uploadsDir(l), { recursive: true });
    await symlink(uploadsDir(l), join(code, 'wp-content', 'uploads'));
    // Root's, read only for everyone else; in development the site's wp-content is PHP's to change.
    const chown = await runner.run(['chown', '-R', '-h', '0:0', code], { nothrow: true });
    if (chown.exitCode !== 0) throw fail('INSTALL_FAILED', `chown of release ${id}: ${outputTail(chown)}`);
    await runner.run(['chmod', '-R', 'u+rwX,go+rX,go-w', code]);
    if (o.writable && o.owner) {
      const own = await runner.run(['chown', '-R', '-h', `${o.owner.uid}:${o.owner.gid}`, join(code, 'wp-content')], { nothrow: true });
      if (own.exitCode !== 0) throw fail('INSTALL_FAILED', `chown of release ${id}'s wp-content: ${outputTail(own)}`);
    }
    await chmod(staging, 0o755);
    await rename(staging, dir);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  return codeDir(l, id);
}

/** Makes `id` the current release: a new link under a temporary name renamed over `current` (never a moment without one). */
export async function makeCurrent(l: SiteLayout, id: string): Promise<void> {
  if (!existsSync(codeDir(l, id))) throw fail('NOT_INSTALLED', `release ${id} is not installed in ${releasesDir(l)}`);
  const tmp = `${currentLink(l)}.new-${randomBytes(3).toString('hex')}`;
  await symlink(join('releases', id), tmp);
  await rename(tmp, currentLink(l));
}

/** The current release's id, or null. */
export async function currentRelease(l: SiteLayout): Promise<string | null> {
  const target = await readlink(currentLink(l)).catch(() => null);
  if (!target) return null;
  const id = target.split('/').pop() ?? '';
  return RELEASE_ID.test(id) ? id : null;
}

/** Removes releases beyond the newest `keep` (never the current one, nor `also`), and unfinished unpacks. Returns what it removed. */
export async function pruneReleases(l: SiteLayout, keep: number, also: string[] = []): Promise<string[]> {
  const names = await readdir(releasesDir(l)).catch(() => [] as string[]);
  const current = await currentRelease(l);
  const removed: string[] = [];
  for (const n of names.filter((n) => n.includes('.partial-'))) {
    await rm(join(releasesDir(l), n), { recursive: true, force: true });
    removed.push(n);
  }
  const ids = names
    .filter((n) => RELEASE_ID.test(n))
    .sort()
    .reverse();
  for (const id of ids.slice(keep)) {
    if (id === current || also.includes(id)) continue;
    const st = await lstat(join(releasesDir(l), id)).catch(() => null);
    if (!st?.isDirectory()) continue;
    await rm(join(releasesDir(l), id), { recursive: true, force: true });
    removed.push(id);
  }
  return removed;
}

/**
 * Makes the code of the first release from the application as the OS package installed it:
 * Debian's WordPress core (`core`, /usr/share/wordpress) with the site's wp-content
 * (`content`, /var/lib/wordpress/wp-content) in place of the core's, links followed.
 */
export async function stockCode(core: string, content: string, out: string, runner: Runner = execaRunner({ timeoutMs: 600_000 })) {
  for (const d of [core, content])
    if (!(await stat(d).catch(() => null))?.isDirectory()) throw fail('NO_APPLICATION', `${d} is not installed`);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  // cp -L follows links (Debian links core files to other packages' copies); a link to nothing is left out.
  for (const [from, to] of [
    [core, out],
    [content, join(out, 'wp-content')],
  ] as const) {
    if (to !== out) await rm(to, { recursive: true, force: true });
    await mkdir(to, { recursive: true });
    const r = await runner.run(['cp', '-rL', '--no-preserve=ownership', `${from}/.`, `${to}/`], { nothrow: true });
    if (r.exitCode !== 0 && !/No such file or directory/.test(r.stderr)) throw fail('PACK_FAILED', `copying ${from}: ${outputTail(r)}`);
  }
  await rm(join(out, 'wp-content', 'uploads'), { recursive: true, force: true });
  return out;
}
