/**
 * The autoscaler's bootstrap, run once by its user-data (after its secrets and packages, see
 * roles/common/src/boot.ts): register, install its periodic jobs (firewall, scheduled scaling),
 * start the scaling service under its supervisor, publish ready.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keys, registerServer } from '@adt/configstore';
import { CODE_DIR, JOB_LOG_DIR, runBootstrap, startPeriodicJobs, startService } from '@adt/role-common';
import { scalingCronFile } from '@adt/scaling';

export function main(argv: string[]): Promise<number> {
  return runBootstrap('autoscaler', argv, async ({ store, self, step }) => {
    await registerServer(store, { ...self, role: 'autoscaler' });
    await step('registered');
    const schedule = await store.get(keys.scalingSchedule);
    if (schedule && Object.keys(schedule).length) {
      await mkdir('/etc/cron.d', { recursive: true });
      await writeFile('/etc/cron.d/adt-scaling', scalingCronFile(schedule, CODE_DIR), { mode: 0o644 });
      await step(
        `scheduled scaling: ${Object.entries(schedule)
          .map(([t, n]) => `${n} at ${t}`)
          .join(', ')}`,
      );
    }
    await startService('scaling-service', join(JOB_LOG_DIR, 'scaling.log'));
    await step('scaling service started');
    await startPeriodicJobs('autoscaler');
    await step('firewall following the fleet');
  });
}
