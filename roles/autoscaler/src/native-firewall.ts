/**
 * The cloud-level firewall, kept current as webservers come and go. Where the fleet has a private
 * network the cloud knows (DigitalOcean's VPC, the local cloud), the native rules name that range
 * and a new webserver is let in without a change. Elsewhere (Linode, Vultr and Exoscale, whose
 * drivers know no such range: `privateCidr` null in the deploy's `config/native-firewall`) the rules name each
 * server's addresses, so the database's firewall would keep out a webserver an autoscaler made
 * (and keep letting in the address of one it destroyed). So each tick the autoscaler lists the
 * build's servers and applies again the roles whose rules changed, only those; and every role
 * every `refreshMs` (5 minutes), since another writer (a deploy's re-run, another autoscaler) may
 * have applied rules from a list of servers older than its own.
 */
import { keys, type ConfigStore } from '@adt/configstore';
import { applyNative, nativeFingerprints, nativePolicies, type FleetRole } from '@adt/firewall';
import type { ComputeProvider, NativeFirewallProvider } from '@adt/providers';

export interface NativeFollowerDeps {
  store: ConfigStore;
  compute: ComputeProvider;
  /** The cloud's native firewall (its compute driver's), or null where it has none. */
  firewall: NativeFirewallProvider | null;
  buildId: string;
  log(line: string): void;
  /** How often every role is applied again, changed or not (default 5 minutes). */
  refreshMs?: number;
  now?: () => number;
}

export class NativeFollower {
  readonly #d: NativeFollowerDeps;
  /** What this autoscaler last applied, per role (empty at start: its first follow applies every role once). */
  readonly #applied = new Map<FleetRole, string>();
  #refreshedAt = 0;

  constructor(deps: NativeFollowerDeps) {
    this.#d = deps;
  }

  /** Applies the roles whose native rules changed with the servers; returns them. */
  async follow(): Promise<FleetRole[]> {
    const { store, compute, firewall, buildId } = this.#d;
    const settings = await store.get(keys.nativeFirewall);
    if (!firewall || !settings || settings.privateCidr) return [];
    const servers = await compute.list({ buildId });
    // A list without the database (the cloud's list answered short) would shut every webserver out of it.
    if (settings.roles.includes('database') && !servers.some((s) => s.role === 'database')) return [];
    const now = (this.#d.now ?? Date.now)();
    if (now - this.#refreshedAt >= (this.#d.refreshMs ?? 300_000)) {
      this.#applied.clear();
      this.#refreshedAt = now;
    }
    const policies = nativePolicies(servers, settings);
    const changed = [...nativeFingerprints(policies)].filter(([role, f]) => this.#applied.get(role) !== f);
    if (!changed.length) return [];
    const roles = changed.map(([role]) => role);
    await applyNative(firewall, buildId, Object.fromEntries(roles.map((r) => [r, policies[r]])));
    for (const [role, f] of changed) this.#applied.set(role, f);
    const web = servers.filter((s) => s.role === 'webserver').length;
    this.#d.log(`cloud firewall of ${roles.join(', ')} applied again (${web} webserver(s) in the build now)`);
    return roles;
  }
}
