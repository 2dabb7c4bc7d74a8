/**
 * The site's certificate on this webserver: installed from the datastore (`secrets/tls`, encrypted
 * at rest) and kept equal to it. A renewal on the build machine writes a new one there; every
 * webserver's `SyncCertificate` loop installs it within one period and reloads its webserver
 * gracefully (open connections finish on the old certificate).
 *
 *   roles/webserver/tls/SyncCertificate [--every SECONDS]
 */
import { X509Certificate, createHash, createPrivateKey, randomBytes } from 'node:crypto';
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

/**
 * Which certificate the web server was last started or reloaded with (its chain's hash, in a file):
 * installed files are not yet served until a reload succeeded, whichever process installed them
 * (the sync loop, cron's run of SyncCertificate, the boot), so a reload that failed in one is done
 * by the next.
 */
const SERVED_FILE = `${TLS_DIR}/served`;
const chainHash = (chain: string) => createHash('sha256').update(chain).digest('hex');

export function isServed(tls: SiteTls): boolean {
  return isInstalled(tls) && existsSync(SERVED_FILE) && readFileSync(SERVED_FILE, 'utf8').trim() === chainHash(tls.chain);
}

/** Records that the web server now serves the installed certificate (after a successful start or reload). */
export async function markServed(tls: SiteTls): Promise<void> {
  const tmp = `${SERVED_FILE}.new-${process.pid}-${randomBytes(3).toString('hex')}`;
  await writeFile(tmp, `${chainHash(tls.chain)}\n`, { mode: 0o600 });
  await rename(tmp, SERVED_FILE);
}

/** Writes the chain (0644) and key (0600) atomically (a reload never sees half a file); true when they changed. */
export async function installCertificate(tls: SiteTls): Promise<boolean> {
  if (isInstalled(tls)) return false;
  // A chain whose first certificate does not match its key would take the site down: refuse it.
  if (!new X509Certificate(tls.chain).checkPrivateKey(createPrivateKey(tls.key)))
    throw new Error('the certificate in the datastore does not match its key: not installed');
  await mkdir(TLS_DIR, { recursive: true, mode: 0o700 });
  // Temporary names of this process's own: the loop and cron's run of SyncCertificate may install
  // at the same moment, and neither may rename the other's half-written file (or fail on it).
  const tmp = `.new-${process.pid}-${randomBytes(3).toString('hex')}`;
  await writeFile(`${CHAIN_FILE}${tmp}`, tls.chain, { mode: 0o644 });
  await writeFile(`${KEY_FILE}${tmp}`, tls.key, { mode: 0o600 });
  await rename(`${KEY_FILE}${tmp}`, KEY_FILE);
  await rename(`${CHAIN_FILE}${tmp}`, CHAIN_FILE);
  return true;
}
