/**
 * The autoscaler's bootstrap, run once by its user-data: register, install its periodic jobs
 * (firewall, scheduled scaling), start the scaling service under its supervisor, publish ready.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keys, registerServer } from '@adt/configstore';
import { CODE_DIR, JOB_LOG_DIR, ensurePackages, openDatastore, runMain, startPeriodicJobs, steps, whoAmI } from '@adt/role-common';
import { scalingCronFile } from '@adt/scaling';

async function main() {
  const progress = steps('autoscaler');
  const store = openDatastore();
  const self = await whoAmI();
  progress.step(`bootstrap started on ${self.name} (${self.privateIp})`);
  const installed = await ensurePackages([{ command: 'iptables-restore', pkg: 'iptables' }]);
  progress.step(installed.length ? `installed ${installed.join(', ')}` : 'packages present');
  await registerServer(store, { ...self, role: 'autoscaler' });
  progress.step('registered');
  const schedule = await store.get(keys.scalingSchedule);
  if (schedule && Object.keys(schedule).length) {
    await mkdir('/etc/cron.d', { recursive: true });
    await writeFile('/etc/cron.d/adt-scaling', scalingCronFile(schedule, CODE_DIR), { mode: 0o644 });
    progress.step(
      `scheduled scaling: ${Object.entries(schedule)
        .map(([t, n]) => `${n} at ${t}`)
        .join(', ')}`,
    );
  }
  await mkdir(JOB_LOG_DIR, { recursive: true });
  const log = openSync(join(JOB_LOG_DIR, 'scaling.log'), 'a', 0o600);
  spawn(join(CODE_DIR, 'node_modules/.bin/tsx'), [join(CODE_DIR, 'roles/common/src/supervise.ts'), 'roles/autoscaler/src/service.ts'], {
    detached: true,
    stdio: ['ignore', log, log],
  }).unref();
  closeSync(log);
  progress.step('scaling service started');
  await startPeriodicJobs('autoscaler');
  progress.step('firewall following the fleet');
  await progress.ready(store, self);
}

if (import.meta.url === `file://${process.argv[1]}`) void runMain(main);
