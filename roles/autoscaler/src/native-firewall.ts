/**
 * The cloud-level firewall, kept current as webservers come and go. Where the fleet has a private
 * network the cloud knows (DigitalOcean's VPC, the local cloud), the native rules name that range
 * and a new webserver is let in without a change. Elsewhere (Linode and Vultr, whose drivers know
 * no such range: `privateCidr` null in the deploy's `config/native-firewall`) the rules name each
 * server's addresses, so the database's firewall would keep out a webserver an autoscaler made
 * (and keep letting in the address of one it destroyed). So each tick the autoscaler lists the
 * build's servers and applies again the roles whose rules changed, only those.
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
}

export class NativeFollower {
  readonly #d: NativeFollowerDeps;
  /** What this autoscaler last applied, per role (empty at start: its first follow applies every role once). */
  readonly #applied = new Map<FleetRole, string>();

  constructor(deps: NativeFollowerDeps) {
    this.#d = deps;
  }

  /** Applies the roles whose native rules changed with the servers; returns them. */
  async follow(): Promise<FleetRole[]> {
    const { store, compute, firewall, buildId } = this.#d;
    const settings = await store.get(keys.nativeFirewall);
    if (!firewall || !settings || settings.privateCidr) return [];
    const servers = await compute.list({ buildId });
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
