/**
 * What this webserver serves: the web server's site config for a release of the code (its own
 * directory as document root, so a switch is one graceful reload), and the check that it serves
 * it: a request to this webserver that WordPress answered (it read the database: 200 or 302) with
 * the release's id in its `X-ADT-Release` header.
 */
import { keys, type ConfigStore, type Release, type SiteSettings, type SiteTls } from '@adt/configstore';
import { AdtError, pollUntil } from '@adt/core';
import * as web from '@adt/webserver';
import { SITE, installReleaseHere } from '@adt/role-common';
import type { Self } from '@adt/role-common';
import { APACHE, CHAIN_FILE, KEY_FILE, NGINX, startOrReloadWeb } from './stack.ts';

export const FPM_SOCKET = '/run/php/adt-fpm.sock';

type Served = Pick<Self, 'privateIp' | 'publicIp'>;

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) =>
  new AdtError(code, message, { pkg: 'roles', driver: 'webserver', exitCode });

/** Writes the web server's site config for `release` and reloads it gracefully (or starts it). */
export async function serveRelease(site: SiteSettings, self: Served, release: Release): Promise<void> {
  const code = web.codeDir(SITE, release.id);
  const host = new URL(site.siteUrl).hostname;
  const siteOptions: web.SiteOptions = {
    serverNames: [host],
    https: [
      { address: self.publicIp, port: 443 },
      { address: self.privateIp, port: 443 },
    ],
    httpRedirect: [{ address: self.publicIp, port: 80 }],
    webroot: code,
    certChainFile: CHAIN_FILE,
    keyFile: KEY_FILE,
    phpSocket: FPM_SOCKET,
    fastcgiParams: { WORDPRESS_CONFIG: web.configName(site.siteUrl) },
    // The site's own files (themes, plugins, and the shared uploads through their link) are served
    // as static files only: no PHP under /wp-content/ runs, an uploaded script least of all.
    contentAlias: { urlPath: '/wp-content/', dir: `${code}/wp-content/` },
  };
  if (site.webserver === 'apache') await web.writeApacheConfig(APACHE, siteOptions);
  else await web.writeNginxConfig(NGINX, siteOptions);
  await startOrReloadWeb(site.webserver);
  await web.makeCurrent(SITE, release.id);
}

/** Waits until this webserver serves `release` (WordPress answered with its id); returns the status. */
export async function waitServing(ip: string, host: string, tls: SiteTls, release: Release, timeoutMs = 60_000): Promise<number> {
  let last = 'no answer';
  try {
    return await pollUntil(
      async () => {
        const r = await web.httpsGet(ip, host, tls.ca).catch((e: Error) => ({ status: 0, release: null, error: e.message }));
        last = r.status ? `HTTP ${r.status}, release ${r.release ?? 'none'}` : ((r as { error?: string }).error ?? 'no answer');
        return (r.status === 200 || r.status === 302) && r.release === release.id ? r.status : null;
      },
      { what: `the site to answer with release ${release.id}`, timeoutMs, intervalMs: 250 },
    );
  } catch {
    throw fail('NOT_SERVING', `this webserver does not serve release ${release.id} over HTTPS (last: ${last})`);
  }
}

/**
 * Installs and serves `id` (the site's current release, or an earlier one named in its record):
 * download, check, unpack, reconfigure, reload, and the check that it answers with it.
 */
export async function switchTo(store: ConfigStore, self: Served, id: string | null) {
  const [site, tls, record] = await store.requireAll([keys.site, keys.siteTls, keys.releases] as const, 'the build');
  const release = id ? [record.current, ...record.previous].find((r) => r.id === id) : record.current;
  if (!release)
    throw fail(
      'UNKNOWN_RELEASE',
      `release ${id} is not in the site's record (current ${record.current.id}); roles/build/Release list shows them`,
      2,
    );
  const before = await web.currentRelease(SITE);
  const t = Date.now();
  await installReleaseHere(store, release, site.mode !== 'production');
  await serveRelease(site, self, release);
  const status = await waitServing(self.privateIp, new URL(site.siteUrl).hostname, tls, release);
  const pruned = await web.pruneReleases(SITE, 5, before ? [before] : []);
  return { release: release.id, before, status, seconds: Number(((Date.now() - t) / 1000).toFixed(1)), pruned };
}
