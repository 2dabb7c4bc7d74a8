/**
 * Following the fleet: read it, compute this host's policy, compare fingerprints with what is
 * applied, apply only when different. Run it periodically on every host (cron every minute) and on
 * demand; when a webserver joins or leaves, within one period the database accepts or refuses it.
 */
import { computePolicies, fingerprint } from './policy.ts';
import type { FleetRole, FleetSource, HostFirewall, HostPolicy, PolicyOptions } from './types.ts';

export interface ReconcileOptions {
  source: FleetSource;
  role: FleetRole;
  backend: HostFirewall;
  policy: PolicyOptions;
}

export interface ReconcileResult {
  changed: boolean;
  fingerprint: string;
  policy: HostPolicy;
}

export async function reconcile(o: ReconcileOptions): Promise<ReconcileResult> {
  const fleet = await o.source.snapshot();
  // Computed (and validated) before anything is touched: bad input leaves the rules as they are.
  const policy = computePolicies(fleet, o.policy)[o.role];
  const fp = fingerprint(policy);
  if ((await o.backend.applied()) === fp) return { changed: false, fingerprint: fp, policy };
  await o.backend.apply(policy, fp);
  return { changed: true, fingerprint: fp, policy };
}

/** Options of {@link cronLine}. */
export interface CronLineOptions {
  /** Where the job's output goes (appended, stderr too): an absolute path, e.g. `/var/log/adt/firewall.log`. */
  logFile: string;
  /** Run every this many minutes, 1-59 (default 1: every minute). */
  minutes?: number;
}

const ABSOLUTE_PATH = /^\/[A-Za-z0-9._/-]+$/;

/**
 * The /etc/cron.d line that runs `command` as root every `minutes`, its output appended to
 * `logFile`: a role's SetupFirewall every minute, or another periodic job of ours.
 */
export function cronLine(command: string, o: CronLineOptions): string {
  const minutes = o.minutes ?? 1;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 59) throw new RangeError('minutes: 1-59');
  if (!ABSOLUTE_PATH.test(command)) throw new RangeError(`command "${command}": an absolute path of letters, digits, . _ / -`);
  if (!ABSOLUTE_PATH.test(o.logFile)) throw new RangeError(`log file "${o.logFile}": an absolute path of letters, digits, . _ / -`);
  return `${minutes === 1 ? '*' : `*/${minutes}`} * * * * root ${command} >> ${o.logFile} 2>&1`;
}
