/**
 * The backing the backed fakes' tests run on (`*-backed.test.ts`): compute, native firewall and
 * zones in memory, recording what they were asked, refusing as the local cloud does.
 */
import { MemoryCompute, MemoryNativeFirewall } from '../../src/drivers/memory.ts';
import type { BackingRecord, FakeBacking } from '../../src/fakes/backing.ts';
import type { ComputeProvider, CreateServerOptions, InboundRule, Role, Server } from '../../src/types.ts';

export const PRIVATE_CIDR = '198.19.0.0/16';
export const STOCK = 'debian-12-local';

/** A refusal of the backing (the caller's error, exit code 2), as the local cloud's are. */
export const refusal = (message: string) => Object.assign(new Error(message), { exitCode: 2 });

/**
 * A backing in memory that records what it was asked (`boot`: a new server is `creating`, without
 * addresses, until it has been read once; else running at once).
 */
export function testBacking({ snapshots = true, boot = true } = {}) {
  const memory = new MemoryCompute();
  const creates: CreateServerOptions[] = [];
  const booting = new Set<string>();
  /** The backing's images made by `snapshot`: id -> name and server. */
  const images = new Map<string, { name: string; server: string }>();
  const snapshotCalls: { id: string; name: string }[] = [];
  // A new server is `creating`, without addresses, until it has been read once.
  const unbooted = (s: Server): Server => ({ ...s, state: 'creating', publicIp: null, privateIp: null });
  const compute: ComputeProvider = {
    name: 'test-backing',
    flags: { ...memory.flags, snapshots },
    // As the local cloud: a snapshot of a stopped server only.
    ...(snapshots
      ? {
          async snapshot(id: string, name: string) {
            snapshotCalls.push({ id, name });
            const s = memory.servers.get(id);
            if (!s) throw refusal(`no server ${id}`);
            if (s.state !== 'stopped') throw refusal(`server ${id} is ${s.state}: the local cloud snapshots stopped servers only`);
            const image = `snap-${images.size + 1}`;
            images.set(image, { name, server: id });
            return image;
          },
        }
      : {}),
    async create(o) {
      if (o.image && o.image !== STOCK && !images.has(o.image)) throw refusal(`image ${o.image} not found`);
      creates.push(structuredClone(o));
      const s = await memory.create(o);
      if (!boot) return s;
      booting.add(s.id);
      return unbooted(s);
    },
    async get(id) {
      const s = await memory.get(id);
      return s && booting.delete(id) ? unbooted(s) : s;
    },
    list: (f) => memory.list(f),
    destroy: (id) => memory.destroy(id),
    waitUntilRunning: (id) => memory.waitUntilRunning(id),
  };
  const nativeFirewall = new MemoryNativeFirewall();
  const firewallCalls: { op: 'apply' | 'remove'; buildId: string; role: Role; rules?: InboundRule[] }[] = [];
  const zones: { zone: string; records: BackingRecord[] | null }[] = [];
  const backing: FakeBacking = {
    compute,
    firewall: {
      name: 'test-backing',
      async apply(buildId, role, rules) {
        firewallCalls.push({ op: 'apply', buildId, role, rules: structuredClone(rules) });
        await nativeFirewall.apply(buildId, role, rules);
      },
      get: (buildId, role) => nativeFirewall.get(buildId, role),
      async remove(buildId, role) {
        firewallCalls.push({ op: 'remove', buildId, role });
        await nativeFirewall.remove(buildId, role);
      },
    },
    privateCidr: PRIVATE_CIDR,
    stockImage: STOCK,
    async zone(zone, records) {
      zones.push({ zone, records: records ? structuredClone([...records]) : null });
    },
  };
  return { backing, memory, creates, nativeFirewall, firewallCalls, zones, images, snapshotCalls };
}
