/**
 * The authentication server's bootstrap, run once by its user-data (after its secrets and
 * packages, see roles/common/src/boot.ts): register, start the sign-in app on 443 (restarted by the
 * supervisor if it dies), check it answers, start the host firewall (443 open to everyone: people
 * sign in here), publish ready.
 */
import { join } from 'node:path';
import { pollUntil } from '@adt/core';
import { keys, registerServer } from '@adt/configstore';
import { JOB_LOG_DIR, httpsGet, runBootstrap, startPeriodicJobs, startService } from '@adt/role-common';

export function main(argv: string[]): Promise<number> {
  return runBootstrap('auth', argv, async ({ store, self, step }) => {
    await registerServer(store, { ...self, role: 'auth' });
    await step('registered');
    // (This server's key decrypts its own secrets only: the site's certificate is the webservers' business.)
    const settings = await store.require(keys.auth, 'the build, with WEB_FIREWALL=auth,');
    await startService('sign-in-service', join(JOB_LOG_DIR, 'auth.log'));
    const host = new URL(settings.baseUrl).hostname;
    const status = await pollUntil(async () => ((await httpsGet(self.publicIp, host, settings.ca, 5000)).status === 200 ? 200 : null), {
      what: 'the sign-in app to answer over HTTPS',
      timeoutMs: 60_000,
      ignoreErrors: true,
    });
    await step(`sign-in app answers (HTTP ${status})`);
    await startPeriodicJobs('auth');
    await step('firewall following the fleet');
  });
}
