/**
 * Apache (Debian's apache2) for one site, the alternative to nginx: a complete main configuration of
 * our own (no Debian sites or envvars), the event MPM, HTTPS with mod_ssl, PHP handed to php-fpm
 * through mod_proxy_fcgi, the same hardening as the nginx site. It takes the same SiteOptions.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorFactory, lastLines, livePidFromFile, stopProcess, waitForPidFile, type Runner } from '@adt/core';
import { checkSite, type SiteOptions } from './site.ts';

const fail = errorFactory('webserver', 'apache');

export interface ApacheOptions {
  /** Our main config file (e.g. /etc/apache2/adt.conf). */
  confFile: string;
  /** Pid file (e.g. /run/apache2-adt.pid). */
  pidFile: string;
  /** Directory of the access and error logs (e.g. /var/log/apache2). */
  logDir: string;
  /** Run-time directory (mutexes, the shared-memory session cache), e.g. /run/apache2-adt. */
  runDir: string;
  /** Worker user and group (default www-data). */
  user?: string;
  runner: Runner;
}

const MODULES_DIR = '/usr/lib/apache2/modules';
const MODULES = [
  'mpm_event',
  'authz_core',
  'authz_host',
  'dir',
  'mime',
  'env',
  'setenvif',
  'headers',
  'alias',
  'rewrite',
  'socache_shmcb',
  'ssl',
  'proxy',
  'proxy_fcgi',
];

const PATH = /^\/[A-Za-z0-9._/-]*$/;

/** The whole apache configuration for one site, as data. */
export function apacheConfig(o: Omit<ApacheOptions, 'runner'>, site: SiteOptions): string {
  const checked = checkSite('apache', site);
  for (const [field, p] of [
    ['webroot', site.webroot],
    ['certChainFile', site.certChainFile],
    ['keyFile', site.keyFile],
    ['phpSocket', site.phpSocket],
  ] as const) {
    if (!PATH.test(p)) throw fail('BAD_PATH', `${field} "${p}": an absolute path of letters, digits and ._/-`, { exitCode: 2 });
  }
  // mod_proxy_fcgi passes the request's environment to php-fpm as FastCGI parameters.
  const env = checked.params.map(([k, v]) => `    SetEnv ${k} ${v}`);
  const [name, ...aliases] = site.serverNames;
  const alias = checked.alias;
  const user = o.user ?? 'www-data';
  const { https, http } = checked;
  const names = `    ServerName ${name}${aliases.length ? `\n    ServerAlias ${aliases.join(' ')}` : ''}`;
  return `# Written by the Agile Deployment Toolkit (webserver role). Changes are overwritten.
ServerRoot /etc/apache2
DefaultRuntimeDir ${o.runDir}
PidFile ${o.pidFile}
Mutex file:${o.runDir} default
${MODULES.map((m) => `LoadModule ${m}_module ${MODULES_DIR}/mod_${m}.so`).join('\n')}

User ${user}
Group ${user}
ServerName ${name}
ServerTokens Prod
ServerSignature Off
TraceEnable Off
Timeout 60
KeepAlive On
LimitRequestBody ${(site.clientMaxBodyMb ?? 64) * 1024 * 1024}
TypesConfig /etc/mime.types
ErrorLog ${join(o.logDir, 'adt-error.log')}
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined
CustomLog ${join(o.logDir, 'adt-access.log')} combined

SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLHonorCipherOrder off
SSLSessionCache shmcb:${join(o.runDir, 'ssl_scache')}(512000)
SSLSessionTickets off

<Directory />
    Options None
    AllowOverride None
    Require all denied
</Directory>

${https.map((l) => `Listen ${l} https`).join('\n')}
${http.map((l) => `Listen ${l} http`).join('\n')}

<VirtualHost ${https.join(' ')}>
${names}
    DocumentRoot ${site.webroot}
    DirectoryIndex index.php index.html
    SSLEngine on
    SSLCertificateFile ${site.certChainFile}
    SSLCertificateKeyFile ${site.keyFile}
    Header always set Strict-Transport-Security "max-age=86400"
    Header always set X-Content-Type-Options nosniff
    Header always set X-Frame-Options SAMEORIGIN
    Header always set Referrer-Policy strict-origin-when-cross-origin
    <Directory ${site.webroot}>
        Options FollowSymLinks
        AllowOverride None
        Require all granted
        # Pretty links: what is not a file or directory goes to WordPress's index.php.
        FallbackResource /index.php
    </Directory>
${
  alias
    ? `    Alias ${alias.urlPath} ${alias.dir}
    <Directory ${alias.dir}>
        Options FollowSymLinks
        AllowOverride None
        Require all granted
        # Static files only here: PHP is refused (never run, never shown as source).
        <FilesMatch "(?i)\\.(php|phtml|phar)$">
            Require all denied
        </FilesMatch>
    </Directory>
`
    : ''
}    # Hidden files (.git, .env, .htaccess...) and PHP in upload folders are never served.
    <LocationMatch "/\\.(?!well-known/)">
        Require all denied
    </LocationMatch>
    <LocationMatch "(?i)/(uploads|files)/.*\\.php$">
        Require all denied
    </LocationMatch>
    # This virtual host is HTTPS only: tell PHP (WordPress's is_ssl()), as nginx's "fastcgi_param HTTPS on" does.
    SetEnv HTTPS on
${env.join('\n')}
    <FilesMatch "\\.php$">
        <If "-f %{REQUEST_FILENAME}">
            SetHandler "proxy:unix:${site.phpSocket}|fcgi://localhost"
        </If>
    </FilesMatch>
</VirtualHost>
${
  http.length
    ? `
<VirtualHost ${http.join(' ')}>
${names}
    RewriteEngine On
    RewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [R=301,L]
</VirtualHost>
`
    : ''
}`;
}

export async function writeApacheConfig(o: ApacheOptions, site: SiteOptions): Promise<void> {
  await mkdir(dirname(o.confFile), { recursive: true });
  await mkdir(o.logDir, { recursive: true });
  await mkdir(o.runDir, { recursive: true });
  await writeFile(o.confFile, apacheConfig(o, site), { mode: 0o644 });
  const test = await o.runner.run(['apache2', '-t', '-f', o.confFile], { nothrow: true });
  if (test.exitCode !== 0) throw fail('BAD_CONFIG', `apache rejects ${o.confFile}: ${lastLines(test.stderr, 2)}`);
}

/** Starts apache (it daemonizes), or reloads it gracefully when it runs already. Returns the parent PID. */
export async function startOrReloadApache(o: ApacheOptions): Promise<number> {
  const running = await livePidFromFile(o.pidFile);
  if (running) {
    await o.runner.run(['apache2', '-f', o.confFile, '-k', 'graceful']);
    return running;
  }
  await o.runner.run(['apache2', '-f', o.confFile, '-k', 'start']);
  const pid = await waitForPidFile(o.pidFile, 5000);
  if (pid) return pid;
  throw fail('START_FAILED', `apache did not write ${o.pidFile} within 5 s: see ${join(o.logDir, 'adt-error.log')}`);
}

/** Stops apache gracefully (SIGWINCH lets requests finish) and waits, bounded, for it to exit. */
export async function stopApache(o: ApacheOptions, timeoutMs = 15_000): Promise<void> {
  const pid = await livePidFromFile(o.pidFile);
  if (pid) await stopProcess(pid, { signal: 'SIGWINCH', timeoutMs });
}
