/**
 * The authentication server's bootstrap, run once by its user-data: register, start the sign-in
 * app on 443 (restarted by the supervisor if it dies), check it answers, start the host firewall
 * (443 open to everyone: people sign in here), publish ready.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { keys, registerServer } from '@adt/configstore';
import { CODE_DIR, JOB_LOG_DIR, httpsGet, openDatastore, runMain, startPeriodicJobs, steps, waitFor, whoAmI } from '@adt/role-common';

async function main() {
  const progress = steps('auth');
  const store = openDatastore();
  const self = await whoAmI();
  progress.step(`bootstrap started on ${self.name} (${self.publicIp})`);
  await registerServer(store, { ...self, role: 'auth' });
  progress.step('registered');
  // (This server's key decrypts its own secrets only: the site's certificate is the webservers' business.)
  const settings = await store.get(keys.auth);
  if (!settings) throw new Error(`${keys.auth.path} missing from the datastore`);
  await mkdir(JOB_LOG_DIR, { recursive: true });
  const log = openSync(join(JOB_LOG_DIR, 'auth.log'), 'a', 0o600);
  spawn(join(CODE_DIR, 'node_modules/.bin/tsx'), [join(CODE_DIR, 'roles/common/src/supervise.ts'), 'roles/auth/src/serve.ts'], {
    detached: true,
    stdio: ['ignore', log, log],
  }).unref();
  closeSync(log);
  const host = new URL(settings.baseUrl).hostname;
  const status = await waitFor(
    'the sign-in app to answer over HTTPS',
    async () => ((await httpsGet(self.publicIp, host, settings.ca, 5000)).status === 200 ? 200 : null),
    60_000,
  );
  progress.step(`sign-in app answers (HTTP ${status})`);
  await startPeriodicJobs('auth');
  progress.step('firewall following the fleet');
  await progress.ready(store, self);
}

if (import.meta.url === `file://${process.argv[1]}`) void runMain(main);
