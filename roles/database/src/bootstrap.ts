/**
 * The database server's bootstrap, run once by its user-data: MariaDB on the private address, the
 * application's database and user (allowed from the private network only, credentials from the
 * datastore), its host firewall following the fleet, then its IP and readiness published.
 */
import { execaRunner } from '@adt/core';
import { keys, registerServer, type DbCredentials } from '@adt/configstore';
import * as mariadb from '@adt/database/engines/mariadb';
import { DB_LAYOUT, ensurePackages, openDatastore, runMain, startPeriodicJobs, steps, whoAmI } from '@adt/role-common';

async function main() {
  const progress = steps('database');
  const store = openDatastore();
  const self = await whoAmI();
  progress.step(`bootstrap started on ${self.name} (${self.privateIp})`);
  const installed = await ensurePackages([
    { command: 'mariadbd', pkg: 'mariadb-server' },
    { command: 'mariadb', pkg: 'mariadb-client' },
    { command: 'iptables-restore', pkg: 'iptables' },
  ]);
  progress.step(installed.length ? `installed ${installed.join(', ')}` : 'packages present');
  const creds = await store.get<DbCredentials>(keys.dbCredentials);
  if (!creds) throw new Error(`${keys.dbCredentials.path} is not in the datastore: the build writes it before creating servers`);
  const o: mariadb.MariaDbOptions = {
    ...DB_LAYOUT,
    bindAddress: self.privateIp,
    port: creds.port,
    runner: execaRunner({ timeoutMs: 120_000 }),
  };
  await mariadb.initialise(o);
  await mariadb.start(o);
  progress.step('mariadb running');
  const vpc = self.privateIp.replace(/\.\d+$/, '.0/24');
  await mariadb.provision(o, { database: creds.name, user: creds.user, password: creds.password, allowFrom: [vpc] });
  progress.step(`database ${creds.name} and user ${creds.user} (from ${vpc}) provisioned`);
  // The host firewall follows the fleet from now on (webservers register as they come).
  await startPeriodicJobs('database', await store.get(keys.backups));
  progress.step('firewall following the fleet');
  await registerServer(store, { ...self, role: 'database' });
  await progress.ready(store, self);
}

if (import.meta.url === `file://${process.argv[1]}`) void runMain(main);
