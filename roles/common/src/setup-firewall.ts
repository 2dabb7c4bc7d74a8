/**
 * SetupFirewall: reconcile this host's firewall with the fleet in the config datastore. Every role
 * has `roles/<role>/security/SetupFirewall`, a link to one dispatcher that runs this file with the
 * role it was called as. Run it from cron every minute (see `cronLine`), or with `--every N`.
 *
 *   SetupFirewall [--dry-run] [--json] [--every SECONDS]
 *
 * Settings (with the datastore's, from ADT_DATASTORE_ENV, default /etc/adt/datastore.env):
 *   ADT_WEB_MODE          open | cloudflare | auth (default open)
 *   ADT_FIREWALL_BACKEND  iptables | ufw (default iptables)
 *   ADT_SSH_PORT, ADT_DB_PORT, ADT_HTTPS_PORT   (defaults 22, 3306, 443)
 *   ADT_HTTP              yes to open port 80 too (redirects) (default no)
 *   ADT_EXTRA_PORTS       role:port[-port]/proto:source, comma separated, e.g. webserver:8443/tcp:0.0.0.0/0
 */
import { parseArgs } from 'node:util';
import { execaRunner, sleep } from '@adt/core';
import {
  computePolicies,
  datastoreFleetSource,
  fingerprint,
  reconcile,
  ROLES,
  type ExtraPort,
  type FleetRole,
  type PolicyOptions,
  type WebMode,
} from '@adt/firewall';
import { iptablesBackend } from '@adt/firewall/backends/iptables';
import { ufwBackend } from '@adt/firewall/backends/ufw';
import { datastoreSettings, openDatastore } from './datastore.ts';
import { everySeconds, usage } from './main.ts';

/** Firewall settings from the environment/env file; every problem at once, exit 2. */
export function firewallSettings(s: Record<string, string | undefined>): { options: PolicyOptions; backend: 'iptables' | 'ufw' } {
  const problems: string[] = [];
  const webMode = (s.ADT_WEB_MODE || 'open') as WebMode;
  if (!['open', 'cloudflare', 'auth'].includes(webMode)) problems.push(`ADT_WEB_MODE="${webMode}": open, cloudflare or auth`);
  const backend = (s.ADT_FIREWALL_BACKEND || 'iptables') as 'iptables' | 'ufw';
  if (backend !== 'iptables' && backend !== 'ufw') problems.push(`ADT_FIREWALL_BACKEND="${backend}": iptables or ufw`);
  const port = (name: string, d: number) => {
    const v = s[name];
    if (v === undefined || v === '') return d;
    if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) problems.push(`${name}="${v}": a port, 1-65535`);
    return Number(v);
  };
  const extraPorts: ExtraPort[] = [];
  for (const [i, item] of (s.ADT_EXTRA_PORTS ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .entries()) {
    const m = /^(webserver|database|autoscaler|auth):(\d{1,5})(?:-(\d{1,5}))?\/(tcp|udp):(.+)$/.exec(item);
    if (!m) {
      problems.push(`ADT_EXTRA_PORTS item ${i + 1} "${item}": role:port[-port]/tcp|udp:source, e.g. webserver:8443/tcp:0.0.0.0/0`);
      continue;
    }
    extraPorts.push({
      role: m[1] as FleetRole,
      port: m[3] ? [Number(m[2]), Number(m[3])] : Number(m[2]),
      protocol: m[4] as 'tcp' | 'udp',
      source: m[5]!,
    });
  }
  const http =
    s.ADT_HTTP === undefined || s.ADT_HTTP === ''
      ? false
      : s.ADT_HTTP === 'yes'
        ? true
        : (problems.push(`ADT_HTTP="${s.ADT_HTTP}": yes or no`), false);
  const options: PolicyOptions = {
    webMode,
    sshPort: port('ADT_SSH_PORT', 22),
    dbPort: port('ADT_DB_PORT', 3306),
    httpsPort: port('ADT_HTTPS_PORT', 443),
    http,
    extraPorts,
  };
  if (problems.length) throw usage(`firewall settings:\n  - ${problems.join('\n  - ')}`);
  return { options, backend };
}

/** `SetupFirewall [--dry-run] [--json] [--every SECONDS]` on a server of `role`. */
export async function setupFirewallMain(role: string, rest: string[]): Promise<number> {
  const { values } = parseArgs({
    args: rest,
    options: { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, every: { type: 'string' } },
    strict: true,
  });
  if (role === 'build')
    throw usage(
      "SetupFirewall: the build machine's own firewall is not managed by the toolkit (it is the user's, with the cloud's firewall)",
    );
  if (!(ROLES as string[]).includes(role)) throw usage(`SetupFirewall: unknown role "${role}": one of ${ROLES.join(', ')}`);
  const every = everySeconds(values.every, 3600);
  const { options, backend: backendName } = firewallSettings(datastoreSettings());
  const store = openDatastore();
  const source = datastoreFleetSource(store);
  const say = (o: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(o)}\n` : `${text}\n`);
  if (values['dry-run']) {
    const policy = computePolicies(await source.snapshot(), options)[role as FleetRole];
    const rules = policy.rules.map(
      (r) => `  allow ${r.protocol}/${Array.isArray(r.port) ? r.port.join('-') : r.port} from ${r.sources.join(', ')}  # ${r.comment}`,
    );
    say(
      { dryRun: true, role, fingerprint: fingerprint(policy), policy },
      `${role} policy ${fingerprint(policy)} (dry run, nothing applied):\n${rules.join('\n')}`,
    );
    return 0;
  }
  const runner = execaRunner({ timeoutMs: 60_000 });
  const backend = backendName === 'ufw' ? ufwBackend({ runner }) : iptablesBackend({ runner });
  // Bounded by the process: with --every it runs until stopped (a service), otherwise once.
  // In a loop, "unchanged" is said on the first tick and then hourly, so the log does not grow by a line every period.
  let quietSince = 0;
  for (let tick = 0; ; tick++) {
    try {
      const r = await reconcile({ source, role: role as FleetRole, backend, policy: options });
      if (!r.changed && every !== null && tick > 0 && Date.now() - quietSince < 3_600_000) continue;
      if (!r.changed) quietSince = Date.now();
      say(
        { role, changed: r.changed, fingerprint: r.fingerprint, rules: r.policy.rules.length, at: new Date().toISOString() },
        `${new Date().toISOString()} ${role}: ${r.changed ? 'applied' : 'unchanged'} ` +
          `policy ${r.fingerprint} (${r.policy.rules.length} rules)`,
      );
    } catch (e) {
      if (every === null) throw e;
      process.stderr.write(`${new Date().toISOString()} ${role}: ${(e as Error).message} (the previous rules stay in force)\n`);
    } finally {
      if (every !== null) await sleep(every * 1000);
    }
    if (every === null) return 0;
  }
}
