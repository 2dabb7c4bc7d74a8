/**
 * destroy: removes everything one build made, on its provider: DNS records first (visitors stop
 * being sent to servers that are going away), then the autoscalers and their cloud access (nothing
 * rebuilds what is being destroyed), every server (and what the datastore says of it), the cloud's
 * firewall rules, the config bucket (unless kept) and the build's files. The site's backup bucket
 * is never deleted. When no server of any build is left on the local cloud, the cloud goes too.
 */
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { forgetServer } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { AdtError } from '@adt/core';
import { ROLES as FLEET_ROLES } from '@adt/firewall';
import { removeEnvelope } from '@adt/launch';
import type { Role, Server } from '@adt/providers';
import type { Fleet } from './fleet.ts';
import { onLocalCloud, whereIs } from './settings.ts';

export interface DestroySummary {
  buildId: string;
  servers: string[];
  dnsRecords: string[];
  bucket: string;
  cloud: string;
  seconds: number;
}

function inCidr24(ip: string, cidr: string): boolean {
  return ip.startsWith(cidr.replace(/0\/24$/, ''));
}

export async function destroy(f: Fleet, o: { keepBucket: boolean; say(line: string): void }): Promise<DestroySummary> {
  const started = Date.now();
  const d = f.d;
  const servers = await f.kit.compute.list({ buildId: d.buildId });
  const removedRecords: string[] = [];
  const dns = f.kit.dns(d.zone);
  try {
    const ours = new Set(servers.map((s) => s.publicIp));
    const gone = (ip: string) => ours.has(ip) || (onLocalCloud(d) && inCidr24(ip, d.local.publicCidr));
    for (const name of [d.host, ...(d.auth ? [d.auth.host] : [])]) {
      for (const r of await dns.listA(name).catch(() => [])) {
        if (!gone(r.content)) continue;
        await dns.removeA(name, r.content);
        removedRecords.push(`${name} A ${r.content}`);
      }
    }
  } finally {
    await dns.dispose?.();
  }
  o.say(`  DNS records removed: ${removedRecords.length ? removedRecords.join(', ') : 'none'}`);
  const reachable = await f.store.driver.bucketExists().catch(() => false);
  const destroyAll = (list: Server[]) =>
    Promise.all(
      list.map(async (s) => {
        await f.kit.compute.destroy(s.id);
        if (reachable) {
          await forgetServer(f.store, s).catch(() => {});
          await removeEnvelope(f.s3, d.configBucket, s.name).catch(() => {});
        }
        o.say(`  server ${s.name} (${s.role}) destroyed`);
      }),
    );
  await destroyAll(servers.filter((s) => s.role === 'autoscaler'));
  const revoked = (await f.kit.revokeAutoscalerAccess?.(d.buildId)) ?? 0;
  if (revoked) o.say(`  the autoscalers' cloud access revoked (${revoked} token(s))`);
  // What an autoscaler made meanwhile goes too.
  await destroyAll(await f.kit.compute.list({ buildId: d.buildId }));
  if (!servers.length) o.say('  no servers of this build');
  const firewalls: string[] = [];
  for (const role of [...FLEET_ROLES, 'build'] as Role[]) {
    if ((await f.kit.firewall.get(d.buildId, role)) === null) continue;
    await f.kit.firewall.remove(d.buildId, role);
    firewalls.push(role);
  }
  o.say(`  the cloud's firewall rules removed: ${firewalls.length ? firewalls.join(', ') : 'none'}`);
  if (f.kit.databases) {
    for (const db of await f.kit.databases.list({ buildId: d.buildId })) {
      await f.kit.databases.destroy(db.id);
      o.say(`  managed database ${db.name} destroyed`);
    }
  }

  let bucket = 'kept';
  let files = 'kept';
  if (!o.keepBucket) {
    bucket = reachable ? `deleted (${await f.store.deleteBucket()} object(s))` : 'absent';
    files = await deleteFilesBucket(f);
    await f.state.remove();
  }
  o.say(`  config bucket ${d.configBucket}: ${bucket}`);
  o.say(`  shared files bucket ${d.filesBucket}: ${files}`);

  // The cloud itself, when no server of any build is left on it.
  let cloud = 'kept';
  if (f.kit.teardown) {
    const remaining = await f.kit.compute.list();
    if (remaining.length) cloud = `kept (servers of ${[...new Set(remaining.map((s) => s.buildId))].join(', ')} remain)`;
    else cloud = await f.kit.teardown();
  }
  // Empty directories of the layout go too (rmdir refuses non-empty ones).
  for (const dir of ['builds', 'cloud', 'dns', 's3', 'mail', 'acme', 'mirror', ''].map((p) => join(d.stateDir, p)))
    await rmdir(dir).catch(() => {});
  o.say(`  ${whereIs(d)}: ${cloud}`);
  return {
    buildId: d.buildId,
    servers: servers.map((s) => s.name),
    dnsRecords: removedRecords,
    bucket,
    cloud,
    seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
  };
}

/** Deletes the bucket of the site's shared files with what is in it (the site's backups keep them). */
async function deleteFilesBucket(f: Fleet): Promise<string> {
  const files = s3Driver({ bucket: f.d.filesBucket, client: f.s3 });
  if (!(await files.bucketExists().catch(() => false))) return 'absent';
  const all = await files.list('');
  await files.remove(all);
  await files.deleteBucket();
  return `deleted (${all.length} object(s))`;
}

export function nothingToDestroy(buildId: string): AdtError {
  return new AdtError('NOTHING', `nothing of build ${buildId} on this machine`, { pkg: 'fleet', exitCode: 1 });
}
