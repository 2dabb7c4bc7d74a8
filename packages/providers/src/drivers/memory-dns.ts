/** DNS in memory, for unit tests of the layers above (the autoscaler, the build) and dry runs. */
import { isIPv4 } from 'node:net';
import { errorFactory } from '@adt/core';
import type { DnsProvider, DnsRecord } from '../types.ts';

export const DRIVER_NAME = 'memory-dns';
const fail = errorFactory('providers', DRIVER_NAME);

export interface MemoryDnsOptions {
  /** Default TTL (default 60). */
  defaultTtl?: number;
}

export default function memoryDnsDriver(
  options: MemoryDnsOptions = {},
): DnsProvider & { zones: Set<string>; records: Map<string, Map<string, number>> } {
  const zones = new Set<string>();
  const records = new Map<string, Map<string, number>>();
  const norm = (n: string) => {
    const x = n.toLowerCase().replace(/\.$/, '');
    if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(x))
      throw fail('BAD_NAME', `"${n}" is not a DNS name`, { exitCode: 2 });
    if (![...zones].some((z) => x === z || x.endsWith(`.${z}`))) throw fail('BAD_NAME', `"${n}" is not in any zone`, { exitCode: 2 });
    return x;
  };
  return {
    name: DRIVER_NAME,
    zones,
    records,
    async ensureZone(z) {
      zones.add(z.toLowerCase().replace(/\.$/, ''));
    },
    async listA(name): Promise<DnsRecord[]> {
      const n = norm(name);
      return [...(records.get(n) ?? new Map()).entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([content, ttl]) => ({ name: n, type: 'A' as const, content, ttl }));
    },
    async addA(name, ip, ttl) {
      const n = norm(name);
      if (!isIPv4(ip)) throw fail('BAD_ADDRESS', `"${ip}" is not an IPv4 address`, { exitCode: 2 });
      if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400))
        throw fail('BAD_TTL', `ttl ${ttl}: 1-86400 seconds`, { exitCode: 2 });
      const set = records.get(n) ?? new Map<string, number>();
      set.set(ip, ttl ?? set.get(ip) ?? options.defaultTtl ?? 60);
      records.set(n, set);
    },
    async removeA(name, ip) {
      const n = norm(name);
      if (!isIPv4(ip)) throw fail('BAD_ADDRESS', `"${ip}" is not an IPv4 address`, { exitCode: 2 });
      records.get(n)?.delete(ip);
      if (records.get(n)?.size === 0) records.delete(n);
    },
  };
}
