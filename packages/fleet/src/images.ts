/**
 * Prepared images (IMAGES=prepared): each role's servers boot from an image that already has the
 * role's Debian packages and the Node runtime, so a server installs nothing at boot. An image is
 * made once per (stock image, package list, runtime) the way one is made on any cloud: an image
 * builder server boots the stock image with user-data that installs the role's packages
 * (`bootstrap --prepare-image`: the same package step every bootstrap runs), removes what makes it
 * a particular machine and powers off; the cloud then snapshots it, and the builder goes. It never
 * gets a secret. A cloud without snapshots and a way to find images by name boots from the stock
 * image instead (said so).
 */
import { createHash } from 'node:crypto';
import { keys, type BundleRecord, type ConfigStore } from '@adt/configstore';
import { AdtError, pollUntil } from '@adt/core';
import { launchServer, rolePackages, type LaunchContext } from '@adt/launch';
import { serverName, type ComputeProvider } from '@adt/providers';
import type { FleetRole } from '@adt/firewall';

const fail = (code: string, message: string) => new AdtError(code, message, { pkg: 'fleet', driver: 'images' });

/** The image a role's servers boot from: its name says what is in it. */
export function preparedImageName(role: FleetRole, stockImage: string, runtimeSha: string): string {
  const h = createHash('sha256')
    .update(JSON.stringify({ stockImage, packages: rolePackages(role), runtimeSha }))
    .digest('hex')
    .slice(0, 12);
  return `adt-${role}-${h}`;
}

export interface PreparedImage {
  role: FleetRole;
  image: string;
  name: string;
  /** Seconds it took to make (null: found). */
  seconds: number | null;
}

export function canPrepareImages(compute: ComputeProvider): boolean {
  return Boolean(compute.flags.snapshots && compute.findImage && compute.snapshot);
}

/**
 * The prepared image of each role (made when absent, builders in parallel). `stockImage` is the
 * cloud's Debian 12 image (id or name), or null for the driver's own default (a real cloud's Debian
 * 12: its image names are the driver's to know, and Vultr's `image` names a snapshot only).
 */
export async function ensurePreparedImages(
  ctx: LaunchContext & { buildId: string; stockImage: string | null; timeoutSeconds: number; say(line: string): void },
  roles: FleetRole[],
): Promise<PreparedImage[]> {
  const { compute, store } = ctx;
  const artifacts = await store.require<BundleRecord>(keys.bundle, 'the build, before it prepares images,');
  // What the name is made from: the stock image's id where it can be found, else its name (or the driver's).
  const stock = ctx.stockImage ? ((await compute.findImage!(ctx.stockImage))?.id ?? ctx.stockImage) : `${compute.name} default`;
  return Promise.all(
    roles.map(async (role): Promise<PreparedImage> => {
      const name = preparedImageName(role, stock, artifacts.runtime.sha256);
      const found = await compute.findImage!(name);
      if (found) return { role, image: found.id, name, seconds: null };
      const started = Date.now();
      ctx.say(`      ${role}: preparing image ${name} (its ${rolePackages(role).length} Debian packages and Node, once per package list)`);
      const builder = serverName({ role: 'build', buildId: ctx.buildId });
      const { server } = await launchServer(ctx, {
        name: builder,
        role: 'build',
        buildId: ctx.buildId,
        ...(ctx.stockImage ? { image: ctx.stockImage } : {}),
        secrets: null,
        imageFor: role,
      });
      try {
        await pollUntil(
          async () => {
            const s = await compute.get(server.id);
            if (!s || s.state === 'error')
              throw fail('IMAGE_FAILED', `the image builder ${builder} for ${role} broke (the cloud reports it ${s?.state ?? 'gone'})`);
            const c = compute.console && compute.flags.console ? await compute.console(server.id).catch(() => null) : null;
            if (c && c.exitCode !== null && c.exitCode !== 0) {
              throw fail(
                'IMAGE_FAILED',
                `the image builder ${builder} for ${role} failed (exit ${c.exitCode}); its log's end:\n${c.log
                  .split('\n')
                  .slice(-12)
                  .map((l) => `    ${l}`)
                  .join('\n')}`,
              );
            }
            return s.state === 'stopped' ? s : null;
          },
          {
            timeoutMs: ctx.timeoutSeconds * 1000,
            intervalMs: 1000,
            what: `the image builder ${builder} for ${role} to install its packages and power off`,
          },
        );
        const image = await compute.snapshot!(server.id, name);
        const seconds = Number(((Date.now() - started) / 1000).toFixed(1));
        ctx.say(`      ${role}: image ${name} prepared in ${seconds} s (${image})`);
        return { role, image, name, seconds };
      } finally {
        await compute.destroy(server.id).catch(() => {});
      }
    }),
  );
}

/** Records the webservers' image for the autoscalers (`config/webserver-image`). */
export async function recordWebserverImage(store: ConfigStore, image: PreparedImage): Promise<void> {
  if ((await store.get(keys.webserverImage))?.image === image.image) return;
  await store.put(keys.webserverImage, { image: image.image, from: image.name, at: new Date().toISOString() });
}
