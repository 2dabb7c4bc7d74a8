/**
 * What the operator does with a running fleet from the build machine (the original's
 * ExecuteOn<Role>, ConnectTo<Role>, status and backup scripts), the same on every provider: over
 * SSH with the build's key and each server's pinned host key (ssh.ts), and through the datastore.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { Backups, PARTS, backupPrefix, isPeriod } from '@adt/backup';
import { keys, type ConfigStore, type Release } from '@adt/configstore';
import s3Driver from '@adt/configstore/drivers/s3';
import { AdtError, outputTail, type RunResult } from '@adt/core';
import type { Role, Server } from '@adt/providers';
import { describeSplit, setDesiredWebservers } from '@adt/scaling';
import { endRollout, makeReleaseCurrent, rollBackRelease, uploadRelease } from '@adt/launch';
import { httpsGet, packRelease } from '@adt/webserver';
import type { Fleet } from './fleet.ts';

const fail = (code: string, message: string, exitCode: 1 | 2 = 1) =>
  new AdtError(code, message, { pkg: 'fleet', driver: 'operations', exitCode });

export const FLEET_ROLES = ['webserver', 'database', 'autoscaler', 'auth'] as const;
export type ServerRole = (typeof FLEET_ROLES)[number];

/** The build's servers of `role` (or the one named), with their host keys pinned for SSH; refused (exit 2) when there is none. */
export async function serversOf(f: Fleet, role: Role, name: string | undefined, command: string): Promise<Server[]> {
  const all = await f.kit.compute.list({ buildId: f.d.buildId, role });
  const chosen = name ? all.filter((s) => s.name === name) : all;
  if (!chosen.length) {
    throw fail(
      'NO_SERVER',
      `${command}: no ${role} server${name ? ` named ${name}` : ''} in build ${f.d.buildId} ` +
        `(have: ${all.map((s) => s.name).join(', ') || 'none'}); roles/build/status lists them`,
      2,
    );
  }
  await f.ssh.pin(f.store, chosen);
  return chosen;
}

/** Runs `argv` on each server in turn; `onOutput` gets each one's result. Returns the first non-zero exit code, else 0. */
export async function executeOn(f: Fleet, servers: Server[], argv: string[], onOutput: (s: Server, r: RunResult) => void): Promise<number> {
  let worst = 0;
  for (const s of servers) {
    const r = await f.ssh.exec(s, argv, { timeoutMs: 600_000 });
    onOutput(s, r);
    if (r.exitCode !== 0 && worst === 0) worst = r.exitCode;
  }
  return worst;
}

/** Runs a role's command (`/opt/adt/roles/<role>/...`) on a server with --json; its JSON answer, or a clear error. */
export async function runRoleCommand(f: Fleet, s: Server, command: string, args: string[]): Promise<Record<string, unknown>> {
  const r = await f.ssh.exec(s, [`/opt/adt/roles/${s.role}/${command}`, ...args, '--json'], { timeoutMs: 3_600_000 });
  if (r.exitCode !== 0) {
    const name = command.split('/').pop();
    throw fail('JOB_FAILED', `${name} on ${s.name} (${s.role}) failed (exit ${r.exitCode}): ${outputTail(r)}`, r.exitCode === 2 ? 2 : 1);
  }
  // Its JSON is the last line (the backup commands), or the whole output (commands that print it indented).
  const text = r.stdout.trim();
  const last = text.split('\n').pop() || '{}';
  return JSON.parse(last.startsWith('{') ? last : text) as Record<string, unknown>;
}

export interface BackupResult {
  server: string;
  role: 'database' | 'webserver';
  manifest?: { id: string; parts: { size: number }[] };
  deleted?: string[];
  skipped?: string;
}

/** Backs up the site now: the database on the database server, the site's files on one webserver. */
export async function backupNow(f: Fleet, period: string): Promise<BackupResult[]> {
  const out: BackupResult[] = [];
  for (const role of ['database', 'webserver'] as const) {
    const [s] = await serversOf(f, role, undefined, 'Backup');
    const r = await runRoleCommand(f, s!, 'backup/Backup', [period]);
    out.push({ server: s!.name, role, ...(r as Omit<BackupResult, 'server' | 'role'>) });
  }
  return out;
}

/** Restores the database (on the database server) and the site's files (on every webserver). */
export async function restoreFleet(f: Fleet, select: { period?: string; databaseId?: string; webrootId?: string; baseline?: string }) {
  const out: Record<string, unknown>[] = [];
  for (const role of ['database', 'webserver'] as const) {
    const args = select.baseline
      ? ['--baseline', select.baseline]
      : select.period
        ? ['--period', select.period]
        : ['--id', (role === 'database' ? select.databaseId : select.webrootId)!];
    // The site's files are restored once (into the shared files and a new release), then served everywhere.
    const servers = await serversOf(f, role, undefined, 'Restore');
    for (const s of role === 'webserver' ? servers.slice(0, 1) : servers) {
      const r = await runRoleCommand(f, s, 'backup/Restore', args);
      out.push({ server: s.name, role, ...r });
    }
    if (role === 'webserver') {
      const record = await f.store.require(keys.releases);
      for (const step of await rollOut(f, record.current.id, () => {}))
        out.push({ server: step.server, role, restored: `release ${step.release}`, before: step.before });
    }
  }
  return out;
}

/** Publishes a baseline of the site (its database and its files, each from its server). */
export async function publishBaseline(f: Fleet, name: string) {
  const out: Record<string, unknown>[] = [];
  for (const role of ['database', 'webserver'] as const) {
    const [s] = await serversOf(f, role, undefined, 'PublishBaseline');
    out.push({ server: s!.name, role, ...(await runRoleCommand(f, s!, 'backup/PublishBaseline', [name])) });
  }
  return out;
}

/** The site's complete backups, newest first, from its backup bucket (manifests only: no key needed). */
export async function listBackups(f: Fleet) {
  const s = f.kit.storage;
  const driver = s3Driver({ bucket: f.d.backupBucket, endpoint: s.endpoint, region: s.region, credentials: s.credentials });
  try {
    const rows = [];
    if (await driver.bucketExists()) {
      for (const part of PARTS) {
        const b = new Backups({ client: driver.getInstance(), bucket: f.d.backupBucket, prefix: backupPrefix(part), hostname: 'build' });
        for (const m of await b.list()) {
          rows.push({
            part,
            id: m.id,
            period: m.period,
            createdAt: m.createdAt,
            sourceHost: m.sourceHost,
            bytes: m.parts.reduce((n, p) => n + p.size, 0),
            encrypted: m.encrypted,
          });
        }
      }
    }
    return rows.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  } finally {
    await driver.dispose?.();
  }
}

/** Sets the desired number of webservers (production mode), split between the autoscalers. */
export async function adjustScaling(f: Fleet, count: string) {
  const r = await setDesiredWebservers(f.store, count, 'AdjustScaling');
  return { ...r, described: describeSplit(r.split) };
}

/** The application administrator set when the site came from a baseline. */
export async function appAdmin(f: Fleet): Promise<{ user: string; password: string }> {
  const admin = (await f.store.get(keys.credentials.key('app-admin'))) as { user: string; password: string } | null;
  if (!admin)
    throw fail(
      'NOT_FOUND',
      'no application administrator was set by the toolkit (only a deploy from a baseline sets one; a virgin install asks for one)',
    );
  return admin;
}

/** The serial of the certificate a server serves for `host` at `ip`:443 (bounded). */
export function servedSerial(ip: string, host: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: ip, port: 443, servername: host, rejectUnauthorized: false, timeout: timeoutMs }, () => {
      const serial = s.getPeerX509Certificate()?.serialNumber ?? '';
      s.destroy();
      resolve(serial);
    });
    s.on('timeout', () => s.destroy(new Error(`no TLS answer from ${ip}:443 within ${timeoutMs} ms`)));
    s.on('error', reject);
  });
}

export interface StatusRow {
  role: string;
  name: string;
  state: string;
  publicIp: string | null;
  privateIp: string | null;
  ageSeconds: number;
  ready: string | null;
  health: string;
  bundle: string | null;
}

async function health(f: Fleet, s: Server, tls: { ca: string } | null, auth: { ca: string } | null): Promise<string> {
  const d = f.d;
  if (s.state !== 'running') return s.state;
  if (s.role === 'webserver' && tls && s.publicIp) {
    return httpsGet(s.publicIp, d.host, tls.ca, 5000).then(
      (r) => `HTTPS ${r.status}${r.release ? `, release ${r.release}` : ', no release'}`,
      (e: Error) => `HTTPS failed: ${e.message}`,
    );
  }
  if (s.role === 'auth' && auth && s.publicIp && d.auth) {
    const served = await servedSerial(s.publicIp, d.auth.host).catch(() => null);
    const h = await httpsGet(s.publicIp, d.auth.host, auth.ca, 5000).then(
      (r) => `sign-in HTTPS ${r.status}`,
      (e: Error) => `sign-in HTTPS failed: ${e.message}`,
    );
    return served ? `${h}, certificate ${served}` : h;
  }
  if (s.role === 'autoscaler') {
    const r = await f.ssh.exec(s, ['pgrep', '-f', 'scaling-service'], { timeoutMs: 15_000 });
    return r.exitCode === 0
      ? 'scaling service running'
      : r.exitCode === 255
        ? `not reachable by SSH: ${outputTail(r, 1)}`
        : 'scaling service NOT running';
  }
  if (s.role === 'database') {
    const r = await f.ssh.exec(s, ['mariadb-admin', '--defaults-file=/etc/mysql/adt.cnf', '--connect-timeout=3', 'ping'], {
      timeoutMs: 20_000,
    });
    return r.exitCode === 0
      ? 'MariaDB answers'
      : r.exitCode === 255
        ? `not reachable by SSH: ${outputTail(r, 1)}`
        : `MariaDB does not answer (${outputTail(r, 1)})`;
  }
  return 'unknown';
}

/** The build's servers, readiness, health, DNS records, certificate, scaling and recent events. */
export async function status(f: Fleet) {
  const d = f.d;
  const store: ConfigStore = f.store;
  const servers = await f.kit.compute.list({ buildId: d.buildId });
  const reachable = await store.driver.bucketExists().catch(() => false);
  const tls = reachable ? await store.get(keys.siteTls).catch(() => null) : null;
  const authSettings = reachable && d.auth ? await store.get(keys.auth).catch(() => null) : null;
  const pinned = reachable
    ? await f.ssh
        .pin(
          store,
          servers.filter((s) => s.role !== 'build'),
        )
        .then(
          () => true,
          () => false,
        )
    : false;
  const rows: StatusRow[] = [];
  for (const s of servers) {
    const ready = reachable ? await store.get(keys.ready(s.role, s.name)).catch(() => null) : null;
    const h =
      pinned || s.role === 'webserver' || s.role === 'auth' ? await health(f, s, tls, authSettings) : 'unknown (no pinned host key)';
    const bundle =
      pinned && s.state === 'running' && s.role !== 'build'
        ? (await f.ssh.exec(s, ['cat', '/opt/adt/BUNDLE.sha256'], { timeoutMs: 15_000 })).stdout.trim().slice(0, 12) || null
        : null;
    rows.push({
      role: s.role,
      name: s.name,
      state: s.state,
      publicIp: s.publicIp,
      privateIp: s.privateIp,
      ageSeconds: Math.round((Date.now() - Date.parse(s.createdAt ?? '')) / 1000),
      ready: ready ? ready.at : null,
      health: h,
      bundle,
    });
  }
  const dns = f.kit.dns(d.zone);
  const records = await dns.listA(d.host).then(
    (r) => r.map((x) => x.content),
    () => null,
  );
  await dns.dispose?.();
  const scaling = reachable ? await store.get(keys.scaling).catch(() => null) : null;
  const desired = scaling
    ? await Promise.all(Array.from({ length: scaling.autoscalers }, (_, i) => store.get(keys.desiredWebservers(i + 1))))
    : null;
  const eventKeys = reachable ? (await store.listOf(keys.events)).sort().slice(-15) : [];
  const events = (await Promise.all(eventKeys.map((k) => store.get(keys.events.key(k))))).filter((e) => e !== null);
  const current = reachable ? await store.get(keys.bundle).catch(() => null) : null;
  const cert = tls ? new X509Certificate(tls.chain) : null;
  const certificate = cert
    ? {
        mode: d.tls.mode,
        serial: cert.serialNumber,
        issuer: cert.issuer.replace(/\n/g, ', '),
        notAfter: new Date(cert.validTo).toISOString(),
        daysLeft: Math.floor((Date.parse(cert.validTo) - Date.now()) / 86_400_000),
      }
    : null;
  return {
    buildId: d.buildId,
    url: d.siteUrl,
    datastore: reachable ? `${f.kit.storage.endpoint}/${d.configBucket}` : `bucket ${d.configBucket} not reachable`,
    dns: { name: d.host, a: records },
    certificate,
    bundle: current ? { sha256: current.bundle.sha256, node: current.runtime.node, publishedAt: current.publishedAt } : null,
    servers: rows,
    ...(desired ? { desiredWebservers: desired } : {}),
    events,
  };
}

// --- Releases of the site's code ---

export interface RolloutStep {
  server: string;
  release: string;
  before: string | null;
  seconds: number;
}

/**
 * Serves release `id` on every webserver, one after another (each a graceful reload checked by a
 * request that WordPress answered with it): the others keep serving meanwhile. Webservers made
 * during the rollout boot with the site's current release already.
 */
export async function rollOut(f: Fleet, id: string, say: (line: string) => void): Promise<RolloutStep[]> {
  const out: RolloutStep[] = [];
  const running = (await serversOf(f, 'webserver', undefined, 'Release')).filter((s) => s.state === 'running');
  // A webserver still booting reads the site's record itself when it installs its release.
  const ready = await Promise.all(running.map((s) => f.store.exists(keys.ready('webserver', s.name))));
  const servers = running.filter((_, i) => ready[i]);
  const booting = running.filter((_, i) => !ready[i]);
  if (booting.length) say(`  ${booting.map((s) => s.name).join(', ')}: still booting, they install the current release themselves`);
  for (const [i, s] of servers.entries()) {
    const r = (await runRoleCommand(f, s, 'release/SwitchRelease', [id])) as unknown as Omit<RolloutStep, 'server'>;
    out.push({ server: s.name, release: r.release, before: r.before, seconds: r.seconds });
    say(`  [${i + 1}/${servers.length}] ${s.name}: release ${r.release} served (was ${r.before ?? 'none'}; ${r.seconds} s)`);
  }
  await endRollout(f.store, id);
  return out;
}

/**
 * Publishes a new release of the site's code and rolls it out. `from`: `webserver` (the first
 * webserver: in development mode, where the code is made) or `webserver:NAME`; `backup:ID` or
 * `backup:PERIOD` (its newest) or `baseline:NAME`: the release that backup holds, without its
 * uploads; or a directory on this machine holding a WordPress webroot
 * (wp-load.php, wp-content).
 */
export async function publishRelease(
  f: Fleet,
  from: string,
  say: (line: string) => void,
): Promise<{ release: Release; rollout: RolloutStep[] }> {
  let release: Release;
  const backup = /^(backup|baseline):(.+)$/.exec(from);
  if (backup) {
    // The release a backup or a baseline holds; the shared files stay as they are.
    const [s] = await serversOf(f, 'webserver', undefined, 'Release');
    const args =
      backup[1] === 'baseline' ? ['--baseline', backup[2]!] : isPeriod(backup[2]!) ? ['--period', backup[2]!] : ['--id', backup[2]!];
    say(`making a release of the code of ${from} on ${s!.name}`);
    const r = (await runRoleCommand(f, s!, 'backup/Restore', [...args, '--code-only'])) as { release: string };
    release = (await f.store.require(keys.releases)).current;
    if (release.id !== r.release) throw fail('RELEASE_RACE', `another release (${release.id}) was published meanwhile: nothing rolled out`);
  } else if (from === 'webserver' || from.startsWith('webserver:')) {
    const [s] = await serversOf(f, 'webserver', from.slice('webserver:'.length) || undefined, 'Release');
    say(`packing the code of ${s!.name}`);
    release = ((await runRoleCommand(f, s!, 'release/PackRelease', [])) as { release: Release }).release;
  } else {
    const dir = resolve(from);
    if (!existsSync(dir))
      throw fail(
        'BAD_SOURCE',
        `Release --from "${from}": no such directory; give webserver, webserver:NAME, backup:ID|PERIOD, baseline:NAME or a directory`,
        2,
      );
    const tmp = await mkdtemp(join(tmpdir(), 'adt-release-'));
    try {
      say(`packing ${dir}`);
      const packed = await packRelease(dir, join(tmp, 'release.tar.gz'));
      release = await uploadRelease(f.s3, f.d.configBucket, packed, `directory ${dir} (build machine)`);
      await makeReleaseCurrent(f.store, release);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  say(`release ${release.id} published (${(release.bytes / 1e6).toFixed(1)} MB, SHA-256 ${release.sha256.slice(0, 12)}...): rolling out`);
  return { release, rollout: await rollOut(f, release.id, say) };
}

/** Makes the release before the current one (or `to`) current again and rolls it out. */
export async function rollBack(f: Fleet, to: string | undefined, say: (line: string) => void) {
  const { record, from } = await rollBackRelease(f.store, to);
  say(`release ${record.current.id} is current again (instead of ${from.id}): rolling out`);
  return { release: record.current, from: from.id, rollout: await rollOut(f, record.current.id, say) };
}

/** The site's releases and the one each webserver serves (from the header of its answer). */
export async function listReleases(f: Fleet) {
  const [record, tls] = await Promise.all([f.store.get(keys.releases), f.store.get(keys.siteTls)]);
  const servers = await f.kit.compute.list({ buildId: f.d.buildId, role: 'webserver' });
  const serving = await Promise.all(
    servers.map(async (s) => ({
      server: s.name,
      release:
        tls && s.publicIp && s.state === 'running'
          ? ((await httpsGet(s.publicIp, f.d.host, tls.ca, 5000).catch(() => null))?.release ?? null)
          : null,
    })),
  );
  return { current: record?.current ?? null, previous: record?.previous ?? [], serving };
}
