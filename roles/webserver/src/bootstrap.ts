/**
 * The webserver's bootstrap, run once by its user-data (after its secrets and packages, see
 * roles/common/src/boot.ts): register (so the database's firewall lets it in), wait for the
 * database, install TLS, mount the site's shared files (s3fs), install the site's current release
 * of the code (this webserver makes the first one when there is none) and the application's config
 * from the datastore, start php-fpm and nginx, and publish `ready` only after a local HTTPS request
 * returns the application from that release.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execaRunner, pollUntil } from '@adt/core';
import { keys, registerServer, type ApplicationSecrets, type DbCredentials, type SiteSettings, type SiteTls } from '@adt/configstore';
import * as mariadb from '@adt/database/engines/mariadb';
import * as web from '@adt/webserver';
import { installCertificate, markServed } from './certificate.ts';
import { FPM_SOCKET, serveRelease, waitServing } from './serve.ts';
import {
  JOB_LOG_DIR,
  SITE,
  currentOrFirstRelease,
  installReleaseHere,
  runBootstrap,
  startPeriodicJobs,
  startService,
  waitForSharedFiles,
  type BootContext,
} from '@adt/role-common';

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
  // The site's shared files first: the release links its uploads to them.
  await startService('SharedFiles', join(JOB_LOG_DIR, 'shared-files.log'));
  await waitForSharedFiles();
  await step(`shared files mounted (bucket ${(await store.require(keys.sharedFiles)).bucket}, s3fs)`);
  const release = await currentOrFirstRelease(store, step);
  const production = site.mode === 'production';
  await installReleaseHere(store, release, !production);
  await step(`release ${release.id} installed (${release.source})`);
  await web.writeWordPressConfig('/etc/wordpress', {
    siteUrl: site.siteUrl,
    db: { host: dbIp, port: creds.port, name: creds.name, user: creds.user, password: creds.password },
    // The fleet's one set (the build made it): a session is valid whichever webserver answers.
    salts: app.wordpressSalts,
    releases: { production, releaseCommand: 'roles/build/Release publish', currentCode: `${web.currentLink(SITE)}/code` },
  });
  const fpm: web.PhpFpmOptions = {
    confFile: '/etc/php/8.2/fpm/adt-fpm.conf',
    pidFile: '/run/php/adt-fpm.pid',
    logFile: '/var/log/adt/php-fpm.log',
    socket: FPM_SOCKET,
    runner,
  };
  await mkdir('/var/log/adt', { recursive: true });
  await web.writePhpFpmConfig(fpm);
  await web.startOrReloadPhpFpm(fpm);
  await serveRelease(site, self, release);
  await markServed(tls);
  await step(`${site.webserver} and php-fpm running`);
  // Only a complete webserver is ready: WordPress answers (it read the database) from this release.
  const status = await waitServing(self.privateIp, host, tls, release);
  await step(`the application answers (HTTP ${status}, release ${release.id})`);
  await startPeriodicJobs('webserver', await store.get(keys.backups));
  await step('firewall following the fleet');
}
