/**
 * The webserver's release commands, run by the build machine over SSH (roles/build/Release):
 *
 * - `SwitchRelease [ID]`: installs the site's current release (or the earlier one ID), serves it
 *   (one graceful reload) and checks that WordPress answers with it.
 * - `PackRelease`: publishes this webserver's code as a new release (the development webserver,
 *   where plugins and themes are installed): packed, uploaded, made the site's current one. The
 *   build then rolls it out.
 * - `SharedFiles`: the supervised service that keeps the shared files mounted (s3fs).
 */
import { hostname } from 'node:os';
import { defineCommand, openDatastore, publishCode, SITE, sharedFilesService, whoAmI } from '@adt/role-common';
import * as web from '@adt/webserver';
import { switchTo } from './serve.ts';

export const switchReleaseCommand = defineCommand({
  name: 'SwitchRelease',
  usage: '[--json] [ID]',
  description:
    "Serves the site's current release (or the earlier release ID of its record): downloads and checks it when this webserver " +
    'does not have it, reloads the web server gracefully (requests in flight finish on the old code) and checks that WordPress ' +
    'answers with it.',
  common: ['json'],
  positionals: { min: 0, max: 1 },
  root: true,
  async run({ positionals, out }) {
    if (!(await web.currentRelease(SITE))) throw new Error('this webserver serves no release yet: its bootstrap did not finish');
    const r = await switchTo(openDatastore(), await whoAmI(), positionals[0] ?? null);
    out.result(r, `release ${r.release} served (was ${r.before ?? 'none'}; HTTP ${r.status}; ${r.seconds} s)`);
    return 0;
  },
});

export const packReleaseCommand = defineCommand({
  name: 'PackRelease',
  usage: '[--json]',
  description:
    "Publishes this webserver's code (its current release, with what was installed or changed in it: plugins, themes) as the " +
    "site's new current release. roles/build/Release publish --from webserver runs it and rolls the release out.",
  common: ['json'],
  root: true,
  async run({ out }) {
    const id = await web.currentRelease(SITE);
    if (!id) throw new Error('this webserver serves no release yet');
    const { release } = await publishCode(openDatastore(), web.codeDir(SITE, id), `webserver ${hostname()} (from ${id})`);
    out.result({ release }, `release ${release.id} published from ${hostname()} (${(release.bytes / 1e6).toFixed(1)} MB)`);
    return 0;
  },
});

export async function sharedFilesMain(): Promise<number> {
  return sharedFilesService(openDatastore());
}
