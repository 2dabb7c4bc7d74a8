/**
 * The webserver's bootstrap, run once by its user-data (after its secrets and packages, see
 * roles/common/src/boot.ts): register (so the database's firewall lets it in), wait for the
 * database, install TLS and the application's config from the datastore, start php-fpm and nginx,
 * and publish `ready` only after a local HTTPS request returns the application.
 */
import { mkdir } from 'node:fs/promises';
import { execaRunner, pollUntil } from '@adt/core';
import { keys, registerServer, type ApplicationSecrets, type DbCredentials, type SiteSettings, type SiteTls } from '@adt/configstore';
import * as mariadb from '@adt/database/engines/mariadb';
import * as web from '@adt/webserver';
import { installCertificate } from './certificate.ts';
import { APACHE, CHAIN_FILE, KEY_FILE, NGINX, startOrReloadWeb } from './stack.ts';
import { SITE_CONTENT_DIR, httpsGet, runBootstrap, startPeriodicJobs, type BootContext } from '@adt/role-common';

export function main(argv: string[]): Promise<number> {
  return runBootstrap('webserver', argv, async ({ store, self, step }) => {
    await registerServer(store, { ...self, role: 'webserver' });
    await step('registered');
    const [site, tls, creds, app] = await store.requireAll(
      [keys.site, keys.siteTls, keys.dbCredentials, keys.applicationSecrets] as const,
      'the build, before it creates servers,',
    );
    await configure({ store, self, step }, site, tls, creds, app);
  });
}

async function configure(
  { store, self, step }: BootContext,
  site: SiteSettings,
  tls: SiteTls,
  creds: DbCredentials,
  app: ApplicationSecrets,
): Promise<void> {
  const dbIp = await pollUntil(async () => (await store.listOf(keys.databaseIps))[0] ?? null, {
    what: 'the database server to publish its address',
    timeoutMs: 180_000,
    ignoreErrors: true,
  });
  await step(`database at ${dbIp}`);
  const runner = execaRunner({ timeoutMs: 60_000 });
  // Within about one firewall period, the database lets this webserver in.
  await pollUntil(
    async () =>
      (await mariadb.tryConnect(runner, {
        host: dbIp,
        port: creds.port,
        user: creds.user,
        password: creds.password,
        database: creds.name,
      })) === null,
    { what: `the database (${dbIp}) to accept this webserver`, timeoutMs: 120_000, intervalMs: 1000, ignoreErrors: true },
  );
  await step('database reachable');

  await installCertificate(tls);
  const host = new URL(site.siteUrl).hostname;
  await web.writeWordPressConfig('/etc/wordpress', {
    siteUrl: site.siteUrl,
    db: { host: dbIp, port: creds.port, name: creds.name, user: creds.user, password: creds.password },
    // The fleet's one set (the build made it): a session is valid whichever webserver answers.
    salts: app.wordpressSalts,
  });
  const fpm: web.PhpFpmOptions = {
    confFile: '/etc/php/8.2/fpm/adt-fpm.conf',
    pidFile: '/run/php/adt-fpm.pid',
    logFile: '/var/log/adt/php-fpm.log',
    socket: '/run/php/adt-fpm.sock',
    runner,
  };
  await mkdir('/var/log/adt', { recursive: true });
  await web.writePhpFpmConfig(fpm);
  await web.startOrReloadPhpFpm(fpm);
  const siteOptions: web.SiteOptions = {
    serverNames: [host],
    https: [
      { address: self.publicIp, port: 443 },
      { address: self.privateIp, port: 443 },
    ],
    httpRedirect: [{ address: self.publicIp, port: 80 }],
    webroot: '/usr/share/wordpress',
    certChainFile: CHAIN_FILE,
    keyFile: KEY_FILE,
    phpSocket: fpm.socket,
    fastcgiParams: { WORDPRESS_CONFIG: web.configName(site.siteUrl) },
    // Debian's WordPress keeps the site's own files (uploads, themes, plugins) there (WP_CONTENT_DIR).
    contentAlias: { urlPath: '/wp-content/', dir: `${SITE_CONTENT_DIR}/` },
  };
  if (site.webserver === 'apache') await web.writeApacheConfig(APACHE, siteOptions);
  else await web.writeNginxConfig(NGINX, siteOptions);
  await startOrReloadWeb(site.webserver);
  await step(`${site.webserver} and php-fpm running`);
  const status = await pollUntil(
    async () => {
      const s = (await httpsGet(self.privateIp, host, tls.ca)).status;
      return s === 200 || s === 302 ? s : null;
    },
    { what: 'the site to answer over HTTPS', timeoutMs: 60_000, ignoreErrors: true },
  );
  await step(`the application answers (HTTP ${status})`);
  await startPeriodicJobs('webserver', await store.get(keys.backups));
  await step('firewall following the fleet');
}
