/**
 * With TLS=acme, a daily renewal on the build machine: an /etc/cron.d entry (ADT_CRON_DIR for
 * tests) that runs roles/build/RenewCertificate, which renews only when the certificate expires
 * within TLS_RENEW_DAYS days. Removed by destroy.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdtError, CRON_ENVIRONMENT } from '@adt/core';
import type { Deployment } from '@adt/fleet';
import { ROOT } from './open.ts';

export function cronDir(): string {
  return process.env.ADT_CRON_DIR || '/etc/cron.d';
}

export function renewalCronFile(d: Deployment): string {
  return join(cronDir(), `adt-tls-${d.buildId}`);
}

/** Writes (TLS=acme) or removes (otherwise) the renewal's cron file; returns the file written, or null. */
export function installRenewalCron(d: Deployment): string | null {
  const file = renewalCronFile(d);
  if (d.tls.mode !== 'acme') {
    rmSync(file, { force: true });
    return null;
  }
  if (/\s/.test(d.source)) {
    throw new AdtError('BAD_PATH', `the deployment file's path has spaces, which a cron line cannot carry: move it (${d.source})`, {
      pkg: 'build',
      exitCode: 2,
    });
  }
  const config = d.source === 'defaults' ? '' : ` --config ${d.source}`;
  // A minute from the build id, so several builds do not all renew at the same minute.
  const minute = [...d.buildId].reduce((a, c) => a + c.charCodeAt(0), 0) % 60;
  mkdirSync(cronDir(), { recursive: true });
  writeFileSync(
    file,
    `# Written by the Agile Deployment Toolkit: renew the certificate of ${d.host} (build ${d.buildId}) when due.\n` +
      `${CRON_ENVIRONMENT.join('\n')}\n` +
      `${minute} 4 * * * root ${ROOT}/roles/build/RenewCertificate${config} >> /var/log/adt-tls-${d.buildId}.log 2>&1\n`,
    { mode: 0o644 },
  );
  return file;
}

export function removeRenewalCron(d: Deployment): boolean {
  const file = renewalCronFile(d);
  if (!existsSync(file)) return false;
  rmSync(file, { force: true });
  return true;
}
