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

/**
 * The site's own files on a webserver: Debian's WordPress keeps uploads, themes and plugins in
 * WP_CONTENT_DIR (the core is the package's, in /usr/share/wordpress). What webroot backups hold.
 */
export const SITE_CONTENT_DIR = '/var/lib/wordpress/wp-content';

/** Logs of the periodic jobs. */
export const JOB_LOG_DIR = '/var/log/adt';
