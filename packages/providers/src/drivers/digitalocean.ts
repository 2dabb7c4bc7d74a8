/**
 * DigitalOcean: droplets, cloud firewalls, DNS (domains) and managed databases over the public API
 * v2 (https://docs.digitalocean.com/reference/api/digitalocean/), with plain `fetch` through our
 * one API client. Why not an SDK: DigitalOcean's official TypeScript client (`@digitalocean/dots`)
 * is generated Kiota code, large, and gives no control over retries; every driver here shares one
 * client for retries, rate limits, redaction and dry runs instead.
 *
 * - Servers carry the tags `adt`, `adt-role-<role>`, `adt-build-<id>`; `list` asks for the build's
 *   tag (server-side filter) and checks names exactly.
 * - The native firewall is one cloud firewall per build and role, named `adt-<build>-<role>`,
 *   attached by tag, so servers created later are covered at once.
 * - Pagination: `page`/`per_page` with `links.pages.next`, followed to the end.
 * - Rate limits: 429 with `ratelimit-reset` (epoch seconds) is waited out (see `http.ts`).
 * - SSH keys of `create` (`sshKeys`) are account keys: looked up by their MD5 fingerprint
 *   (`GET /account/keys/{fingerprint}`, 404 when absent), registered when absent (`POST
 *   /account/keys`, named `adt-<sha256 prefix>`), and put on the droplet by id.
 * - Images: `snapshot` makes a droplet snapshot, `findImage` finds the newest of a name among the
 *   account's droplet snapshots, and `create` takes its id (sent as an integer, as the API's image
 *   ids are) or an image slug.
 */
import { errorFactory } from '@adt/core';
import { createApiClient, type ApiClient } from '../http.ts';
import { nameMatches, parseServerName } from '../naming.ts';
import { validateAllowList, validateRule } from '../rules.ts';
import {
  adtTags,
  checkCreate,
  createOnce,
  createOrFind,
  KeyRegistrations,
  unique,
  type PublicKey,
  waitForDatabase,
  waitForServer,
  parsePort,
  pollUntil,
  portText,
  relativeName,
  roleTag,
  serverTags,
} from './_cloud.ts';
import type {
  ComputeProvider,
  CreateDatabaseOptions,
  CreateServerOptions,
  DnsProvider,
  DnsRecord,
  InboundRule,
  ListServersFilter,
  ManagedDatabase,
  ManagedDatabaseProvider,
  NativeFirewallProvider,
  Role,
  Server,
  WaitOptions,
} from '../types.ts';

export const DRIVER_NAME = 'digitalocean';
const fail = errorFactory('providers', DRIVER_NAME);

export interface DigitalOceanOptions {
  /** A personal access token with read and write scope. Never logged. */
  token: string;
  /** API base URL (default `https://api.digitalocean.com/v2`; a fake's URL in tests). */
  baseUrl?: string;
  /** Default region and size slugs (e.g. `lon1`, `s-1vcpu-2gb`). */
  region?: string;
  size?: string;
  /** Image slug or snapshot id for new droplets (default `debian-12-x64`). */
  image?: string;
  /** SSH key ids or fingerprints (keys already in the account) to put on new droplets, besides those of `create`'s `sshKeys`. */
  sshKeys?: string[];
  /** Page size for lists (default 200, the API's maximum). */
  perPage?: number;
  fetch?: typeof fetch;
  /** Backoff of retries (tests make it short). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: Parameters<typeof createApiClient>[0]['onRetry'];
}

// --- API shapes (only the fields we read) ---

interface Droplet {
  id: number;
  name: string;
  status: 'new' | 'active' | 'off' | 'archive';
  created_at: string;
  tags: string[];
  networks: { v4: { ip_address: string; type: 'public' | 'private' }[] };
}
interface Links {
  pages?: { next?: string };
}
/** A snapshot as the Snapshots API lists it (its id a string there). */
interface Snapshot {
  id: string;
  name: string;
  created_at: string;
  resource_type: 'droplet' | 'volume';
}
interface SshKey {
  id: number;
  fingerprint: string;
  public_key: string;
  name: string;
}
interface Firewall {
  id: string;
  name: string;
  inbound_rules: { protocol: 'tcp' | 'udp' | 'icmp'; ports?: string; sources: { addresses?: string[] } }[];
  tags: string[];
}
interface DomainRecord {
  id: number;
  type: string;
  name: string;
  data: string;
  ttl: number;
}
interface Database {
  id: string;
  name: string;
  engine: 'mysql' | 'pg';
  status: 'creating' | 'online' | 'resizing' | 'migrating' | 'forking';
  tags: string[] | null;
  connection?: { host: string; port: number; user: string; password: string; database: string };
  private_connection?: { host: string; port: number };
}

export function digitaloceanClient(o: DigitalOceanOptions): ApiClient {
  if (!o.token) throw fail('NO_TOKEN', 'DIGITALOCEAN_TOKEN: a personal access token is required', { exitCode: 2 });
  return createApiClient({
    provider: DRIVER_NAME,
    baseUrl: o.baseUrl ?? 'https://api.digitalocean.com/v2',
    auth: () => ({ Authorization: `Bearer ${o.token}` }),
    // Error bodies: {"id": "not_found", "message": "The resource you were accessing could not be found."}
    errorMessage: (b) => (b as { message?: string }).message,
    fetch: o.fetch,
    baseDelayMs: o.baseDelayMs,
    maxDelayMs: o.maxDelayMs,
    onRetry: o.onRetry,
  });
}

/** Every page of a list: follows `links.pages.next` (bounded at 1,000 pages). */
async function listAll<T>(
  api: ApiClient,
  path: string,
  key: string,
  query: Record<string, string | number> = {},
  perPage = 200,
): Promise<T[]> {
  const out: T[] = [];
  let url: string | undefined = api.url(path, { ...query, per_page: perPage, page: 1 });
  for (let page = 0; url && page < 1000; page++) {
    const body: Record<string, unknown> & { links?: Links } = (await api.get<Record<string, unknown> & { links?: Links }>(url)) ?? {};
    out.push(...((body[key] as T[] | undefined) ?? []));
    url = body.links?.pages?.next;
  }
  return out;
}

function toServer(d: Droplet): Server {
  const p = parseServerName(d.name);
  const v4 = d.networks?.v4 ?? [];
  return {
    id: String(d.id),
    name: d.name,
    role: p?.role ?? 'webserver',
    buildId: p?.buildId ?? '',
    state: d.status === 'active' ? 'running' : d.status === 'new' ? 'creating' : d.status === 'off' ? 'stopped' : 'error',
    publicIp: v4.find((n) => n.type === 'public')?.ip_address ?? null,
    privateIp: v4.find((n) => n.type === 'private')?.ip_address ?? null,
    tags: d.tags ?? [],
    createdAt: d.created_at,
  };
}

/**
 * An image for `droplets_create`: a snapshot's id as the integer the API's image ids are (the
 * Snapshots API lists them as strings), a slug as it is.
 */
function imageRef(image: string): string | number {
  return /^\d+$/.test(image) ? Number(image) : image;
}

/** The newest snapshot (by `created_at`, then by the larger id: ids grow), or undefined. */
function newestOf<T extends { id: string | number; created_at: string }>(snaps: T[]): T | undefined {
  const key = (s: T) => [Date.parse(s.created_at) || 0, Number(s.id) || 0] as const;
  return snaps.reduce<T | undefined>((best, s) => {
    if (!best) return s;
    const [t, n] = key(s);
    const [bt, bn] = key(best);
    return t > bt || (t === bt && n > bn) ? s : best;
  }, undefined);
}

export class DigitalOceanCompute implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: true, privateNetworking: true, images: true };
  readonly api: ApiClient;
  readonly #o: DigitalOceanOptions;
  readonly #keys = new KeyRegistrations<number>();

  constructor(o: DigitalOceanOptions, api = digitaloceanClient(o)) {
    this.#o = o;
    this.api = api;
  }

  /**
   * The account key's id of each key, registered once: looked up by fingerprint first; a 422 on
   * registering ("SSH Key is already in use on your account": made meanwhile) or an unknown outcome
   * is looked up again rather than failed or repeated. Parallel creates share one lookup per key.
   */
  async #keyIds(keys: PublicKey[]): Promise<number[]> {
    const ids: number[] = [];
    for (const k of keys) ids.push(await this.#keys.once(k, () => this.#keyId(k)));
    return ids;
  }

  async #keyId(k: PublicKey): Promise<number> {
    // https://docs.digitalocean.com/reference/api/digitalocean/#operation/sshKeys_get (by id or fingerprint;
    // a fingerprint is hex and colons, sent as they are, as the reference's examples do)
    const find = async () => (await this.api.get<{ ssh_key: SshKey } | null>(`/account/keys/${k.md5}`, { accept: [404] }))?.ssh_key ?? null;
    const key =
      (await find()) ??
      // https://docs.digitalocean.com/reference/api/digitalocean/#operation/sshKeys_create (201 {ssh_key})
      (await createOrFind(
        async () => (await this.api.post<{ ssh_key: SshKey }>('/account/keys', { name: k.name, public_key: k.line })).ssh_key,
        find,
        [422],
      ));
    return key.id;
  }

  // https://docs.digitalocean.com/reference/api/digitalocean/#operation/droplets_create
  async create(o: CreateServerOptions): Promise<Server> {
    const { size, region, keys } = checkCreate(DRIVER_NAME, o, { size: this.#o.size, region: this.#o.region });
    // The option's references as given (ids or fingerprints), then our keys' ids, integers as the API gives them.
    const given = unique(this.#o.sshKeys ?? []);
    const ours = (await this.#keyIds(keys)).filter((id) => !given.includes(String(id)));
    const body = {
      name: o.name,
      region,
      size,
      image: imageRef(o.image ?? this.#o.image ?? 'debian-12-x64'),
      // "IDs or fingerprints of the SSH keys that you wish to embed in the Droplet's root account".
      ssh_keys: [...given, ...ours],
      ipv6: false,
      monitoring: true,
      tags: serverTags(o),
      user_data: o.userData,
      ...(o.vpc ? { vpc_uuid: o.vpc } : {}),
    };
    return createOnce(
      o,
      async () => toServer((await this.api.post<{ droplet: Droplet }>('/droplets', body)).droplet),
      (s) => s,
      (f) => this.list(f),
    );
  }

  /**
   * The IP range of the region's default VPC (where droplets created without `vpc_uuid` land), or
   * null when the account has none there yet (DigitalOcean makes it with the first droplet).
   * https://docs.digitalocean.com/reference/api/digitalocean/#operation/vpcs_list
   */
  async defaultVpcCidr(region = this.#o.region): Promise<string | null> {
    const vpcs = await listAll<{ region: string; ip_range: string; default: boolean }>(this.api, '/vpcs', 'vpcs');
    return vpcs.find((v) => v.default && v.region === region)?.ip_range ?? null;
  }

  // https://docs.digitalocean.com/reference/api/digitalocean/#operation/droplets_destroy
  async destroy(id: string): Promise<void> {
    await this.api.delete(`/droplets/${encodeURIComponent(id)}`, { accept: [404] });
  }

  async list(filter: ListServersFilter = {}): Promise<Server[]> {
    const tag = filter.buildId ? `adt-build-${filter.buildId}` : 'adt';
    const droplets = await listAll<Droplet>(this.api, '/droplets', 'droplets', { tag_name: tag }, this.#o.perPage);
    return droplets.filter((d) => nameMatches(d.name, filter)).map(toServer);
  }

  async get(id: string): Promise<Server | null> {
    const r = await this.api.get<{ droplet: Droplet } | null>(`/droplets/${encodeURIComponent(id)}`, { accept: [404] });
    return r ? toServer(r.droplet) : null;
  }

  async waitUntilRunning(id: string, options: WaitOptions = {}): Promise<Server> {
    return waitForServer(DRIVER_NAME, id, (x) => this.get(x), options);
  }

  // https://docs.digitalocean.com/reference/api/digitalocean/#operation/dropletActions_post (type snapshot)
  async snapshot(id: string, name: string, options: WaitOptions = {}): Promise<string> {
    const r = await this.api.post<{ action: { id: number } }>(`/droplets/${encodeURIComponent(id)}/actions`, { type: 'snapshot', name });
    await pollUntil(
      DRIVER_NAME,
      `snapshot ${name} of droplet ${id}`,
      async () => {
        const a = await this.api.get<{ action: { status: 'in-progress' | 'completed' | 'errored' } }>(`/actions/${r.action.id}`);
        if (a.action.status === 'errored') throw fail('SNAPSHOT_FAILED', `snapshot ${name} of droplet ${id} failed`);
        return a.action.status === 'completed' ? true : null;
      },
      { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 10_000 },
    );
    // The newest of the name (the one just made):
    // https://docs.digitalocean.com/reference/api/digitalocean/#operation/droplets_list_snapshots
    const snaps = await listAll<{ id: number; name: string; created_at: string }>(
      this.api,
      `/droplets/${encodeURIComponent(id)}/snapshots`,
      'snapshots',
    );
    const snap = newestOf(snaps.filter((s) => s.name === name));
    if (!snap) throw fail('SNAPSHOT_MISSING', `snapshot ${name} of droplet ${id} completed but is not listed`);
    return String(snap.id);
  }

  /**
   * The account's droplet snapshot named exactly `name` (the newest of several), or null. A snapshot
   * is listed once it is made (while its action is in progress it is not), so each one listed is usable.
   * https://docs.digitalocean.com/reference/api/digitalocean/#operation/snapshots_list (`resource_type=droplet`)
   */
  async findImage(name: string): Promise<{ id: string; name: string } | null> {
    const snaps = await listAll<Snapshot>(this.api, '/snapshots', 'snapshots', { resource_type: 'droplet' }, this.#o.perPage);
    const newest = newestOf(snaps.filter((s) => s.name === name && s.resource_type === 'droplet'));
    return newest ? { id: String(newest.id), name: newest.name } : null;
  }
}

/** Cloud firewalls per build and role: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Firewalls */
export class DigitalOceanFirewall implements NativeFirewallProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;

  constructor(api: ApiClient) {
    this.api = api;
  }

  async #find(buildId: string, role: Role): Promise<Firewall | null> {
    return (await listAll<Firewall>(this.api, '/firewalls', 'firewalls')).find((f) => f.name === roleTag(buildId, role)) ?? null;
  }

  async apply(buildId: string, role: Role, rules: InboundRule[]): Promise<void> {
    for (const [i, rule] of rules.entries()) validateRule(rule, `rules[${i}]`);
    const body = {
      name: roleTag(buildId, role),
      inbound_rules: rules.map((r) => ({
        protocol: r.protocol,
        ...(r.protocol === 'icmp' ? {} : { ports: portText(r.port) }),
        sources: { addresses: r.protocol === 'icmp' && r.sources.length === 0 ? ['0.0.0.0/0', '::/0'] : r.sources },
      })),
      // Outbound stays open (updates, the bucket, the DNS API); inbound is what the policy is about.
      outbound_rules: (['tcp', 'udp', 'icmp'] as const).map((protocol) => ({
        protocol,
        ...(protocol === 'icmp' ? {} : { ports: '0' }),
        destinations: { addresses: ['0.0.0.0/0', '::/0'] },
      })),
      // Droplets get the tag `adt-<build>-<role>` at creation: the firewall follows it, so servers
      // created later are covered from their first packet.
      tags: [roleTag(buildId, role)],
    };
    const existing = await this.#find(buildId, role);
    if (existing) await this.api.put(`/firewalls/${existing.id}`, body);
    else await this.api.post('/firewalls', body);
  }

  async get(buildId: string, role: Role): Promise<InboundRule[] | null> {
    const f = await this.#find(buildId, role);
    if (!f) return null;
    return f.inbound_rules.map(
      (r) =>
        ({
          protocol: r.protocol,
          ...(r.protocol === 'icmp' ? {} : { port: parsePort(r.ports) }),
          sources: r.sources.addresses ?? [],
        }) as InboundRule,
    );
  }

  async remove(buildId: string, role: Role): Promise<void> {
    const f = await this.#find(buildId, role);
    if (f) await this.api.delete(`/firewalls/${f.id}`, { accept: [404] });
  }
}

export interface DigitalOceanDnsOptions extends DigitalOceanOptions {
  /** The domain (zone) managed at DigitalOcean, e.g. `example.com`. */
  zone: string;
  /** TTL of new records (default 60; DigitalOcean's minimum is 30). */
  defaultTtl?: number;
}

/** DNS records of a domain: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Domain-Records */
export class DigitalOceanDns implements DnsProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: DigitalOceanDnsOptions;

  constructor(o: DigitalOceanDnsOptions, api = digitaloceanClient(o)) {
    this.#o = o;
    this.api = api;
  }

  async ensureZone(zone: string): Promise<void> {
    const z = zone.replace(/\.$/, '');
    const found = await this.api.get(`/domains/${encodeURIComponent(z)}`, { accept: [404] });
    if (!found) await this.api.post('/domains', { name: z });
  }

  async #records(name: string): Promise<DomainRecord[]> {
    const fqdn = name.toLowerCase().replace(/\.$/, '');
    relativeName(fqdn, this.#o.zone, DRIVER_NAME);
    // `name` filters by the full name (documented), `type` by record type.
    return listAll<DomainRecord>(this.api, `/domains/${encodeURIComponent(this.#o.zone)}/records`, 'domain_records', {
      type: 'A',
      name: fqdn,
    });
  }

  async listA(name: string): Promise<DnsRecord[]> {
    const fqdn = name.toLowerCase().replace(/\.$/, '');
    return (await this.#records(name)).filter((r) => r.type === 'A').map((r) => ({ name: fqdn, type: 'A', content: r.data, ttl: r.ttl }));
  }

  async addA(name: string, ip: string, ttl = this.#o.defaultTtl ?? 60): Promise<void> {
    if ((await this.#records(name)).some((r) => r.data === ip)) return;
    await this.api.post(`/domains/${encodeURIComponent(this.#o.zone)}/records`, {
      type: 'A',
      name: relativeName(name, this.#o.zone, DRIVER_NAME),
      data: ip,
      ttl: Math.max(30, ttl),
    });
  }

  async removeA(name: string, ip: string): Promise<void> {
    for (const r of (await this.#records(name)).filter((x) => x.data === ip)) {
      await this.api.delete(`/domains/${encodeURIComponent(this.#o.zone)}/records/${r.id}`, { accept: [404] });
    }
  }
}

/** Managed MySQL/PostgreSQL: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Databases */
export class DigitalOceanDatabases implements ManagedDatabaseProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: DigitalOceanOptions;

  constructor(o: DigitalOceanOptions, api = digitaloceanClient(o)) {
    this.#o = o;
    this.api = api;
  }

  async create(o: CreateDatabaseOptions): Promise<ManagedDatabase> {
    validateAllowList(o.allow, 'allow');
    const region = o.region ?? this.#o.region;
    if (!region) throw fail('NO_REGION', `database ${o.name}: a region is required`, { exitCode: 2 });
    const existing = (await this.list({ buildId: o.buildId })).find((d) => d.name === o.name);
    const db =
      existing ??
      toDatabase(
        (
          await this.api.post<{ database: Database }>('/databases', {
            name: o.name,
            engine: o.engine === 'postgres' ? 'pg' : 'mysql',
            ...(o.version ? { version: o.version } : {}),
            region,
            size: o.size ?? 'db-s-1vcpu-1gb',
            num_nodes: o.nodes ?? 1,
            tags: adtTags('database', o.buildId),
            ...(o.vpc ? { private_network_uuid: o.vpc } : {}),
          })
        ).database,
        o.buildId,
      );
    // New clusters accept connections from anywhere until their trusted sources are set: set them now.
    await this.setAllowList(db.id, o.allow);
    return db;
  }

  async get(id: string): Promise<ManagedDatabase | null> {
    const r = await this.api.get<{ database: Database } | null>(`/databases/${encodeURIComponent(id)}`, { accept: [404] });
    return r ? toDatabase(r.database) : null;
  }

  async list(filter: { buildId?: string } = {}): Promise<ManagedDatabase[]> {
    const tag = filter.buildId ? `adt-build-${filter.buildId}` : 'adt';
    // This list is not paginated in the API (one account has few clusters).
    const r = await this.api.get<{ databases: Database[] | null }>('/databases', { query: { tag_name: tag } });
    return (r.databases ?? []).map((d) => toDatabase(d));
  }

  async waitUntilOnline(id: string, options: WaitOptions = {}): Promise<ManagedDatabase> {
    return waitForDatabase(DRIVER_NAME, id, (x) => this.get(x), options);
  }

  // https://docs.digitalocean.com/reference/api/digitalocean/#operation/databases_update_firewall_rules
  async setAllowList(id: string, sources: string[]): Promise<void> {
    validateAllowList(sources, 'allow');
    await this.api.put(`/databases/${encodeURIComponent(id)}/firewall`, { rules: sources.map((value) => ({ type: 'ip_addr', value })) });
  }

  async getAllowList(id: string): Promise<string[]> {
    const r = await this.api.get<{ rules: { type: string; value: string }[] }>(`/databases/${encodeURIComponent(id)}/firewall`);
    return r.rules.map((x) => x.value);
  }

  async destroy(id: string): Promise<void> {
    await this.api.delete(`/databases/${encodeURIComponent(id)}`, { accept: [404] });
  }
}

function toDatabase(d: Database, buildId?: string): ManagedDatabase {
  const tagged = (d.tags ?? []).find((t) => t.startsWith('adt-build-'))?.slice('adt-build-'.length);
  return {
    id: d.id,
    name: d.name,
    buildId: buildId ?? tagged ?? '',
    engine: d.engine === 'pg' ? 'postgres' : 'mysql',
    state: d.status === 'online' ? 'online' : d.status === 'creating' ? 'creating' : 'online',
    host: d.connection?.host ?? null,
    privateHost: d.private_connection?.host ?? null,
    port: d.connection?.port ?? null,
    user: d.connection?.user ?? null,
    password: d.connection?.password ?? null,
    database: d.connection?.database ?? null,
  };
}

/** Registry entry point: the compute driver; `.firewall`, `.dns(zone)` and `.databases` share its client. */
export default function digitaloceanDriver(o: DigitalOceanOptions) {
  const api = digitaloceanClient(o);
  const compute = new DigitalOceanCompute(o, api);
  return Object.assign(compute, {
    firewall: new DigitalOceanFirewall(api),
    databases: new DigitalOceanDatabases(o, api),
    dns: (zone: string, defaultTtl?: number) => new DigitalOceanDns({ ...o, zone, defaultTtl }, api),
  });
}
