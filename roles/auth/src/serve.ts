/**
 * Serves the authentication app on this server's public address, port 443, until SIGTERM. Settings
 * and secrets come from the datastore (config/auth, secrets/auth); the log is one line per event.
 * The certificate follows the datastore: checked every 10 s, a new one (a renewal) is served from
 * the next connection on, once its key is checked to match; open connections are not cut.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createServer } from 'node:https';
import { keys } from '@adt/configstore';
import { logLine as log, openDatastore, whoAmI } from '@adt/role-common';
import { createAuthApp } from './app.ts';
import { sendMail } from './smtp.ts';

export async function main(): Promise<number> {
  const store = openDatastore();
  const [settings, secrets] = await store.requireAll([keys.auth, keys.authSecrets] as const, 'the build, with WEB_FIREWALL=auth,');
  const self = await whoAmI();
  const app = createAuthApp({
    store,
    allowList: settings.allowList,
    admins: settings.admins,
    baseUrl: settings.baseUrl,
    siteName: settings.siteName,
    grantMinutes: settings.grantMinutes,
    linkMinutes: settings.linkMinutes,
    secret: Buffer.from(secrets.secret, 'hex'),
    log,
    sendMail: (to, subject, text) => sendMail(settings.smtp, { from: settings.from, to, subject, text }),
  });
  const server = createServer({ cert: secrets.tls.chain, key: secrets.tls.key, minVersion: 'TLSv1.2' }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(443, self.publicIp, () => resolve());
  });
  const serial = new X509Certificate(secrets.tls.chain).serialNumber;
  log(`authentication app on https://${self.publicIp}:443 for ${settings.baseUrl}, certificate ${serial}`);
  let served = secrets.tls.chain;
  let checking = false;
  const follow = setInterval(() => {
    if (checking) return;
    checking = true;
    void followCertificate().finally(() => (checking = false));
  }, 10_000);
  async function followCertificate() {
    try {
      const now = (await store.get(keys.authSecrets))?.tls;
      if (!now || now.chain === served) return;
      const cert = new X509Certificate(now.chain);
      if (!cert.checkPrivateKey(createPrivateKey(now.key)))
        return log(`certificate ${cert.serialNumber} in the datastore does not match its key: still serving the current one`);
      server.setSecureContext({ cert: now.chain, key: now.key, minVersion: 'TLSv1.2' });
      served = now.chain;
      log(`installed certificate ${cert.serialNumber} (valid until ${new Date(cert.validTo).toISOString()})`);
    } catch (error) {
      log(`certificate check failed (still serving the current one): ${(error as Error).message}`);
    }
  }
  await new Promise<void>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => server.close(() => resolve()));
  });
  clearInterval(follow);
  return 0;
}
