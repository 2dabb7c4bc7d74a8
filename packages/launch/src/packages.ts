/**
 * What each role's server installs from the operating system's package archive (Debian 12), on
 * top of a cloud's stock Debian image (which has sh, curl, ca-certificates, openssh, cron). One
 * list per role, used by the role's bootstrap (installs what is missing) and by the build (an image
 * prepared for a role has exactly these, so a server built from it installs nothing).
 */
import type { Role } from '@adt/providers';

const FIREWALL = ['iptables'];

export const ROLE_PACKAGES: Record<Exclude<Role, 'build'>, readonly string[]> = {
  webserver: [
    // nginx or apache (WEBSERVER), both on the image so either can be chosen.
    'nginx',
    'apache2',
    'php8.2-fpm',
    // PHP extensions WordPress needs or recommends (database, XML-RPC, feeds, uploads...).
    'php8.2-mysql',
    'php8.2-xml',
    'php8.2-mbstring',
    'php8.2-curl',
    'php8.2-zip',
    'php8.2-intl',
    // The client checks the database lets this webserver in.
    'mariadb-client',
    // The site's shared files (uploads): the deployment's bucket mounted over FUSE; rsync restores into it.
    's3fs',
    'rsync',
    // The virgin application (Debian's WordPress and its default theme).
    'wordpress',
    'wordpress-theme-twentytwentythree',
    ...FIREWALL,
  ],
  database: ['mariadb-server', 'mariadb-client', ...FIREWALL],
  autoscaler: [...FIREWALL],
  auth: [...FIREWALL],
};

export function rolePackages(role: Role): readonly string[] {
  if (role === 'build') return [];
  return ROLE_PACKAGES[role];
}
