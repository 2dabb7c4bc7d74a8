/** Helpers of the build's tests and benchmarks: a deployment of their own, its fleet and cloud, DNS and HTTPS samplers. */
import { Resolver } from 'node:dns/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { freePort, sleep } from '@adt/core';
import { localCloudConfig, openFleet, readDeployment, type Deployment, type Fleet as FleetHandle } from '@adt/fleet';
import { LocalCloud } from '@adt/localcloud';
import { quietAwsSdk } from '@adt/test-utils';
import { outsiderStatus } from './_site.ts';

// The fleet opened in this process (openTestFleet) talks to S3: no SDK notice in the tests' output.
quietAwsSdk();

export const root = resolve(import.meta.dirname, '../../..');
/** A script of roles/build through zx, as a user runs it; `env` is added to this process's (e.g. ADT_BUNDLE_NOTE). */
export const zx = (script: string, args: string[], o: { env?: Record<string, string>; timeoutMs?: number } = {}) =>
  execa(join(root, 'node_modules/.bin/zx'), [join(root, 'roles/build', script), ...args], {
    cwd: root,
    env: o.env,
    reject: false,
    // A deploy on a shared 2-core machine, making a prepared image first, takes minutes.
    timeout: o.timeoutMs ?? 900_000,
  });
/** A helper of roles/build, bounded (default 120 s; RenewCertificate --wait waits up to 120 s per kind of server by itself). */
export const helper = (name: string, args: string[], timeoutMs = 120_000) =>
  execa(join(root, 'roles/build', name), args, { reject: false, timeout: timeoutMs });

export interface Fleet {
  dir: string;
  file: string;
  cloudId: string;
  host: string;
  /** The cloud's DNS server (the build machine's public address). */
  dnsIp: string;
  caFile: string;
}

/** Writes a production deployment file for cloud `cloudId` on 198.19.<net>.0/24 (public) and <net+1> (private). */
export async function productionFleet(cloudId: string, net: number, extra: string[]): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), `adt-${cloudId}-`));
  const file = join(dir, 'site.env');
  const host = `www.${cloudId}.test`;
  await writeFile(
    file,
    [
      'MODE=production',
      `SITE_URL=${host}`,
      `BUILD_ID=${cloudId}1`,
      `STATE_DIR=${join(dir, 'state')}`,
      `S3_PORT=${await freePort()}`,
      `LOCAL_CLOUD_ID=${cloudId}`,
      `LOCAL_PUBLIC_CIDR=198.19.${net}.0/24`,
      `LOCAL_PRIVATE_CIDR=198.19.${net + 1}.0/24`,
      // Quick reactions for tests: probes every second, 2 failures, short TTLs and drain.
      'SCALING_INTERVAL=1',
      'PROBE_TIMEOUT=2',
      'FAILURES_BEFORE_UNHEALTHY=2',
      'DNS_TTL=2',
      'DRAIN_SECONDS=2',
      'LEASE_TTL=6',
      ...extra,
      '',
    ].join('\n'),
  );
  return { dir, file, cloudId, host, dnsIp: `198.19.${net}.1`, caFile: join(dir, 'state/builds', `${cloudId}1`, 'ca/ca.crt') };
}

/** Destroys the fleet and its files; never throws (it runs in `after`, where a throw would stop every later suite). */
export async function removeFleet(f: Fleet | undefined) {
  if (!f) return;
  // destroy is idempotent: a second try finishes what a first one left (a server still starting).
  let destroyed = false;
  for (let attempt = 1; attempt <= 2 && !destroyed; attempt++) {
    const d = await zx('destroy.mjs', ['--config', f.file], { timeoutMs: 300_000 });
    destroyed = d.exitCode === 0;
    if (!destroyed) process.stderr.write(`destroy of ${f.cloudId} failed (attempt ${attempt}): ${d.stderr}\n`);
  }
  // (uvu sets the exit code once every suite ran: a failed cleanup still makes the run fail.)
  if (!destroyed) process.once('exit', () => (process.exitCode = 1));
  await rm(f.dir, { recursive: true, force: true }).catch((e: Error) => process.stderr.write(`${f.dir} not removed: ${e.message}\n`));
}

export async function aRecords(f: Fleet): Promise<string[]> {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([f.dnsIp]);
  return (await r.resolve4(f.host).catch(() => [] as string[])).sort();
}

/** HTTPS from the outsider to the site at `ip`: the status code, or 0 when nothing answered. */
export async function fetchFromOutsider(f: Fleet, ip: string): Promise<number> {
  return Number((await outsiderStatus(f.cloudId, f.host, ip, f.caFile, 3)).stdout) || 0;
}

export interface Sample {
  at: number;
  ips: string[];
  ip: string | null;
  status: number;
}

/**
 * Resolves the site name and fetches a page from one of its addresses (as a browser would) every
 * `everyMs`, until stopped; bounded by `maxSamples`.
 */
export function sampleSite(f: Fleet, everyMs = 400, maxSamples = 2000) {
  const samples: Sample[] = [];
  let stop = false;
  const done = (async () => {
    for (let i = 0; i < maxSamples && !stop; i++) {
      const ips = await aRecords(f);
      const ip = ips.length ? ips[i % ips.length]! : null;
      samples.push({ at: Date.now(), ips, ip, status: ip ? await fetchFromOutsider(f, ip) : 0 });
      await sleep(everyMs);
    }
  })();
  return {
    samples,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

/**
 * Kills a webserver's nginx and PHP-FPM (it stops serving; the server itself runs on), through the
 * build's ExecuteOnWebserver helper. `stamp`: it prints the server's clock (ms) at the kill first.
 */
export function killWebStack(f: Fleet, name: string, o: { stamp?: boolean } = {}) {
  const kill = 'kill $(cat /run/nginx-adt.pid) $(cat /run/php/adt-fpm.pid)';
  return helper('ExecuteOnWebserver', ['--config', f.file, '--name', name, '--', 'sh', '-c', o.stamp ? `date +%s%3N; ${kill}` : kill]);
}

/** Polls `check` every 500 ms until it returns true; false after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(500);
  }
  return false;
}

/** The deployment a test's file describes (its variables only: the environment's ADT_* are not read). */
export function deploymentOf(file: string): Deployment {
  return readDeployment(file, {});
}

/** The test's fleet, as the helpers open it (the running local cloud; null when it does not run). Close it after use. */
export async function openTestFleet(file: string): Promise<FleetHandle> {
  const f = await openFleet(deploymentOf(file), 'attach');
  if (!f) throw new Error(`the local cloud of ${file} is not running`);
  return f;
}

/**
 * The test's local cloud, in this process, as its administrator sees it (to kill a server as a
 * crash would, or read what the cloud keeps of one); the fleet itself goes through the cloud's API.
 */
export function localCloudOf(file: string): LocalCloud {
  const c = localCloudConfig(deploymentOf(file));
  return new LocalCloud({
    cloudId: c.cloudId,
    stateDir: c.stateDir,
    publicCidr: c.publicCidr,
    privateCidr: c.privateCidr,
    imageDir: c.imageDir,
  });
}
