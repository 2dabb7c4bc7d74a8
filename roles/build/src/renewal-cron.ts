/**
 * With TLS=acme, a daily renewal on the build machine: an /etc/cron.d entry (ADT_CRON_DIR for
 * tests) that runs roles/build/RenewCertificate, which renews only when the certificate expires
 * within TLS_RENEW_DAYS days. Removed by destroy.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdtError, CRON_ENVIRONMENT } from '@adt/core';
import type { Deployment } from '@adt/fleet';
import { ROOT } from './open.ts';

export function cronDir(): string {
  return process.env.ADT_CRON_DIR || '/etc/cron.d';
}

export function renewalCronFile(d: Deployment): string {
  return join(cronDir(), `adt-tls-${d.buildId}`);
}

/**
 * The renewal's cron line, or null without TLS=acme. Throws BAD_PATH (exit 2) for a deployment
 * file or checkout whose path a cron line cannot carry (a newline, a control character or `%`, which cron turns
 * into a newline); any other path is passed to the shell single-quoted.
 */
export function renewalCronText(d: Deployment): string | null {
  if (d.tls.mode !== 'acme') return null;
  const file = d.source === 'defaults' ? null : resolve(d.source);
  for (const [what, path] of [
    ["the deployment file's path", file ?? ''],
    ["the toolkit's checkout path", ROOT],
  ] as const) {
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f%]/.test(path)) {
      throw new AdtError(
        'BAD_PATH',
        `${what} holds a control character or %, which a cron line cannot carry: move it (${JSON.stringify(path)})`,
        {
          pkg: 'build',
          exitCode: 2,
        },
      );
    }
  }
  // cron runs the line from root's home: the file by its absolute path.
  const config = file === null ? '' : ` --config ${shellQuote(file)}`;
  // A minute from the build id, so several builds do not all renew at the same minute.
  const minute = [...d.buildId].reduce((a, c) => a + c.charCodeAt(0), 0) % 60;
  return (
    `# Written by the Agile Deployment Toolkit: renew the certificate of ${d.host} (build ${d.buildId}) when due.\n` +
    `${CRON_ENVIRONMENT.join('\n')}\n` +
    `${minute} 4 * * * root ${shellQuote(`${ROOT}/roles/build/RenewCertificate`)}${config} >> /var/log/adt-tls-${d.buildId}.log 2>&1\n`
  );
}

/** Writes (TLS=acme) or removes (otherwise) the renewal's cron file; returns the file written, or null. */
export function installRenewalCron(d: Deployment): string | null {
  const file = renewalCronFile(d);
  const text = renewalCronText(d);
  if (text === null) {
    rmSync(file, { force: true });
    return null;
  }
  mkdirSync(cronDir(), { recursive: true });
  writeFileSync(file, text, { mode: 0o644 });
  return file;
}

/** `s` as one word for /bin/sh: single-quoted, a quote inside written as '\''. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function removeRenewalCron(d: Deployment): boolean {
  const file = renewalCronFile(d);
  if (!existsSync(file)) return false;
  rmSync(file, { force: true });
  return true;
}
