/**
 * One autoscaler's work, one tick at a time: for each slot it holds (its own, and any whose
 * autoscaler stopped renewing its lease), observe (the provider's webservers of that slot, the
 * site's A records, an HTTPS probe of each webserver on the private network), decide (the pure
 * planner of @adt/scaling) and act (DNS first, then servers), recording every action as an event.
 *
 * Everything it talks to is injected, so the same code runs against the local cloud's API and
 * PowerDNS here, and against a real cloud's API later.
 */
import type { ConfigStore, ScalingEvent, ScalingSettings } from '@adt/configstore';
import { forgetServer, keys } from '@adt/configstore';
import { parseServerName, serverName, type ComputeProvider, type DnsProvider, type Server } from '@adt/providers';
import { emptyMemory, plan, recordProbe, type Action, type ScalingPolicy, type SlotMemory } from '@adt/scaling';
import type { Lease } from '@adt/configstore';

export interface ScalerDeps {
  store: ConfigStore;
  compute: ComputeProvider;
  dns: DnsProvider;
  buildId: string;
  /** The site's host name (its A records). */
  host: string;
  /** This autoscaler's server name and slot. */
  self: { name: string; slot: number };
  settings: ScalingSettings;
  /** True when the webserver at `privateIp` serves the site. */
  probe(privateIp: string): Promise<boolean>;
  /** Creates a webserver of this build the way the build does (@adt/launch): its user-data, envelope, host key. */
  launch(o: { name: string; image?: string }): Promise<Server>;
  log(line: string): void;
  now?: () => number;
}

export interface TickReport {
  slots: number[];
  actions: (Action & { slot: number })[];
  summary: Record<number, { desired: number; healthy: number; building: number; unhealthy: number; draining: number }>;
}

const slotLease = (slot: number) => `autoscaler-slot-${slot}`;

export class Scaler {
  readonly #d: ScalerDeps;
  readonly #memory = new Map<number, SlotMemory>();
  readonly #leases = new Map<number, Lease>();
  #renewedAt = new Map<number, number>();

  constructor(deps: ScalerDeps) {
    this.#d = deps;
  }

  #now() {
    return this.#d.now?.() ?? Date.now();
  }

  /** The scaling policy of the planner, from the deployment's settings. */
  policy(): Partial<ScalingPolicy> {
    const s = this.#d.settings;
    return {
      failuresBeforeUnhealthy: s.failuresBeforeUnhealthy,
      buildTimeoutSeconds: s.buildTimeoutSeconds,
      drainSeconds: s.drainSeconds,
      maxWebservers: s.maxWebservers,
    };
  }

  /**
   * Takes or keeps the leases of the slots this autoscaler acts on this tick: its own (claiming it
   * back when another autoscaler took it over while it was away), and another's only when that one
   * held it once and stopped renewing (dead) - never a slot whose autoscaler has not started yet.
   */
  async #holdSlots(): Promise<number[]> {
    const { store, settings, self } = this.#d;
    const ttl = Math.max(settings.leaseTtlSeconds, store.minLeaseTtlSeconds());
    const held: number[] = [];
    for (let slot = 1; slot <= settings.autoscalers; slot++) {
      const own = slot === self.slot;
      const lease = this.#leases.get(slot);
      try {
        if (lease) {
          // A slot taken over goes back as soon as its own autoscaler claims it.
          const claim = own ? null : await store.get(keys.slotClaim(slot));
          if (claim && claim.by !== self.name) {
            await store.release(lease);
            this.#leases.delete(slot);
            await this.#event(slot, 'hand-back', undefined, undefined, `the autoscaler of slot ${slot} (${claim.by}) is back`);
            continue;
          }
          // Renew at a third of the TTL: two missed ticks still leave it held.
          if (this.#now() - (this.#renewedAt.get(slot) ?? 0) > (ttl * 1000) / 3) {
            this.#leases.set(slot, await store.renew(lease));
            this.#renewedAt.set(slot, this.#now());
          }
          held.push(slot);
          continue;
        }
        if (!own && !(await store.exists(keys.leases.key(slotLease(slot))))) continue;
        if (!own && (await store.exists(keys.slotClaim(slot)))) continue;
        const got = await store.acquire(slotLease(slot), ttl, self.name);
        if (!got) {
          // Our own slot, held by another autoscaler since we were away: ask for it back.
          if (own && !(await store.exists(keys.slotClaim(slot))))
            await store.put(keys.slotClaim(slot), { by: self.name, at: new Date(this.#now()).toISOString() });
          continue;
        }
        this.#leases.set(slot, got);
        this.#renewedAt.set(slot, this.#now());
        // A slot (re)taken starts from what the provider and the probes say now.
        this.#memory.set(slot, emptyMemory());
        if (own) await store.delete(keys.slotClaim(slot));
        else await this.#event(slot, 'take-over', undefined, undefined, `the autoscaler of slot ${slot} stopped renewing its lease`);
        held.push(slot);
      } catch (e) {
        // Lost (another holder renewed or took it): stop acting on that slot.
        this.#leases.delete(slot);
        this.#d.log(`slot ${slot}: lease lost (${(e as Error).message}); not acting on it`);
      }
    }
    return held;
  }

  async #event(slot: number, action: string, server: string | undefined, ip: string | undefined, reason: string) {
    const at = new Date(this.#now()).toISOString();
    const e: ScalingEvent = {
      at,
      autoscaler: this.#d.self.name,
      slot,
      action,
      reason,
      ...(server ? { server } : {}),
      ...(ip ? { ip } : {}),
    };
    this.#d.log(`slot ${slot}: ${action}${server ? ` ${server}` : ''}${ip ? ` (${ip})` : ''}: ${reason}`);
    const id = `${at.replace(/[-:.]/g, '')}-${Math.random().toString(36).slice(2, 8)}`;
    await this.#d.store.put(keys.events.key(id), e).catch((err: Error) => this.#d.log(`event not recorded: ${err.message}`));
  }

  /** One tick: observe, decide, act, for every slot held. */
  async tick(): Promise<TickReport> {
    const d = this.#d;
    const slots = await this.#holdSlots();
    const report: TickReport = { slots, actions: [], summary: {} };
    if (!slots.length) return report;
    const all = await d.compute.list({ buildId: d.buildId, role: 'webserver' });
    const fleetIps = all.map((s) => s.publicIp).filter((ip): ip is string => Boolean(ip));
    for (const slot of slots) {
      const mine = all.filter((s) => parseServerName(s.name)?.slot === slot);
      let memory = this.#memory.get(slot) ?? emptyMemory();
      // Probe every server that could serve, in parallel.
      const now = this.#now();
      const results = await Promise.all(
        mine.map(async (s) => ({ s, ok: s.state === 'running' && s.privateIp ? await d.probe(s.privateIp).catch(() => false) : false })),
      );
      for (const { s, ok } of results) if (s.state === 'running' && s.privateIp) memory = recordProbe(memory, s.id, ok, now, this.policy());
      const dnsIps = (await d.dns.listA(d.host)).map((r) => r.content);
      const desiredRaw = await d.store.get(keys.desiredWebservers(slot));
      const desired = typeof desiredRaw === 'number' && Number.isInteger(desiredRaw) && desiredRaw >= 0 ? desiredRaw : 0;
      const p = plan({ now, desired, servers: mine.map(observed), dnsIps, fleetIps, memory, policy: this.policy() });
      this.#memory.set(slot, p.memory);
      report.summary[slot] = {
        desired,
        healthy: p.summary.healthy,
        building: p.summary.building,
        unhealthy: p.summary.unhealthy,
        draining: p.summary.draining,
      };
      for (const a of p.actions) {
        await this.#act(slot, a, mine);
        report.actions.push({ ...a, slot });
      }
    }
    return report;
  }

  async #act(slot: number, a: Action, servers: Server[]) {
    const d = this.#d;
    const byId = (id: string | null) => servers.find((s) => s.id === id);
    if (a.type === 'remove-dns') {
      await d.dns.removeA(d.host, a.ip);
      await this.#event(slot, 'remove-dns', byId(a.serverId)?.name, a.ip, a.reason);
    } else if (a.type === 'add-dns') {
      await d.dns.addA(d.host, a.ip, d.settings.dnsTtlSeconds);
      await this.#event(slot, 'add-dns', byId(a.serverId)?.name, a.ip, a.reason);
    } else if (a.type === 'create') {
      const name = serverName({ role: 'webserver', buildId: d.buildId, slot });
      const image = (await d.store.get(keys.webserverImage))?.image;
      let s: Server;
      let from = image;
      try {
        s = await d.launch({ name, ...(image ? { image } : {}) });
      } catch (error) {
        // An image the cloud refuses (deleted, another region) must not stop scaling: the OS image.
        const status = (error as { status?: number | null }).status;
        if (!image || typeof status !== 'number' || status < 400 || status >= 500) throw error;
        await this.#event(
          slot,
          'image-refused',
          name,
          undefined,
          `image ${image}: ${(error as Error).message}; building from the OS image`,
        );
        s = await d.launch({ name });
        from = undefined;
      }
      await this.#event(slot, 'create', s.name, s.publicIp ?? undefined, from ? `${a.reason} (from image ${from})` : a.reason);
    } else if (a.type === 'destroy') {
      const s = byId(a.serverId);
      // Its registrations go first, so the database's firewall stops letting it in.
      await forgetServer(d.store, { name: a.name, role: 'webserver', privateIp: s?.privateIp, publicIp: s?.publicIp });
      await d.compute.destroy(a.serverId);
      await this.#event(slot, 'destroy', a.name, s?.publicIp ?? undefined, a.reason);
    }
  }

  /** Gives the slots' leases back (a clean stop: another autoscaler may take over at once). */
  async release(): Promise<void> {
    for (const lease of this.#leases.values()) await this.#d.store.release(lease).catch(() => {});
    this.#leases.clear();
  }
}

function observed(s: Server) {
  return { id: s.id, name: s.name, state: s.state, publicIp: s.publicIp, privateIp: s.privateIp, createdAt: Date.parse(s.createdAt) };
}
