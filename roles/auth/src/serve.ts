/**
 * Serves the authentication app on this server's public address, port 443, until SIGTERM. Settings
 * and secrets come from the datastore (config/auth, secrets/auth); the log is one line per event.
 */
import { createServer } from 'node:https';
import { keys } from '@adt/configstore';
import { openDatastore, runMain, whoAmI } from '@adt/role-common';
import { createAuthApp } from './app.ts';
import { sendMail } from './smtp.ts';

async function main(): Promise<number> {
  const store = openDatastore();
  const [settings, secrets] = await Promise.all([store.get(keys.auth), store.get(keys.authSecrets)]);
  if (!settings || !secrets) throw new Error(`${keys.auth.path} or ${keys.authSecrets.path} missing from the datastore: the build writes them with WEB_FIREWALL=auth`);
  const self = await whoAmI();
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const app = createAuthApp({
    store, allowList: settings.allowList, admins: settings.admins, baseUrl: settings.baseUrl, siteName: settings.siteName,
    grantMinutes: settings.grantMinutes, linkMinutes: settings.linkMinutes, secret: Buffer.from(secrets.secret, 'hex'), log,
    sendMail: (to, subject, text) => sendMail(settings.smtp, { from: settings.from, to, subject, text }),
  });
  const server = createServer({ cert: secrets.tls.chain, key: secrets.tls.key, minVersion: 'TLSv1.2' }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(443, self.publicIp, () => resolve());
  });
  log(`authentication app on https://${self.publicIp}:443 for ${settings.baseUrl}`);
  await new Promise<void>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => server.close(() => resolve()));
  });
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) void runMain(main);
