/**
 * The firewall policy, computed from the fleet as it is (DESIGN "Firewall policy"):
 *
 * - every machine: SSH only from the build machine and from the fleet's machines;
 * - database: its port only from webservers and autoscalers;
 * - webservers: HTTPS (and HTTP if asked) from anywhere, or only from Cloudflare's ranges, or only
 *   from clients authorised by the authentication server (until their grant expires);
 * - authentication server: HTTPS from anywhere (people sign in there);
 * - extra declared ports per role.
 *
 * Pure: the same fleet and options give the same policy, rules and sources sorted, so a fingerprint
 * of it says whether anything changed. Bad input is refused before anything is applied.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { errorFactory } from '@adt/core';
import { BUNDLED_CLOUDFLARE } from './cloudflare.ts';
import type { ExtraPort, FleetRole, FleetSnapshot, HostPolicy, HostRule, PolicyOptions } from './types.ts';

const fail = errorFactory('firewall', 'policy');
export const ROLES: FleetRole[] = ['webserver', 'database', 'autoscaler', 'auth'];
const ANYWHERE = ['0.0.0.0/0', '::/0'];

/** Normalises an address or CIDR (`198.18.1.5` -> `198.18.1.5/32`), or throws naming the field. */
export function normaliseSource(source: string, field: string): string {
  const [ip, bits, ...rest] = String(source).trim().split('/');
  const family = ip ? isIP(ip) : 0;
  const max = family === 4 ? 32 : 128;
  if (!ip || family === 0 || rest.length || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
    throw fail('BAD_SOURCE', `${field}: "${source}" is not an IP address or CIDR (e.g. 198.18.1.5 or 198.18.1.0/24)`, { exitCode: 2 });
  }
  return `${ip.toLowerCase()}/${bits ?? max}`;
}

function checkPort(port: unknown, field: string): number | [number, number] {
  const ok = (p: unknown) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;
  if (ok(port)) return port as number;
  if (Array.isArray(port) && port.length === 2 && ok(port[0]) && ok(port[1]) && port[0] < port[1]) return [port[0], port[1]];
  throw fail('BAD_PORT', `${field}: ${JSON.stringify(port)} is not a port (1-65535) or a range [from, to]`, { exitCode: 2 });
}

const isAnywhere = (s: string) => s === '0.0.0.0/0' || s === '::/0';

function rule(protocol: 'tcp' | 'udp', port: number | [number, number], sources: string[], comment: string): HostRule | null {
  const unique = [...new Set(sources)].sort();
  return unique.length ? { protocol, port, sources: unique, comment } : null;
}

/** The exact inbound rules of every role, for the fleet as it is now. */
export function computePolicies(fleet: FleetSnapshot, options: PolicyOptions): Record<FleetRole, HostPolicy> {
  const sshPort = checkPort(options.sshPort ?? 22, 'sshPort') as number;
  const dbPort = checkPort(options.dbPort ?? 3306, 'dbPort') as number;
  const httpsPort = checkPort(options.httpsPort ?? 443, 'httpsPort') as number;
  if (!['open', 'cloudflare', 'auth'].includes(options.webMode)) {
    throw fail('BAD_MODE', `webMode: "${options.webMode}" is not one of open, cloudflare, auth`, { exitCode: 2 });
  }
  const list = (ips: string[], field: string) => ips.map((ip, i) => normaliseSource(ip, `${field}[${i}]`));
  const build = list(fleet.buildMachine, 'buildMachine');
  const web = list(fleet.webservers, 'webservers');
  const as = list(fleet.autoscalers, 'autoscalers');
  const db = list(fleet.databases, 'databases');
  const auth = list(fleet.auth, 'auth');
  const fleetAll = [...build, ...web, ...as, ...db, ...auth];
  // SSH and the database must never be open to everyone, whatever was published.
  for (const s of fleetAll)
    if (isAnywhere(s)) throw fail('TOO_WIDE', `a fleet address "${s}" would open SSH and the database to everyone`, { exitCode: 2 });

  const now = (options.now ?? new Date()).getTime();
  const clients = fleet.authorisedClients
    .filter((c) => Date.parse(c.expiresAt) > now)
    .map((c, i) => {
      const s = normaliseSource(c.ip, `authorisedClients[${i}].ip`);
      // A grant is for one client address, never a network.
      if (!/\/(32|128)$/.test(s))
        throw fail('BAD_SOURCE', `authorisedClients[${i}].ip: "${c.ip}" must be a single address`, { exitCode: 2 });
      return s;
    });
  const cf = options.cloudflare ?? BUNDLED_CLOUDFLARE;
  const webSources =
    options.webMode === 'open' ? ANYWHERE : options.webMode === 'cloudflare' ? list([...cf.v4, ...cf.v6], 'cloudflare') : clients;
  if (options.webMode === 'cloudflare' && webSources.length === 0)
    throw fail('NO_CLOUDFLARE', 'web mode cloudflare with an empty Cloudflare list would close the site: refusing', { exitCode: 2 });

  const ssh = rule('tcp', sshPort, fleetAll, 'ssh from the build machine and the fleet');
  const policies = {} as Record<FleetRole, HostPolicy>;
  for (const role of ROLES) {
    const rules: (HostRule | null)[] = [ssh];
    if (role === 'database') rules.push(rule('tcp', dbPort, [...web, ...as], 'database from webservers and autoscalers'));
    if (role === 'webserver') {
      const why =
        options.webMode === 'open'
          ? 'https from anywhere'
          : options.webMode === 'cloudflare'
            ? 'https from Cloudflare only'
            : 'https from authorised clients only';
      rules.push(rule('tcp', httpsPort, webSources, why));
      // Autoscalers (and the build machine) check webservers over HTTPS, whoever else may connect.
      if (options.webMode !== 'open')
        rules.push(rule('tcp', httpsPort, [...as, ...build], 'https from autoscalers and the build machine (health checks)'));
      if (options.http) rules.push(rule('tcp', 80, webSources, why.replace('https', 'http')));
    }
    if (role === 'auth') rules.push(rule('tcp', httpsPort, ANYWHERE, 'https from anywhere (sign-in)'));
    for (const [i, extra] of (options.extraPorts ?? []).entries()) {
      if (extra.role !== role) continue;
      rules.push(extraRule(extra, i, sshPort, dbPort));
    }
    policies[role] = { role, rules: mergeRules(rules.filter((r): r is HostRule => r !== null)) };
  }
  return policies;
}

function extraRule(extra: ExtraPort, i: number, sshPort: number, dbPort: number): HostRule {
  const field = `extraPorts[${i}]`;
  if (!ROLES.includes(extra.role))
    throw fail('BAD_ROLE', `${field}.role: "${extra.role}" is not one of ${ROLES.join(', ')}`, { exitCode: 2 });
  if (extra.protocol !== 'tcp' && extra.protocol !== 'udp')
    throw fail('BAD_PROTOCOL', `${field}.protocol: "${extra.protocol}" is not tcp or udp`, { exitCode: 2 });
  const port = checkPort(extra.port, `${field}.port`);
  const source = normaliseSource(extra.source, `${field}.source`);
  const covers = (p: number) => (Array.isArray(port) ? port[0] <= p && p <= port[1] : port === p);
  if (isAnywhere(source) && extra.protocol === 'tcp' && (covers(sshPort) || covers(dbPort))) {
    throw fail('TOO_WIDE', `${field}: opening ${covers(sshPort) ? 'SSH' : 'the database port'} to ${source} is refused`, { exitCode: 2 });
  }
  return { protocol: extra.protocol, port, sources: [source], comment: `declared ${extra.role} port` };
}

/** Rules for the same protocol and port become one, sources merged and sorted; rules sorted. */
function mergeRules(rules: HostRule[]): HostRule[] {
  const byKey = new Map<string, HostRule>();
  for (const r of rules) {
    const key = `${r.protocol}/${JSON.stringify(r.port)}`;
    const prev = byKey.get(key);
    byKey.set(
      key,
      prev
        ? {
            ...prev,
            sources: [...new Set([...prev.sources, ...r.sources])].sort(),
            comment: prev.comment === r.comment ? prev.comment : `${prev.comment}; ${r.comment}`,
          }
        : r,
    );
  }
  const portOf = (r: HostRule) => (Array.isArray(r.port) ? r.port[0] : r.port);
  return [...byKey.values()].sort((a, b) => portOf(a) - portOf(b) || a.protocol.localeCompare(b.protocol));
}

/** A stable fingerprint of a policy: equal policies, equal fingerprints. */
export function fingerprint(policy: HostPolicy): string {
  return createHash('sha256').update(JSON.stringify(policy)).digest('hex').slice(0, 16);
}
