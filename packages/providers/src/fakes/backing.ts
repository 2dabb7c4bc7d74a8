/**
 * What a cloud's API fake can be backed by: a cloud that really runs servers (the local cloud, see
 * @adt/localcloud's `emulators.ts`). A backed fake answers with the provider's documented requests
 * and responses as before, but an instance it creates is a real server that runs the instance's
 * user-data, with the addresses the API then reports; its firewall calls become the backing cloud's
 * native rules; its DNS records are served to resolvers. What the backing cannot do is refused
 * with the provider's error shape and a message that says so, never imitated.
 */
import type { ComputeProvider, InboundRule, NativeFirewallProvider, Role } from '../types.ts';

export interface BackingRecord {
  /** Fully qualified, without trailing dot. */
  name: string;
  type: string;
  /** As a zone file holds it (a TXT record's text without quotes). */
  content: string;
  ttl: number;
}

export interface FakeBacking {
  /** Creates, reports and destroys the real servers (names of the toolkit's form: role and build in them). */
  compute: ComputeProvider;
  /** The cloud-level firewall of a build's role, outside the servers. */
  firewall: NativeFirewallProvider;
  /** The private network the servers are on (the region's default VPC of the fake). */
  privateCidr: string;
  /** The backing cloud's stock image, which the provider's stock Debian 12 image stands for. */
  stockImage: string;
  /** Serves a zone with exactly these records (A and TXT) to resolvers; `null` removes the zone. */
  zone(zone: string, records: readonly BackingRecord[] | null): Promise<void>;
}

/** The build and role a firewall's target tag or name names (`adt-<build>-<role>`), or null. */
export function roleOfTag(tag: string): { buildId: string; role: Role } | null {
  const m = /^adt-([a-z0-9]{1,24})-(webserver|database|autoscaler|auth|build)$/.exec(tag);
  return m ? { buildId: m[1]!, role: m[2] as Role } : null;
}

/** Applies `rules` (or removes the firewall, null) for every build role among `tags`. */
export async function applyTagged(backing: FakeBacking, tags: readonly string[], rules: InboundRule[] | null): Promise<void> {
  for (const t of tags) {
    const r = roleOfTag(t);
    if (!r) continue;
    if (rules) await backing.firewall.apply(r.buildId, r.role, rules);
    else await backing.firewall.remove(r.buildId, r.role);
  }
}
