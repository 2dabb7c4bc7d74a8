/**
 * nginx for one site: a complete main configuration of our own (its own pid file and logs, no
 * Debian default site), HTTPS on the given addresses, PHP through php-fpm, hardened defaults.
 * Config builders are pure; the lifecycle runs `nginx` argv arrays through the Runner.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorFactory, lastLines, livePidFromFile, stopProcess, waitForPidFile, type Runner } from '@adt/core';
import { checkSite, type SiteOptions } from './site.ts';

export type { SiteOptions } from './site.ts';

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

/** The whole nginx configuration for one site, as data. */
export function nginxConfig(o: Omit<NginxOptions, 'runner'>, site: SiteOptions): string {
  const checked = checkSite('nginx', site);
  const params = checked.params.map(([k, v]) => `      fastcgi_param ${k} ${v};`);
  const names = site.serverNames.join(' ');
  const alias = checked.alias;
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
${checked.https.map((l) => `    listen ${l} ssl http2;`).join('\n')}
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
${
  alias
    ? `
    location ^~ ${alias.urlPath} {
      alias ${alias.dir};
      location ~* \\.(php|phtml|phar)$ { deny all; }
    }
`
    : ''
}
    location ~ \\.php$ {
      try_files $uri =404;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param HTTPS on;
${params.join('\n')}
      fastcgi_pass unix:${site.phpSocket};
    }
  }
${
  checked.http.length
    ? `
  server {
${checked.http.map((l) => `    listen ${l};`).join('\n')}
    server_name ${names};
    return 301 https://$host$request_uri;
  }
`
    : ''
}}
`;
}

export async function writeNginxConfig(o: NginxOptions, site: SiteOptions): Promise<void> {
  await mkdir(dirname(o.confFile), { recursive: true });
  await mkdir(o.logDir, { recursive: true });
  await writeFile(o.confFile, nginxConfig(o, site), { mode: 0o644 });
  const test = await o.runner.run(['nginx', '-t', '-q', '-c', o.confFile], { nothrow: true });
  if (test.exitCode !== 0) throw fail('BAD_CONFIG', `nginx rejects ${o.confFile}: ${lastLines(test.stderr, 2)}`);
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
