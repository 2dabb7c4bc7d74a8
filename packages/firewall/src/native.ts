/**
 * The cloud-level layer: the same policy pushed to the provider's native firewall, so a host whose
 * own rules were flushed is still protected (and the other way round).
 */
import type { InboundRule, NativeFirewallProvider, Role } from '@adt/providers';
import { computePolicies, fingerprint } from './policy.ts';
import type { FleetRole, FleetSnapshot, HostPolicy, WebMode } from './types.ts';

/** What the cloud-level layer is computed from besides the servers (the deploy writes it in `config/native-firewall`). */
export interface NativeSettings {
  /** The build machine's addresses. */
  buildMachine: string[];
  /**
   * The fleet's private network (the cloud's VPC range), which stands for every server of the
   * fleet: servers added later are let in without a change. Null: the servers' own addresses.
   */
  privateCidr: string | null;
  webMode: WebMode;
  dbPort: number;
  http: boolean;
  /** The build's roles (each has a native firewall). */
  roles: FleetRole[];
}

/** A server as the cloud lists it. */
export interface NativeServer {
  role: string;
  publicIp: string | null;
  privateIp: string | null;
}

/**
 * The native firewall's policy of each of the build's roles: the coarse layer. The fleet is its
 * private network where it has one, else the servers' addresses (so it must follow them: see
 * roles/autoscaler's native firewall). Grants come and go with each sign-in, so in auth mode this
 * layer leaves 443 open and the hosts follow the grants.
 */
export function nativePolicies(servers: readonly NativeServer[], s: NativeSettings): Partial<Record<FleetRole, HostPolicy>> {
  const vpc = s.privateCidr ? [s.privateCidr] : null;
  const ips = (role: FleetRole) =>
    servers.filter((x) => x.role === role).flatMap((x) => [x.publicIp, x.privateIp].filter((a): a is string => Boolean(a)));
  const fleet: FleetSnapshot = {
    buildMachine: s.buildMachine,
    webservers: vpc ?? ips('webserver'),
    autoscalers: vpc ?? ips('autoscaler'),
    databases: vpc ?? ips('database'),
    auth: ips('auth'),
    authorisedClients: [],
  };
  const all = computePolicies(fleet, { webMode: s.webMode === 'auth' ? 'open' : s.webMode, dbPort: s.dbPort, http: s.http });
  return Object.fromEntries(s.roles.map((r) => [r, all[r]]));
}

/** One fingerprint per role of `nativePolicies`' answer (what changed since the last apply). */
export function nativeFingerprints(policies: Partial<Record<FleetRole, HostPolicy>>): Map<FleetRole, string> {
  return new Map(Object.entries(policies).map(([r, p]) => [r as FleetRole, fingerprint(p)]));
}

/** The provider's rule shape for a host policy (sources kept as they are, IPv4 and IPv6). */
export function toInboundRules(policy: HostPolicy): InboundRule[] {
  return policy.rules.map((r) => ({ protocol: r.protocol, port: r.port, sources: [...r.sources], description: r.comment }));
}

/** Applies every role's policy to the provider's native firewall of `buildId`. */
export async function applyNative(
  provider: NativeFirewallProvider,
  buildId: string,
  policies: Partial<Record<FleetRole, HostPolicy>>,
): Promise<void> {
  for (const [role, policy] of Object.entries(policies) as [FleetRole, HostPolicy][]) {
    await provider.apply(buildId, role as Role, toInboundRules(policy));
  }
}
