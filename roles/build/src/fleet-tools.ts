/**
 * The operator's helpers, thin over the packages (the original's `ConnectTo<Role>VPS.sh`,
 * `ExecuteOn<Role>.sh` and status scripts):
 *
 *   roles/build/status [--config FILE] [--json]             servers, roles, IPs, readiness, health, age
 *   roles/build/ExecuteOn<Role> [--config FILE] -- CMD...   run a command on every server of a role
 *   roles/build/ConnectTo<Role> [--config FILE]             an interactive shell on a server of a role
 *
 * On the local provider "ssh" is entering the server's namespaces; the cloud drivers will use SSH.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { AdtError } from '@adt/core';
import { keys } from '@adt/configstore';
import type { Role, Server } from '@adt/providers';
import { httpsGet, usage } from '@adt/role-common';
import { parseCommandLine } from './cli.ts';
import { readDeployment } from './settings.ts';
import { CODE_ON_SERVERS, localEnv, openDns, openStore, type LocalEnv } from './local-env.ts';
import { Backups, PARTS, backupPrefix } from '@adt/backup';
import { describeSplit, setDesiredWebservers } from '@adt/scaling';
import s3Driver from '@adt/configstore/drivers/s3';
import { EMBEDDED_CREDENTIALS } from '@adt/configstore/embedded-s3';
import { attachS3Daemon } from './s3-daemon.ts';
import { servedSerial } from './tls.ts';

const ROLES = ['webserver', 'database', 'autoscaler', 'auth'] as const;

function requireRoot() {
  if (process.getuid?.() !== 0) throw new AdtError('NOT_ROOT', 'the local provider needs root: run as root', { pkg: 'build', exitCode: 2 });
}

function roleArg(role: string | undefined, command: string): Role {
  if (!role || !(ROLES as readonly string[]).includes(role))
    throw usage(`${command}: the role must be one of ${ROLES.join(', ')} (e.g. ${command}Webserver), not "${role ?? ''}"`);
  return role as Role;
}

async function serversOf(env: LocalEnv, role: Role, name: string | undefined, command: string): Promise<Server[]> {
  const all = await env.cloud.list({ buildId: env.d.buildId, role });
  const chosen = name ? all.filter((s) => s.name === name) : all;
  if (!chosen.length) {
    throw new AdtError(
      'NO_SERVER',
      `${command}: no ${role} server${name ? ` named ${name}` : ''} in build ${env.d.buildId} (have: ${all.map((s) => s.name).join(', ') || 'none'}); roles/build/status lists them`,
      { pkg: 'build', exitCode: 2 },
    );
  }
  return chosen;
}

const HELP_EXEC = `usage: roles/build/ExecuteOn<Role> [--config FILE] [--name SERVER] -- COMMAND [ARG...]

Runs COMMAND on every server of the role in the build (or the one named), one after another, its
output prefixed by the server's name. Exits with the first non-zero exit code, else 0.`;

export async function executeOn(role: string | undefined, args: string[]): Promise<number> {
  const r = roleArg(role, 'ExecuteOn');
  const { values, positionals } = parseCommandLine(
    args,
    { config: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean' } },
    HELP_EXEC,
    true,
  );
  if (values.help) return (process.stdout.write(`${HELP_EXEC}\n`), 0);
  if (!positionals.length) throw usage(`ExecuteOn: give the command after --\n\n${HELP_EXEC}`);
  requireRoot();
  const env = localEnv(readDeployment(values.config));
  let worst = 0;
  for (const s of await serversOf(env, r, values.name, 'ExecuteOn')) {
    const res = await env.cloud.exec(s.id, positionals, { nothrow: true, timeoutMs: 600_000 });
    const prefix = (text: string) =>
      text
        .split('\n')
        .filter((l, i, a) => l !== '' || i < a.length - 1)
        .map((l) => `${s.name}: ${l}\n`)
        .join('');
    process.stdout.write(prefix(res.stdout));
    process.stderr.write(prefix(res.stderr));
    if (res.exitCode !== 0 && worst === 0) worst = res.exitCode ?? 1;
  }
  return worst;
}

const HELP_CONNECT = `usage: roles/build/ConnectTo<Role> [--config FILE] [--name SERVER]

Opens an interactive shell (bash -l) on the first server of the role in the build (or the one named).`;

export async function connectTo(role: string | undefined, args: string[]): Promise<number> {
  const r = roleArg(role, 'ConnectTo');
  const { values } = parseCommandLine(
    args,
    { config: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean' } },
    HELP_CONNECT,
  );
  if (values.help) return (process.stdout.write(`${HELP_CONNECT}\n`), 0);
  requireRoot();
  const env = localEnv(readDeployment(values.config));
  const [s] = await serversOf(env, r, values.name, 'ConnectTo');
  process.stderr.write(`connecting to ${s!.name} (${r}, ${s!.publicIp} / ${s!.privateIp}); exit the shell to come back\n`);
  const argv = await env.cloud.execArgv(s!.id, ['bash', '-l']);
  const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

const HELP_STATUS = `usage: roles/build/status [--config FILE] [--json]

The build's servers with role, addresses, state, age, readiness (from the datastore) and health
(webservers: HTTPS as a visitor sees it; database: the server answers a ping), and its DNS records.`;

export async function status(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
    HELP_STATUS,
  );
  if (values.help) return (process.stdout.write(`${HELP_STATUS}\n`), 0);
  requireRoot();
  const d = readDeployment(values.config);
  const env = localEnv(d);
  const servers = await env.cloud.list({ buildId: d.buildId });
  const s3 = await attachS3Daemon(env.s3Dir, env.s3Endpoint);
  const store = s3 ? openStore(env) : null;
  const tls = store ? await store.get(keys.siteTls).catch(() => null) : null;
  const authSettings = store && d.auth ? await store.get(keys.auth).catch(() => null) : null;
  const rows = [];
  for (const s of servers) {
    const ready = store ? await store.get(keys.ready(s.role, s.name)).catch(() => null) : null;
    let health = 'unknown';
    if (s.role === 'webserver' && tls && s.publicIp)
      health = await httpsGet(s.publicIp, d.host, tls.ca, 5000).then(
        (r) => `HTTPS ${r.status}`,
        (e: Error) => `HTTPS failed: ${e.message}`,
      );
    if (s.role === 'auth' && authSettings && s.publicIp) {
      const served = await servedSerial(s.publicIp, d.auth!.host).catch(() => null);
      health = await httpsGet(s.publicIp, d.auth!.host, authSettings.ca, 5000).then(
        (r) => `sign-in HTTPS ${r.status}`,
        (e: Error) => `sign-in HTTPS failed: ${e.message}`,
      );
      if (served) health += `, certificate ${served}`;
    }
    if (s.role === 'autoscaler') {
      const svc = await env.cloud.exec(s.id, ['pgrep', '-f', 'roles/autoscaler/src/service.ts'], { nothrow: true, timeoutMs: 10_000 });
      health = svc.exitCode === 0 ? 'scaling service running' : 'scaling service NOT running';
    }
    if (s.role === 'database') {
      const ping = await env.cloud.exec(s.id, ['mariadb-admin', '--defaults-file=/etc/mysql/adt.cnf', '--connect-timeout=3', 'ping'], {
        nothrow: true,
        timeoutMs: 15_000,
      });
      health =
        ping.exitCode === 0 ? 'MariaDB answers' : `MariaDB does not answer (${(ping.stderr || ping.stdout).trim().split('\n').pop()})`;
    }
    const ageSeconds = Math.round((Date.now() - Date.parse(s.createdAt ?? '')) / 1000);
    rows.push({
      role: s.role,
      name: s.name,
      state: s.state,
      publicIp: s.publicIp,
      privateIp: s.privateIp,
      ageSeconds,
      ready: ready ? ready.at : null,
      health,
    });
  }
  const dns = await openDns(env);
  const records = dns ? (await dns.listA(d.host)).map((r) => r.content) : null;
  await dns?.dispose?.();
  // Production mode: the desired counts and the autoscalers' latest events.
  const scaling = store ? await store.get(keys.scaling).catch(() => null) : null;
  const desired =
    scaling && store
      ? await Promise.all(Array.from({ length: scaling.autoscalers }, (_, i) => store.get(keys.desiredWebservers(i + 1))))
      : null;
  const eventKeys = store ? (await store.listOf(keys.events)).sort().slice(-15) : [];
  const events = store ? (await Promise.all(eventKeys.map((k) => store.get(keys.events.key(k))))).filter((e) => e !== null) : [];
  await store?.driver.dispose?.();
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
  const out = {
    buildId: d.buildId,
    url: d.siteUrl,
    datastore: s3 ? `${env.s3Endpoint}/${d.configBucket}` : 'embedded S3 not running',
    dns: { name: d.host, a: records },
    certificate,
    servers: rows,
    ...(desired ? { desiredWebservers: desired } : {}),
    events,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const age = (n: number) => (n < 120 ? `${n} s` : n < 7200 ? `${Math.round(n / 60)} min` : `${Math.round(n / 3600)} h`);
  process.stdout.write(`Build ${d.buildId}: ${d.siteUrl}  (datastore ${out.datastore})\n`);
  process.stdout.write(`  DNS ${d.host} A ${records ? records.join(', ') || 'none' : '(PowerDNS not running)'}\n`);
  if (certificate)
    process.stdout.write(
      `  TLS certificate ${certificate.serial} (${certificate.mode === 'acme' ? 'ACME' : 'local CA'}, ${certificate.issuer}) valid until ${certificate.notAfter}, ${certificate.daysLeft} days left${certificate.mode === 'acme' && certificate.daysLeft < d.tls.renewDays ? ': due for renewal (roles/build/RenewCertificate)' : ''}\n`,
    );
  if (!rows.length) process.stdout.write('  no servers\n');
  for (const r of rows) {
    process.stdout.write(
      `  ${r.role.padEnd(10)} ${r.name.padEnd(18)} ${r.state.padEnd(8)} public ${r.publicIp ?? '-'}  private ${r.privateIp ?? '-'}  age ${age(r.ageSeconds)}  ${r.ready ? 'ready' : 'not ready'}  ${r.health}\n`,
    );
  }
  if (desired) process.stdout.write(`  desired webservers: ${desired.map((n, i) => `autoscaler ${i + 1}: ${n ?? 0}`).join(', ')}\n`);
  if (events.length) {
    process.stdout.write('  recent scaling events:\n');
    for (const e of events)
      process.stdout.write(
        `    ${e.at} slot ${e.slot} ${e.action}${e.server ? ` ${e.server}` : ''}${e.ip ? ` (${e.ip})` : ''}: ${e.reason}\n`,
      );
  }
  return 0;
}

const HELP_BACKUP = `usage: roles/build/Backup [--config FILE] [--json] <period>

Backs up the site now: the database on the database server and the site's files on one webserver,
each verified and rotated (period: hourly, daily, weekly, monthly, bimonthly, manual, shutdown).`;

/** Runs a role's backup command on a server; its JSON answer, or a clear error. */
async function onServer(env: LocalEnv, s: Server, argv: string[]): Promise<Record<string, unknown>> {
  const r = await env.cloud.exec(s.id, [`${CODE_ON_SERVERS}/roles/${s.role}/backup/${argv[0]}`, ...argv.slice(1), '--json'], {
    nothrow: true,
    timeoutMs: 3_600_000,
  });
  if (r.exitCode !== 0)
    throw new AdtError(
      'JOB_FAILED',
      `${argv[0]} on ${s.name} (${s.role}) failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`,
      { pkg: 'build', exitCode: r.exitCode === 2 ? 2 : 1 },
    );
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

export async function backupNow(args: string[], write: (text: string) => void = (t) => void process.stdout.write(t)): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
    HELP_BACKUP,
    true,
  );
  if (values.help) return (process.stdout.write(`${HELP_BACKUP}\n`), 0);
  if (positionals.length !== 1) throw usage(`Backup: give one period\n\n${HELP_BACKUP}`);
  requireRoot();
  const env = localEnv(readDeployment(values.config));
  const results = [];
  for (const role of ['database', 'webserver'] as const) {
    const [s] = await serversOf(env, role, undefined, 'Backup');
    const r = await onServer(env, s!, ['Backup', positionals[0]!]);
    results.push({ server: s!.name, role, ...r });
    const m = r.manifest as { id: string; parts: { size: number }[] } | undefined;
    if (!values.json)
      write(
        m
          ? `${role} ${s!.name}: backup ${m.id} verified (${(m.parts.reduce((n, p) => n + p.size, 0) / 1e6).toFixed(1)} MB stored)${(r.deleted as string[]).length ? `; rotated away ${(r.deleted as string[]).join(', ')}` : ''}\n`
          : `${role} ${s!.name}: skipped (${String(r.skipped)})\n`,
      );
  }
  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return 0;
}

const HELP_RESTORE = `usage: roles/build/Restore [--config FILE] [--json] (--period P | --database-id ID --webroot-id ID | --baseline [BUCKET/]NAME)

Restores the database (on the database server) and the site's files (on every webserver) from the
newest backup of a period, or from the named backups (roles/build/ListBackups shows them). Each
part is checked against its SHA-256 before anything is replaced.`;

export async function restoreFleet(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    {
      config: { type: 'string' },
      period: { type: 'string' },
      'database-id': { type: 'string' },
      'webroot-id': { type: 'string' },
      baseline: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    HELP_RESTORE,
  );
  if (values.help) return (process.stdout.write(`${HELP_RESTORE}\n`), 0);
  const byId = values['database-id'] !== undefined || values['webroot-id'] !== undefined;
  const ways = [byId, values.period !== undefined, values.baseline !== undefined].filter(Boolean).length;
  if (ways !== 1 || (byId && (!values['database-id'] || !values['webroot-id'])))
    throw usage(`Restore: give --period, both --database-id and --webroot-id, or --baseline\n\n${HELP_RESTORE}`);
  requireRoot();
  const env = localEnv(readDeployment(values.config));
  const results = [];
  for (const role of ['database', 'webserver'] as const) {
    const select = values.baseline
      ? ['--baseline', values.baseline]
      : values.period
        ? ['--period', values.period]
        : ['--id', (role === 'database' ? values['database-id'] : values['webroot-id'])!];
    for (const s of await serversOf(env, role, undefined, 'Restore')) {
      const r = await onServer(env, s, ['Restore', ...select]);
      results.push({ server: s.name, role, ...r });
      if (!values.json) process.stdout.write(`${role} ${s.name}: restored ${String(r.restored)}\n`);
    }
  }
  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return 0;
}

const HELP_LIST = `usage: roles/build/ListBackups [--config FILE] [--json]

The site's complete backups (database and site files), newest first, from its backup bucket.`;

export async function listBackups(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
    HELP_LIST,
  );
  if (values.help) return (process.stdout.write(`${HELP_LIST}\n`), 0);
  requireRoot();
  const d = readDeployment(values.config);
  const env = localEnv(d);
  if (!(await attachS3Daemon(env.s3Dir, env.s3Endpoint)))
    throw new AdtError('S3_NOT_RUNNING', `the embedded S3 server of the local cloud "${d.cloudId}" is not running: deploy first`, {
      pkg: 'build',
      exitCode: 2,
    });
  const driver = s3Driver({ bucket: d.backupBucket, endpoint: env.s3Endpoint, credentials: { ...EMBEDDED_CREDENTIALS } });
  try {
    const rows = [];
    if (await driver.bucketExists()) {
      for (const part of PARTS) {
        // Listing reads manifests only: no key needed.
        const b = new Backups({ client: driver.getInstance(), bucket: d.backupBucket, prefix: backupPrefix(part), hostname: 'build' });
        for (const m of await b.list())
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
    rows.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    if (values.json) process.stdout.write(`${JSON.stringify({ bucket: d.backupBucket, backups: rows }, null, 2)}\n`);
    else {
      process.stdout.write(`Backups of ${d.host} in ${d.backupBucket}:\n`);
      if (!rows.length) process.stdout.write('  none\n');
      for (const r of rows)
        process.stdout.write(
          `  ${r.part.padEnd(8)} ${r.id}  ${r.period.padEnd(9)} ${r.createdAt}  ${(r.bytes / 1e6).toFixed(1)} MB  from ${r.sourceHost}${r.encrypted ? '  encrypted' : ''}\n`,
        );
    }
    return 0;
  } finally {
    await driver.dispose?.();
  }
}

const HELP_ADJUST = `usage: roles/build/AdjustScaling [--config FILE] <webservers>

Sets the desired number of webservers of the fleet (production mode), split between the
autoscalers; they follow within a tick. The same as roles/autoscaler/ManuallyScale.ts on an
autoscaler. A count that is not a whole number from 0 to MAX_WEBSERVERS is refused (exit 2).`;

export async function adjustScaling(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
    HELP_ADJUST,
    true,
  );
  if (values.help) return (process.stdout.write(`${HELP_ADJUST}\n`), 0);
  if (positionals.length !== 1) throw usage(`AdjustScaling: give one number of webservers\n\n${HELP_ADJUST}`);
  requireRoot();
  const d = readDeployment(values.config);
  const env = localEnv(d);
  if (!(await attachS3Daemon(env.s3Dir, env.s3Endpoint)))
    throw new AdtError('S3_NOT_RUNNING', `the embedded S3 server of the local cloud "${d.cloudId}" is not running: deploy first`, {
      pkg: 'build',
      exitCode: 2,
    });
  const store = openStore(env);
  try {
    const { total, split, intervalSeconds } = await setDesiredWebservers(store, positionals[0]!, 'AdjustScaling');
    if (values.json) process.stdout.write(`${JSON.stringify({ total, split })}\n`);
    else
      process.stdout.write(`desired webservers: ${total} (${describeSplit(split)}); the autoscalers follow within ${intervalSeconds} s\n`);
    return 0;
  } finally {
    await store.driver.dispose?.();
  }
}

const HELP_PUBLISH = `usage: roles/build/PublishBaseline [--config FILE] [--json] <name>

Publishes a shareable baseline of the site under baselines/<name>/ in its backup bucket: the
database (from the database server; the site's domain replaced by baseline.invalid, password hashes
removed) and the site's files (from a webserver; config files never included). Each part is
scanned for secrets first and refused, naming file and line, when anything is found. Deploy from it
with RESTORE_FROM=baseline:<name> (or baseline:<bucket>/<name> for another site).`;

export async function publishBaselineFleet(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
    HELP_PUBLISH,
    true,
  );
  if (values.help) return (process.stdout.write(`${HELP_PUBLISH}\n`), 0);
  if (positionals.length !== 1) throw usage(`PublishBaseline: give one name\n\n${HELP_PUBLISH}`);
  requireRoot();
  const env = localEnv(readDeployment(values.config));
  const results = [];
  for (const role of ['database', 'webserver'] as const) {
    const [s] = await serversOf(env, role, undefined, 'PublishBaseline');
    const r = await onServer(env, s!, ['PublishBaseline', positionals[0]!]);
    results.push({ server: s!.name, role, ...r });
    const m = r.manifest as { id: string } | undefined;
    const rw = r.rewrite as { domains: number; hashes: number } | undefined;
    if (!values.json)
      process.stdout.write(
        `${role} ${s!.name}: ${r.part} part of baseline ${positionals[0]} published (${m?.id})${role === 'database' && rw ? `; ${rw.domains} mention(s) of the domain replaced, ${rw.hashes} password hash(es) removed` : ''}\n`,
      );
  }
  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return 0;
}

const HELP_ADMIN = `usage: roles/build/AppAdmin [--config FILE] [--reveal]

The application administrator's sign-in set when the site was deployed from a baseline (baselines
carry no passwords): the user name, and the password only with --reveal or when the output is not a
terminal (for scripts).`;

export async function appAdmin(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    { config: { type: 'string' }, reveal: { type: 'boolean' }, help: { type: 'boolean' } },
    HELP_ADMIN,
  );
  if (values.help) return (process.stdout.write(`${HELP_ADMIN}\n`), 0);
  requireRoot();
  const env = localEnv(readDeployment(values.config));
  const store = openStore(env);
  try {
    const admin = (await store.get(keys.credentials.key('app-admin'))) as { user: string; password: string } | null;
    if (!admin)
      throw new AdtError(
        'NOT_FOUND',
        'no application administrator was set by the toolkit (only a deploy from a baseline sets one; a virgin install asks for one)',
        { pkg: 'build', exitCode: 1 },
      );
    const show = values.reveal || !process.stdout.isTTY;
    process.stdout.write(show ? `${admin.user}\n${admin.password}\n` : `${admin.user}\n(password not shown on a terminal: add --reveal)\n`);
    return 0;
  } finally {
    await store.driver.dispose?.();
  }
}
