/**
 * The site's certificate on this webserver: installed from the datastore (`secrets/tls`, encrypted
 * at rest) and kept equal to it. A renewal on the build machine writes a new one there; every
 * webserver's `SyncCertificate` loop installs it within one period and reloads its webserver
 * gracefully (open connections finish on the old certificate).
 *
 *   roles/webserver/tls/SyncCertificate [--every SECONDS]
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import type { SiteTls } from '@adt/configstore';
import { CHAIN_FILE, KEY_FILE, TLS_DIR } from './stack.ts';

/** Serial and expiry of the first certificate of a PEM chain. */
export function describe(chain: string): { serial: string; notAfter: string } {
  const c = new X509Certificate(chain);
  return { serial: c.serialNumber, notAfter: new Date(c.validTo).toISOString() };
}

/** Whether the installed files already hold this certificate and key. */
export function isInstalled(tls: SiteTls): boolean {
  return (
    existsSync(CHAIN_FILE) &&
    existsSync(KEY_FILE) &&
    readFileSync(CHAIN_FILE, 'utf8') === tls.chain &&
    readFileSync(KEY_FILE, 'utf8') === tls.key
  );
}

/** Writes the chain (0644) and key (0600) atomically (a reload never sees half a file); true when they changed. */
export async function installCertificate(tls: SiteTls): Promise<boolean> {
  if (isInstalled(tls)) return false;
  // A chain whose first certificate does not match its key would take the site down: refuse it.
  if (!new X509Certificate(tls.chain).checkPrivateKey(createPrivateKey(tls.key)))
    throw new Error('the certificate in the datastore does not match its key: not installed');
  await mkdir(TLS_DIR, { recursive: true, mode: 0o700 });
  await writeFile(`${CHAIN_FILE}.new`, tls.chain, { mode: 0o644 });
  await writeFile(`${KEY_FILE}.new`, tls.key, { mode: 0o600 });
  await rename(`${KEY_FILE}.new`, KEY_FILE);
  await rename(`${CHAIN_FILE}.new`, CHAIN_FILE);
  return true;
}
