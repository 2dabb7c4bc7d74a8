/**
 * The webserver's bootstrap, run once by its user-data: register (so the database's firewall lets it
 * in), wait for the database, install TLS and the application's config from the datastore, start
 * php-fpm and nginx, and publish `ready` only after a local HTTPS request returns the application.
 */
import { mkdir } from 'node:fs/promises';
import { execaRunner } from '@adt/core';
import { keys, registerServer } from '@adt/configstore';
import * as mariadb from '@adt/database/engines/mariadb';
import * as web from '@adt/webserver';
import { installCertificate } from './certificate.ts';
import { APACHE, CHAIN_FILE, KEY_FILE, NGINX, startOrReloadWeb } from './stack.ts';
import {
  SITE_CONTENT_DIR,
  ensurePackages,
  httpsGet,
  openDatastore,
  runMain,
  startPeriodicJobs,
  steps,
  waitFor,
  whoAmI,
} from '@adt/role-common';

async function main() {
  const progress = steps('webserver');
  const store = openDatastore();
  const self = await whoAmI();
  progress.step(`bootstrap started on ${self.name} (${self.publicIp}, ${self.privateIp})`);
  await registerServer(store, { ...self, role: 'webserver' });
  progress.step('registered');
  const [site, tls, creds] = await Promise.all([store.get(keys.site), store.get(keys.siteTls), store.get(keys.dbCredentials)]);
  const missing = [
    [keys.site, site],
    [keys.siteTls, tls],
    [keys.dbCredentials, creds],
  ]
    .filter(([, v]) => !v)
    .map(([k]) => (k as { path: string }).path);
  if (!site || !tls || !creds)
    throw new Error(`${missing.join(', ')} missing from the datastore: the build writes them before creating servers`);
  const installed = await ensurePackages([
    site.webserver === 'apache' ? { command: 'apache2', pkg: 'apache2' } : { command: 'nginx', pkg: 'nginx' },
    { command: 'php-fpm8.2', pkg: 'php8.2-fpm' },
    { command: 'mariadb', pkg: 'mariadb-client' },
    { command: 'iptables-restore', pkg: 'iptables' },
    { file: '/etc/php/8.2/mods-available/mysqli.ini', pkg: 'php8.2-mysql' },
    ...['xml', 'mbstring', 'curl', 'zip', 'intl'].map((ext) => ({ file: `/etc/php/8.2/mods-available/${ext}.ini`, pkg: `php8.2-${ext}` })),
    { file: '/usr/share/wordpress/wp-settings.php', pkg: 'wordpress' },
  ]);
  progress.step(installed.length ? `installed ${installed.join(', ')}` : 'packages present');
  const dbIp = await waitFor(
    'the database server to publish its address',
    async () => (await store.listOf(keys.databaseIps))[0] ?? null,
    180_000,
  );
  progress.step(`database at ${dbIp}`);
  const runner = execaRunner({ timeoutMs: 60_000 });
  // Within about one firewall period, the database lets this webserver in.
  await waitFor(
    `the database (${dbIp}) to accept this webserver`,
    async () =>
      (await mariadb.tryConnect(runner, {
        host: dbIp,
        port: creds.port,
        user: creds.user,
        password: creds.password,
        database: creds.name,
      })) === null,
    120_000,
    1000,
  );
  progress.step('database reachable');

  await installCertificate(tls);
  const host = new URL(site.siteUrl).hostname;
  await web.writeWordPressConfig('/etc/wordpress', {
    siteUrl: site.siteUrl,
    db: { host: dbIp, port: creds.port, name: creds.name, user: creds.user, password: creds.password },
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
  progress.step(`${site.webserver} and php-fpm running`);
  const status = await waitFor(
    'the site to answer over HTTPS',
    async () => {
      const s = (await httpsGet(self.privateIp, host, tls.ca)).status;
      return s === 200 || s === 302 ? s : null;
    },
    60_000,
  );
  progress.step(`the application answers (HTTP ${status})`);
  await startPeriodicJobs('webserver', await store.get(keys.backups));
  progress.step('firewall following the fleet');
  await progress.ready(store, self);
}

if (import.meta.url === `file://${process.argv[1]}`) void runMain(main);
