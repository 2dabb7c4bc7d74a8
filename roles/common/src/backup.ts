/**
 * The roles' backup commands (one program; each role links it as roles/<role>/backup/<Command>):
 *
 *   Backup <period> [--keep N] [--force] [--json]   back up this role's part, verify, rotate
 *   Restore (--period P | --id ID) [--json]         restore the newest of a period, or a named backup
 *   ListBackups [--json]                            complete backups of this role's part
 *   PublishBaseline <name> [--json]                 this role's part of a shareable baseline
 *   Restore --baseline [BUCKET/]NAME                this role's part of a baseline
 *   Restore ... --code-only                         (webserver) a new release from the backup's code only,
 *                                                   the shared files left as they are
 *
 * The webserver's part is the site's own files (SITE_BACKUP_DIR: the current release with the
 * shared uploads in it), taken by one webserver at a time (a datastore lease per period), and
 * restored once for the fleet: the uploads into the shared files, the rest as a new release that
 * this webserver serves at once and the build rolls out to the others; the database server's part is the application's database
 * (`mariadb-dump --single-transaction`). Both go to the site's backup bucket (config/backups), under
 * `webroot/` and `database/`, encrypted when the user gave a backup key.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile as cpFile, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import {
  AdtError,
  CRON_ENVIRONMENT,
  execaRunner,
  makeInert,
  outputTail,
  parseCronExpression,
  validateCronExpression,
  type Argv,
} from '@adt/core';
import { keys, type BackupSettings, type ConfigStore } from '@adt/configstore';
import {
  BASELINE_HOST,
  Backups,
  PERIODS,
  backupPrefix,
  baselinePrefix,
  isBaselineName,
  isPeriod,
  parseBaselineRef,
  publishBaseline,
  rewriteDump,
  type Manifest,
  type Period,
  type Source,
} from '@adt/backup';
import { codeDir, currentRelease, uploadsDir, wordpressFirstUserSql, wordpressSetPasswordSql } from '@adt/webserver';
import { datastoreSettings, openDatastore, siblingBucket } from './datastore.ts';
import { CODE_DIR, DB_LAYOUT, SITE_BACKUP_DIR, SITE_DIR } from './layout.ts';
import { SITE, publishCode, sharedFilesMounted } from './site.ts';
import { usage } from './main.ts';

export const BACKUP_PARTS = { webserver: 'webroot', database: 'database' } as const;
type BackupRole = keyof typeof BACKUP_PARTS;

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) =>
  new AdtError(code, message, { pkg: 'roles', driver: 'backup', exitCode });

/** The /etc/cron.d file that runs a role's scheduled backups. */
export function backupCronFile(role: BackupRole, settings: Pick<BackupSettings, 'schedule'>, codeDir = CODE_DIR): string {
  const lines = ["# Written by the Agile Deployment Toolkit: scheduled backups of this server's part of the site.", ...CRON_ENVIRONMENT];
  for (const [period, expr] of Object.entries(settings.schedule)) {
    if (!isPeriod(period)) throw fail('BAD_SCHEDULE', `backup schedule: unknown period "${period}"`, 2);
    const problem = validateCronExpression(expr);
    if (problem) throw fail('BAD_SCHEDULE', `backup schedule of ${period}: ${problem}`, 2);
    // The fields one space apart: nothing of the value but its 5 fields reaches the file.
    lines.push(`${parseCronExpression(expr).text} root ${codeDir}/roles/${role}/backup/Backup ${period} >> /var/log/adt/backup.log 2>&1`);
  }
  return `${lines.join('\n')}\n`;
}

async function context(role: string) {
  if (!(role in BACKUP_PARTS))
    throw usage(`backups: the ${role} role has no backup part (webserver: the site's files; database: the database)`);
  const part = BACKUP_PARTS[role as BackupRole];
  const store = openDatastore();
  const settings = await store.require(keys.backups);
  let encryptionKey: Buffer | undefined;
  if (settings.encrypted) {
    const hex = await store.get(keys.backupKey);
    if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex))
      throw fail('NO_KEY', `backups are encrypted but ${keys.backupKey.path} is missing or malformed`);
    encryptionKey = Buffer.from(hex, 'hex');
  }
  const driver = siblingBucket(settings.bucket);
  const backups = new Backups({
    client: driver.getInstance(),
    bucket: settings.bucket,
    prefix: backupPrefix(part),
    encryptionKey,
    hostname: hostname(),
  });
  return { part, store, settings, driver, backups };
}

function describe(m: Manifest): string {
  const size = m.parts.reduce((n, p) => n + p.size, 0);
  return (
    `${m.id} (${m.period}, ${m.createdAt}, from ${m.sourceHost}, ` +
    `${(size / 1e6).toFixed(1)} MB stored${m.encrypted ? ', encrypted' : ''})`
  );
}

export async function backupMain(role: string, command: string, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      keep: { type: 'string' },
      period: { type: 'string' },
      id: { type: 'string' },
      baseline: { type: 'string' },
      'code-only': { type: 'boolean' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  const out = (o: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(o)}\n` : `${text}\n`);
  const c = await context(role);
  try {
    if (command === 'ListBackups') {
      const all = await c.backups.list();
      out(
        { part: c.part, backups: all },
        all.length ? all.map((m) => `${c.part} ${describe(m)}`).join('\n') : `no complete ${c.part} backups in ${c.settings.bucket}`,
      );
      return 0;
    }
    if (command === 'PublishBaseline') return await publishPart(c, positionals[0], out);
    const codeOnly = Boolean(values['code-only']);
    if (codeOnly && c.part !== 'webroot') throw usage("Restore --code-only: for the site's files (a webserver's part) only");
    if (command === 'Restore' && values.baseline) return await restoreBaseline(c, values.baseline, out, codeOnly);
    if (command === 'Restore') {
      if (!values.period === !values.id)
        throw usage('Restore: give exactly one of --period P (its newest backup), --id ID, or --baseline [BUCKET/]NAME');
      if (values.period && !isPeriod(values.period)) throw usage(`Restore --period "${values.period}": one of ${PERIODS.join(', ')}`);
      const manifest = await c.backups.find(values.id ? { id: values.id } : { period: values.period as Period });
      if (c.part === 'webroot') {
        const release = await restoreWebroot(c.store, c.backups, manifest, `backup ${manifest.id} (${manifest.period})`, codeOnly);
        out(
          { restored: manifest.id, part: c.part, period: manifest.period, release, codeOnly },
          `${c.part}: restored ${describe(manifest)}: ${codeOnly ? '' : 'shared files put back, '}release ${release} served here`,
        );
        return 0;
      }
      const creds = await c.store.require(keys.dbCredentials);
      await c.backups.restore(manifest, { database: { defaultsFile: DB_LAYOUT.configFile, database: creds.name } });
      out({ restored: manifest.id, part: c.part, period: manifest.period }, `${c.part}: restored ${describe(manifest)}`);
      return 0;
    }
    // Backup
    const period = positionals[0];
    if (!period || !isPeriod(period)) throw usage(`Backup <period>: one of ${PERIODS.join(', ')} (got "${period ?? ''}")`);
    const keep = values.keep === undefined ? (c.settings.keep[period] ?? 1) : Number(values.keep);
    if (!Number.isInteger(keep) || keep < 1 || keep > 1000) throw usage(`--keep "${values.keep}": a whole number from 1 to 1000`);
    if (!values.force && !(await c.store.exists(keys.installedSuccessfully))) {
      out(
        { skipped: 'not installed' },
        `${c.part}: the build has not finished (no ${keys.installedSuccessfully.path}): nothing backed up (--force to back up anyway)`,
      );
      return 0;
    }
    await c.driver.ensureBucket();
    let source: Source;
    if (c.part === 'webroot') source = { kind: 'webroot', dir: SITE_BACKUP_DIR, exclude: CONTENT_EXCLUDED, dereference: true };
    else {
      const creds = await c.store.require(keys.dbCredentials);
      source = { kind: 'database', engine: 'mariadb', defaultsFile: DB_LAYOUT.configFile, database: creds.name };
    }
    const site = await c.store.get(keys.site);
    // One webserver at a time backs up the site's files (they are the same on every webserver).
    const lease =
      c.part === 'webroot'
        ? await c.store.acquire(`backup-webroot-${period}`, Math.max(3600, c.store.minLeaseTtlSeconds()), hostname())
        : null;
    if (c.part === 'webroot' && !lease) {
      const holder = await c.store.holder(`backup-webroot-${period}`);
      out(
        { skipped: 'another webserver', holder: holder?.owner },
        `webroot: ${holder?.owner ?? 'another webserver'} is backing up the site's files for ${period}: nothing to do here`,
      );
      return 0;
    }
    try {
      // Scheduled runs start on every webserver at the same minute: the one that comes second finds it done.
      if (c.part === 'webroot' && !['manual', 'shutdown'].includes(period)) {
        const [newest] = await c.backups.list(period);
        if (newest && Date.now() - Date.parse(newest.createdAt) < 10 * 60_000) {
          out(
            { skipped: 'recent', id: newest.id },
            `webroot: ${newest.id} was taken less than 10 minutes ago by ${newest.sourceHost}: nothing to do here`,
          );
          return 0;
        }
      }
      const { manifest, deleted } = await c.backups.backupAndRotate(period, [source], keep, { app: site?.application });
      out(
        { part: c.part, manifest, deleted },
        `${new Date().toISOString()} ${c.part}: backup ${describe(manifest)} verified; ` +
          `${deleted.length} older ${period} backup(s) rotated away, ${keep} kept at most`,
      );
    } finally {
      if (lease) await c.store.release(lease);
    }
    return 0;
  } finally {
    await c.driver.dispose?.();
    await c.store.driver.dispose?.();
  }
}

type Context = Awaited<ReturnType<typeof context>>;

/** Left out of the site's files in backups and baselines: the application's caches. */
const CONTENT_EXCLUDED = ['./wp-content/cache', './wp-content/upgrade'];

/**
 * Puts a webroot backup back for the whole fleet: its uploads replace the shared files (rsync
 * into the mount, files not in the backup removed), and the rest of it becomes a new release,
 * served here at once (the build rolls it out to the other webservers). Everything is read and
 * checked before anything is replaced. `codeOnly`: the shared files are left as they are (a
 * release made from a backup's code). Returns the new release's id.
 */
async function restoreWebroot(store: ConfigStore, from: Backups, manifest: Manifest, source: string, codeOnly = false): Promise<string> {
  const tmp = join(SITE_DIR, 'tmp');
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  const staging = join(tmp, `restore-${randomBytes(4).toString('hex')}`);
  const code = join(tmp, `code-${randomBytes(4).toString('hex')}`);
  const run = execaRunner({ timeoutMs: 3_600_000 });
  try {
    await from.restore(manifest, { webroot: { dir: staging } });
    const current = await currentRelease(SITE);
    if (!current) throw fail('NO_RELEASE', 'this webserver serves no release yet: restore after its bootstrap');
    // A backup is a whole release (wp-load.php at its top) with the uploads in its wp-content; one
    // taken before releases is a wp-content alone, put on the current release's core.
    const whole = existsSync(join(staging, 'wp-load.php'));
    const content = whole ? join(staging, 'wp-content') : staging;
    const uploads = join(content, 'uploads');
    if (!codeOnly && existsSync(uploads)) {
      if (!(await sharedFilesMounted())) throw fail('NO_SHARED_FILES', 'the shared files are not mounted here: nothing restored');
      // The uploads go elsewhere than the rest of the tree: their links must stay inside them, not only inside the backup.
      await makeInert(uploads, `the shared files of backup ${manifest.id}`);
      const argv: Argv = ['rsync', '-rlt', '--delete', '--no-perms', '--no-owner', '--no-group', `${uploads}/`, `${uploadsDir(SITE)}/`];
      const r = await run.run(argv, { nothrow: true });
      if (r.exitCode !== 0) throw fail('RESTORE_FAILED', `putting the shared files back failed: ${outputTail(r, 2)}`);
    }
    await rm(uploads, { recursive: true, force: true });
    if (whole) {
      await rename(staging, code);
      // A baseline leaves the application's config files out: the current release's (Debian's dispatcher, no secret) fills in.
      if (!existsSync(join(code, 'wp-config.php')))
        await cpFile(join(codeDir(SITE, current), 'wp-config.php'), join(code, 'wp-config.php'));
    } else {
      await mkdir(code, { recursive: true });
      const cp = await run.run(['cp', '-a', `${codeDir(SITE, current)}/.`, `${code}/`], { nothrow: true });
      if (cp.exitCode !== 0) throw fail('RESTORE_FAILED', `copying the current release's core failed: ${outputTail(cp, 2)}`);
      await rm(join(code, 'wp-content'), { recursive: true, force: true });
      await rename(staging, join(code, 'wp-content'));
    }
    const { release } = await publishCode(store, code, source);
    const sw = await run.run([join(CODE_DIR, 'roles/webserver/release/SwitchRelease'), release.id], { nothrow: true });
    if (sw.exitCode !== 0) throw fail('RESTORE_FAILED', `release ${release.id} was published but not served here: ${outputTail(sw, 2)}`);
    return release.id;
  } finally {
    await rm(staging, { recursive: true, force: true });
    await rm(code, { recursive: true, force: true });
  }
}
type Out = (o: unknown, text: string) => void;

/** The deployment's secrets a baseline must not contain, searched for literally. */
async function knownSecrets(c: Context): Promise<string[]> {
  const env = datastoreSettings();
  const creds = await c.store.get(keys.dbCredentials);
  const backupKey = await c.store.get(keys.backupKey).catch(() => null);
  let datastoreKey = '';
  try {
    datastoreKey = readFileSync(env.ADT_DATASTORE_KEY_FILE ?? '', 'utf8').trim();
  } catch {}
  return [creds?.password, env.ADT_S3_SECRET_ACCESS_KEY, datastoreKey, typeof backupKey === 'string' ? backupKey : undefined].filter(
    (x): x is string => Boolean(x && x.length >= 8),
  );
}

/**
 * PublishBaseline <name>: this server's part of a shareable copy of the site, under
 * `baselines/<name>/<part>/` in the site's backup bucket, unencrypted (it is meant to be shared)
 * and refused when the secret scan finds anything. The database part has the site's domain
 * replaced by baseline.invalid and its password hashes removed.
 */
async function publishPart(c: Context, name: string | undefined, out: Out): Promise<number> {
  if (!name || !isBaselineName(name))
    throw usage(`PublishBaseline <name>: 1-64 lowercase letters, digits or hyphens (got "${name ?? ''}")`);
  const site = await c.store.require(keys.site);
  const host = new URL(site.siteUrl).hostname;
  await c.driver.ensureBucket();
  const common = {
    client: c.driver.getInstance(),
    bucket: c.settings.bucket,
    hostname: hostname(),
    name,
    app: site.application as 'wordpress',
    prefix: baselinePrefix(name, c.part),
    knownSecrets: await knownSecrets(c),
  };
  const stats = { domains: 0, serialisedFixed: 0, hashes: 0 };
  let manifest: Manifest;
  if (c.part === 'webroot')
    manifest = await publishBaseline({ ...common, webroot: { dir: SITE_BACKUP_DIR, exclude: CONTENT_EXCLUDED, dereference: true } });
  else {
    const creds = await c.store.require(keys.dbCredentials);
    manifest = await publishBaseline({
      ...common,
      database: { kind: 'database', engine: 'mariadb', defaultsFile: DB_LAYOUT.configFile, database: creds.name },
      rewrite: { domains: [{ from: host, to: BASELINE_HOST }], scrubPasswordHashes: true },
      rewriteStats: stats,
    });
  }
  const rewritten =
    c.part === 'database'
      ? `; ${stats.domains} mention(s) of ${host} replaced (${stats.serialisedFixed} serialised), ${stats.hashes} password hash(es) removed`
      : '';
  out(
    { baseline: name, part: c.part, manifest, rewrite: stats },
    `${c.part}: baseline ${name} published as ${describe(manifest)}${rewritten}`,
  );
  return 0;
}

/**
 * Restore --baseline [BUCKET/]NAME: this server's part of a baseline (of this site's backup bucket,
 * or another's). The database gets this site's domain back; as the baseline carries no password,
 * the first administrator gets a new one, kept in the datastore (credentials/app-admin).
 */
async function restoreBaseline(c: Context, spec: string, out: Out, codeOnly = false): Promise<number> {
  const ref = parseBaselineRef(spec);
  if (!ref) throw usage(`Restore --baseline "${spec}": NAME or BUCKET/NAME`);
  const bucket = ref.bucket ?? c.settings.bucket;
  const name = ref.name;
  const driver = bucket === c.settings.bucket ? c.driver : siblingBucket(bucket);
  try {
    const from = new Backups({ client: driver.getInstance(), bucket, prefix: baselinePrefix(name, c.part), hostname: hostname() });
    const [manifest] = await from.list('manual');
    if (!manifest) throw fail('NO_BASELINE', `no baseline "${name}" with a ${c.part} part in bucket ${bucket}`, 2);
    if (c.part === 'webroot') {
      const release = await restoreWebroot(c.store, from, manifest, `baseline ${name}`, codeOnly);
      out(
        { restored: manifest.id, baseline: name, part: c.part, release, codeOnly },
        `webroot: baseline ${name} restored (${describe(manifest)}): ` +
          `${codeOnly ? '' : 'shared files put back, '}release ${release} served here`,
      );
      return 0;
    }
    const [site, creds] = await c.store.requireAll([keys.site, keys.dbCredentials] as const);
    const host = new URL(site.siteUrl).hostname;
    await from.restore(
      manifest,
      { database: { defaultsFile: DB_LAYOUT.configFile, database: creds.name } },
      { transform: { database: () => rewriteDump({ domains: [{ from: BASELINE_HOST, to: host }] }) } },
    );
    let admin = '';
    if (site.application === 'wordpress') {
      const password = randomBytes(18).toString('base64url');
      const run = execaRunner({ timeoutMs: 60_000 });
      const who = await run.run(['mariadb', `--defaults-file=${DB_LAYOUT.configFile}`, '--batch', '--skip-column-names', creds.name], {
        input: wordpressFirstUserSql(),
      });
      admin = who.stdout.trim();
      if (admin) {
        // On stdin, never on a command line; WordPress upgrades an MD5 to its own hash at the first sign-in.
        await run.run(['mariadb', `--defaults-file=${DB_LAYOUT.configFile}`, creds.name], {
          input: wordpressSetPasswordSql(admin, password),
        });
        await c.store.put(keys.credentials.key('app-admin'), { user: admin, password });
      }
    }
    const newPassword = admin ? `; the administrator "${admin}" has a new password (roles/build/AppAdmin shows it)` : '';
    out(
      { restored: manifest.id, baseline: name, part: c.part, admin: admin || null },
      `database: baseline ${name} restored (${describe(manifest)}) with ${host} as its domain${newPassword}`,
    );
    return 0;
  } finally {
    if (driver !== c.driver) await driver.dispose?.();
  }
}
