/**
 * The database server's bootstrap, run once by its user-data (after its secrets and packages, see
 * roles/common/src/boot.ts): MariaDB on the private address, the application's database and user
 * (allowed from the private network only, credentials from the datastore), its host firewall
 * following the fleet, then its IP and readiness published.
 */
import { execaRunner } from '@adt/core';
import { keys, registerServer } from '@adt/configstore';
import * as mariadb from '@adt/database/engines/mariadb';
import { DB_LAYOUT, runBootstrap, startPeriodicJobs } from '@adt/role-common';

export function main(argv: string[]): Promise<number> {
  return runBootstrap('database', argv, async ({ store, self, step }) => {
    const creds = await store.require(keys.dbCredentials, 'the build, before it creates servers,');
    const o: mariadb.MariaDbOptions = {
      ...DB_LAYOUT,
      bindAddress: self.privateIp,
      port: creds.port,
      runner: execaRunner({ timeoutMs: 120_000 }),
    };
    await mariadb.initialise(o);
    await mariadb.start(o);
    await step('mariadb running');
    const vpc = self.privateIp.replace(/\.\d+$/, '.0/24');
    await mariadb.provision(o, { database: creds.name, user: creds.user, password: creds.password, allowFrom: [vpc] });
    await step(`database ${creds.name} and user ${creds.user} (from ${vpc}) provisioned`);
    // The host firewall follows the fleet from now on (webservers register as they come).
    await startPeriodicJobs('database', await store.get(keys.backups));
    await step('firewall following the fleet');
    await registerServer(store, { ...self, role: 'database' });
  });
}
