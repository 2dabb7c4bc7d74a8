/**
 * Scheduled scaling ("10 webservers at 08:30, 3 at 17:30"): the deployment's SCALING_SCHEDULE,
 * kept in the datastore, becomes /etc/cron.d/adt-scaling on each autoscaler, whose lines call the
 * same code as a person does (ManuallyScale.ts). Every autoscaler writing the same total is harmless.
 */
import { CRON_ENVIRONMENT } from '@adt/core';
const TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Parses `08:30=10;17:30=3` into { '08:30': 10, '17:30': 3 }; throws a RangeError naming the bad item. */
export function parseScalingSchedule(text: string, max: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of text
    .split(';')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const [time = '', n = ''] = item.split('=').map((x) => x.trim());
    if (!TIME.test(time) || !/^\d{1,4}$/.test(n) || Number(n) > max)
      throw new RangeError(`"${item}": HH:MM=<webservers>, 00:00-23:59, 0 to ${max}`);
    out[time] = Number(n);
  }
  return out;
}

/**
 * The /etc/cron.d file of an autoscaler's scheduled scaling: at each HH:MM, ManuallyScale.ts (under
 * `codeDir`) sets that many webservers, its output appended to /var/log/adt/scaling.log. Throws a
 * RangeError for a time that is not HH:MM or a count that is not a whole number >= 0.
 */
export function scalingCronFile(schedule: Record<string, number>, codeDir = '/opt/adt'): string {
  const lines = ['# Written by the Agile Deployment Toolkit: scheduled scaling (SCALING_SCHEDULE).', ...CRON_ENVIRONMENT];
  for (const [time, n] of Object.entries(schedule)) {
    const m = TIME.exec(time);
    if (!m || !Number.isInteger(n) || n < 0) throw new RangeError(`scaling schedule "${time}=${n}"`);
    lines.push(
      `${Number(m[2])} ${Number(m[1])} * * * root ${codeDir}/roles/autoscaler/ManuallyScale.ts ${n} >> /var/log/adt/scaling.log 2>&1`,
    );
  }
  return `${lines.join('\n')}\n`;
}
