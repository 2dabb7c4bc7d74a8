/**
 * The cloud-level layer: the same policy pushed to the provider's native firewall, so a host whose
 * own rules were flushed is still protected (and the other way round).
 */
import type { InboundRule, NativeFirewallProvider, Role } from '@adt/providers';
import type { FleetRole, HostPolicy } from './types.ts';

/** The provider's rule shape for a host policy (sources kept as they are, IPv4 and IPv6). */
export function toInboundRules(policy: HostPolicy): InboundRule[] {
  return policy.rules.map((r) => ({ protocol: r.protocol, port: r.port, sources: [...r.sources], description: r.comment }));
}

/** Applies every role's policy to the provider's native firewall of `buildId`. */
export async function applyNative(
  provider: NativeFirewallProvider,
  buildId: string,
  policies: Record<FleetRole, HostPolicy>,
): Promise<void> {
  for (const [role, policy] of Object.entries(policies) as [FleetRole, HostPolicy][]) {
    await provider.apply(buildId, role as Role, toInboundRules(policy));
  }
}
