/**
 * Vultr: instances, firewall groups, DNS and managed databases over API v2
 * (https://www.vultr.com/api/), with plain `fetch` through our one API client (Vultr publishes no
 * official TypeScript SDK; `@vultr/vultr-node` is a thin, untyped wrapper without retries).
 *
 * - Pagination: `per_page` (max 500) and the `cursor` of `meta.links.next`, read to the end.
 * - Rate limit: 30 requests per second; a 429 carries no documented wait, so it is backed off.
 * - Errors: `{"error": "...", "status": 400}`.
 * - A firewall group per build and role (description `adt-<build>-<role>`); instances of the role
 *   are created in it (`firewall_group_id`) and `apply` moves the role's existing ones into it.
 *   Replacing its rules adds the missing ones before deleting the extra ones, so the role is never
 *   open to everyone, nor closed to the fleet, in between.
 */
import { errorFactory } from '@adt/core';
import { createApiClient, type ApiClient } from '../http.ts';
import { nameMatches, parseServerName } from '../naming.ts';
import { validateAllowList, validateRule } from '../rules.ts';
import { adtTags, checkCreate, createOnce, waitForDatabase, waitForServer, pollUntil, relativeName } from './_cloud.ts';
import type {
  ComputeProvider, CreateDatabaseOptions, CreateServerOptions, DnsProvider, DnsRecord, InboundRule, ListServersFilter,
  ManagedDatabase, ManagedDatabaseProvider, NativeFirewallProvider, Role, Server, WaitOptions,
} from '../types.ts';

export const DRIVER_NAME = 'vultr';
const fail = errorFactory('providers', DRIVER_NAME);

export interface VultrOptions {
  /** An API key (Account > API). Never logged. */
  apiKey: string;
  /** API base URL (default `https://api.vultr.com/v2`; a fake's URL in tests). */
  baseUrl?: string;
  /** Default region and plan (e.g. `lhr`, `vc2-1c-2gb`). */
  region?: string;
  size?: string;
  /** Operating system id for new instances (default 2136, Debian 12 x64). */
  osId?: number;
  /** SSH key ids to install. */
  sshKeyIds?: string[];
  /** Page size for lists (default 500, the API's maximum). */
  perPage?: number;
  fetch?: typeof fetch;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: Parameters<typeof createApiClient>[0]['onRetry'];
}

// --- API shapes (only the fields we read) ---

interface Instance { id: string; label: string; status: string; server_status: string; main_ip: string; internal_ip: string; tags: string[]; date_created: string }
interface Meta { meta?: { total?: number; links?: { next?: string } } }
interface FirewallGroup { id: string; description: string }
interface FirewallRule { id: number; ip_type: 'v4' | 'v6'; protocol: string; port: string; subnet: string; subnet_size: number; notes: string }
interface DnsRecordApi { id: string; type: string; name: string; data: string; ttl: number }
interface Database { id: string; label: string; tag: string; status: string; database_engine: string; host: string; public_host: string; port: string; user: string; password: string; dbname: string; trusted_ips: string[] }

export function vultrClient(o: VultrOptions): ApiClient {
  if (!o.apiKey) throw fail('NO_TOKEN', 'VULTR_API_KEY: an API key is required', { exitCode: 2 });
  return createApiClient({
    provider: DRIVER_NAME,
    baseUrl: o.baseUrl ?? 'https://api.vultr.com/v2',
    auth: () => ({ Authorization: `Bearer ${o.apiKey}` }),
    errorMessage: (b) => (b as { error?: string }).error,
    fetch: o.fetch, baseDelayMs: o.baseDelayMs, maxDelayMs: o.maxDelayMs, onRetry: o.onRetry,
  });
}

/** Every page of a list by cursor (bounded at 1,000 pages). */
async function listAll<T>(api: ApiClient, path: string, key: string, query: Record<string, string | number> = {}, perPage = 500): Promise<T[]> {
  const out: T[] = [];
  let cursor = '';
  for (let page = 0; page < 1000; page++) {
    const body = (await api.get<Record<string, unknown> & Meta>(path, { query: { ...query, per_page: perPage, ...(cursor ? { cursor } : {}) } })) ?? {};
    out.push(...((body[key] as T[] | undefined) ?? []));
    cursor = body.meta?.links?.next ?? '';
    if (!cursor) break;
  }
  return out;
}

function toServer(i: Instance, privateIp?: string | null): Server {
  const p = parseServerName(i.label);
  const running = i.status === 'active' && i.server_status === 'ok';
  return {
    id: i.id, name: i.label, role: p?.role ?? 'webserver', buildId: p?.buildId ?? '',
    state: running ? 'running' : i.status === 'pending' || i.status === 'active' ? 'creating' : i.status === 'suspended' ? 'stopped' : 'error',
    publicIp: i.main_ip && i.main_ip !== '0.0.0.0' ? i.main_ip : null,
    privateIp: privateIp ?? (i.internal_ip || null),
    tags: i.tags ?? [], createdAt: i.date_created,
  };
}

async function findGroup(api: ApiClient, buildId: string, role: Role): Promise<FirewallGroup | null> {
  return (await listAll<FirewallGroup>(api, '/firewalls', 'firewall_groups')).find((g) => g.description === `adt-${buildId}-${role}`) ?? null;
}

export class VultrCompute implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: true, privateNetworking: true };
  readonly api: ApiClient;
  readonly #o: VultrOptions;

  constructor(o: VultrOptions, api = vultrClient(o)) {
    this.#o = o;
    this.api = api;
  }

  // https://www.vultr.com/api/#tag/instances/operation/create-instance
  async create(o: CreateServerOptions): Promise<Server> {
    const { size, region } = checkCreate(DRIVER_NAME, o, { size: this.#o.size, region: this.#o.region });
    const group = await findGroup(this.api, o.buildId, o.role);
    const body = {
      region, plan: size, label: o.name, hostname: o.name,
      ...(o.image ? { snapshot_id: o.image } : { os_id: this.#o.osId ?? 2136 }),
      tags: adtTags(o.role, o.buildId, [`adt-${o.buildId}-${o.role}`, ...(o.tags ?? [])]),
      user_data: Buffer.from(o.userData).toString('base64'),
      ...(o.vpc ? { attach_vpc: [o.vpc] } : { enable_vpc: true }),
      sshkey_id: this.#o.sshKeyIds ?? [], backups: 'disabled',
      ...(group ? { firewall_group_id: group.id } : {}),
    };
    return createOnce(o, async () => toServer((await this.api.post<{ instance: Instance }>('/instances', body)).instance), (s) => s, (f) => this.list(f));
  }

  // https://www.vultr.com/api/#tag/instances/operation/delete-instance
  async destroy(id: string): Promise<void> {
    await this.api.delete(`/instances/${encodeURIComponent(id)}`, { accept: [404] });
  }

  // https://www.vultr.com/api/#tag/instances/operation/list-instances (one tag filter)
  async list(filter: ListServersFilter = {}): Promise<Server[]> {
    const tag = filter.buildId ? `adt-build-${filter.buildId}` : 'adt';
    const all = await listAll<Instance>(this.api, '/instances', 'instances', { tag }, this.#o.perPage);
    return all.filter((i) => nameMatches(i.label, filter)).map((i) => toServer(i));
  }

  async get(id: string): Promise<Server | null> {
    const r = await this.api.get<{ instance: Instance } | null>(`/instances/${encodeURIComponent(id)}`, { accept: [404] });
    if (!r) return null;
    let privateIp: string | null = null;
    if (!r.instance.internal_ip) {
      // A VPC's address is listed apart: https://www.vultr.com/api/#tag/instances/operation/list-instance-vpcs
      const vpcs = await this.api.get<{ vpcs: { ip_address: string }[] }>(`/instances/${encodeURIComponent(id)}/vpcs`);
      privateIp = vpcs.vpcs?.[0]?.ip_address || null;
    }
    return toServer(r.instance, privateIp);
  }

  async waitUntilRunning(id: string, options: WaitOptions = {}): Promise<Server> {
    return waitForServer(DRIVER_NAME, id, (x) => this.get(x), options);
  }

  // https://www.vultr.com/api/#tag/snapshot/operation/create-snapshot
  async snapshot(id: string, name: string, options: WaitOptions = {}): Promise<string> {
    const r = await this.api.post<{ snapshot: { id: string } }>('/snapshots', { instance_id: id, description: name });
    await pollUntil(DRIVER_NAME, `snapshot ${name} of instance ${id}`, async () => {
      const s = await this.api.get<{ snapshot: { status: string } }>(`/snapshots/${encodeURIComponent(r.snapshot.id)}`);
      return s.snapshot.status === 'complete' ? true : null;
    }, { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 10_000 });
    return r.snapshot.id;
  }
}

function ruleKey(r: { protocol: string; port: string; subnet: string; subnet_size: number }): string {
  return `${r.protocol}|${r.port}|${r.subnet}/${r.subnet_size}`;
}

/** Firewall groups: https://www.vultr.com/api/#tag/firewall */
export class VultrFirewall implements NativeFirewallProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;

  constructor(api: ApiClient) {
    this.api = api;
  }

  async apply(buildId: string, role: Role, rules: InboundRule[]): Promise<void> {
    for (const [i, rule] of rules.entries()) validateRule(rule, `rules[${i}]`);
    const wanted = rules.flatMap((r) => (r.protocol === 'icmp' && r.sources.length === 0 ? ['0.0.0.0/0', '::/0'] : r.sources).map((src) => {
      const [subnet, bits] = src.split('/') as [string, string | undefined];
      const v6 = subnet.includes(':');
      return { ip_type: v6 ? 'v6' as const : 'v4' as const, protocol: r.protocol, port: r.port === undefined ? '' : Array.isArray(r.port) ? `${r.port[0]}:${r.port[1]}` : String(r.port), subnet, subnet_size: bits === undefined ? (v6 ? 128 : 32) : Number(bits), notes: r.description?.slice(0, 255) ?? '' };
    }));
    let group = await findGroup(this.api, buildId, role);
    // https://www.vultr.com/api/#tag/firewall/operation/create-firewall-group
    group ??= (await this.api.post<{ firewall_group: FirewallGroup }>('/firewalls', { description: `adt-${buildId}-${role}` })).firewall_group;
    const current = await listAll<FirewallRule>(this.api, `/firewalls/${group.id}/rules`, 'firewall_rules');
    const have = new Set(current.map(ruleKey));
    const want = new Set(wanted.map(ruleKey));
    // Add first, then delete: the role is never between two rule sets.
    for (const r of wanted.filter((x) => !have.has(ruleKey(x)))) await this.api.post(`/firewalls/${group.id}/rules`, r);
    for (const r of current.filter((x) => !want.has(ruleKey(x)))) await this.api.delete(`/firewalls/${group.id}/rules/${r.id}`, { accept: [404] });
    const servers = await new VultrCompute({ apiKey: 'unused' }, this.api).list({ buildId, role });
    const inGroup = await listAll<Instance & { firewall_group_id: string }>(this.api, '/instances', 'instances', { tag: `adt-${buildId}-${role}` });
    for (const s of servers.filter((x) => inGroup.find((i) => i.id === x.id)?.firewall_group_id !== group!.id)) {
      // https://www.vultr.com/api/#tag/instances/operation/update-instance
      await this.api.patch(`/instances/${encodeURIComponent(s.id)}`, { firewall_group_id: group.id });
    }
  }

  async get(buildId: string, role: Role): Promise<InboundRule[] | null> {
    const group = await findGroup(this.api, buildId, role);
    if (!group) return null;
    const byRule = new Map<string, InboundRule>();
    for (const r of await listAll<FirewallRule>(this.api, `/firewalls/${group.id}/rules`, 'firewall_rules')) {
      const protocol = r.protocol as InboundRule['protocol'];
      const [a, b] = r.port ? r.port.split(':').map(Number) : [];
      const port = a === undefined ? undefined : b === undefined || a === b ? a : ([a, b] as [number, number]);
      const key = `${protocol}|${r.port}`;
      const source = `${r.subnet}/${r.subnet_size}`;
      const prev = byRule.get(key);
      if (prev) prev.sources.push(source);
      else byRule.set(key, { protocol, ...(port === undefined ? {} : { port }), sources: [source] });
    }
    return [...byRule.values()];
  }

  async remove(buildId: string, role: Role): Promise<void> {
    const group = await findGroup(this.api, buildId, role);
    if (group) await this.api.delete(`/firewalls/${group.id}`, { accept: [404] });
  }
}

export interface VultrDnsOptions extends VultrOptions {
  /** The domain (zone) managed at Vultr, e.g. `example.com`. */
  zone: string;
  /** TTL of new records (default 60). */
  defaultTtl?: number;
}

/** DNS: https://www.vultr.com/api/#tag/dns */
export class VultrDns implements DnsProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: VultrDnsOptions;

  constructor(o: VultrDnsOptions, api = vultrClient(o)) {
    this.#o = o;
    this.api = api;
  }

  #zone(): string {
    return this.#o.zone.replace(/\.$/, '').toLowerCase();
  }

  async ensureZone(zone: string): Promise<void> {
    const z = zone.replace(/\.$/, '').toLowerCase();
    const found = await this.api.get(`/domains/${encodeURIComponent(z)}`, { accept: [404] });
    // https://www.vultr.com/api/#tag/dns/operation/create-dns-domain
    if (!found) await this.api.post('/domains', { domain: z });
  }

  async #records(name: string): Promise<{ fqdn: string; rel: string; records: DnsRecordApi[] }> {
    const fqdn = name.toLowerCase().replace(/\.$/, '');
    const rel = relativeName(fqdn, this.#o.zone, DRIVER_NAME);
    const r = rel === '@' ? '' : rel;
    const all = await listAll<DnsRecordApi>(this.api, `/domains/${encodeURIComponent(this.#zone())}/records`, 'records');
    return { fqdn, rel: r, records: all.filter((x) => x.type === 'A' && x.name === r) };
  }

  async listA(name: string): Promise<DnsRecord[]> {
    const { fqdn, records } = await this.#records(name);
    return records.map((r) => ({ name: fqdn, type: 'A' as const, content: r.data, ttl: r.ttl })).sort((a, b) => a.content.localeCompare(b.content));
  }

  async addA(name: string, ip: string, ttl = this.#o.defaultTtl ?? 60): Promise<void> {
    const { rel, records } = await this.#records(name);
    if (records.some((r) => r.data === ip)) return;
    // https://www.vultr.com/api/#tag/dns/operation/create-dns-domain-record
    await this.api.post(`/domains/${encodeURIComponent(this.#zone())}/records`, { name: rel, type: 'A', data: ip, ttl });
  }

  async removeA(name: string, ip: string): Promise<void> {
    const { records } = await this.#records(name);
    for (const r of records.filter((x) => x.data === ip)) await this.api.delete(`/domains/${encodeURIComponent(this.#zone())}/records/${encodeURIComponent(r.id)}`, { accept: [404] });
  }
}

/** Managed databases: https://www.vultr.com/api/#tag/managed-databases */
export class VultrDatabases implements ManagedDatabaseProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: VultrOptions;

  constructor(o: VultrOptions, api = vultrClient(o)) {
    this.#o = o;
    this.api = api;
  }

  async create(o: CreateDatabaseOptions): Promise<ManagedDatabase> {
    validateAllowList(o.allow, 'allow');
    const region = o.region ?? this.#o.region;
    if (!region) throw fail('NO_REGION', `database ${o.name}: a region is required`, { exitCode: 2 });
    const existing = (await this.list({ buildId: o.buildId })).find((d) => d.name === o.name);
    if (existing) {
      await this.setAllowList(existing.id, o.allow);
      return existing;
    }
    // https://www.vultr.com/api/#tag/managed-databases/operation/create-database
    const r = await this.api.post<{ database: Database }>('/databases', {
      database_engine: o.engine === 'postgres' ? 'pg' : 'mysql', database_engine_version: o.version ?? (o.engine === 'postgres' ? '16' : '8'),
      region, plan: o.size ?? 'vultr-dbaas-hobbyist-cc-1-25-1', label: o.name, tag: `adt-build-${o.buildId}`,
      ...(o.vpc ? { vpc_id: o.vpc } : {}), trusted_ips: o.allow,
    });
    return toDatabase(r.database);
  }

  async get(id: string): Promise<ManagedDatabase | null> {
    const r = await this.api.get<{ database: Database } | null>(`/databases/${encodeURIComponent(id)}`, { accept: [404] });
    return r ? toDatabase(r.database) : null;
  }

  async list(filter: { buildId?: string } = {}): Promise<ManagedDatabase[]> {
    const all = await listAll<Database>(this.api, '/databases', 'databases', filter.buildId ? { tag: `adt-build-${filter.buildId}` } : {});
    return all.filter((d) => d.tag?.startsWith('adt-build-')).map(toDatabase);
  }

  async waitUntilOnline(id: string, options: WaitOptions = {}): Promise<ManagedDatabase> {
    return waitForDatabase(DRIVER_NAME, id, (x) => this.get(x), options);
  }

  // https://www.vultr.com/api/#tag/managed-databases/operation/update-database
  async setAllowList(id: string, sources: string[]): Promise<void> {
    validateAllowList(sources, 'allow');
    await this.api.put(`/databases/${encodeURIComponent(id)}`, { trusted_ips: sources });
  }

  async getAllowList(id: string): Promise<string[]> {
    return (await this.api.get<{ database: Database }>(`/databases/${encodeURIComponent(id)}`)).database.trusted_ips ?? [];
  }

  async destroy(id: string): Promise<void> {
    await this.api.delete(`/databases/${encodeURIComponent(id)}`, { accept: [404] });
  }
}

function toDatabase(d: Database): ManagedDatabase {
  return {
    id: d.id, name: d.label, buildId: d.tag?.replace(/^adt-build-/, '') ?? '', engine: d.database_engine === 'pg' ? 'postgres' : 'mysql',
    state: d.status === 'Running' ? 'online' : 'creating',
    host: d.public_host || d.host || null, privateHost: d.public_host ? d.host || null : null, port: d.port ? Number(d.port) : null,
    user: d.user ?? null, password: d.password ?? null, database: d.dbname ?? null,
  };
}

/** Registry entry point: the compute driver; `.firewall`, `.dns(zone)` and `.databases` share its client. */
export default function vultrDriver(o: VultrOptions) {
  const api = vultrClient(o);
  const compute = new VultrCompute(o, api);
  return Object.assign(compute, {
    firewall: new VultrFirewall(api),
    databases: new VultrDatabases(o, api),
    dns: (zone: string, defaultTtl?: number) => new VultrDns({ ...o, zone, defaultTtl }, api),
  });
}
