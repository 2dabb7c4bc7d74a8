/**
 * deploy: the main entry of the toolkit (`npx zx roles/build/deploy.mjs`), thin over the pipeline
 * of @adt/fleet: it reads the deployment, opens the fleet (for real, or recorded with --dry-run),
 * runs the pipeline, and prints its progress and a summary (or JSON).
 */
import { join } from 'node:path';
import { formatCalls, redactBody } from '@adt/providers';
import { defineCommand } from '@adt/role-common';
import { deploy, onLocalCloud, wantedServers, whereIs, type DeploySummary, type Fleet } from '@adt/fleet';
import { AdtError } from '@adt/core';
import { ROOT, cacheDir, deploymentOf, helperName, withFleet } from './open.ts';
import { installRenewalCron, renewalCronText } from './renewal-cron.ts';

/** Consecutive identical lines (polling, repeated reads) collapsed with a count, numbered. */
export function collapse(lines: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length;) {
    let j = i + 1;
    while (j < lines.length && lines[j] === lines[i]) j++;
    out.push(`${String(out.length + 1).padStart(4)}. ${lines[i]}${j - i > 1 ? `   (x${j - i})` : ''}`);
    i = j;
  }
  return out;
}

function printSummary(f: Fleet, s: DeploySummary, say: (line: string) => void): void {
  const d = f.d;
  say('');
  say(`Done in ${s.seconds} s: ${d.siteUrl} is served.`);
  for (const x of s.servers)
    say(`  ${x.role.padEnd(10)} ${x.name}  public ${x.publicIp}  private ${x.privateIp}${x.kept ? '  (kept)' : ''}`);
  const records = s.dns.records.map((r) => r.value).join(', ') || '(none: no webservers wanted)';
  say(`  DNS        ${d.host} A ${records}${s.dns.server ? ` (on ${s.dns.server})` : ''}`);
  if (d.auth)
    say(
      `  Sign in    https://${d.auth.host}/ (port 443 of the webservers is open only to signed-in people)` +
        (s.mailDir ? `; mails in ${s.mailDir}` : ''),
    );
  if (d.mode === 'production')
    say(
      `  Scaling    ${d.scaling.autoscalers} autoscaler(s) keep the desired webservers healthy: ` +
        'roles/build/AdjustScaling <n>, roles/build/status',
    );
  const certificate =
    d.tls.mode === 'acme'
      ? `certificate by ACME (${d.tls.acmeServer ?? "the local cloud's pebble"}); its root: ${s.caFile}; ` +
        'renewal: roles/build/RenewCertificate'
      : `certificate from the local CA ${s.caFile}`;
  say(`  TLS        ${certificate}`);
  if (s.application.location?.includes('install.php'))
    say(`  WordPress  a virgin install: finish it at https://${d.host}/wp-admin/install.php`);
  if (s.tryIt) say(`  Try it     ${s.tryIt}`);
  const images = s.images.length ? `; images ${s.images.map((i) => `${i.role} ${i.image}`).join(', ')}` : '';
  const bundle = `role bundle ${s.bundle.sha256.slice(0, 12)} (${(s.bundle.bytes / 1e6).toFixed(1)} MB) on Node ${s.bundle.runtime}`;
  say(`  Servers    ${bundle}${images}`);
  say(
    `  SSH        key ${s.sshKeyFile}; host keys pinned: roles/build/ConnectToWebserver, ExecuteOnDatabase -- <command>, CopyToWebserver`,
  );
  say(`  Datastore  bucket ${d.configBucket} at ${s.s3Endpoint} (key ${s.keyFile})`);
  say(
    `  Steps      ${Object.entries(s.steps)
      .map(([k, v]) => `${k} ${v} s`)
      .join(', ')}`,
  );
  say(
    '  Next       roles/build/status, roles/build/ExecuteOnWebserver -- <command>, roles/build/ConnectToDatabase, ' +
      'npx zx roles/build/destroy.mjs',
  );
}

function printDryRun(f: Fleet, say: (line: string) => void): void {
  const d = f.d;
  const r = f.dryRun!;
  say('');
  const where = d.provider === 'local' ? ` (the local cloud "${d.local.cloudId}")` : ` (region ${d.region}, size ${d.serverSize})`;
  say(
    `Plan (dry run, nothing sent) for ${d.siteUrl}, build ${d.buildId}, ${d.mode} mode, on ${d.provider}` +
      `${where}, DNS ${d.dnsProvider}, web firewall ${d.webMode}` +
      `${d.databaseService === 'managed' ? ', managed database' : ''}:`,
  );
  say(`API calls, in order, as a fresh account would answer them (user-data and passwords shown by size only):`);
  for (const line of collapse(formatCalls(f.kit.calls ?? []))) say(line);
  say(`Object storage calls on bucket ${d.configBucket} (played by a throwaway S3 server):`);
  for (const line of collapse(r.s3Calls)) say(line);
  if (r.lego.length) {
    say('The certificates by ACME:');
    for (const line of r.lego) say(`  ${line}`);
  }
  if (r.ssh.length) {
    say('Commands and checks from this machine:');
    for (const line of r.ssh) say(`  ${line}`);
  }
}

export const deployCommand = defineCommand({
  name: 'npx zx roles/build/deploy.mjs',
  usage: '[--config FILE] [--dry-run] [--json]',
  description:
    'Builds (or converges) the fleet the deployment file describes. --dry-run runs the same pipeline over transports that record ' +
    'instead of sending, and prints every call it would make. Every variable of the file may also be given as ADT_<NAME> in the ' +
    'environment.',
  common: ['config', 'json'],
  options: { 'dry-run': { type: 'boolean', description: 'print every call a deploy would make, change nothing' } },
  async run({ values, out }) {
    const d = deploymentOf(values);
    const dryRun = Boolean(values['dry-run']);
    if (!dryRun && onLocalCloud(d) && process.getuid?.() !== 0) {
      throw new AdtError('NOT_ROOT', 'the local cloud needs root (it creates network namespaces): run as root', {
        pkg: 'build',
        exitCode: 2,
      });
    }
    // Checked before anything is made: a path the renewal's cron line cannot carry exits 2 here.
    renewalCronText(d);
    const where = whereIs(d);
    out.say(`${dryRun ? 'Dry run of the deploy of' : 'Deploying'} ${d.siteUrl} (build ${d.buildId}, ${d.mode} mode) on ${where}`);
    return withFleet(d, dryRun ? 'dry-run' : 'apply', async (f) => {
      const summary = await deploy(f, {
        root: ROOT,
        cacheDir: join(cacheDir(), 'bundles'),
        bundleNote: process.env.ADT_BUNDLE_NOTE || undefined,
        say: out.say,
        logHint: (role) => `roles/build/${helperName('ExecuteOn', role)} -- tail -n 40 /var/log/cloud-init-output.log`,
      });
      if (dryRun) {
        out.result({
          dryRun: true,
          provider: d.provider,
          region: d.region,
          size: d.serverSize,
          plan: {
            configBucket: d.configBucket,
            servers: summary.servers.map((s) => ({ name: s.name, role: s.role })),
            dns: {
              zone: d.zone,
              records: wantedServers(d)
                .filter((w) => w.role === 'webserver')
                .map(() => `${d.host} A <webserver public IP>`),
            },
          },
          // User-data and passwords by size only, as in the readable list.
          apiCalls: (f.kit.calls ?? []).map((c) => (c.body === undefined ? c : { ...c, body: redactBody(c.body) })),
          s3Calls: f.dryRun!.s3Calls,
          acme: f.dryRun!.lego,
          commands: f.dryRun!.ssh,
        });
        if (!out.json) printDryRun(f, out.say);
        return 0;
      }
      const cron = installRenewalCron(d);
      if (cron)
        out.say(`      renewal: daily from ${cron} (roles/build/RenewCertificate; renews within ${d.tls.renewDays} days of expiry)`);
      out.result(summary);
      if (!out.json) printSummary(f, summary, out.say);
      return 0;
    });
  },
});
