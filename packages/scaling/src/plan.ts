/**
 * The autoscaler's decisions, as a pure function: from what the provider and DNS say now, what the
 * probes have seen, and the desired count, the actions of one tick. No I/O here: the scaling loop
 * observes, calls `plan`, carries the actions out, and keeps the returned memory for the next tick.
 *
 * Rules (the original's intent, without its bugs; see DESIGN "Healing and readiness"):
 * - a server enters DNS only after it passed a health probe, and leaves it at once when it is
 *   unhealthy, dead, draining or a failed build: DNS never points at a server known to be bad;
 * - a server that never passed a probe is "building" until the build timeout, then destroyed (no
 *   leaked servers: one that never got an IP is destroyed too);
 * - an unhealthy server (N consecutive failed probes after it was once healthy) is replaced first
 *   and destroyed once the slot has its desired healthy count again (or after the build timeout),
 *   with a cap on replacements per window so a bad image cannot start a storm;
 * - surplus servers leave DNS first and are destroyed after the drain time; building ones go first,
 *   then the newest healthy ones (the oldest have proven themselves);
 * - servers are identified by id: a server listed twice counts once.
 */

export type ServerState = 'creating' | 'running' | 'stopped' | 'destroying' | 'error';

export interface ObservedServer {
  id: string;
  name: string;
  state: ServerState;
  publicIp: string | null;
  privateIp: string | null;
  /** Creation time, ms since the epoch. */
  createdAt: number;
}

export interface ServerHealth {
  /** Passed at least one probe since it was created. */
  everHealthy: boolean;
  consecutiveFailures: number;
  /** When it first counted as unhealthy (ms), while it does. */
  unhealthySince?: number;
}

/** What the loop keeps between ticks (in memory; a new holder of the slot starts afresh). */
export interface SlotMemory {
  health: Record<string, ServerHealth>;
  /** Servers leaving: id -> when their DNS record was removed (ms). */
  draining: Record<string, number>;
  /** Times (ms) of replacement launches, for the flap guard. */
  replacements: number[];
}

export interface ScalingPolicy {
  /** Probes failed in a row before an in-service server is unhealthy (default 2). */
  failuresBeforeUnhealthy: number;
  /** Seconds a new server has to pass its first probe (default 300). */
  buildTimeoutSeconds: number;
  /** Seconds a surplus server keeps running after its record is removed (default 15: TTL + margin). */
  drainSeconds: number;
  /** Replacements of unhealthy servers allowed per window (default 3)... */
  maxReplacementsPerWindow: number;
  /** ...of this many seconds (default 600). */
  replacementWindowSeconds: number;
  /** Most webservers this slot may have at once, whatever the desired count (default 20). */
  maxWebservers: number;
}

export const DEFAULT_POLICY: ScalingPolicy = Object.freeze({
  failuresBeforeUnhealthy: 2,
  buildTimeoutSeconds: 300,
  drainSeconds: 15,
  maxReplacementsPerWindow: 3,
  replacementWindowSeconds: 600,
  maxWebservers: 20,
});

export type Action =
  | { type: 'remove-dns'; ip: string; serverId: string | null; reason: string }
  | { type: 'add-dns'; ip: string; serverId: string; reason: string }
  | { type: 'create'; reason: 'scale-up' | 'replace' }
  | { type: 'destroy'; serverId: string; name: string; reason: string };

export type Condition = 'healthy' | 'building' | 'unhealthy' | 'failed-build' | 'dead' | 'draining';

export interface PlanInput {
  now: number;
  desired: number;
  /** This slot's webservers, as the provider lists them. */
  servers: ObservedServer[];
  /** The site's A records now. */
  dnsIps: string[];
  /**
   * Public IPs of every webserver of the deployment (all slots). When given, A records pointing
   * anywhere else are removed (a leftover of a server that is gone). Omit it when unsure.
   */
  fleetIps?: string[];
  memory: SlotMemory;
  policy?: Partial<ScalingPolicy>;
}

export interface Plan {
  actions: Action[];
  memory: SlotMemory;
  conditions: Record<string, Condition>;
  summary: { desired: number; healthy: number; building: number; unhealthy: number; draining: number; creating: number };
}

export function emptyMemory(): SlotMemory {
  return { health: {}, draining: {}, replacements: [] };
}

/** Folds one probe result into the memory (pure). */
export function recordProbe(
  memory: SlotMemory,
  serverId: string,
  ok: boolean,
  now: number,
  policy: Partial<ScalingPolicy> = {},
): SlotMemory {
  const p = { ...DEFAULT_POLICY, ...policy };
  const h = memory.health[serverId] ?? { everHealthy: false, consecutiveFailures: 0 };
  let next: ServerHealth;
  if (ok) next = { everHealthy: true, consecutiveFailures: 0 };
  else {
    const failures = h.consecutiveFailures + 1;
    const unhealthy = h.everHealthy && failures >= p.failuresBeforeUnhealthy;
    next = { everHealthy: h.everHealthy, consecutiveFailures: failures, unhealthySince: unhealthy ? (h.unhealthySince ?? now) : undefined };
  }
  return { ...memory, health: { ...memory.health, [serverId]: next } };
}

export function plan(input: PlanInput): Plan {
  const p: ScalingPolicy = { ...DEFAULT_POLICY, ...input.policy };
  if (!Number.isInteger(input.desired) || input.desired < 0)
    throw new RangeError(`desired must be a whole number >= 0, got ${input.desired}`);
  const now = input.now;
  const actions: Action[] = [];
  const dns = new Set(input.dnsIps);
  const removeFromDns = (s: ObservedServer, reason: string) => {
    if (s.publicIp && dns.has(s.publicIp)) {
      actions.push({ type: 'remove-dns', ip: s.publicIp, serverId: s.id, reason });
      dns.delete(s.publicIp);
    }
  };
  const destroy = (s: ObservedServer, reason: string) => actions.push({ type: 'destroy', serverId: s.id, name: s.name, reason });

  // One entry per id, whatever the provider listed.
  const servers = [...new Map(input.servers.map((s) => [s.id, s])).values()];
  const draining = { ...input.memory.draining };
  const health: Record<string, ServerHealth> = {};
  const conditions: Record<string, Condition> = {};

  for (const s of servers) {
    const h = input.memory.health[s.id] ?? { everHealthy: false, consecutiveFailures: 0 };
    health[s.id] = h;
    if (s.state === 'destroying') conditions[s.id] = 'dead';
    else if (s.state === 'stopped' || s.state === 'error') conditions[s.id] = 'dead';
    else if (draining[s.id] !== undefined) conditions[s.id] = 'draining';
    else if (!h.everHealthy) conditions[s.id] = now - s.createdAt > p.buildTimeoutSeconds * 1000 ? 'failed-build' : 'building';
    else if (h.consecutiveFailures >= p.failuresBeforeUnhealthy) conditions[s.id] = 'unhealthy';
    else conditions[s.id] = 'healthy';
  }
  const byCondition = (c: Condition) => servers.filter((s) => conditions[s.id] === c);

  // 1. Out of DNS at once: anything not healthy.
  for (const s of servers) if (conditions[s.id] !== 'healthy') removeFromDns(s, `server ${s.name} is ${conditions[s.id]}`);
  // A records that belong to no webserver of the deployment.
  if (input.fleetIps) {
    const fleet = new Set(input.fleetIps);
    for (const ip of [...dns]) {
      if (!fleet.has(ip)) {
        actions.push({ type: 'remove-dns', ip, serverId: null, reason: `no webserver of this deployment has ${ip}` });
        dns.delete(ip);
      }
    }
  }

  // 2. Gone for good: dead servers and failed builds are destroyed; drained ones once the drain is over.
  for (const s of byCondition('dead')) if (s.state !== 'destroying') destroy(s, `server ${s.name} is ${s.state}`);
  for (const s of byCondition('failed-build'))
    destroy(
      s,
      s.publicIp || s.privateIp
        ? `server ${s.name} did not pass a health probe within ${p.buildTimeoutSeconds} s`
        : `server ${s.name} got no IP within ${p.buildTimeoutSeconds} s`,
    );
  for (const s of byCondition('draining')) if (now - draining[s.id]! >= p.drainSeconds * 1000) destroy(s, `server ${s.name} drained`);

  // 3. Capacity: healthy servers, plus builds still within their time.
  const healthy = byCondition('healthy');
  const building = byCondition('building');
  const unhealthy = byCondition('unhealthy');
  let capacity = healthy.length + building.length;

  // 4. Too many: building ones leave first (newest first), then the newest healthy ones.
  if (capacity > input.desired) {
    const victims = [...building.sort((a, b) => b.createdAt - a.createdAt), ...healthy.sort((a, b) => b.createdAt - a.createdAt)].slice(
      0,
      capacity - input.desired,
    );
    for (const s of victims) {
      if (conditions[s.id] === 'building') {
        destroy(s, `surplus (desired ${input.desired})`);
      } else {
        removeFromDns(s, `surplus (desired ${input.desired}): draining before destroy`);
        draining[s.id] = now;
        conditions[s.id] = 'draining';
      }
    }
    capacity = input.desired;
  }

  // 5. Healthy servers not in DNS yet go in.
  for (const s of healthy) {
    if (conditions[s.id] === 'healthy' && s.publicIp && !dns.has(s.publicIp)) {
      actions.push({ type: 'add-dns', ip: s.publicIp, serverId: s.id, reason: `server ${s.name} passed its health probe` });
      dns.add(s.publicIp);
    }
  }

  // 6. Unhealthy servers: destroyed once the slot has its desired count of healthy servers again
  //    (the replacement passed its probe), or after the build timeout.
  const inService = healthy.filter((s) => conditions[s.id] === 'healthy').length;
  for (const s of unhealthy) {
    const since = health[s.id]!.unhealthySince ?? now;
    if (inService >= input.desired) destroy(s, `server ${s.name} unhealthy; its replacement is up`);
    else if (now - since > p.buildTimeoutSeconds * 1000) destroy(s, `server ${s.name} unhealthy for more than ${p.buildTimeoutSeconds} s`);
  }

  // 7. Too few: build, replacements first, within the flap guard and the slot's ceiling.
  const replacements = input.memory.replacements.filter((t) => now - t < p.replacementWindowSeconds * 1000);
  const alive = servers.filter(
    (s) => conditions[s.id] !== 'dead' && !actions.some((a) => a.type === 'destroy' && a.serverId === s.id),
  ).length;
  let room = Math.max(0, Math.min(p.maxWebservers, input.desired + unhealthy.length) - alive);
  const need = Math.max(0, input.desired - capacity);
  let creating = 0;
  // The part of the deficit that unhealthy servers left is filled only by replacements, which the
  // flap guard limits; the rest is ordinary scale-up.
  const toReplace = Math.min(need, unhealthy.length);
  let scaleUp = need - toReplace;
  for (let i = 0; i < toReplace && room > 0 && replacements.length < p.maxReplacementsPerWindow; i++) {
    actions.push({ type: 'create', reason: 'replace' });
    replacements.push(now);
    room--;
    creating++;
  }
  for (; scaleUp > 0 && room > 0; scaleUp--, room--) {
    actions.push({ type: 'create', reason: 'scale-up' });
    creating++;
  }

  // Memory keeps only servers that still exist.
  const ids = new Set(servers.map((s) => s.id));
  const memory: SlotMemory = {
    health: Object.fromEntries(Object.entries(health).filter(([id]) => ids.has(id))),
    draining: Object.fromEntries(Object.entries(draining).filter(([id]) => ids.has(id))),
    replacements,
  };
  const count = (c: Condition) => Object.values(conditions).filter((x) => x === c).length;
  return {
    actions,
    memory,
    conditions,
    summary: {
      desired: input.desired,
      healthy: count('healthy'),
      building: count('building'),
      unhealthy: count('unhealthy'),
      draining: count('draining'),
      creating,
    },
  };
}

/**
 * Splits a desired total between `autoscalers` slots, like the original's STATIC_SCALE:4:3:3:
 * slot 1 gets the remainder first (10 over 3 -> [4, 3, 3]). Index 0 is slot 1.
 */
export function splitDesired(total: number, autoscalers: number): number[] {
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`total must be a whole number >= 0, got ${total}`);
  if (!Number.isInteger(autoscalers) || autoscalers < 1)
    throw new RangeError(`autoscalers must be a whole number >= 1, got ${autoscalers}`);
  return Array.from({ length: autoscalers }, (_, i) => Math.floor(total / autoscalers) + (i < total % autoscalers ? 1 : 0));
}

/** Checks a desired webserver count given by a person: a whole number from 0 to `max`. Returns it, or throws naming what is allowed. */
export function parseDesired(input: string, max: number): number {
  if (!/^\d{1,4}$/.test(input.trim()))
    throw new RangeError(`"${input}" is not a number of webservers: give a whole number from 0 to ${max}`);
  const n = Number(input.trim());
  if (n > max) throw new RangeError(`${n} webservers is above the configured maximum of ${max} (MAX_WEBSERVERS)`);
  return n;
}
