import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  plan,
  recordProbe,
  emptyMemory,
  splitDesired,
  parseDesired,
  type ObservedServer,
  type SlotMemory,
  type Action,
} from '../src/index.ts';

const T0 = Date.parse('2026-11-25T00:00:00Z');
const s = (id: string, createdAgoS: number, extra: Partial<ObservedServer> = {}): ObservedServer => ({
  id,
  name: `ws-${id}`,
  state: 'running',
  publicIp: `198.18.0.${Number(id.replace(/\D/g, '')) + 10}`,
  privateIp: `198.18.1.${Number(id.replace(/\D/g, '')) + 10}`,
  createdAt: T0 - createdAgoS * 1000,
  ...extra,
});
const healthyMem = (...ids: string[]): SlotMemory => ({
  ...emptyMemory(),
  health: Object.fromEntries(ids.map((id) => [id, { everHealthy: true, consecutiveFailures: 0 }])),
});
const types = (actions: Action[]) =>
  actions.map((a) => (a.type === 'create' ? `create:${a.reason}` : a.type === 'destroy' ? `destroy:${a.serverId}` : `${a.type}:${a.ip}`));

const rules = suite('plan: the rules');

rules('an empty slot builds up to the desired count', () => {
  const r = plan({ now: T0, desired: 3, servers: [], dnsIps: [], memory: emptyMemory() });
  assert.equal(types(r.actions), ['create:scale-up', 'create:scale-up', 'create:scale-up']);
});

rules('a building server counts towards the desired count but is not in DNS until it passed a probe', () => {
  const building = s('1', 30);
  const r = plan({ now: T0, desired: 1, servers: [building], dnsIps: [], memory: emptyMemory() });
  assert.equal(r.actions, []);
  assert.is(r.conditions['1'], 'building');
  const after = plan({ now: T0, desired: 1, servers: [building], dnsIps: [], memory: recordProbe(emptyMemory(), '1', true, T0) });
  assert.equal(types(after.actions), ['add-dns:198.18.0.11']);
});

rules('a build that never passes a probe (or never got an IP) is destroyed after the timeout and replaced', () => {
  const noIp = s('1', 301, { publicIp: null, privateIp: null });
  const r = plan({ now: T0, desired: 1, servers: [noIp], dnsIps: [], memory: emptyMemory() });
  assert.equal(types(r.actions), ['destroy:1', 'create:scale-up']);
  assert.match((r.actions[0] as { reason: string }).reason, /got no IP/);
});

rules('an unhealthy server leaves DNS at once, a replacement is launched, and it is destroyed only once the slot is whole', () => {
  let mem = healthyMem('1', '2');
  mem = recordProbe(recordProbe(mem, '2', false, T0), '2', false, T0);
  const servers = [s('1', 1000), s('2', 1000)];
  const r = plan({ now: T0, desired: 2, servers, dnsIps: ['198.18.0.11', '198.18.0.12'], memory: mem });
  assert.equal(types(r.actions), ['remove-dns:198.18.0.12', 'create:replace']);
  assert.is(r.conditions['2'], 'unhealthy');
  // Next tick: the replacement (3) is building; still not whole: 2 stays.
  const r2 = plan({ now: T0 + 10_000, desired: 2, servers: [...servers, s('3', 5)], dnsIps: ['198.18.0.11'], memory: r.memory });
  assert.equal(types(r2.actions), []);
  // The replacement passed: 2 goes.
  const r3 = plan({
    now: T0 + 20_000,
    desired: 2,
    servers: [...servers, s('3', 15)],
    dnsIps: ['198.18.0.11'],
    memory: recordProbe(r2.memory, '3', true, T0 + 20_000),
  });
  assert.equal(types(r3.actions), ['add-dns:198.18.0.13', 'destroy:2']);
});

rules('a single failed probe does not remove a server (threshold), and recovery resets it', () => {
  const mem = recordProbe(healthyMem('1'), '1', false, T0);
  assert.equal(plan({ now: T0, desired: 1, servers: [s('1', 1000)], dnsIps: ['198.18.0.11'], memory: mem }).actions, []);
  const recovered = recordProbe(mem, '1', true, T0);
  assert.equal(recovered.health['1'], { everHealthy: true, consecutiveFailures: 0 });
});

rules('failing probes while building do not make a server unhealthy', () => {
  const mem = recordProbe(recordProbe(recordProbe(emptyMemory(), '1', false, T0), '1', false, T0), '1', false, T0);
  assert.is(plan({ now: T0, desired: 1, servers: [s('1', 60)], dnsIps: [], memory: mem }).conditions['1'], 'building');
});

rules('a dead server (stopped, error) leaves DNS and is destroyed at once', () => {
  const r = plan({ now: T0, desired: 1, servers: [s('1', 1000, { state: 'error' })], dnsIps: ['198.18.0.11'], memory: healthyMem('1') });
  assert.equal(types(r.actions), ['remove-dns:198.18.0.11', 'destroy:1', 'create:scale-up']);
});

rules('scale-down removes the newest healthy servers from DNS first and destroys them after the drain', () => {
  const servers = [s('1', 3000), s('2', 2000), s('3', 1000), s('4', 500)];
  const dnsIps = servers.map((x) => x.publicIp!);
  const r = plan({ now: T0, desired: 1, servers, dnsIps, memory: healthyMem('1', '2', '3', '4') });
  assert.equal(types(r.actions), ['remove-dns:198.18.0.14', 'remove-dns:198.18.0.13', 'remove-dns:198.18.0.12'], 'newest first');
  assert.equal(Object.keys(r.memory.draining).sort(), ['2', '3', '4']);
  const early = plan({ now: T0 + 5_000, desired: 1, servers, dnsIps: ['198.18.0.11'], memory: r.memory });
  assert.equal(early.actions, [], 'still draining');
  const later = plan({ now: T0 + 16_000, desired: 1, servers, dnsIps: ['198.18.0.11'], memory: r.memory });
  assert.equal(types(later.actions), ['destroy:2', 'destroy:3', 'destroy:4']);
});

rules('scale-down takes building servers before healthy ones', () => {
  const r = plan({ now: T0, desired: 1, servers: [s('1', 3000), s('2', 10)], dnsIps: ['198.18.0.11'], memory: healthyMem('1') });
  assert.equal(types(r.actions), ['destroy:2']);
});

rules('replacements are capped per window (no storms), scale-up is not', () => {
  const mem: SlotMemory = { ...healthyMem('1', '2', '3'), replacements: [T0 - 100_000, T0 - 50_000, T0 - 10_000] };
  for (const id of ['1', '2']) mem.health[id] = { everHealthy: true, consecutiveFailures: 5, unhealthySince: T0 };
  const r = plan({ now: T0, desired: 3, servers: [s('1', 1000), s('2', 1000), s('3', 1000)], dnsIps: ['198.18.0.13'], memory: mem });
  assert.not.ok(
    r.actions.some((a) => a.type === 'create'),
    'three replacements in the window already',
  );
  const later = plan({
    now: T0 + 601_000,
    desired: 3,
    servers: [s('1', 1000), s('2', 1000), s('3', 1000)],
    dnsIps: ['198.18.0.13'],
    memory: mem,
  });
  assert.is(later.actions.filter((a) => a.type === 'create').length, 2);
});

rules('the ceiling holds whatever the desired count', () => {
  const r = plan({ now: T0, desired: 50, servers: [], dnsIps: [], memory: emptyMemory(), policy: { maxWebservers: 20 } });
  assert.is(r.actions.length, 20);
});

rules('a server listed twice counts once', () => {
  const r = plan({ now: T0, desired: 2, servers: [s('1', 1000), s('1', 1000)], dnsIps: ['198.18.0.11'], memory: healthyMem('1') });
  assert.equal(types(r.actions), ['create:scale-up']);
});

rules('A records of no webserver of the deployment are removed when the fleet is known', () => {
  const r = plan({
    now: T0,
    desired: 1,
    servers: [s('1', 1000)],
    dnsIps: ['198.18.0.11', '198.18.0.99'],
    fleetIps: ['198.18.0.11'],
    memory: healthyMem('1'),
  });
  assert.equal(types(r.actions), ['remove-dns:198.18.0.99']);
});

rules('a bad desired count is refused', () => {
  for (const d of [-1, 1.5, Number.NaN]) assert.throws(() => plan({ now: T0, desired: d, servers: [], dnsIps: [], memory: emptyMemory() }));
});

rules.run();

// ---

const sim = suite('plan: a simulated fleet over many ticks');

/** A tiny deterministic world: servers boot in `bootTicks`, may die; DNS and the provider obey the actions. */
function simulate(seed: number, ticks: number, desiredAt: (tick: number) => number, deathRate: number) {
  let rnd = seed;
  const random = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const tickMs = 5_000;
  let nextId = 1;
  const world = new Map<string, ObservedServer & { bootAt: number; alive: boolean }>();
  let dns = new Set<string>();
  let memory = emptyMemory();
  const violations: string[] = [];
  let maxAlive = 0;
  for (let t = 0; t < ticks; t++) {
    const now = T0 + t * tickMs;
    const desired = desiredAt(t);
    // The world changes: some in-service servers die (their app stops answering).
    for (const w of world.values()) if (w.alive && now >= w.bootAt && random() < deathRate) w.alive = false;
    // Probes.
    for (const w of world.values()) if (w.publicIp) memory = recordProbe(memory, w.id, w.alive && now >= w.bootAt, now);
    // Invariant: DNS lists no server that has failed two probes in a row (detection time).
    for (const w of world.values())
      if (dns.has(w.publicIp!) && (memory.health[w.id]?.consecutiveFailures ?? 0) >= 3) violations.push(`tick ${t}: ${w.id} dead in DNS`);
    const r = plan({ now, desired, servers: [...world.values()], dnsIps: [...dns], memory });
    memory = r.memory;
    for (const a of r.actions) {
      if (a.type === 'create') {
        const id = String(nextId++);
        world.set(id, {
          id,
          name: `ws-${id}`,
          state: 'running',
          publicIp: `198.18.${Math.floor(nextId / 250)}.${nextId % 250}`,
          privateIp: null,
          createdAt: now,
          bootAt: now + 3 * tickMs,
          alive: random() > 0.1,
        });
      } else if (a.type === 'destroy') world.delete(a.serverId);
      else if (a.type === 'add-dns') dns.add(a.ip);
      else dns.delete(a.ip);
    }
    dns = new Set([...dns].filter((ip) => [...world.values()].some((w) => w.publicIp === ip)));
    maxAlive = Math.max(maxAlive, world.size);
  }
  const healthyInDns = [...world.values()].filter((w) => w.alive && dns.has(w.publicIp!)).length;
  return { violations, maxAlive, healthyInDns, world, dns };
}

sim('it converges to the desired count, with DNS listing only answering servers', () => {
  for (const seed of [1, 7, 42, 1234]) {
    const r = simulate(seed, 200, (t) => (t < 100 ? 4 : 2), 0.01);
    assert.equal(r.violations, [], `seed ${seed}`);
  }
  const calm = simulate(99, 120, (t) => (t < 60 ? 4 : 1), 0);
  assert.is(calm.healthyInDns, 1, 'scaled down to one');
  assert.is(calm.dns.size, 1);
  assert.ok(calm.maxAlive <= 4 + 1, `at most desired + the odd replacement alive, saw ${calm.maxAlive}`);
});

sim.run();

const split = suite('splitting the desired count');
split('the total is split between autoscalers, slot 1 first (like STATIC_SCALE:4:3:3)', () => {
  assert.equal(splitDesired(10, 3), [4, 3, 3]);
  assert.equal(splitDesired(4, 2), [2, 2]);
  assert.equal(splitDesired(1, 2), [1, 0]);
  assert.equal(splitDesired(0, 1), [0]);
  assert.throws(() => splitDesired(-1, 2), /whole number/);
});
split('a count from a person: a whole number from 0 to the maximum, else a clear refusal', () => {
  assert.is(parseDesired('4', 10), 4);
  assert.is(parseDesired(' 0 ', 10), 0);
  for (const bad of ['-1', 'four', '2.5', '', '1e3'])
    assert.throws(() => parseDesired(bad, 10), /not a number of webservers: give a whole number from 0 to 10/);
  assert.throws(() => parseDesired('11', 10), /above the configured maximum of 10/);
});
split.run();
