/**
 * The authentication server's bootstrap, run once by its user-data: register, start the sign-in
 * app on 443 (restarted by the supervisor if it dies), check it answers, start the host firewall
 * (443 open to everyone: people sign in here), publish ready.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { keys } from '@adt/configstore';
import { CODE_DIR, JOB_LOG_DIR, openDatastore, runMain, startPeriodicJobs, steps, waitFor, whoAmI } from '@adt/role-common';

function answers(ip: string, host: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port: 443, path: '/', servername: host, ca, headers: { host }, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function main() {
  const progress = steps('auth');
  const store = openDatastore();
  const self = await whoAmI();
  progress.step(`bootstrap started on ${self.name} (${self.publicIp})`);
  await store.put(keys.authIps.key(self.privateIp), { name: self.name, role: 'auth', privateIp: self.privateIp, publicIp: self.publicIp, at: new Date().toISOString() });
  progress.step('registered');
  // (This server's key decrypts its own secrets only: the site's certificate is the webservers' business.)
  const settings = await store.get(keys.auth);
  if (!settings) throw new Error(`${keys.auth.path} missing from the datastore`);
  await mkdir(JOB_LOG_DIR, { recursive: true });
  const log = openSync(join(JOB_LOG_DIR, 'auth.log'), 'a', 0o600);
  spawn(join(CODE_DIR, 'node_modules/.bin/tsx'), [join(CODE_DIR, 'roles/common/src/supervise.ts'), 'roles/auth/src/serve.ts'], { detached: true, stdio: ['ignore', log, log] }).unref();
  closeSync(log);
  const host = new URL(settings.baseUrl).hostname;
  const status = await waitFor('the sign-in app to answer over HTTPS', async () => ((await answers(self.publicIp, host, settings.ca)) === 200 ? 200 : null), 60_000);
  progress.step(`sign-in app answers (HTTP ${status})`);
  await startPeriodicJobs('auth');
  progress.step('firewall following the fleet');
  await progress.ready(store, self);
}

if (import.meta.url === `file://${process.argv[1]}`) void runMain(main);
