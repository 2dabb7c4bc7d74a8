/**
 * nginx for one site: a complete main configuration of our own (its own pid file and logs, no
 * Debian default site), HTTPS on the given addresses, PHP through php-fpm, hardened defaults.
 * Config builders are pure; the lifecycle runs `nginx` argv arrays through the Runner.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorFactory, livePidFromFile, stopProcess, waitForPidFile, type Runner } from '@adt/core';

const fail = errorFactory('webserver', 'nginx');

export interface NginxOptions {
  /** Our main config file (e.g. /etc/nginx/adt.conf). */
  confFile: string;
  /** Master pid file (e.g. /run/nginx-adt.pid). */
  pidFile: string;
  /** Directory of the access and error logs (e.g. /var/log/nginx). */
  logDir: string;
  /** Worker user (default www-data). */
  user?: string;
  runner: Runner;
}

export interface SiteOptions {
  /** Names the site answers to; the first is canonical. */
  serverNames: string[];
  /** HTTPS listeners (the server's addresses; 443 in a fleet). */
  https: { address: string; port: number }[];
  /** Plain HTTP listeners that only redirect to HTTPS. */
  httpRedirect?: { address: string; port: number }[];
  /** Document root (WordPress from Debian: /usr/share/wordpress). */
  webroot: string;
  /** Certificate chain and key. */
  certChainFile: string;
  keyFile: string;
  /** php-fpm's socket path. */
  phpSocket: string;
  /** Extra FastCGI parameters (e.g. WORDPRESS_CONFIG for Debian's WordPress). */
  fastcgiParams?: Record<string, string>;
  /** Largest request body, in MB (uploads; default 64). */
  clientMaxBodyMb?: number;
  /**
   * A URL path served from another directory, static files only (PHP there is refused, never shown
   * as source): Debian's WordPress keeps the site's own files (uploads, themes, plugins) in
   * /var/lib/wordpress/wp-content, served as /wp-content/.
   */
  contentAlias?: { urlPath: string; dir: string };
}

const ALIAS_PATH = /^\/[A-Za-z0-9._-]+\/$/;
const ALIAS_DIR = /^\/[A-Za-z0-9._\/-]+\/$/;

/** Checks a content alias (both forms end with a slash); returns it. */
export function checkContentAlias(a: { urlPath: string; dir: string } | undefined, fail: (code: string, message: string, o: { exitCode: 2 }) => Error) {
  if (a && (!ALIAS_PATH.test(a.urlPath) || !ALIAS_DIR.test(a.dir))) {
    throw fail('BAD_ALIAS', `contentAlias ${a.urlPath} -> ${a.dir}: a URL path like /wp-content/ and an absolute directory ending in /`, { exitCode: 2 });
  }
  return a;
}

const NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const PARAM = /^[A-Z_][A-Z0-9_]{0,63}$/;
const SAFE_VALUE = /^[A-Za-z0-9._\/:-]{0,200}$/;

function listen(l: { address: string; port: number }): string {
  if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535) throw fail('BAD_PORT', `listen port ${l.port}: use 1-65535`, { exitCode: 2 });
  return l.address.includes(':') ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`;
}

/** The whole nginx configuration for one site, as data. */
export function nginxConfig(o: Omit<NginxOptions, 'runner'>, site: SiteOptions): string {
  for (const n of site.serverNames) if (!NAME.test(n)) throw fail('BAD_NAME', `server name "${n}" is not a DNS name`, { exitCode: 2 });
  if (site.https.length === 0) throw fail('BAD_LISTEN', 'at least one HTTPS listener is needed', { exitCode: 2 });
  const params = Object.entries(site.fastcgiParams ?? {}).map(([k, v]) => {
    if (!PARAM.test(k) || !SAFE_VALUE.test(v)) throw fail('BAD_PARAM', `fastcgi parameter ${k}="${v}": names are A-Z0-9_, values letters, digits and ._/:-`, { exitCode: 2 });
    return `      fastcgi_param ${k} ${v};`;
  });
  const names = site.serverNames.join(' ');
  const alias = checkContentAlias(site.contentAlias, fail);
  return `# Written by the Agile Deployment Toolkit (webserver role). Changes are overwritten.
user ${o.user ?? 'www-data'};
worker_processes auto;
pid ${o.pidFile};
error_log ${join(o.logDir, 'adt-error.log')} warn;
events { worker_connections 768; }

http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  server_tokens off;
  keepalive_timeout 65;
  client_max_body_size ${site.clientMaxBodyMb ?? 64}m;
  access_log ${join(o.logDir, 'adt-access.log')};
  gzip on;

  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_prefer_server_ciphers off;
  ssl_session_cache shared:ADT:10m;
  ssl_session_tickets off;

  server {
${site.https.map((l) => `    listen ${listen(l)} ssl http2;`).join('\n')}
    server_name ${names};
    root ${site.webroot};
    index index.php index.html;
    ssl_certificate ${site.certChainFile};
    ssl_certificate_key ${site.keyFile};

    add_header Strict-Transport-Security "max-age=86400" always;
    add_header X-Content-Type-Options nosniff always;
    add_header X-Frame-Options SAMEORIGIN always;
    add_header Referrer-Policy strict-origin-when-cross-origin always;

    # Hidden files (.git, .env, .htaccess...) and PHP in upload folders are never served.
    location ~ /\\.(?!well-known/) { deny all; }
    location ~* /(?:uploads|files)/.*\\.php$ { deny all; }

    location / {
      try_files $uri $uri/ /index.php?$args;
    }
${alias ? `
    location ^~ ${alias.urlPath} {
      alias ${alias.dir};
      location ~* \\.(php|phtml|phar)$ { deny all; }
    }
` : ''}
    location ~ \\.php$ {
      try_files $uri =404;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param HTTPS on;
${params.join('\n')}
      fastcgi_pass unix:${site.phpSocket};
    }
  }
${(site.httpRedirect ?? []).length ? `
  server {
${site.httpRedirect!.map((l) => `    listen ${listen(l)};`).join('\n')}
    server_name ${names};
    return 301 https://$host$request_uri;
  }
` : ''}}
`;
}

export async function writeNginxConfig(o: NginxOptions, site: SiteOptions): Promise<void> {
  await mkdir(dirname(o.confFile), { recursive: true });
  await mkdir(o.logDir, { recursive: true });
  await writeFile(o.confFile, nginxConfig(o, site), { mode: 0o644 });
  const test = await o.runner.run(['nginx', '-t', '-q', '-c', o.confFile], { nothrow: true });
  if (test.exitCode !== 0) throw fail('BAD_CONFIG', `nginx rejects ${o.confFile}: ${test.stderr.trim().split('\n').slice(-2).join(' | ')}`);
}

/** Starts nginx (it daemonizes), or reloads it when it runs already. Returns the master PID. */
export async function startOrReload(o: NginxOptions): Promise<number> {
  const running = await livePidFromFile(o.pidFile);
  if (running) {
    await o.runner.run(['nginx', '-c', o.confFile, '-s', 'reload']);
    return running;
  }
  await o.runner.run(['nginx', '-c', o.confFile]);
  const pid = await waitForPidFile(o.pidFile, 5000);
  if (pid) return pid;
  throw fail('START_FAILED', `nginx did not write ${o.pidFile} within 5 s: see ${join(o.logDir, 'adt-error.log')}`);
}

/** Stops nginx gracefully and waits (bounded) for the master to exit. */
export async function stopNginx(o: NginxOptions, timeoutMs = 15_000): Promise<void> {
  const pid = await livePidFromFile(o.pidFile);
  if (pid) await stopProcess(pid, { signal: 'SIGQUIT', timeoutMs });
}
