/**
 * SyncCertificate: installs the datastore's certificate when it differs from this webserver's and
 * reloads the webserver; with `--every N`, keeps doing so (the webserver's periodic job, run by the
 * role's supervisor: a loop that died, or stalled and exited, is started again).
 */
import { parseArgs } from 'node:util';
import { sleep } from '@adt/core';
import { keys } from '@adt/configstore';
import { everySeconds, logLine as log, openDatastore } from '@adt/role-common';
import { describe, installCertificate, isServed, markServed } from './certificate.ts';
import { startOrReloadWeb } from './stack.ts';

async function syncOnce(store: ReturnType<typeof openDatastore>): Promise<string> {
  const tls = await store.get(keys.siteTls);
  if (!tls) return 'no certificate in the datastore yet';
  // Installed and served: a certificate installed by a run whose reload failed is reloaded here.
  if (isServed(tls)) return 'unchanged';
  // Which webserver to reload: read only when there is something to install.
  const site = await store.get(keys.site);
  if (!site) return 'no site settings in the datastore yet';
  await installCertificate(tls);
  await startOrReloadWeb(site.webserver);
  await markServed(tls);
  const d = describe(tls.chain);
  return `installed certificate ${d.serial} (valid until ${d.notAfter}); ${site.webserver} reloaded`;
}

/** `SyncCertificate [--every SECONDS]`. */
export async function syncCertificateMain(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { every: { type: 'string' } }, strict: true });
  const every = everySeconds(values.every, 86400);
  const store = openDatastore();
  if (every === null) {
    log(await syncOnce(store));
    return 0;
  }
  // Bounded by the host's life: one pass per period; a failed pass is logged and retried next period.
  // A pass that hangs (a request or a reload that never answers) ends the loop: its supervisor starts it again.
  const limitMs = Math.max(60, every * 6) * 1000;
  let last = '';
  for (;;) {
    try {
      const watchdog = setTimeout(() => {
        log(`certificate sync: a pass still runs after ${limitMs / 1000} s; exiting (the supervisor starts the loop again)`);
        process.exit(1);
      }, limitMs);
      const r = await syncOnce(store).finally(() => clearTimeout(watchdog));
      // "unchanged" is logged once, not every period.
      if (r !== 'unchanged' || last !== 'unchanged') log(r);
      last = r;
    } catch (e) {
      log(`certificate sync failed: ${(e as Error).message}`);
      last = '';
    }
    await sleep(every * 1000);
  }
}
