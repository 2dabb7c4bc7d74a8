/**
 * The operator's helpers (the original's ExecuteOn<Role>, ConnectTo<Role>, CopyTo<Role>,
 * CopyFrom<Role> and status scripts), thin over @adt/fleet: every one reaches the servers over SSH
 * with the build's key and the servers' pinned host keys, on every provider.
 */
import { AdtError } from '@adt/core';
import {
  adjustScaling,
  appAdmin,
  backupNow,
  executeOn,
  listBackups,
  listReleases,
  publishBaseline,
  publishRelease,
  renewCertificates,
  restoreFleet,
  rollBack,
  serversOf,
  status,
  type ServerRole,
} from '@adt/fleet';
import { defineCommand, usage, type Command } from '@adt/role-common';
import { deploymentOf, helperName, withFleet } from './open.ts';

const NAME = { name: { type: 'string', description: 'only the server of this name' } } as const;

export function executeOnCommand(role: ServerRole): Command {
  return defineCommand({
    name: helperName('ExecuteOn', role),
    usage: '[--config FILE] [--name SERVER] -- COMMAND [ARG...]',
    description:
      `Runs COMMAND on every ${role} of the build (or the one named), one after another, over SSH; its output prefixed by the ` +
      "server's name. Exits with the first non-zero exit code, else 0.",
    common: ['config'],
    options: NAME,
    rest: { required: true },
    root: true,
    async run({ values, rest }) {
      return withFleet(deploymentOf(values), 'attach', async (f) => {
        const servers = await serversOf(f, role, values.name, helperName('ExecuteOn', role));
        return executeOn(f, servers, rest, (s, r) => {
          const prefix = (text: string) =>
            text
              .split('\n')
              .filter((l, i, a) => l !== '' || i < a.length - 1)
              .map((l) => `${s.name}: ${l}\n`)
              .join('');
          process.stdout.write(prefix(r.stdout));
          process.stderr.write(prefix(r.stderr));
        });
      });
    },
  });
}

export function connectToCommand(role: ServerRole): Command {
  return defineCommand({
    name: helperName('ConnectTo', role),
    usage: '[--config FILE] [--name SERVER]',
    description: `Opens an interactive shell as root on the first ${role} of the build (or the one named), over SSH.`,
    common: ['config'],
    options: NAME,
    root: true,
    async run({ values }) {
      return withFleet(deploymentOf(values), 'attach', async (f) => {
        const [s] = await serversOf(f, role, values.name, helperName('ConnectTo', role));
        process.stderr.write(`connecting to ${s!.name} (${role}, ${s!.publicIp} / ${s!.privateIp}); exit the shell to come back\n`);
        return f.ssh.interactive(s!);
      });
    },
  });
}

export function copyCommand(direction: 'to' | 'from', role: ServerRole): Command {
  const name = helperName(direction === 'to' ? 'CopyTo' : 'CopyFrom', role);
  return defineCommand({
    name,
    usage:
      direction === 'to'
        ? '[--config FILE] [--name SERVER] LOCAL_PATH... REMOTE_DIR'
        : '[--config FILE] [--name SERVER] REMOTE_PATH... LOCAL_DIR',
    description:
      direction === 'to'
        ? `Copies files or directories of this machine to REMOTE_DIR on every ${role} of the build (or the one named), over SSH ` +
          '(scp: modes and times kept).'
        : `Copies files or directories of the first ${role} of the build (or the one named) to LOCAL_DIR here, over SSH.`,
    common: ['config'],
    options: NAME,
    positionals: { min: 2, max: 100 },
    root: true,
    async run({ values, positionals }) {
      const target = positionals.at(-1)!;
      const sources = positionals.slice(0, -1);
      return withFleet(deploymentOf(values), 'attach', async (f) => {
        const servers = await serversOf(f, role, values.name, name);
        let worst = 0;
        for (const s of direction === 'to' ? servers : servers.slice(0, 1)) {
          const r = direction === 'to' ? await f.ssh.copyTo(s, sources, target) : await f.ssh.copyFrom(s, sources, target);
          if (r.exitCode !== 0) {
            process.stderr.write(`${s.name}: ${r.stderr.trim() || `scp exited with ${r.exitCode}`}\n`);
            worst ||= r.exitCode;
          } else process.stdout.write(`${s.name}: copied ${sources.join(', ')} ${direction === 'to' ? 'to' : 'from it to'} ${target}\n`);
        }
        return worst;
      });
    },
  });
}

const age = (n: number) => (n < 120 ? `${n} s` : n < 7200 ? `${Math.round(n / 60)} min` : `${Math.round(n / 3600)} h`);

export const statusCommand = defineCommand({
  name: 'status',
  usage: '[--config FILE] [--json]',
  description:
    "The build's servers with role, addresses, state, age, readiness (from the datastore), health (webservers: HTTPS as a visitor " +
    'sees it; the database server and autoscalers, over SSH) and the role bundle each runs, its DNS records, certificate and ' +
    'scaling.',
  common: ['config', 'json'],
  root: true,
  async run({ values, out }) {
    const d = deploymentOf(values);
    return withFleet(d, 'attach', async (f) => {
      const s = await status(f);
      const lines = [
        `Build ${d.buildId}: ${d.siteUrl}  (datastore ${s.datastore})`,
        `  DNS ${d.host} A ${s.dns.a ? s.dns.a.join(', ') || 'none' : '(DNS not reachable)'}`,
      ];
      const c = s.certificate;
      if (c) {
        lines.push(
          `  TLS certificate ${c.serial} (${c.mode === 'acme' ? 'ACME' : 'local CA'}, ${c.issuer}) ` +
            `valid until ${c.notAfter}, ${c.daysLeft} days left` +
            `${c.mode === 'acme' && c.daysLeft < d.tls.renewDays ? ': due for renewal (roles/build/RenewCertificate)' : ''}`,
        );
      }
      if (s.bundle) lines.push(`  role bundle ${s.bundle.sha256.slice(0, 12)} on Node ${s.bundle.node}, published ${s.bundle.publishedAt}`);
      if (!s.servers.length) lines.push('  no servers');
      for (const r of s.servers) {
        lines.push(
          `  ${r.role.padEnd(10)} ${r.name.padEnd(18)} ${r.state.padEnd(8)} public ${r.publicIp ?? '-'}  private ${r.privateIp ?? '-'}  ` +
            `age ${age(r.ageSeconds)}  ${r.ready ? 'ready' : 'not ready'}  ${r.health}${r.bundle ? `  bundle ${r.bundle}` : ''}`,
        );
      }
      if (s.desiredWebservers)
        lines.push(`  desired webservers: ${s.desiredWebservers.map((n, i) => `autoscaler ${i + 1}: ${n ?? 0}`).join(', ')}`);
      if (s.events.length) {
        lines.push('  recent scaling events:');
        for (const e of s.events)
          lines.push(`    ${e.at} slot ${e.slot} ${e.action}${e.server ? ` ${e.server}` : ''}${e.ip ? ` (${e.ip})` : ''}: ${e.reason}`);
      }
      out.result(s, lines.join('\n'));
      return 0;
    });
  },
});

const PERIODS_HELP = 'hourly, daily, weekly, monthly, bimonthly, manual, shutdown';

export const backupCommand = defineCommand({
  name: 'Backup',
  usage: '[--config FILE] [--json] <period>',
  description:
    "Backs up the site now: the database on the database server and the site's files on one webserver, each verified and rotated " +
    `(period: ${PERIODS_HELP}).`,
  common: ['config', 'json'],
  positionals: { min: 1, max: 1 },
  root: true,
  async run({ values, positionals, out }) {
    return withFleet(deploymentOf(values), 'attach', async (f) => {
      const results = await backupNow(f, positionals[0]!);
      out.result(
        results,
        results
          .map((r) =>
            r.manifest
              ? `${r.role} ${r.server}: backup ${r.manifest.id} verified ` +
                `(${(r.manifest.parts.reduce((n, p) => n + p.size, 0) / 1e6).toFixed(1)} MB stored)` +
                `${r.deleted?.length ? `; rotated away ${r.deleted.join(', ')}` : ''}`
              : `${r.role} ${r.server}: skipped (${String(r.skipped)})`,
          )
          .join('\n'),
      );
      return 0;
    });
  },
});

export const restoreCommand = defineCommand({
  name: 'Restore',
  usage: '[--config FILE] [--json] (--period P | --database-id ID --webroot-id ID | --baseline [BUCKET/]NAME)',
  description:
    "Restores the database (on the database server) and the site's files (on every webserver) from the newest backup of a period, " +
    'from the named backups (roles/build/ListBackups shows them), or from a baseline. Each part is checked against its SHA-256 ' +
    'before anything is replaced.',
  common: ['config', 'json'],
  options: {
    period: { type: 'string', description: `the newest backup of this period (${PERIODS_HELP})` },
    'database-id': { type: 'string', description: "the database backup's id" },
    'webroot-id': { type: 'string', description: "the site's files backup's id" },
    baseline: { type: 'string', description: "a baseline: NAME (this site's) or BUCKET/NAME" },
  },
  root: true,
  async run({ values, out }) {
    const byId = values['database-id'] !== undefined || values['webroot-id'] !== undefined;
    const ways = [byId, values.period !== undefined, values.baseline !== undefined].filter(Boolean).length;
    if (ways !== 1 || (byId && (!values['database-id'] || !values['webroot-id']))) {
      throw usage(`Restore: give --period, both --database-id and --webroot-id, or --baseline\n\n${restoreCommand.help()}`);
    }
    return withFleet(deploymentOf(values), 'attach', async (f) => {
      const results = await restoreFleet(f, {
        period: values.period,
        databaseId: values['database-id'],
        webrootId: values['webroot-id'],
        baseline: values.baseline,
      });
      out.result(results, results.map((r) => `${String(r.role)} ${String(r.server)}: restored ${String(r.restored)}`).join('\n'));
      return 0;
    });
  },
});

export const listBackupsCommand = defineCommand({
  name: 'ListBackups',
  usage: '[--config FILE] [--json]',
  description: "The site's complete backups (database and site files), newest first, from its backup bucket.",
  common: ['config', 'json'],
  root: true,
  async run({ values, out }) {
    const d = deploymentOf(values);
    return withFleet(d, 'attach', async (f) => {
      const rows = await listBackups(f);
      out.result(
        { bucket: d.backupBucket, backups: rows },
        [
          `Backups of ${d.host} in ${d.backupBucket}:`,
          ...(rows.length ? [] : ['  none']),
          ...rows.map(
            (r) =>
              `  ${r.part.padEnd(8)} ${r.id}  ${r.period.padEnd(9)} ${r.createdAt}  ` +
              `${(r.bytes / 1e6).toFixed(1)} MB  from ${r.sourceHost}${r.encrypted ? '  encrypted' : ''}`,
          ),
        ].join('\n'),
      );
      return 0;
    });
  },
});

export const adjustScalingCommand = defineCommand({
  name: 'AdjustScaling',
  usage: '[--config FILE] [--json] <webservers>',
  description:
    'Sets the desired number of webservers of the fleet (production mode), split between the autoscalers; they follow within a ' +
    'tick. The same as roles/autoscaler/ManuallyScale.ts on an autoscaler. A count that is not a whole number from 0 to ' +
    'MAX_WEBSERVERS is refused (exit 2).',
  common: ['config', 'json'],
  positionals: { min: 1, max: 1 },
  root: true,
  async run({ values, positionals, out }) {
    return withFleet(deploymentOf(values), 'attach', async (f) => {
      const r = await adjustScaling(f, positionals[0]!);
      out.result(
        { total: r.total, split: r.split },
        `desired webservers: ${r.total} (${r.described}); the autoscalers follow within ${r.intervalSeconds} s`,
      );
      return 0;
    });
  },
});

export const publishBaselineCommand = defineCommand({
  name: 'PublishBaseline',
  usage: '[--config FILE] [--json] <name>',
  description:
    "Publishes a shareable baseline of the site under baselines/<name>/ in its backup bucket: the database (the site's domain " +
    "replaced by baseline.invalid, password hashes removed) and the site's files (config files never included), each scanned " +
    'for secrets first and refused, naming file and line, when anything is found. Deploy from it with ' +
    'RESTORE_FROM=baseline:<name> (or baseline:<bucket>/<name>).',
  common: ['config', 'json'],
  positionals: { min: 1, max: 1 },
  root: true,
  async run({ values, positionals, out }) {
    return withFleet(deploymentOf(values), 'attach', async (f) => {
      const results = await publishBaseline(f, positionals[0]!);
      out.result(
        results,
        results
          .map((r) => {
            const m = r.manifest as { id: string } | undefined;
            const rw = r.rewrite as { domains: number; hashes: number } | undefined;
            return (
              `${String(r.role)} ${String(r.server)}: ${String(r.part)} part of baseline ${positionals[0]} published (${m?.id})` +
              (r.role === 'database' && rw
                ? `; ${rw.domains} mention(s) of the domain replaced, ${rw.hashes} password hash(es) removed`
                : '')
            );
          })
          .join('\n'),
      );
      return 0;
    });
  },
});

export const appAdminCommand = defineCommand({
  name: 'AppAdmin',
  usage: '[--config FILE] [--reveal]',
  description:
    "The application administrator's sign-in set when the site was deployed from a baseline (baselines carry no passwords): " +
    'the user name, and the password only with --reveal or when the output is not a terminal (for scripts).',
  common: ['config'],
  options: { reveal: { type: 'boolean', description: 'print the password on a terminal too' } },
  root: true,
  async run({ values }) {
    return withFleet(deploymentOf(values), 'attach', async (f) => {
      const admin = await appAdmin(f);
      const show = values.reveal || !process.stdout.isTTY;
      process.stdout.write(
        show ? `${admin.user}\n${admin.password}\n` : `${admin.user}\n(password not shown on a terminal: add --reveal)\n`,
      );
      return 0;
    });
  },
});

export const renewCertificateCommand = defineCommand({
  name: 'RenewCertificate',
  usage: '[--config FILE] [--force] [--wait] [--json]',
  description:
    "Renews the site's certificate by ACME when it expires within TLS_RENEW_DAYS days (--force: now) and stores it encrypted in " +
    "the datastore; every webserver installs it within about 10 s. With WEB_FIREWALL=auth, the sign-in host's certificate too. " +
    'With --wait, returns once every webserver (and authentication server) serves the new certificate (bounded: 120 s). ' +
    'Only with TLS=acme.',
  common: ['config', 'json'],
  options: {
    force: { type: 'boolean', description: 'renew now, whatever the expiry' },
    wait: { type: 'boolean', description: 'return once every server serves the new certificate' },
  },
  root: true,
  async run({ values, out }) {
    const d = deploymentOf(values);
    if (d.tls.mode !== 'acme') {
      throw usage(
        `RenewCertificate: TLS="${d.tls.mode}" in ${d.source}: renewal is for TLS=acme ` +
          '(a local-ca certificate lasts 397 days; a deploy re-run issues a new one when it is gone)',
      );
    }
    return withFleet(d, 'attach', async (f) => {
      const r = await renewCertificates(f, { force: Boolean(values.force), wait: Boolean(values.wait) });
      const notDue = `not due (renewal within ${d.tls.renewDays} days of expiry; --force renews now)`;
      const lines = [`${r.renewed ? 'renewed' : notDue}: certificate ${r.serial} for ${d.host}, valid until ${r.notAfter}`];
      if (values.wait && r.renewed) for (const w of r.webservers) lines.push(`  ${w.name} serves it`);
      else if (r.renewed) lines.push(`  the ${r.webservers.length} webserver(s) install it within about 10 s`);
      if (r.auth) {
        lines.push(
          `${r.auth.renewed ? 'renewed' : notDue}: certificate ${r.auth.serial} for ${d.auth!.host}, valid until ${r.auth.notAfter}`,
        );
        if (r.auth.renewed) {
          lines.push(
            values.wait
              ? `  ${r.auth.servers.map((x) => x.name).join(', ') || 'no authentication server'} serve(s) it`
              : '  the authentication server installs it within about 10 s',
          );
        }
      }
      out.result(r, lines.join('\n'));
      return 0;
    });
  },
});

export function unknownRole(role: string): AdtError {
  return usage(`the role must be one of webserver, database, autoscaler, auth, not "${role}"`);
}

export const releaseCommand = defineCommand({
  name: 'Release',
  usage: '[--config FILE] [--json] (publish --from SOURCE | rollback [--to ID] | list)',
  description:
    "The site's code as releases (WordPress core, themes, plugins, mu-plugins; never the uploads, which are shared): " +
    "`publish` packs a new release from SOURCE, stores it in the deployment's bucket and rolls it out to every webserver, one " +
    'after another, each switched by a graceful reload and checked (WordPress answers with it), with no failed request; ' +
    'webservers built later boot with it. SOURCE: `webserver` (the development webserver, where plugins and themes are ' +
    "installed: the seed's workflow is develop in development mode, then publish), `webserver:NAME`, `backup:ID`, " +
    '`backup:PERIOD` (its newest) or `baseline:NAME` (the release it holds; the shared files are left as they are), or a ' +
    'directory on this machine holding a WordPress webroot (wp-load.php, wp-content). `rollback` makes the release before ' +
    'the current one (or --to ID) current again and rolls it out. `list` shows the releases and the one each webserver serves.',
  common: ['config', 'json'],
  options: {
    from: { type: 'string', description: 'publish: webserver, webserver:NAME, backup:ID|PERIOD, baseline:NAME or a directory' },
    to: { type: 'string', description: 'rollback: this earlier release instead of the one before the current' },
  },
  positionals: { min: 1, max: 1 },
  root: true,
  async run({ values, positionals, out }) {
    const action = positionals[0];
    if (action === 'publish' && !values.from)
      throw usage(`Release publish: give --from webserver|webserver:NAME|backup:ID|baseline:NAME|DIR\n\n${releaseCommand.help()}`);
    if (!['publish', 'rollback', 'list'].includes(action!))
      throw usage(`Release: publish, rollback or list, not "${action}"\n\n${releaseCommand.help()}`);
    return withFleet(deploymentOf(values), 'attach', async (f) => {
      if (action === 'list') {
        const r = await listReleases(f);
        out.result(
          r,
          [
            `current:  ${r.current ? `${r.current.id}  ${r.current.createdAt}  ${r.current.source}` : 'none yet'}`,
            ...r.previous.map((p) => `earlier:  ${p.id}  ${p.createdAt}  ${p.source}`),
            ...r.serving.map((s) => `${s.server} serves ${s.release ?? '(no release answered)'}`),
          ].join('\n'),
        );
        return 0;
      }
      const t = Date.now();
      const r = action === 'publish' ? await publishRelease(f, values.from!, out.say) : await rollBack(f, values.to, out.say);
      const seconds = Number(((Date.now() - t) / 1000).toFixed(1));
      out.result({ ...r, seconds }, `release ${r.release.id} served by ${r.rollout.length} webserver(s) in ${seconds} s`);
      return 0;
    });
  },
});
