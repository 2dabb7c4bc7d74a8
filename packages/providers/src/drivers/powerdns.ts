/**
 * DNS through the PowerDNS Authoritative HTTP API
 * (https://doc.powerdns.com/authoritative/http-api/zone.html): zones are created Native with SOA and
 * NS; round robin is one A RRset with several records, changed with PATCH `REPLACE` (or `DELETE`
 * when the last address goes).
 *
 * Concurrency: an RRset is read, changed and replaced. Within this process, changes to one name are
 * serialised. Across processes, each change is read back and redone (up to 4 times) when another
 * writer's REPLACE overwrote it, so concurrent adds of different addresses all end up present.
 */
import { isIPv4 } from 'node:net';
import { readFileSync } from 'node:fs';
import { errorFactory, retry } from '@adt/core';
import type { DnsProvider, DnsRecord } from '../types.ts';

export const DRIVER_NAME = 'powerdns';
const fail = errorFactory('providers', DRIVER_NAME);

export interface PowerDnsDriverOptions {
  /** API base URL, e.g. http://127.0.0.1:8081. */
  apiUrl: string;
  /** The API key; or `apiKeyFile` (read on first use). Never logged. */
  apiKey?: string;
  apiKeyFile?: string;
  /** The zone names belong to, e.g. `adt.test` (no trailing dot needed). */
  zone: string;
  /** PowerDNS server id (default `localhost`). */
  serverId?: string;
  /** Default TTL of new records in seconds (default 60). */
  defaultTtl?: number;
  fetch?: typeof fetch;
}

interface RRset {
  name: string;
  type: string;
  ttl: number;
  records: { content: string; disabled: boolean }[];
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function canonical(name: string): string {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n.length > 253 || !n.split('.').every((l) => LABEL.test(l))) throw fail('BAD_NAME', `"${name}" is not a DNS name`, { exitCode: 2 });
  return `${n}.`;
}

export default function powerdnsDriver(o: PowerDnsDriverOptions): DnsProvider {
  const zone = canonical(o.zone);
  const server = o.serverId ?? 'localhost';
  const doFetch = o.fetch ?? fetch;
  let key = o.apiKey;
  const locks = new Map<string, Promise<unknown>>();

  function apiKey(): string {
    if (key) return key;
    if (!o.apiKeyFile) throw fail('NO_API_KEY', 'powerdns: give apiKey or apiKeyFile', { exitCode: 2 });
    key = readFileSync(o.apiKeyFile, 'utf8').trim();
    return key;
  }

  async function api(method: string, path: string, body?: unknown): Promise<unknown> {
    // Transient failures (refused while starting, 5xx) are retried with backoff; 4xx are not.
    return retry(
      async () => {
        const res = await doFetch(`${o.apiUrl.replace(/\/$/, '')}/api/v1/servers/${server}${path}`, {
          method,
          headers: { 'X-API-Key': apiKey(), ...(body ? { 'Content-Type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        if (!res.ok) {
          let message = text.slice(0, 300);
          try {
            message = (JSON.parse(text) as { error?: string }).error ?? message;
          } catch {}
          throw fail(res.status >= 500 ? 'API_UNAVAILABLE' : 'API_ERROR', `${method} ${path}: HTTP ${res.status}: ${message}`, {
            exitCode: res.status === 422 || res.status === 400 ? 2 : 1,
          });
        }
        return text ? JSON.parse(text) : null;
      },
      { attempts: 4, baseMs: 200, retryable: (e) => !(e as { code?: string }).code || (e as { code?: string }).code === 'API_UNAVAILABLE' },
    );
  }

  function inZone(name: string): string {
    const n = canonical(name);
    if (n !== zone && !n.endsWith(`.${zone}`)) throw fail('BAD_NAME', `"${name}" is not in zone ${zone.slice(0, -1)}`, { exitCode: 2 });
    return n;
  }

  async function getA(name: string): Promise<RRset | null> {
    const z = (await api('GET', `/zones/${encodeURIComponent(zone)}?rrsets=true&rrset_name=${encodeURIComponent(name)}&rrset_type=A`)) as {
      rrsets: RRset[];
    };
    return z.rrsets.find((r) => r.name === name && r.type === 'A') ?? null;
  }

  async function serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    locks.set(
      name,
      next.catch(() => {}),
    );
    return next;
  }

  /** Read-modify-write of one A RRset, redone when a concurrent writer overwrote our change. */
  async function change(name: string, want: (ips: Set<string>) => void, check: (ips: Set<string>) => boolean, ttl?: number): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const current = await getA(name);
      const ips = new Set((current?.records ?? []).map((r) => r.content));
      if (check(ips)) return;
      want(ips);
      const rrset = ips.size
        ? {
            name,
            type: 'A',
            ttl: ttl ?? current?.ttl ?? o.defaultTtl ?? 60,
            changetype: 'REPLACE',
            records: [...ips].sort().map((content) => ({ content, disabled: false })),
          }
        : { name, type: 'A', changetype: 'DELETE' };
      await api('PATCH', `/zones/${encodeURIComponent(zone)}`, { rrsets: [rrset] });
      const after = new Set(((await getA(name))?.records ?? []).map((r) => r.content));
      if (check(after)) return;
    }
    throw fail('CONFLICT', `could not change ${name}: other writers kept replacing it`);
  }

  return {
    name: DRIVER_NAME,

    async ensureZone(z: string) {
      const name = canonical(z);
      try {
        await api('GET', `/zones/${encodeURIComponent(name)}`);
        return;
      } catch (e) {
        if (!/HTTP 404|HTTP 422/.test((e as Error).message)) throw e;
      }
      try {
        await api('POST', '/zones', { name, kind: 'Native', nameservers: [`ns1.${name}`], soa_edit_api: 'INCEPTION-INCREMENT' });
      } catch (e) {
        if (!/already exists/i.test((e as Error).message)) throw e;
      }
    },

    async listA(name: string): Promise<DnsRecord[]> {
      const n = inZone(name);
      const rr = await getA(n);
      return (rr?.records ?? [])
        .filter((r) => !r.disabled)
        .map((r) => ({ name: n.slice(0, -1), type: 'A' as const, content: r.content, ttl: rr!.ttl }))
        .sort((a, b) => (a.content < b.content ? -1 : 1));
    },

    async addA(name: string, ip: string, ttl?: number) {
      const n = inZone(name);
      if (!isIPv4(ip)) throw fail('BAD_ADDRESS', `"${ip}" is not an IPv4 address`, { exitCode: 2 });
      if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400))
        throw fail('BAD_TTL', `ttl ${ttl}: 1-86400 seconds`, { exitCode: 2 });
      await serial(n, () =>
        change(
          n,
          (ips) => ips.add(ip),
          (ips) => ips.has(ip),
          ttl,
        ),
      );
    },

    async removeA(name: string, ip: string) {
      const n = inZone(name);
      if (!isIPv4(ip)) throw fail('BAD_ADDRESS', `"${ip}" is not an IPv4 address`, { exitCode: 2 });
      await serial(n, () =>
        change(
          n,
          (ips) => ips.delete(ip),
          (ips) => !ips.has(ip),
        ),
      );
    },
  };
}
