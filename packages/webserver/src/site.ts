/**
 * One site, as every web server is given it (nginx, apache): names, listeners, paths, FastCGI
 * parameters, and the validation both share, so that no value can inject configuration.
 */
import { errorFactory } from '@adt/core';

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

const NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const PARAM = /^[A-Z_][A-Z0-9_]{0,63}$/;
const SAFE_VALUE = /^[A-Za-z0-9._/:-]{0,200}$/;
const ALIAS_PATH = /^\/[A-Za-z0-9._-]+\/$/;
const ALIAS_DIR = /^\/[A-Za-z0-9._/-]+\/$/;

export interface CheckedSite {
  /** `address:port` (IPv6 bracketed) of each HTTPS listener, and of each redirecting HTTP one. */
  https: string[];
  http: string[];
  /** Validated FastCGI parameters, in order. */
  params: [string, string][];
  alias?: { urlPath: string; dir: string };
}

/** Validates what both web servers need validated; throws BAD_* (exit 2) naming the value. */
export function checkSite(server: 'nginx' | 'apache', site: SiteOptions): CheckedSite {
  const fail = errorFactory('webserver', server);
  for (const name of site.serverNames)
    if (!NAME.test(name)) throw fail('BAD_NAME', `server name "${name}" is not a DNS name`, { exitCode: 2 });
  if (site.https.length === 0) throw fail('BAD_LISTEN', 'at least one HTTPS listener is needed', { exitCode: 2 });
  const listen = (l: { address: string; port: number }) => {
    if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535)
      throw fail('BAD_PORT', `listen port ${l.port}: use 1-65535`, { exitCode: 2 });
    return l.address.includes(':') ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`;
  };
  const params = Object.entries(site.fastcgiParams ?? {}).map(([k, v]): [string, string] => {
    if (!PARAM.test(k) || !SAFE_VALUE.test(v))
      throw fail('BAD_PARAM', `fastcgi parameter ${k}="${v}": names are A-Z0-9_, values letters, digits and ._/:-`, { exitCode: 2 });
    return [k, v];
  });
  const a = site.contentAlias;
  if (a && (!ALIAS_PATH.test(a.urlPath) || !ALIAS_DIR.test(a.dir))) {
    throw fail('BAD_ALIAS', `contentAlias ${a.urlPath} -> ${a.dir}: a URL path like /wp-content/ and an absolute directory ending in /`, {
      exitCode: 2,
    });
  }
  return { https: site.https.map(listen), http: (site.httpRedirect ?? []).map(listen), params, alias: a };
}
