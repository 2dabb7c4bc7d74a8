/** Where this webserver's stack lives (one place for the bootstrap and the certificate sync). */
import { execaRunner } from '@adt/core';
import type { ApacheOptions, NginxOptions } from '@adt/webserver';
import * as web from '@adt/webserver';

export const TLS_DIR = '/etc/adt/tls';
export const CHAIN_FILE = `${TLS_DIR}/fullchain.pem`;
export const KEY_FILE = `${TLS_DIR}/server.key`;

const runner = execaRunner({ timeoutMs: 60_000 });

export const NGINX: NginxOptions = { confFile: '/etc/nginx/adt.conf', pidFile: '/run/nginx-adt.pid', logDir: '/var/log/nginx', runner };
export const APACHE: ApacheOptions = {
  confFile: '/etc/apache2/adt.conf',
  pidFile: '/run/apache2-adt.pid',
  logDir: '/var/log/apache2',
  runDir: '/run/apache2-adt',
  runner,
};

/** Starts the webserver of `kind` with its written config, or reloads it gracefully. */
export function startOrReloadWeb(kind: 'nginx' | 'apache'): Promise<number> {
  return kind === 'apache' ? web.startOrReloadApache(APACHE) : web.startOrReload(NGINX);
}
