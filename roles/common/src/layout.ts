/** Where things are on a server of the fleet: shared by the bootstraps and the periodic jobs. */

/** The toolkit's code on every server (where the user-data unpacks the role bundle). */
export { CODE_DIR } from '@adt/launch';

/** MariaDB on the database server: a data directory of its own (never a copy of another's). */
export const DB_LAYOUT = {
  dataDir: '/var/lib/adt-mysql',
  runDir: '/run/mysqld',
  configFile: '/etc/mysql/adt.cnf',
  logFile: '/var/log/mysql/adt-error.log',
} as const;

/** Where a webserver keeps the site: its releases, the current one, the shared files' mount point (site.ts). */
export const SITE_DIR = '/var/lib/adt/site';

/**
 * What webroot backups and baselines hold: the current release (its core, themes, plugins,
 * mu-plugins, languages) with the site's shared files in it (its `wp-content/uploads` is a link to
 * their mount, followed). A restore puts the shared files back in the store and the rest in a new
 * release.
 */
export const SITE_BACKUP_DIR = `${SITE_DIR}/current/code`;

/** Logs of the periodic jobs. */
export const JOB_LOG_DIR = '/var/log/adt';
