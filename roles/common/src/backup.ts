/**
 * The roles' backup commands (one program; each role links it as roles/<role>/backup/<Command>):
 *
 *   Backup <period> [--keep N] [--force] [--json]   back up this role's part, verify, rotate
 *   Restore (--period P | --id ID) [--json]         restore the newest of a period, or a named backup
 *   ListBackups [--json]                            complete backups of this role's part
 *
 * The webserver's part is the site's own files (SITE_CONTENT_DIR), taken by one webserver at a
 * time (a datastore lease per period); the database server's part is the application's database
 * (`mariadb-dump --single-transaction`). Both go to the site's backup bucket (config/backups), under
 * `webroot/` and `database/`, encrypted when the user gave a backup key.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { AdtError } from '@adt/core';
import { keys, type BackupSettings } from '@adt/configstore';
import { Backups, PERIODS, type Manifest, type Period, type Source } from '@adt/backup';
import { openDatastore, siblingBucket } from './datastore.ts';
import { DB_LAYOUT, SITE_CONTENT_DIR } from './layout.ts';
import { runMain, usage } from './main.ts';

export const BACKUP_PARTS = { webserver: 'webroot', database: 'database' } as const;
type BackupRole = keyof typeof BACKUP_PARTS;

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) => new AdtError(code, message, { pkg: 'roles', driver: 'backup', exitCode });

/** The /etc/cron.d file that runs a role's scheduled backups. */
export function backupCronFile(role: BackupRole, settings: Pick<BackupSettings, 'schedule'>, codeDir = '/opt/adt'): string {
  const lines = ['# Written by the Agile Deployment Toolkit: scheduled backups of this server\'s part of the site.', 'SHELL=/bin/sh'];
  for (const [period, expr] of Object.entries(settings.schedule)) {
    if (!(PERIODS as readonly string[]).includes(period)) throw fail('BAD_SCHEDULE', `backup schedule: unknown period "${period}"`, 2);
    if (!/^(\S+\s+){4}\S+$/.test(expr.trim()) || !/^[0-9*/,\- ]+$/.test(expr)) throw fail('BAD_SCHEDULE', `backup schedule of ${period}: "${expr}" is not 5 cron fields`, 2);
    lines.push(`${expr.trim()} root ${codeDir}/roles/${role}/backup/Backup ${period} >> /var/log/adt/backup.log 2>&1`);
  }
  return `${lines.join('\n')}\n`;
}

async function context(role: string) {
  if (!(role in BACKUP_PARTS)) throw usage(`backups: the ${role} role has no backup part (webserver: the site's files; database: the database)`);
  const part = BACKUP_PARTS[role as BackupRole];
  const store = openDatastore();
  const settings = await store.get(keys.backups);
  if (!settings) throw fail('NO_SETTINGS', `${keys.backups.path} is not in the datastore: the build writes it`);
  let encryptionKey: Buffer | undefined;
  if (settings.encrypted) {
    const hex = await store.get(keys.backupKey);
    if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) throw fail('NO_KEY', `backups are encrypted but ${keys.backupKey.path} is missing or malformed`);
    encryptionKey = Buffer.from(hex, 'hex');
  }
  const driver = siblingBucket(settings.bucket);
  const backups = new Backups({ client: driver.getInstance(), bucket: settings.bucket, prefix: `${part}/`, encryptionKey, hostname: hostname() });
  return { part, store, settings, driver, backups };
}

function describe(m: Manifest): string {
  const size = m.parts.reduce((n, p) => n + p.size, 0);
  return `${m.id} (${m.period}, ${m.createdAt}, from ${m.sourceHost}, ${(size / 1e6).toFixed(1)} MB stored${m.encrypted ? ', encrypted' : ''})`;
}

export async function backupMain(role: string, command: string, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { keep: { type: 'string' }, period: { type: 'string' }, id: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } }, strict: true, allowPositionals: true });
  const out = (o: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(o)}\n` : `${text}\n`);
  const c = await context(role);
  try {
    if (command === 'ListBackups') {
      const all = await c.backups.list();
      out({ part: c.part, backups: all }, all.length ? all.map((m) => `${c.part} ${describe(m)}`).join('\n') : `no complete ${c.part} backups in ${c.settings.bucket}`);
      return 0;
    }
    if (command === 'Restore') {
      if (!values.period === !values.id) throw usage('Restore: give exactly one of --period P (its newest backup) or --id ID');
      if (values.period && !(PERIODS as readonly string[]).includes(values.period)) throw usage(`Restore --period "${values.period}": one of ${PERIODS.join(', ')}`);
      const manifest = await c.backups.find(values.id ? { id: values.id } : { period: values.period as Period });
      const creds = c.part === 'database' ? await c.store.get(keys.dbCredentials) : null;
      if (c.part === 'database' && !creds) throw fail('NO_CREDENTIALS', `${keys.dbCredentials.path} is missing`);
      await c.backups.restore(manifest, c.part === 'webroot' ? { webroot: { dir: SITE_CONTENT_DIR } } : { database: { defaultsFile: DB_LAYOUT.configFile, database: creds!.name } });
      out({ restored: manifest.id, part: c.part, period: manifest.period }, `${c.part}: restored ${describe(manifest)}`);
      return 0;
    }
    // Backup
    const period = positionals[0] as Period | undefined;
    if (!period || !(PERIODS as readonly string[]).includes(period)) throw usage(`Backup <period>: one of ${PERIODS.join(', ')} (got "${period ?? ''}")`);
    const keep = values.keep === undefined ? (c.settings.keep[period] ?? 1) : Number(values.keep);
    if (!Number.isInteger(keep) || keep < 1 || keep > 1000) throw usage(`--keep "${values.keep}": a whole number from 1 to 1000`);
    if (!values.force && !(await c.store.exists(keys.installedSuccessfully))) {
      out({ skipped: 'not installed' }, `${c.part}: the build has not finished (no ${keys.installedSuccessfully.path}): nothing backed up (--force to back up anyway)`);
      return 0;
    }
    await c.driver.ensureBucket();
    let source: Source;
    if (c.part === 'webroot') source = { kind: 'webroot', dir: SITE_CONTENT_DIR, exclude: ['./cache', './upgrade'] };
    else {
      const creds = await c.store.get(keys.dbCredentials);
      if (!creds) throw fail('NO_CREDENTIALS', `${keys.dbCredentials.path} is missing`);
      source = { kind: 'database', engine: 'mariadb', defaultsFile: DB_LAYOUT.configFile, database: creds.name };
    }
    const site = await c.store.get(keys.site);
    // One webserver at a time backs up the site's files (they are the same on every webserver).
    const lease = c.part === 'webroot' ? await c.store.acquire(`backup-webroot-${period}`, Math.max(3600, c.store.minLeaseTtlSeconds()), hostname()) : null;
    if (c.part === 'webroot' && !lease) {
      const holder = await c.store.holder(`backup-webroot-${period}`);
      out({ skipped: 'another webserver', holder: holder?.owner }, `webroot: ${holder?.owner ?? 'another webserver'} is backing up the site's files for ${period}: nothing to do here`);
      return 0;
    }
    try {
      // Scheduled runs start on every webserver at the same minute: the one that comes second finds it done.
      if (c.part === 'webroot' && !['manual', 'shutdown'].includes(period)) {
        const [newest] = await c.backups.list(period);
        if (newest && Date.now() - Date.parse(newest.createdAt) < 10 * 60_000) {
          out({ skipped: 'recent', id: newest.id }, `webroot: ${newest.id} was taken less than 10 minutes ago by ${newest.sourceHost}: nothing to do here`);
          return 0;
        }
      }
      const { manifest, deleted } = await c.backups.backupAndRotate(period, [source], keep, { app: site?.application });
      out({ part: c.part, manifest, deleted }, `${new Date().toISOString()} ${c.part}: backup ${describe(manifest)} verified; ${deleted.length} older ${period} backup(s) rotated away, ${keep} kept at most`);
    } finally {
      if (lease) await c.store.release(lease);
    }
    return 0;
  } finally {
    await c.driver.dispose?.();
    await c.store.driver.dispose?.();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [role = '', command = '', ...rest] = process.argv.slice(2);
  void runMain(() => backupMain(role, command, rest));
}
