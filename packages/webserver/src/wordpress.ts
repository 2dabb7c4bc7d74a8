/**
 * WordPress's configuration for Debian's `wordpress` package: a file
 * `/etc/wordpress/config-<name>.php` (outside the web root) that Debian's master wp-config.php loads
 * when nginx passes `WORDPRESS_CONFIG=<name>`. It holds the database credentials, so it is mode
 * 0600, owned by the PHP pool's user.
 */
import { randomBytes } from 'node:crypto';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorFactory } from '@adt/core';
import { sqlString } from '@adt/database';

const fail = errorFactory('webserver', 'wordpress');

export interface WordPressConfig {
  /** `https://www.example.com` (no trailing slash). */
  siteUrl: string;
  db: { host: string; port: number; name: string; user: string; password: string };
  /** Table prefix (default wp_). */
  tablePrefix?: string;
  /**
   * The eight authentication keys and salts (SALT_NAMES, checked by checkSalts); generated when
   * absent. A fleet gives every webserver the same ones, so a session is valid whichever answers.
   */
  salts?: Record<string, string>;
  /**
   * The site's code comes in releases (release.ts): the code a request runs is its web server's
   * document root (a release's own directory), named in an `X-ADT-Release` response header. In
   * production WordPress's own changes to its files (installing or updating plugins, themes, core)
   * are switched off, and wp-admin says how the code changes instead (`releaseCommand`).
   */
  releases?: {
    production: boolean;
    releaseCommand: string;
    /** The current release's code, for PHP run without a document root (CLI). */ currentCode: string;
  };
}

export const SALT_NAMES = [
  'AUTH_KEY',
  'SECURE_AUTH_KEY',
  'LOGGED_IN_KEY',
  'NONCE_KEY',
  'AUTH_SALT',
  'SECURE_AUTH_SALT',
  'LOGGED_IN_SALT',
  'NONCE_SALT',
] as const;

/** A PHP single-quoted string literal. */
export function phpString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function generateSalts(): Record<(typeof SALT_NAMES)[number], string> {
  return Object.fromEntries(SALT_NAMES.map((n) => [n, randomBytes(48).toString('base64')])) as Record<(typeof SALT_NAMES)[number], string>;
}

/**
 * The salts given to the config, checked: all eight names, each a string of at least 32 printable
 * characters (WordPress's generator makes 64). Never quoted back: they are secrets.
 */
export function checkSalts(salts: Record<string, string>): Record<(typeof SALT_NAMES)[number], string> {
  for (const n of SALT_NAMES) {
    const v = salts[n];
    if (typeof v !== 'string' || v.length < 32 || !/^[\x20-\x7e]+$/.test(v))
      throw fail('BAD_SALTS', `salt ${n}: a string of at least 32 printable ASCII characters (${SALT_NAMES.join(', ')})`, { exitCode: 2 });
  }
  return salts as Record<(typeof SALT_NAMES)[number], string>;
}

/** The name Debian's wrapper looks up (`config-<name>.php`), from the site's host. */
export function configName(siteUrl: string): string {
  const host = new URL(siteUrl).hostname.toLowerCase();
  return host.replace(/[^a-z0-9-]/g, '-');
}

export function wordpressConfigPhp(c: WordPressConfig): string {
  let url: URL;
  try {
    url = new URL(c.siteUrl);
  } catch {
    throw fail('BAD_URL', `siteUrl "${c.siteUrl}" is not a URL`, { exitCode: 2 });
  }
  if (url.protocol !== 'https:') throw fail('BAD_URL', `siteUrl "${c.siteUrl}": the site is served over https`, { exitCode: 2 });
  const prefix = checkPrefix(c.tablePrefix ?? 'wp_');
  const salts = c.salts ? checkSalts(c.salts) : generateSalts();
  const origin = url.origin;
  const lines = [
    '<?php',
    '// Written by the Agile Deployment Toolkit (webserver role). Holds credentials: mode 0600.',
    `define('DB_NAME', ${phpString(c.db.name)});`,
    `define('DB_USER', ${phpString(c.db.user)});`,
    `define('DB_PASSWORD', ${phpString(c.db.password)});`,
    `define('DB_HOST', ${phpString(`${c.db.host}:${c.db.port}`)});`,
    "define('DB_CHARSET', 'utf8mb4');",
    "define('DB_COLLATE', '');",
    `define('WP_HOME', ${phpString(origin)});`,
    `define('WP_SITEURL', ${phpString(origin)});`,
    "define('FORCE_SSL_ADMIN', true);",
    "define('DISALLOW_FILE_EDIT', true);",
    ...SALT_NAMES.map((n) => `define('${n}', ${phpString(salts[n])});`),
    `$table_prefix = ${phpString(prefix)};`,
    ...(c.releases ? releaseLines(c.releases) : []),
    '',
  ];
  return lines.join('\n');
}

/** Writes the config file 0600, owned by the PHP user (it must read it; nobody else may). */
export async function writeWordPressConfig(dir: string, c: WordPressConfig, owner = 'www-data'): Promise<string> {
  const file = join(dir, `config-${configName(c.siteUrl)}.php`);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, wordpressConfigPhp(c), { mode: 0o600 });
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith(`${owner}:`));
  if (!line) throw fail('NO_OS_USER', `OS user "${owner}" does not exist`);
  const [, , uid, gid] = line.split(':');
  await chown(file, Number(uid), Number(gid));
  return file;
}

/**
 * SQL that reads the login of WordPress's first user (the lowest ID: the administrator the install
 * created), one line on the client's stdout. `tablePrefix` as in wp-config.php (default wp_).
 */
export function wordpressFirstUserSql(tablePrefix = 'wp_'): string {
  return `SELECT user_login FROM ${checkPrefix(tablePrefix)}users ORDER BY ID LIMIT 1;`;
}

/**
 * SQL that gives the WordPress user `login` a new password (for a site restored from a baseline,
 * which carries none). Send it on the client's stdin, never on a command line: it holds the
 * password. Stored as MD5, which WordPress accepts and replaces with its own hash at the first sign-in.
 */
export function wordpressSetPasswordSql(login: string, password: string, tablePrefix = 'wp_'): string {
  return `UPDATE ${checkPrefix(tablePrefix)}users SET user_pass = MD5(${sqlString(password)}) WHERE user_login = ${sqlString(login)};`;
}

// --- Internal helpers ---

/** The release a request runs, from its document root (`<site>/releases/<id>/code`); file changes off in production. */
function releaseLines(r: NonNullable<WordPressConfig['releases']>): string[] {
  const notice =
    'This site runs in production: its code (WordPress, themes, plugins) changes only as a release, made in development ' +
    `and published with ${r.releaseCommand}. Media uploads work as usual.`;
  return [
    "$adt_code = isset($_SERVER['DOCUMENT_ROOT']) ? realpath($_SERVER['DOCUMENT_ROOT']) : false;",
    `if ($adt_code === false || !file_exists($adt_code . '/wp-load.php')) $adt_code = realpath(${phpString(r.currentCode)});`,
    "define('ABSPATH', $adt_code . '/');",
    "define('WP_CONTENT_DIR', $adt_code . '/wp-content');",
    "define('ADT_RELEASE', basename(dirname($adt_code)));",
    "if (PHP_SAPI !== 'cli' && !headers_sent()) header('X-ADT-Release: ' . ADT_RELEASE);",
    ...(r.production
      ? [
          "define('DISALLOW_FILE_MODS', true);",
          "define('AUTOMATIC_UPDATER_DISABLED', true);",
          // Hooked before WordPress loads (WP_Hook::build_preinitialized_hooks reads $wp_filter).
          "$GLOBALS['wp_filter']['admin_notices'][10][] = array('function' => 'adt_release_notice', 'accepted_args' => 0);",
          'function adt_release_notice() {',
          "  if (current_user_can('manage_options'))",
          `    echo '<div class="notice notice-info"><p>' . esc_html(${phpString(notice)}) . '</p></div>';`,
          '}',
        ]
      : []),
  ];
}

/** A table prefix goes into SQL and PHP unquoted: letters, digits and _ only. */
function checkPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9_]{1,20}$/.test(prefix)) throw fail('BAD_PREFIX', `tablePrefix "${prefix}": letters, digits and _`, { exitCode: 2 });
  return prefix;
}
