/**
 * Linode (Akamai): instances, cloud firewalls, DNS (domains) and managed databases over API v4
 * (https://techdocs.akamai.com/linode-api/reference/api), with plain `fetch` through our one API
 * client. Why not `@linode/api-v4`: it keeps the token in module-global axios state (`setToken`),
 * which does not fit two clients (or a dry run) in one process, and it brings axios; our client
 * gives the four clouds the same retries, rate limits, redaction and dry runs.
 *
 * - Pagination: `page`/`page_size` (max 500), `{ data, page, pages, results }`, read to the last page.
 * - Filtering: the `X-Filter` header (e.g. `{"tags": "adt-build-prod1"}`), names then checked exactly.
 * - Rate limits: 429 with `Retry-After` / `X-RateLimit-Reset` (epoch seconds) is waited out.
 * - Errors: `{"errors": [{"field": "label", "reason": "..."}]}`, quoted field by field.
 * - A cloud firewall attaches to instances, not to tags: it is created per build and role
 *   (`adt-<build>-<ws|db|as|au>`, Linode allows 32 characters), new instances of the role are
 *   created with it (`firewall_id`), and `apply` attaches the role's existing ones.
 * - Private addresses are Linode's 192.168.128.0/17 (`private_ip: true` at creation).
 */
import { randomBytes } from 'node:crypto';
import { errorFactory } from '@adt/core';
import { createApiClient, type ApiClient } from '../http.ts';
import { nameMatches, parseServerName } from '../naming.ts';
import { validateAllowList, validateRule } from '../rules.ts';
import { adtTags, checkCreate, outcomeUnknown, parsePort, pollUntil, portText, relativeName } from './_cloud.ts';
import type {
  ComputeProvider, CreateDatabaseOptions, CreateServerOptions, DnsProvider, DnsRecord, InboundRule, ListServersFilter,
  ManagedDatabase, ManagedDatabaseProvider, NativeFirewallProvider, Role, Server, WaitOptions,
} from '../types.ts';

export const DRIVER_NAME = 'linode';
const fail = errorFactory('providers', DRIVER_NAME);

export interface LinodeOptions {
  /** A personal access token (Linodes, Firewalls, Domains, Databases: read/write). Never logged. */
  token: string;
  /** API base URL (default `https://api.linode.com/v4`; a fake's URL in tests). */
  baseUrl?: string;
  /** Default region and type (e.g. `eu-west`, `g6-standard-1`). */
  region?: string;
  size?: string;
  /** Image for new instances (default `linode/debian12`), or a private image from `snapshot`. */
  image?: string;
  /** Public SSH keys for root. */
  authorizedKeys?: string[];
  /** Page size for lists (default 500, the API's maximum). */
  pageSize?: number;
  fetch?: typeof fetch;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: Parameters<typeof createApiClient>[0]['onRetry'];
}

// --- API shapes (only the fields we read) ---

interface Instance { id: number; label: string; status: string; ipv4: string[]; tags: string[]; created: string }
interface Page<T> { data: T[]; page: number; pages: number; results: number }
interface FirewallRule { action: 'ACCEPT' | 'DROP'; protocol: 'TCP' | 'UDP' | 'ICMP'; ports?: string; addresses: { ipv4?: string[]; ipv6?: string[] }; label?: string }
interface Firewall { id: number; label: string; status: string; rules: { inbound: FirewallRule[]; inbound_policy: string; outbound: FirewallRule[]; outbound_policy: string } }
interface Domain { id: number; domain: string }
interface DomainRecord { id: number; type: string; name: string; target: string; ttl_sec: number }
interface Database { id: number; label: string; status: string; engine: string; hosts: { primary: string | null; secondary: string | null }; port: number; allow_list: string[] }

const ROLE_CODES: Record<Role, string> = { build: 'bm', webserver: 'ws', database: 'db', autoscaler: 'as', auth: 'au' };
/** Linode's private addresses (https://techdocs.akamai.com/cloud-computing/docs/managing-ip-addresses-on-a-compute-instance). */
const PRIVATE = /^192\.168\.(1(2[89]|[3-9]\d)|2\d\d)\.\d{1,3}$/;

export function linodeClient(o: LinodeOptions): ApiClient {
  if (!o.token) throw fail('NO_TOKEN', 'LINODE_TOKEN: a personal access token is required', { exitCode: 2 });
  return createApiClient({
    provider: DRIVER_NAME,
    baseUrl: o.baseUrl ?? 'https://api.linode.com/v4',
    auth: () => ({ Authorization: `Bearer ${o.token}` }),
    errorMessage: (b) => (b as { errors?: { field?: string; reason?: string }[] }).errors?.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason)).join('; '),
    fetch: o.fetch, baseDelayMs: o.baseDelayMs, maxDelayMs: o.maxDelayMs, onRetry: o.onRetry,
  });
}

/** Every page of a list (bounded at 1,000 pages), optionally filtered with X-Filter. */
async function listAll<T>(api: ApiClient, path: string, filter?: Record<string, unknown>, pageSize = 500): Promise<T[]> {
  const out: T[] = [];
  for (let page = 1; page <= 1000; page++) {
    const body = await api.get<Page<T>>(path, { query: { page, page_size: pageSize }, ...(filter ? { headers: { 'X-Filter': JSON.stringify(filter) } } : {}) });
    out.push(...(body.data ?? []));
    if (page >= (body.pages ?? 1)) break;
  }
  return out;
}

function toServer(i: Instance): Server {
  const p = parseServerName(i.label);
  const states: Record<string, Server['state']> = { running: 'running', provisioning: 'creating', booting: 'creating', offline: 'stopped', stopped: 'stopped', shutting_down: 'stopped', deleting: 'destroying' };
  return {
    id: String(i.id), name: i.label, role: p?.role ?? 'webserver', buildId: p?.buildId ?? '',
    state: states[i.status] ?? 'creating',
    publicIp: i.ipv4.find((a) => !PRIVATE.test(a)) ?? null,
    privateIp: i.ipv4.find((a) => PRIVATE.test(a)) ?? null,
    tags: i.tags ?? [], createdAt: i.created,
  };
}

/** The firewall label of a build's role (Linode allows 3-32 characters). */
export function firewallLabel(buildId: string, role: Role): string {
  return `adt-${buildId}-${ROLE_CODES[role]}`;
}

async function findFirewall(api: ApiClient, buildId: string, role: Role): Promise<Firewall | null> {
  return (await listAll<Firewall>(api, '/networking/firewalls', { label: firewallLabel(buildId, role) })).find((f) => f.label === firewallLabel(buildId, role)) ?? null;
}

export class LinodeCompute implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: true, privateNetworking: true };
  readonly api: ApiClient;
  readonly #o: LinodeOptions;

  constructor(o: LinodeOptions, api = linodeClient(o)) {
    this.#o = o;
    this.api = api;
  }

  // https://techdocs.akamai.com/linode-api/reference/post-linode-instance
  async create(o: CreateServerOptions): Promise<Server> {
    const { size, region } = checkCreate(DRIVER_NAME, o, { size: this.#o.size, region: this.#o.region });
    const firewall = await findFirewall(this.api, o.buildId, o.role);
    const body = {
      label: o.name, region, type: size, image: o.image ?? this.#o.image ?? 'linode/debian12',
      // Required by the API; random and never kept: access is by SSH key (root_pass is redacted in dry runs).
      root_pass: `${randomBytes(24).toString('base64url')}aA1!`,
      authorized_keys: this.#o.authorizedKeys ?? [], tags: adtTags(o.role, o.buildId, [`adt-${o.buildId}-${o.role}`, ...(o.tags ?? [])]),
      private_ip: true, booted: true,
      // Metadata service user-data (cloud-init), base64.
      metadata: { user_data: Buffer.from(o.userData).toString('base64') },
      ...(firewall ? { firewall_id: firewall.id } : {}),
    };
    try {
      return toServer(await this.api.post<Instance>('/linode/instances', body));
    } catch (error) {
      // Only a failure that leaves the outcome unknown (5xx, lost connection) may have created it.
      if (!outcomeUnknown(error)) throw error;
      const found = (await this.list({ buildId: o.buildId, role: o.role })).find((s) => s.name === o.name);
      if (found) return found;
      throw error;
    }
  }

  // https://techdocs.akamai.com/linode-api/reference/delete-linode-instance
  async destroy(id: string): Promise<void> {
    await this.api.delete(`/linode/instances/${encodeURIComponent(id)}`, { accept: [404] });
  }

  // https://techdocs.akamai.com/linode-api/reference/get-linode-instances
  async list(filter: ListServersFilter = {}): Promise<Server[]> {
    const tag = filter.buildId ? `adt-build-${filter.buildId}` : 'adt';
    const all = await listAll<Instance>(this.api, '/linode/instances', { tags: tag }, this.#o.pageSize);
    return all.filter((i) => nameMatches(i.label, filter)).map(toServer);
  }

  async get(id: string): Promise<Server | null> {
    const i = await this.api.get<Instance | null>(`/linode/instances/${encodeURIComponent(id)}`, { accept: [404] });
    return i ? toServer(i) : null;
  }

  async waitUntilRunning(id: string, options: WaitOptions = {}): Promise<Server> {
    return pollUntil(DRIVER_NAME, `instance ${id} running with its addresses`, async () => {
      const s = await this.get(id);
      if (!s) throw fail('NOT_FOUND', `instance ${id} is gone`);
      return s.state === 'running' && s.publicIp ? s : null;
    }, { ...options, defaultTimeoutMs: 300_000, defaultIntervalMs: 5_000 });
  }

  // https://techdocs.akamai.com/linode-api/reference/post-image (an image from the instance's boot disk)
  async snapshot(id: string, name: string, options: WaitOptions = {}): Promise<string> {
    const disks = await listAll<{ id: number; filesystem: string }>(this.api, `/linode/instances/${encodeURIComponent(id)}/disks`);
    const disk = disks.find((d) => d.filesystem !== 'swap');
    if (!disk) throw fail('NO_DISK', `instance ${id} has no disk to image`);
    const image = await this.api.post<{ id: string }>('/images', { disk_id: disk.id, label: name.slice(0, 50), description: 'adt webserver image' });
    await pollUntil(DRIVER_NAME, `image ${name} of instance ${id}`, async () => {
      // Image ids are `private/<n>`, and the path takes them as they are.
      const i = await this.api.get<{ status: string }>(`/images/${image.id.split('/').map(encodeURIComponent).join('/')}`);
      return i.status === 'available' ? true : null;
    }, { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 10_000 });
    return image.id;
  }
}

/** Cloud firewalls: https://techdocs.akamai.com/linode-api/reference/post-firewalls */
export class LinodeFirewall implements NativeFirewallProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;

  constructor(api: ApiClient) {
    this.api = api;
  }

  async apply(buildId: string, role: Role, rules: InboundRule[]): Promise<void> {
    for (const [i, rule] of rules.entries()) validateRule(rule, `rules[${i}]`);
    const inbound: FirewallRule[] = rules.map((r, i) => {
      const sources = r.protocol === 'icmp' && r.sources.length === 0 ? ['0.0.0.0/0', '::/0'] : r.sources;
      const v4 = sources.filter((s) => !s.includes(':')).map((s) => (s.includes('/') ? s : `${s}/32`));
      const v6 = sources.filter((s) => s.includes(':')).map((s) => (s.includes('/') ? s : `${s}/128`));
      return {
        action: 'ACCEPT', protocol: r.protocol.toUpperCase() as FirewallRule['protocol'], ...(r.protocol === 'icmp' ? {} : { ports: portText(r.port) }),
        addresses: { ...(v4.length ? { ipv4: v4 } : {}), ...(v6.length ? { ipv6: v6 } : {}) }, label: `adt-rule-${i + 1}`,
      };
    });
    const ruleset = { inbound, inbound_policy: 'DROP', outbound: [], outbound_policy: 'ACCEPT' };
    const servers = await new LinodeCompute({ token: 'unused' }, this.api).list({ buildId, role });
    const existing = await findFirewall(this.api, buildId, role);
    if (!existing) {
      // https://techdocs.akamai.com/linode-api/reference/post-firewalls
      await this.api.post('/networking/firewalls', { label: firewallLabel(buildId, role), rules: ruleset, devices: { linodes: servers.map((s) => Number(s.id)) }, tags: adtTags(role, buildId) });
      return;
    }
    // https://techdocs.akamai.com/linode-api/reference/put-firewall-rules
    await this.api.put(`/networking/firewalls/${existing.id}/rules`, ruleset);
    const attached = new Set((await listAll<{ entity: { id: number; type: string } }>(this.api, `/networking/firewalls/${existing.id}/devices`)).map((d) => String(d.entity.id)));
    for (const s of servers.filter((x) => !attached.has(x.id))) {
      // https://techdocs.akamai.com/linode-api/reference/post-firewall-device
      await this.api.post(`/networking/firewalls/${existing.id}/devices`, { id: Number(s.id), type: 'linode' });
    }
  }

  async get(buildId: string, role: Role): Promise<InboundRule[] | null> {
    const f = await findFirewall(this.api, buildId, role);
    if (!f) return null;
    const rules = await this.api.get<Firewall['rules']>(`/networking/firewalls/${f.id}/rules`);
    return rules.inbound.filter((r) => r.action === 'ACCEPT').map((r) => {
      const protocol = r.protocol.toLowerCase() as InboundRule['protocol'];
      return { protocol, ...(protocol === 'icmp' ? {} : { port: parsePort(r.ports) }), sources: [...(r.addresses.ipv4 ?? []), ...(r.addresses.ipv6 ?? [])] } as InboundRule;
    });
  }

  async remove(buildId: string, role: Role): Promise<void> {
    const f = await findFirewall(this.api, buildId, role);
    if (f) await this.api.delete(`/networking/firewalls/${f.id}`, { accept: [404] });
  }
}

export interface LinodeDnsOptions extends LinodeOptions {
  /** The domain (zone) managed at Linode, e.g. `example.com`. */
  zone: string;
  /** TTL of new records (default 30; Linode rounds up to its allowed values). */
  defaultTtl?: number;
}

/** Domain records: https://techdocs.akamai.com/linode-api/reference/post-domain-record */
export class LinodeDns implements DnsProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: LinodeDnsOptions;
  #domainId: number | null = null;

  constructor(o: LinodeDnsOptions, api = linodeClient(o)) {
    this.#o = o;
    this.api = api;
  }

  async #domain(zone = this.#o.zone): Promise<number | null> {
    if (this.#domainId !== null && zone === this.#o.zone) return this.#domainId;
    const z = zone.replace(/\.$/, '').toLowerCase();
    const found = (await listAll<Domain>(this.api, '/domains', { domain: z })).find((d) => d.domain === z);
    if (found && zone === this.#o.zone) this.#domainId = found.id;
    return found?.id ?? null;
  }

  async ensureZone(zone: string): Promise<void> {
    const z = zone.replace(/\.$/, '').toLowerCase();
    if ((await this.#domain(z)) !== null) return;
    // https://techdocs.akamai.com/linode-api/reference/post-domain
    await this.api.post('/domains', { domain: z, type: 'master', soa_email: `hostmaster@${z}` });
  }

  async #records(name: string): Promise<{ fqdn: string; rel: string; records: DomainRecord[]; domainId: number | null }> {
    const fqdn = name.toLowerCase().replace(/\.$/, '');
    const rel = relativeName(fqdn, this.#o.zone, DRIVER_NAME);
    const domainId = await this.#domain();
    if (domainId === null) return { fqdn, rel, records: [], domainId };
    const name_ = rel === '@' ? '' : rel;
    const records = (await listAll<DomainRecord>(this.api, `/domains/${domainId}/records`, { type: 'A', name: name_ })).filter((r) => r.type === 'A' && r.name === name_);
    return { fqdn, rel, records, domainId };
  }

  async listA(name: string): Promise<DnsRecord[]> {
    const { fqdn, records } = await this.#records(name);
    return records.map((r) => ({ name: fqdn, type: 'A' as const, content: r.target, ttl: r.ttl_sec })).sort((a, b) => a.content.localeCompare(b.content));
  }

  async addA(name: string, ip: string, ttl = this.#o.defaultTtl ?? 30): Promise<void> {
    const { rel, records, domainId } = await this.#records(name);
    if (domainId === null) throw fail('NO_ZONE', `domain ${this.#o.zone} is not at Linode: ensureZone first`, { exitCode: 2 });
    if (records.some((r) => r.target === ip)) return;
    await this.api.post(`/domains/${domainId}/records`, { type: 'A', name: rel === '@' ? '' : rel, target: ip, ttl_sec: ttl });
  }

  async removeA(name: string, ip: string): Promise<void> {
    const { records, domainId } = await this.#records(name);
    for (const r of records.filter((x) => x.target === ip)) await this.api.delete(`/domains/${domainId}/records/${r.id}`, { accept: [404] });
  }
}

const DB_PATHS = { mysql: 'mysql', postgres: 'postgresql' } as const;

/** Managed databases: https://techdocs.akamai.com/linode-api/reference/post-databases-mysql-instances */
export class LinodeDatabases implements ManagedDatabaseProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: LinodeOptions;

  constructor(o: LinodeOptions, api = linodeClient(o)) {
    this.#o = o;
    this.api = api;
  }

  /** Our ids carry the engine: `mysql/123`, `postgresql/45`. */
  #path(id: string): string {
    const m = /^(mysql|postgresql)\/(\d+)$/.exec(id);
    if (!m) throw fail('BAD_ID', `database id "${id}": mysql/<n> or postgresql/<n>`, { exitCode: 2 });
    return `/databases/${m[1]}/instances/${m[2]}`;
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
    const engine = DB_PATHS[o.engine];
    const created = await this.api.post<Database>(`/databases/${engine}/instances`, {
      label: o.name, region, type: o.size ?? 'g6-nanode-1', engine: `${engine}/${o.version ?? (o.engine === 'mysql' ? '8' : '16')}`,
      cluster_size: o.nodes ?? 1, allow_list: o.allow,
    });
    return this.#toDatabase(created, engine);
  }

  #toDatabase(d: Database, engine: string, creds?: { username: string; password: string }): ManagedDatabase {
    const buildId = /^adt-([a-z0-9]+)-/.exec(d.label)?.[1] ?? '';
    const states: Record<string, ManagedDatabase['state']> = { active: 'online', provisioning: 'creating', failed: 'error', degraded: 'error' };
    return {
      id: `${engine}/${d.id}`, name: d.label, buildId, engine: engine === 'postgresql' ? 'postgres' : 'mysql', state: states[d.status] ?? 'creating',
      host: d.hosts?.primary ?? null, privateHost: null, port: d.port ?? null, user: creds?.username ?? null, password: creds?.password ?? null, database: null,
    };
  }

  async get(id: string): Promise<ManagedDatabase | null> {
    const d = await this.api.get<Database | null>(this.#path(id), { accept: [404] });
    if (!d) return null;
    const engine = id.split('/')[0]!;
    // https://techdocs.akamai.com/linode-api/reference/get-databases-mysql-instance-credentials
    const creds = d.status === 'active' ? await this.api.get<{ username: string; password: string }>(`${this.#path(id)}/credentials`) : undefined;
    return this.#toDatabase(d, engine, creds);
  }

  async list(filter: { buildId?: string } = {}): Promise<ManagedDatabase[]> {
    const out: ManagedDatabase[] = [];
    for (const engine of Object.values(DB_PATHS)) {
      const all = await listAll<Database>(this.api, `/databases/${engine}/instances`);
      out.push(...all.filter((d) => (filter.buildId ? d.label.startsWith(`adt-${filter.buildId}-`) : d.label.startsWith('adt-'))).map((d) => this.#toDatabase(d, engine)));
    }
    return out;
  }

  async waitUntilOnline(id: string, options: WaitOptions = {}): Promise<ManagedDatabase> {
    return pollUntil(DRIVER_NAME, `database ${id} active`, async () => {
      const d = await this.get(id);
      if (!d) throw fail('NOT_FOUND', `database ${id} is gone`);
      if (d.state === 'error') throw fail('DATABASE_FAILED', `database ${id} failed`);
      return d.state === 'online' ? d : null;
    }, { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 15_000 });
  }

  // https://techdocs.akamai.com/linode-api/reference/put-databases-mysql-instance
  async setAllowList(id: string, sources: string[]): Promise<void> {
    validateAllowList(sources, 'allow');
    await this.api.put(this.#path(id), { allow_list: sources });
  }

  async getAllowList(id: string): Promise<string[]> {
    return (await this.api.get<Database>(this.#path(id))).allow_list ?? [];
  }

  async destroy(id: string): Promise<void> {
    await this.api.delete(this.#path(id), { accept: [404] });
  }
}

/** Registry entry point: the compute driver; `.firewall`, `.dns(zone)` and `.databases` share its client. */
export default function linodeDriver(o: LinodeOptions) {
  const api = linodeClient(o);
  const compute = new LinodeCompute(o, api);
  return Object.assign(compute, {
    firewall: new LinodeFirewall(api),
    databases: new LinodeDatabases(o, api),
    dns: (zone: string, defaultTtl?: number) => new LinodeDns({ ...o, zone, defaultTtl }, api),
  });
}
