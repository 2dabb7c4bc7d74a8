/**
 * destroy: tears down everything of one build on the local provider: its servers (every process,
 * namespace, overlay), its DNS records, its native firewall rules, its config bucket (unless
 * --keep-bucket) and its files (key, CA) under STATE_DIR. When no other build is left on the local
 * cloud, the cloud's shared parts go too (PowerDNS, the embedded S3 server, bridges, outsider,
 * firewall chain): nothing is left behind.
 */
import { acmeDir, removeRenewalCron, stopPebble } from './tls.ts';
import { existsSync, readdirSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stopProcess } from '@adt/core';
import { attachPowerDns, type Role } from '@adt/providers';
import { ROLES as FLEET_ROLES } from '@adt/firewall';
import { attachS3Daemon } from './s3-daemon.ts';
import { runningDaemon } from './daemon.ts';
import { readDeployment } from './settings.ts';
import { localEnv, openDns, openStore, otherBuilds } from './local-env.ts';
import { parseCommandLine } from './cli.ts';

const HELP = `usage: npx zx roles/build/destroy.mjs [--config FILE] [--backup] [--keep-bucket] [--json]

Destroys the servers, DNS records, native firewall rules and config bucket of the build named by
the deployment file (the same file deploy used; defaults otherwise). The site's backup bucket is
never deleted: a later deploy can start from it (RESTORE_FROM).

  --config FILE   deployment file (see roles/build/deployment.example.env)
  --backup        take a "shutdown" backup of the database and the site's files first
  --keep-bucket   keep the config bucket and the build's key (to inspect it)
  --json          machine-readable summary on stdout`;

export async function main(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    {
      config: { type: 'string' },
      backup: { type: 'boolean' },
      'keep-bucket': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    HELP,
  );
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const d = readDeployment(values.config, process.env);
  const json = Boolean(values.json);
  const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
  if (process.getuid?.() !== 0) {
    const { AdtError } = await import('@adt/core');
    throw new AdtError('NOT_ROOT', 'the local provider needs root: run as root', { pkg: 'build', exitCode: 2 });
  }
  const env = localEnv(d);
  const started = Date.now();
  say(`Destroying build ${d.buildId} (${d.siteUrl}) on the local cloud "${d.cloudId}"`);

  const servers = await env.cloud.list({ buildId: d.buildId });
  if (values.backup) {
    // Before anything goes: a failed backup stops the destroy, and nothing is lost.
    if (!servers.length) say('  --backup: no servers of this build, nothing to back up');
    else {
      const { backupNow } = await import('./fleet-tools.ts');
      await backupNow([...(values.config ? ['--config', values.config] : []), 'shutdown'], (t) => say(`  ${t.trimEnd()}`));
    }
  }
  // DNS records first: visitors stop being sent to servers that are going away.
  const dns = await openDns(env);
  const removedRecords: string[] = [];
  if (dns) {
    const ours = new Set(servers.map((s) => s.publicIp));
    if (d.auth)
      for (const r of await dns.listA(d.auth.host))
        if (ours.has(r.content)) (await dns.removeA(d.auth.host, r.content), removedRecords.push(`${d.auth.host} A ${r.content}`));
    for (const r of await dns.listA(d.host)) {
      if (ours.has(r.content) || r.content.startsWith(`${env.cloud.publicPrefix}.`)) {
        await dns.removeA(d.host, r.content);
        removedRecords.push(`${d.host} A ${r.content}`);
      }
    }
    await dns.dispose?.();
  }
  say(`  DNS records removed: ${removedRecords.length ? removedRecords.join(', ') : 'none'}`);
  // Autoscalers first (and the API they use), so that nothing rebuilds what is being destroyed.
  const destroyAll = (list: typeof servers) =>
    Promise.all(
      list.map(async (s) => {
        await env.cloud.destroy(s.id);
        say(`  server ${s.name} (${s.role}) destroyed`);
      }),
    );
  await destroyAll(servers.filter((s) => s.role === 'autoscaler'));
  const api = runningDaemon(env.cloudApiDir, 'cloud-api');
  if (api) {
    await stopProcess(api, { timeoutMs: 5000 });
    say('  local cloud API of this build stopped');
  }
  await destroyAll(await env.cloud.list({ buildId: d.buildId }));
  if (!servers.length) say('  no servers of this build');
  for (const role of FLEET_ROLES) await env.cloud.firewall.remove(d.buildId, role as Role);

  let bucket = 'kept';
  const s3 = await attachS3Daemon(env.s3Dir, env.s3Endpoint);
  if (!values['keep-bucket']) {
    if (s3) {
      const store = openStore(env);
      const n = await store.deleteBucket();
      await store.driver.dispose?.();
      bucket = `deleted (${n} object(s))`;
    } else if (existsSync(`${env.s3Dir}/data/${d.configBucket}`)) {
      // The S3 server is not running: its data is plain files.
      await rm(`${env.s3Dir}/data/${d.configBucket}`, { recursive: true, force: true });
      bucket = "deleted (from the stopped S3 server's files)";
    } else bucket = 'absent';
    await rm(env.buildDir, { recursive: true, force: true });
  }
  say(`  config bucket ${d.configBucket}: ${bucket}`);
  if (removeRenewalCron(env)) say('  certificate renewal (cron) removed');

  // The cloud's shared parts, when no server of any build is left on it.
  const remaining = await env.cloud.list();
  const others = otherBuilds(env);
  let cloud = `kept (servers of ${[...new Set(remaining.map((s) => s.buildId))].join(', ')} remain)`;
  if (!remaining.length) {
    const pdns = await attachPowerDns(env.dnsDir);
    // By PID, whatever port the S3 server was started on.
    const s3Pid = runningDaemon(env.s3Dir, 's3');
    const mailPid = runningDaemon(env.mailDir, 'mail');
    await Promise.all([
      pdns?.stop(),
      s3Pid && stopProcess(s3Pid, { timeoutMs: 5000 }),
      mailPid && stopProcess(mailPid, { timeoutMs: 5000 }),
      stopPebble(env),
    ]);
    await rm(env.mailDir, { recursive: true, force: true });
    await rm(acmeDir(env), { recursive: true, force: true });
    await rm(env.dnsDir, { recursive: true, force: true });
    // Buckets that remain (backups, or config buckets kept by --keep-bucket) stay on disk for the next start.
    const dataDir = join(env.s3Dir, 'data');
    const buckets = existsSync(dataDir) ? readdirSync(dataDir) : [];
    if (!buckets.length && !others.length) await rm(env.s3Dir, { recursive: true, force: true });
    await env.cloud.teardown();
    cloud = 'torn down (no server left on it): PowerDNS, the embedded S3 (and pebble, mail catcher) stopped, networks removed';
  }
  // Empty directories of the layout go too (rmdir refuses non-empty ones).
  for (const dir of ['builds', 'cloud', 'dns', 's3', 'mail', 'acme', ''].map((p) => join(d.stateDir, p))) await rmdir(dir).catch(() => {});
  say(`  local cloud "${d.cloudId}": ${cloud}`);
  const seconds = Number(((Date.now() - started) / 1000).toFixed(1));
  if (json)
    process.stdout.write(
      `${JSON.stringify({ buildId: d.buildId, servers: servers.map((s) => s.name), dnsRecords: removedRecords, bucket, cloud, seconds }, null, 2)}\n`,
    );
  else say(`Done in ${seconds} s.`);
  return 0;
}
