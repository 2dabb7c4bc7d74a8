/** destroy: `npx zx roles/build/destroy.mjs`, thin over @adt/fleet's destroy. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AdtError } from '@adt/core';
import { backupNow, destroy, onLocalCloud, whereIs } from '@adt/fleet';
import { defineCommand } from '@adt/role-common';
import { deploymentOf, withFleet } from './open.ts';
import { removeRenewalCron } from './renewal-cron.ts';

export const destroyCommand = defineCommand({
  name: 'npx zx roles/build/destroy.mjs',
  usage: '[--config FILE] [--backup] [--keep-bucket] [--json]',
  description:
    'Destroys the servers, DNS records, native firewall rules and config bucket of the build named by the deployment file (the same file ' +
    "deploy used; defaults otherwise). The site's backup bucket is never deleted: a later deploy can start from it (RESTORE_FROM). " +
    'When no server of any build is left on the local cloud, the cloud goes too (its images stay, in LOCAL_IMAGE_DIR).',
  common: ['config', 'json'],
  options: {
    backup: { type: 'boolean', description: 'take a "shutdown" backup of the database and the site\'s files first' },
    'keep-bucket': { type: 'boolean', description: "keep the config bucket and the build's key (to inspect it)" },
  },
  async run({ values, out }) {
    const d = deploymentOf(values);
    if (onLocalCloud(d) && process.getuid?.() !== 0) {
      throw new AdtError('NOT_ROOT', 'the local cloud needs root: run as root', { pkg: 'build', exitCode: 2 });
    }
    out.say(`Destroying build ${d.buildId} (${d.siteUrl}) on ${whereIs(d)}`);
    const anything = existsSync(join(d.stateDir, 'builds', d.buildId)) || existsSync(join(d.stateDir, 'cloud', d.local.cloudId));
    if (!anything) {
      const removed = removeRenewalCron(d);
      out.say(`  nothing of build ${d.buildId} here${removed ? ' (its certificate renewal, cron, removed)' : ''}`);
      out.result({ buildId: d.buildId, servers: [], dnsRecords: [], bucket: 'absent', cloud: 'absent', seconds: 0 });
      return 0;
    }
    return withFleet(d, 'apply', async (f) => {
      if (values.backup) {
        // Before anything goes: a failed backup stops the destroy, and nothing is lost.
        const servers = await f.kit.compute.list({ buildId: d.buildId });
        if (!servers.length) out.say('  --backup: no servers of this build, nothing to back up');
        else
          for (const r of await backupNow(f, 'shutdown'))
            out.say(`  ${r.role} ${r.server}: ${r.manifest ? `backup ${r.manifest.id} verified` : `skipped (${r.skipped})`}`);
      }
      const summary = await destroy(f, { keepBucket: Boolean(values['keep-bucket']), say: out.say });
      if (removeRenewalCron(d)) out.say('  certificate renewal (cron) removed');
      out.result(summary);
      if (!out.json) out.say(`Done in ${summary.seconds} s.`);
      return 0;
    });
  },
});
