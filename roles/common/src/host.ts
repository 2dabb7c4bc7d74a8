/**
 * What a server's bootstrap needs to know about itself and to tell the fleet: its addresses and
 * name and its periodic jobs (the HTTPS check of the site is @adt/webserver's `httpsGet`; bounded waits
 * are @adt/core's `pollUntil`).
 */
import { appendFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { CRON_ENVIRONMENT, execaRunner, lastLines } from '@adt/core';
import { cronLine } from '@adt/firewall';
import type { BackupSettings } from '@adt/configstore';
import { BACKUP_PARTS, backupCronFile } from './backup.ts';
import { CODE_DIR } from './layout.ts';
import { startDetached, startService } from './supervise.ts';

/** The IPv4 address of an interface (`eth0` public, `eth1` private in the local cloud). */
export async function interfaceAddress(dev: string): Promise<string | null> {
  const r = await execaRunner().run(['ip', '-4', '-o', 'addr', 'show', 'dev', dev], { nothrow: true });
  return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1] ?? null;
}

export interface Self {
  name: string;
  publicIp: string;
  privateIp: string;
}

export async function whoAmI(): Promise<Self> {
  const [publicIp, privateIp] = await Promise.all([interfaceAddress('eth0'), interfaceAddress('eth1')]);
  if (!publicIp || !privateIp) throw new Error(`cannot find this server's addresses (eth0: ${publicIp}, eth1: ${privateIp})`);
  return { name: hostname(), publicIp, privateIp };
}

const FIREWALL_LOG = '/var/log/adt/firewall.log';
const CERTIFICATE_LOG = '/var/log/adt/certificate.log';

/** An /etc/cron.d file of `role` that runs `command` (every minute), its output appended to `logFile`. */
function cronFile(role: string, command: string, logFile: string): string {
  return [`# Written by the Agile Deployment Toolkit (${role} role).`, ...CRON_ENVIRONMENT, cronLine(command, { logFile }), ''].join('\n');
}

/**
 * The role's periodic jobs: an /etc/cron.d file (where cron runs, it also restarts the work if the
 * loop below died), and the firewall loop started now (the local cloud's servers run no cron daemon).
 */
export async function startPeriodicJobs(role: string, backups: BackupSettings | null = null, codeDir = CODE_DIR): Promise<void> {
  // The database follows joining webservers fastest: a new webserver waits for it to let it in.
  const every = role === 'database' ? '5' : '10';
  const command = `${codeDir}/roles/${role}/security/SetupFirewall`;
  await mkdir('/etc/cron.d', { recursive: true });
  await writeFile(`/etc/cron.d/adt-${role}`, cronFile(role, command, FIREWALL_LOG), { mode: 0o644 });
  // Scheduled backups of this role's part of the site (cron runs them where a cron daemon runs).
  if (backups && role in BACKUP_PARTS)
    await writeFile(`/etc/cron.d/adt-backup-${role}`, backupCronFile(role as keyof typeof BACKUP_PARTS, backups, codeDir), { mode: 0o644 });
  await mkdir('/var/log/adt', { recursive: true });
  // The first reconcile before anything else: a server is not ready while its firewall is not applied.
  const first = await execaRunner({ timeoutMs: 120_000 }).run([command], { nothrow: true });
  appendFileSync(FIREWALL_LOG, first.stdout + first.stderr, { mode: 0o600 });
  if (first.exitCode !== 0)
    throw new Error(`the first firewall reconcile failed (exit ${first.exitCode}): ${lastLines(first.stderr || first.stdout, 2)}`);
  startDetached(command, ['--every', every], FIREWALL_LOG);
  // Webservers keep the site's certificate equal to the datastore's (renewals reach them in one period).
  if (role === 'webserver') {
    const sync = `${codeDir}/roles/webserver/tls/SyncCertificate`;
    await writeFile('/etc/cron.d/adt-webserver-tls', cronFile('webserver', sync, CERTIFICATE_LOG), { mode: 0o644 });
    // Supervised: a loop that died or stalled (it exits then) is started again, cron daemon or not.
    await startService('SyncCertificate', CERTIFICATE_LOG, ['--every', '10']);
  }
}
