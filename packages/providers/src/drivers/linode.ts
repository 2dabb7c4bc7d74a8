/**
 * Linode (Akamai): instances, cloud firewalls, DNS (domains) and managed databases over API v4
 * (https://techdocs.akamai.com/linode-api/reference/api), with plain `fetch` through our one API
 * client. Why not `@linode/api-v4`: it keeps the token in module-global axios state (`setToken`),
 * which does not fit two clients (or a dry run) in one process, and it brings axios; our client
 * gives the four clouds the same retries, rate limits, redaction and dry runs.
 *
 * - Pagination: `page`/`page_size` (25-500), `{ data, page, pages, results }`, read to the last page.
 * - Filtering: the `X-Filter` header on documented filterable fields (instances `tags`, firewalls
 *   `label`, domains `domain`, records `name`); results are always checked again on our side (a dry
 *   run's fake sees no headers), and a filter the API refuses (400 on `X-Filter`) is dropped.
 * - Rate limits: 429 with `Retry-After` / `X-RateLimit-Reset` (epoch seconds) is waited out.
 * - Errors: `{"errors": [{"field": "label", "reason": "..."}]}`, quoted field by field.
 * - Instances are created with legacy configuration-profile interfaces (`interface_generation:
 *   legacy_config`), so firewalls attach to the instance itself whatever the account's default is:
 *   a private address in Linode's private range (`private_ip: true`; `PRIVATE` below), or, given `vpc` (a subnet id), a
 *   public interface plus a VPC interface in that subnet.
 * - A cloud firewall attaches to instances, not to tags: one per build and role
 *   (`adt-<build>-<ws|db|as|au|bm>`: Linode allows 32 characters and a build id has up to 24),
 *   new instances of the role are created in it (`firewall_id`), `apply` attaches existing ones.
 * - Managed databases: ids carry the engine (`mysql/123`, `postgresql/45`), as the paths do.
 * - SSH keys of `create` (`sshKeys`) go inline, in `authorized_keys` (appended to root's
 *   authorized_keys when deploying from an image): nothing is registered with the account.
 * - Images: `snapshot` makes a private image of an instance's disk (`private/<n>`), `findImage`
 *   finds the newest available private image of a label, and `create` takes its id as `image`.
 */
import { randomBytes } from 'node:crypto';
import { errorFactory } from '@adt/core';
import { createApiClient, type ApiClient } from '../http.ts';
import { nameMatches, parseServerName } from '../naming.ts';
import { validateAllowList, validateRule } from '../rules.ts';
import {
  adtTags,
  checkCreate,
  createOnce,
  outcomeUnknown,
  parsePort,
  pollUntil,
  portText,
  relativeName,
  sameKey,
  serverTags,
  waitForServer,
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

export const DRIVER_NAME = 'linode';
const fail = errorFactory('providers', DRIVER_NAME);

export interface LinodeOptions {
  /** A personal access token (Linodes, Firewalls, Domains, Databases, Images, VPCs: read/write). Never logged. */
  token: string;
  /** API base URL (default `https://api.linode.com/v4`; a fake's URL in tests). */
  baseUrl?: string;
  /** Default region and type (e.g. `eu-west`, `g6-standard-1`). */
  region?: string;
  size?: string;
  /** Image for new instances (default `linode/debian12`), or a private image from `snapshot` (`private/123`). */
  image?: string;
  /** Public SSH keys for root on every new instance, besides those of `create`'s `sshKeys`. */
  authorizedKeys?: string[];
  /** Page size for lists (default 500; the API accepts 25-500, so it is kept in that range). */
  pageSize?: number;
  fetch?: typeof fetch;
  /** Backoff of retries (tests make it short). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: Parameters<typeof createApiClient>[0]['onRetry'];
}

// --- API shapes (only the fields we read) ---

interface Instance {
  id: number;
  label: string;
  status: string;
  ipv4: string[];
  tags: string[];
  created: string;
}
/** An image as `GET /images` lists it (https://techdocs.akamai.com/linode-api/reference/get-images). */
interface Image {
  id: string;
  label: string;
  status: 'creating' | 'pending_upload' | 'available' | string;
  is_public: boolean;
  created: string;
}
interface Page<T> {
  data: T[];
  page: number;
  pages: number;
  results: number;
}
interface FirewallRule {
  action: 'ACCEPT' | 'DROP';
  protocol: 'TCP' | 'UDP' | 'ICMP' | 'IPENCAP';
  ports?: string;
  addresses: { ipv4?: string[]; ipv6?: string[] };
  label?: string;
  description?: string;
}
interface FirewallRules {
  inbound: FirewallRule[];
  inbound_policy: string;
  outbound: FirewallRule[] | null;
  outbound_policy: string;
}
interface Firewall {
  id: number;
  label: string;
  status: string;
  rules: FirewallRules;
}
interface Domain {
  id: number;
  domain: string;
}
interface DomainRecord {
  id: number;
  type: string;
  name: string;
  target: string;
  ttl_sec: number;
}
interface VpcIp {
  address: string | null;
  linode_id: number | null;
}
interface Database {
  id: number;
  label: string;
  status: string;
  engine: string;
  port: number;
  allow_list: string[];
  hosts: { primary: string | null; secondary?: string | null; standby?: string | null };
}

const ROLE_CODES: Record<Role, string> = { build: 'bm', webserver: 'ws', database: 'db', autoscaler: 'as', auth: 'au' };
/** Linode's private addresses (https://techdocs.akamai.com/cloud-computing/docs/managing-ip-addresses-on-a-compute-instance). */
const PRIVATE = /^192\.168\.(12[89]|1[3-9]\d|2[0-4]\d|25[0-5])\.\d{1,3}$/;
/** The TTLs Linode keeps (others are rounded); 30 and 120 since API v4.174.0. */
const TTLS = [30, 120, 300, 3600, 7200, 14400, 28800, 57600, 86400, 172800, 345600, 604800, 1209600, 2419200];

/** The smallest TTL Linode keeps that is at least `ttl` (so a record never lives longer in caches than asked, rounded up). */
export function linodeTtl(ttl: number): number {
  return TTLS.find((t) => t >= ttl) ?? TTLS[TTLS.length - 1]!;
}

export function linodeClient(o: LinodeOptions): ApiClient {
  if (!o.token) throw fail('NO_TOKEN', 'LINODE_TOKEN: a personal access token is required', { exitCode: 2 });
  return createApiClient({
    provider: DRIVER_NAME,
    baseUrl: o.baseUrl ?? 'https://api.linode.com/v4',
    auth: () => ({ Authorization: `Bearer ${o.token}` }),
    // https://techdocs.akamai.com/linode-api/reference/errors: {"errors": [{"field": "label", "reason": "..."}]}
    errorMessage: (b) =>
      (b as { errors?: { field?: string; reason?: string }[] }).errors
        ?.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason))
        .join('; '),
    fetch: o.fetch,
    baseDelayMs: o.baseDelayMs,
    maxDelayMs: o.maxDelayMs,
    onRetry: o.onRetry,
  });
}

function pageSizeOf(o: { pageSize?: number }): number {
  return Math.min(500, Math.max(25, Math.floor(o.pageSize ?? 500)));
}

/** Whether the API refused an X-Filter (`[X-Filter] Cannot filter on ...`). */
function filterRefused(error: unknown): boolean {
  const e = error as { status?: number | null; providerMessage?: string };
  return e.status === 400 && /filter/i.test(e.providerMessage ?? '');
}

/**
 * Every page of a list (https://techdocs.akamai.com/linode-api/reference/pagination), bounded at
 * 1,000 pages, filtered with X-Filter (https://techdocs.akamai.com/linode-api/reference/filtering-and-sorting)
 * when given. Callers check the results themselves: a refused filter is dropped, not fatal.
 */
async function listAll<T>(api: ApiClient, path: string, filter?: Record<string, unknown>, pageSize = 500): Promise<T[]> {
  const pages = async (f?: Record<string, unknown>) => {
    const out: T[] = [];
    for (let page = 1; page <= 1000; page++) {
      const body = await api.get<Page<T>>(path, {
        query: { page, page_size: pageSize },
        ...(f ? { headers: { 'X-Filter': JSON.stringify(f) } } : {}),
      });
      out.push(...(body?.data ?? []));
      if (page >= (body?.pages ?? 1)) break;
    }
    return out;
  };
  try {
    return await pages(filter);
  } catch (error) {
    if (filter && filterRefused(error)) return pages();
    throw error;
  }
}

function toServer(i: Instance, vpcIp?: string | null): Server {
  const p = parseServerName(i.label);
  const states: Record<string, Server['state']> = {
    running: 'running',
    provisioning: 'creating',
    booting: 'creating',
    rebooting: 'creating',
    rebuilding: 'creating',
    cloning: 'creating',
    restoring: 'creating',
    migrating: 'running',
    resizing: 'creating',
    offline: 'stopped',
    stopped: 'stopped',
    shutting_down: 'stopped',
    deleting: 'destroying',
    billing_suspension: 'stopped',
  };
  const v4 = i.ipv4 ?? [];
  return {
    id: String(i.id),
    name: i.label,
    role: p?.role ?? 'webserver',
    buildId: p?.buildId ?? '',
    state: states[i.status] ?? 'creating',
    publicIp: v4.find((a) => !PRIVATE.test(a)) ?? null,
    privateIp: v4.find((a) => PRIVATE.test(a)) ?? vpcIp ?? null,
    tags: i.tags ?? [],
    createdAt: i.created,
  };
}

/** The firewall label of a build's role (Linode allows 3-32 characters: role codes keep `adt-<24 chars>-ws` within it). */
export function firewallLabel(buildId: string, role: Role): string {
  return `adt-${buildId}-${ROLE_CODES[role]}`;
}

// https://techdocs.akamai.com/linode-api/reference/get-firewalls (label is filterable)
async function findFirewall(api: ApiClient, buildId: string, role: Role, pageSize?: number): Promise<Firewall | null> {
  const label = firewallLabel(buildId, role);
  return (await listAll<Firewall>(api, '/networking/firewalls', { label }, pageSize)).find((f) => f.label === label) ?? null;
}

/** Instances of ours, by exact build and role; VPC addresses looked up when some running one has no private address. */
async function listServers(api: ApiClient, filter: ListServersFilter, pageSize: number): Promise<Server[]> {
  const tag = filter.buildId ? `adt-build-${filter.buildId}` : 'adt';
  // https://techdocs.akamai.com/linode-api/reference/get-linode-instances
  const mine = (await listAll<Instance>(api, '/linode/instances', { tags: tag }, pageSize)).filter(
    (i) => (i.tags ?? []).includes(tag) && nameMatches(i.label, filter),
  );
  const vpcIps = new Map<number, string>();
  if (mine.some((i) => i.status === 'running' && !(i.ipv4 ?? []).some((a) => PRIVATE.test(a)))) {
    try {
      // https://techdocs.akamai.com/linode-api/reference/get-vpcs-ips: every VPC address of the account, one list.
      for (const ip of await listAll<VpcIp>(api, '/vpcs/ips', undefined, pageSize))
        if (ip.address && ip.linode_id !== null && !vpcIps.has(ip.linode_id)) vpcIps.set(ip.linode_id, ip.address);
    } catch (error) {
      // A token without the VPC scope (or an account without VPCs): the address stays unknown, the list does not fail.
      const status = (error as { status?: number | null }).status;
      if (status !== 401 && status !== 403 && status !== 404) throw error;
    }
  }
  return mine.map((i) => toServer(i, vpcIps.get(i.id)));
}

/** Linode's label of an image named `name` (labels are 1-50 characters: `snapshot` cuts longer names). */
function imageLabel(name: string): string {
  return name.slice(0, 50);
}

/** `private/<n>`'s number (0 for another id). */
function imageNumber(id: string): number {
  return Number(/^private\/(\d+)$/.exec(id)?.[1] ?? 0);
}

/**
 * A time of the API (`2018-01-01T00:01:01`: UTC without a zone) in milliseconds, 0 when unreadable.
 * https://techdocs.akamai.com/linode-api/reference/get-images (`created`)
 */
function apiTime(text: string): number {
  return Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`) || 0;
}

export class LinodeCompute implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: true, privateNetworking: true, images: true };
  readonly api: ApiClient;
  readonly #o: LinodeOptions;

  constructor(o: LinodeOptions, api = linodeClient(o)) {
    this.#o = o;
    this.api = api;
  }

  // https://techdocs.akamai.com/linode-api/reference/post-linode-instance
  async create(o: CreateServerOptions): Promise<Server> {
    const { size, region, keys } = checkCreate(DRIVER_NAME, o, { size: this.#o.size, region: this.#o.region });
    const subnetId = o.vpc === undefined ? undefined : Number(o.vpc);
    if (subnetId !== undefined && (!Number.isInteger(subnetId) || subnetId <= 0))
      throw fail('BAD_VPC', `${o.name}: vpc "${o.vpc}" must be a Linode VPC subnet id (a number)`, { exitCode: 2 });
    const firewall = await findFirewall(this.api, o.buildId, o.role, pageSizeOf(this.#o));
    const body = {
      label: o.name,
      region,
      type: size,
      image: o.image ?? this.#o.image ?? 'linode/debian12',
      // Required with an image; random and never kept: access is by SSH key (root_pass is redacted in dry runs).
      root_pass: `${randomBytes(24).toString('base64url')}aA1!`,
      // "public SSH keys that will be automatically appended to the root user's ~/.ssh/authorized_keys file
      // when deploying from an Image": the option's, then create's (a key already there is not repeated).
      authorized_keys: [
        ...(this.#o.authorizedKeys ?? []),
        ...keys.filter((k) => !(this.#o.authorizedKeys ?? []).some((a) => sameKey(a, k))).map((k) => k.line),
      ],
      tags: serverTags(o),
      booted: true,
      // Metadata service user-data (cloud-init reads it at first boot), base64.
      metadata: { user_data: Buffer.from(o.userData).toString('base64') },
      // Configuration-profile interfaces: the firewall applies to the whole instance (Linode interfaces would need it per interface).
      interface_generation: 'legacy_config',
      ...(subnetId !== undefined ? { interfaces: [{ purpose: 'public' }, { purpose: 'vpc', subnet_id: subnetId }] } : { private_ip: true }),
      ...(firewall ? { firewall_id: firewall.id } : {}),
    };
    // Only a failure that leaves the outcome unknown (5xx, lost connection) may have created it: looked for by name then.
    return createOnce(
      o,
      async () => toServer(await this.api.post<Instance>('/linode/instances', body)),
      (s) => s,
      (f) => this.list(f),
    );
  }

  // https://techdocs.akamai.com/linode-api/reference/delete-linode-instance
  async destroy(id: string): Promise<void> {
    await this.api.delete(`/linode/instances/${encodeURIComponent(id)}`, { accept: [404] });
  }

  async list(filter: ListServersFilter = {}): Promise<Server[]> {
    return listServers(this.api, filter, pageSizeOf(this.#o));
  }

  // https://techdocs.akamai.com/linode-api/reference/get-linode-instance
  async get(id: string): Promise<Server | null> {
    const i = await this.api.get<Instance | null>(`/linode/instances/${encodeURIComponent(id)}`, { accept: [404] });
    if (!i) return null;
    let vpcIp: string | null = null;
    if (i.status === 'running' && !(i.ipv4 ?? []).some((a) => PRIVATE.test(a))) {
      // A VPC address is not in `ipv4`: https://techdocs.akamai.com/linode-api/reference/get-linode-ips
      const ips = await this.api.get<{ ipv4?: { vpc?: VpcIp[] } } | null>(`/linode/instances/${encodeURIComponent(id)}/ips`, {
        accept: [404],
      });
      vpcIp = ips?.ipv4?.vpc?.find((v) => v.address)?.address ?? null;
    }
    return toServer(i, vpcIp);
  }

  async waitUntilRunning(id: string, options: WaitOptions = {}): Promise<Server> {
    return waitForServer(DRIVER_NAME, id, (x) => this.get(x), options);
  }

  // https://techdocs.akamai.com/linode-api/reference/post-image (an image from the instance's boot disk)
  async snapshot(id: string, name: string, options: WaitOptions = {}): Promise<string> {
    // https://techdocs.akamai.com/linode-api/reference/get-linode-disks
    const disks = await listAll<{ id: number; filesystem: string }>(
      this.api,
      `/linode/instances/${encodeURIComponent(id)}/disks`,
      undefined,
      pageSizeOf(this.#o),
    );
    const disk = disks.find((d) => d.filesystem !== 'swap');
    if (!disk) throw fail('NO_DISK', `instance ${id} has no disk to image`);
    const image = await this.api.post<{ id: string }>('/images', {
      disk_id: disk.id,
      label: imageLabel(name),
      description: `adt image of ${id}`,
    });
    await pollUntil(
      DRIVER_NAME,
      `image ${name} of instance ${id}`,
      async () => {
        // https://techdocs.akamai.com/linode-api/reference/get-image: ids are `private/<n>`, and the path takes them as they are.
        const i = await this.api.get<{ status: string }>(`/images/${image.id.split('/').map(encodeURIComponent).join('/')}`);
        if (i.status === 'deleted') throw fail('SNAPSHOT_FAILED', `image ${name} of instance ${id} was deleted while being made`);
        return i.status === 'available' ? true : null;
      },
      { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 10_000 },
    );
    return image.id;
  }

  /**
   * The account's private image labelled `name` (as `snapshot` labels it) that is `available` (one
   * still `creating` is not), the newest of several; null when none.
   * https://techdocs.akamai.com/linode-api/reference/get-images (`label` and `is_public` filterable)
   */
  async findImage(name: string): Promise<{ id: string; name: string } | null> {
    const label = imageLabel(name);
    const mine = (await listAll<Image>(this.api, '/images', { label, is_public: false }, pageSizeOf(this.#o))).filter(
      (i) => i.label === label && !i.is_public && i.id.startsWith('private/') && i.status === 'available',
    );
    const newest = mine.reduce<Image | undefined>((best, i) => {
      if (!best) return i;
      const [t, bt] = [apiTime(i.created), apiTime(best.created)];
      return t > bt || (t === bt && imageNumber(i.id) > imageNumber(best.id)) ? i : best;
    }, undefined);
    return newest ? { id: newest.id, name: newest.label } : null;
  }
}

/** Our rules in Linode's shape: upper-case protocol, prefixes on every address, a label and the description. */
function toLinodeRule(r: InboundRule, i: number): FirewallRule {
  const sources = r.protocol === 'icmp' && r.sources.length === 0 ? ['0.0.0.0/0', '::/0'] : r.sources;
  const v4 = sources.filter((s) => !s.includes(':')).map((s) => (s.includes('/') ? s : `${s}/32`));
  const v6 = sources.filter((s) => s.includes(':')).map((s) => (s.includes('/') ? s : `${s}/128`));
  return {
    action: 'ACCEPT',
    protocol: r.protocol.toUpperCase() as FirewallRule['protocol'],
    ...(r.protocol === 'icmp' ? {} : { ports: portText(r.port) }),
    addresses: { ...(v4.length ? { ipv4: v4 } : {}), ...(v6.length ? { ipv6: v6 } : {}) },
    label: `adt-rule-${i + 1}`,
    ...(r.description ? { description: r.description.slice(0, 100) } : {}),
  };
}

/** Cloud firewalls: https://techdocs.akamai.com/linode-api/reference/post-firewalls */
export class LinodeFirewall implements NativeFirewallProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #pageSize: number;

  constructor(api: ApiClient, o: { pageSize?: number } = {}) {
    this.api = api;
    this.#pageSize = pageSizeOf(o);
  }

  async apply(buildId: string, role: Role, rules: InboundRule[]): Promise<void> {
    for (const [i, rule] of rules.entries()) validateRule(rule, `rules[${i}]`);
    // Inbound: exactly these rules, everything else dropped. Outbound stays open (updates, the bucket, the DNS API).
    const ruleset = { inbound: rules.map(toLinodeRule), inbound_policy: 'DROP', outbound: [], outbound_policy: 'ACCEPT' };
    const servers = await listServers(this.api, { buildId, role }, this.#pageSize);
    const existing = await findFirewall(this.api, buildId, role, this.#pageSize);
    if (!existing) {
      // https://techdocs.akamai.com/linode-api/reference/post-firewalls
      await this.api.post('/networking/firewalls', {
        label: firewallLabel(buildId, role),
        rules: ruleset,
        devices: { linodes: servers.map((s) => Number(s.id)) },
        tags: adtTags(role, buildId),
      });
      return;
    }
    // https://techdocs.akamai.com/linode-api/reference/put-firewall-rules
    await this.api.put(`/networking/firewalls/${existing.id}/rules`, ruleset);
    // https://techdocs.akamai.com/linode-api/reference/get-firewall-devices
    const devices = await listAll<{ entity: { id: number; type: string } }>(
      this.api,
      `/networking/firewalls/${existing.id}/devices`,
      undefined,
      this.#pageSize,
    );
    const attached = new Set(devices.filter((d) => d.entity.type === 'linode').map((d) => String(d.entity.id)));
    for (const s of servers.filter((x) => !attached.has(x.id))) {
      // https://techdocs.akamai.com/linode-api/reference/post-firewall-device
      await this.api.post(`/networking/firewalls/${existing.id}/devices`, { id: Number(s.id), type: 'linode' });
    }
  }

  async get(buildId: string, role: Role): Promise<InboundRule[] | null> {
    const f = await findFirewall(this.api, buildId, role, this.#pageSize);
    if (!f) return null;
    // https://techdocs.akamai.com/linode-api/reference/get-firewall-rules
    const rules = await this.api.get<FirewallRules>(`/networking/firewalls/${f.id}/rules`);
    return (rules.inbound ?? [])
      .filter((r) => r.action === 'ACCEPT')
      .map((r) => {
        const protocol = r.protocol.toLowerCase() as InboundRule['protocol'];
        return {
          protocol,
          ...(protocol === 'icmp' ? {} : { port: parsePort(r.ports) }),
          sources: [...(r.addresses?.ipv4 ?? []), ...(r.addresses?.ipv6 ?? [])],
          ...(r.description ? { description: r.description } : {}),
        } as InboundRule;
      });
  }

  // https://techdocs.akamai.com/linode-api/reference/delete-firewall (its devices are detached with it)
  async remove(buildId: string, role: Role): Promise<void> {
    const f = await findFirewall(this.api, buildId, role, this.#pageSize);
    if (f) await this.api.delete(`/networking/firewalls/${f.id}`, { accept: [404] });
  }
}

export interface LinodeDnsOptions extends LinodeOptions {
  /** The domain (zone) managed at Linode, e.g. `example.com`. */
  zone: string;
  /** TTL of new records (default 30), raised to the next value Linode keeps (30, 120, 300, 3600, ...). */
  defaultTtl?: number;
}

/** Domain records: https://techdocs.akamai.com/linode-api/reference/post-domain-record */
export class LinodeDns implements DnsProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: LinodeDnsOptions;
  #domainId: number | null = null;

  constructor(o: LinodeDnsOptions, api = linodeClient(o)) {
    this.#o = { ...o, zone: o.zone.replace(/\.$/, '').toLowerCase() };
    this.api = api;
  }

  // https://techdocs.akamai.com/linode-api/reference/get-domains (domain is filterable)
  async #domain(zone = this.#o.zone): Promise<number | null> {
    if (this.#domainId !== null && zone === this.#o.zone) return this.#domainId;
    const found = (await listAll<Domain>(this.api, '/domains', { domain: zone }, pageSizeOf(this.#o))).find(
      (d) => d.domain.toLowerCase() === zone,
    );
    if (found && zone === this.#o.zone) this.#domainId = found.id;
    return found?.id ?? null;
  }

  async ensureZone(zone: string): Promise<void> {
    const z = zone.replace(/\.$/, '').toLowerCase();
    if ((await this.#domain(z)) !== null) return;
    // https://techdocs.akamai.com/linode-api/reference/post-domain (a master zone needs an SOA email)
    await this.api.post('/domains', { domain: z, type: 'master', soa_email: `hostmaster@${z}` });
  }

  // https://techdocs.akamai.com/linode-api/reference/get-domain-records (name is filterable; the type is checked here)
  async #records(name: string): Promise<{ fqdn: string; rel: string; records: DomainRecord[]; domainId: number | null }> {
    const fqdn = name.toLowerCase().replace(/\.$/, '');
    const relName = relativeName(fqdn, this.#o.zone, DRIVER_NAME);
    const rel = relName === '@' ? '' : relName;
    const domainId = await this.#domain();
    if (domainId === null) return { fqdn, rel, records: [], domainId };
    const records = (await listAll<DomainRecord>(this.api, `/domains/${domainId}/records`, { name: rel }, pageSizeOf(this.#o))).filter(
      (r) => r.type === 'A' && r.name.toLowerCase() === rel,
    );
    return { fqdn, rel, records, domainId };
  }

  async listA(name: string): Promise<DnsRecord[]> {
    const { fqdn, records } = await this.#records(name);
    return records
      .map((r) => ({ name: fqdn, type: 'A' as const, content: r.target, ttl: r.ttl_sec }))
      .sort((a, b) => a.content.localeCompare(b.content));
  }

  async addA(name: string, ip: string, ttl = this.#o.defaultTtl ?? 30): Promise<void> {
    const { rel, records, domainId } = await this.#records(name);
    if (domainId === null) throw fail('NO_ZONE', `domain ${this.#o.zone} is not at Linode: ensureZone first`, { exitCode: 2 });
    if (records.some((r) => r.target === ip)) return;
    await this.api.post(`/domains/${domainId}/records`, { type: 'A', name: rel, target: ip, ttl_sec: linodeTtl(ttl) });
  }

  // https://techdocs.akamai.com/linode-api/reference/delete-domain-record
  async removeA(name: string, ip: string): Promise<void> {
    const { records, domainId } = await this.#records(name);
    for (const r of records.filter((x) => x.target === ip))
      await this.api.delete(`/domains/${domainId}/records/${r.id}`, { accept: [404] });
  }
}

const DB_PATHS = { mysql: 'mysql', postgres: 'postgresql' } as const;
const DB_DEFAULT_VERSION = { mysql: '8', postgres: '16' } as const;
/** https://techdocs.akamai.com/linode-api/reference/get-databases-mysql-instance (status) */
const DB_STATES: Record<string, ManagedDatabase['state']> = {
  active: 'online',
  updating: 'online',
  backing_up: 'online',
  provisioning: 'creating',
  restoring: 'creating',
  resuming: 'creating',
  migrating: 'creating',
  resizing: 'creating',
  deleting: 'deleting',
  deleted: 'deleting',
  failed: 'error',
  degraded: 'error',
  suspending: 'error',
  suspended: 'error',
};

export interface LinodeDatabaseOptions extends LinodeOptions {
  /** Clients outside the VPC may connect (allow-list permitting) when a database is created in a VPC (default true). */
  databasePublicAccess?: boolean;
}

/** Managed MySQL/PostgreSQL: https://techdocs.akamai.com/linode-api/reference/post-databases-mysql-instances */
export class LinodeDatabases implements ManagedDatabaseProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: LinodeDatabaseOptions;
  /** Build ids of labels that do not follow `adt-<build>-db`, as given to `create`. */
  readonly #builds = new Map<string, string>();

  constructor(o: LinodeDatabaseOptions, api = linodeClient(o)) {
    this.#o = o;
    this.api = api;
  }

  /** Our ids carry the engine: `mysql/123`, `postgresql/45`. */
  #path(id: string): string {
    const m = /^(mysql|postgresql)\/(\d+)$/.exec(id);
    if (!m) throw fail('BAD_ID', `database id "${id}": mysql/<n> or postgresql/<n>`, { exitCode: 2 });
    return `/databases/${m[1]}/instances/${m[2]}`;
  }

  #buildOf(label: string): string {
    return /^adt-(.+)-db$/.exec(label)?.[1] ?? this.#builds.get(label) ?? '';
  }

  #toDatabase(d: Database, engine: string, creds?: { username: string; password: string }): ManagedDatabase {
    return {
      id: `${engine}/${d.id}`,
      name: d.label,
      buildId: this.#buildOf(d.label),
      engine: engine === 'postgresql' ? 'postgres' : 'mysql',
      state: DB_STATES[d.status] ?? 'creating',
      // `secondary` is the private-network host of the cluster (where the API reports one).
      host: d.hosts?.primary ?? null,
      privateHost: d.hosts?.secondary ?? null,
      port: d.port ?? null,
      user: creds?.username ?? null,
      password: creds?.password ?? null,
      database: null,
    };
  }

  async #all(): Promise<ManagedDatabase[]> {
    const out: ManagedDatabase[] = [];
    for (const engine of Object.values(DB_PATHS)) {
      // https://techdocs.akamai.com/linode-api/reference/get-databases-mysql-instances (and .../postgresql/instances)
      out.push(
        ...(await listAll<Database>(this.api, `/databases/${engine}/instances`, undefined, pageSizeOf(this.#o))).map((d) =>
          this.#toDatabase(d, engine),
        ),
      );
    }
    return out;
  }

  /** The VPC of a subnet, for `private_network`: https://techdocs.akamai.com/linode-api/reference/get-vpcs */
  async #privateNetwork(vpc: string): Promise<{ vpc_id: number; subnet_id: number; public_access: boolean }> {
    const subnetId = Number(vpc);
    if (!Number.isInteger(subnetId) || subnetId <= 0)
      throw fail('BAD_VPC', `database vpc "${vpc}" must be a Linode VPC subnet id (a number)`, { exitCode: 2 });
    const vpcs = await listAll<{ id: number; subnets?: { id: number }[] }>(this.api, '/vpcs', undefined, pageSizeOf(this.#o));
    const found = vpcs.find((v) => (v.subnets ?? []).some((s) => s.id === subnetId));
    if (!found) throw fail('NO_SUCH_SUBNET', `VPC subnet ${subnetId} was not found in this account`, { exitCode: 2 });
    return { vpc_id: found.id, subnet_id: subnetId, public_access: this.#o.databasePublicAccess ?? true };
  }

  async create(o: CreateDatabaseOptions): Promise<ManagedDatabase> {
    validateAllowList(o.allow, 'allow');
    const region = o.region ?? this.#o.region;
    if (!region) throw fail('NO_REGION', `database ${o.name}: a region is required`, { exitCode: 2 });
    const engine = DB_PATHS[o.engine];
    this.#builds.set(o.name, o.buildId);
    const converge = async (db: ManagedDatabase) => {
      if (db.engine !== o.engine)
        throw fail('DB_ENGINE_MISMATCH', `database ${o.name} exists with engine ${db.engine}, not ${o.engine}`, { exitCode: 2 });
      // The allow-list is always what was asked for, also for a database made earlier.
      await this.setAllowList(db.id, o.allow);
      return db;
    };
    const existing = (await this.#all()).find((d) => d.name === o.name);
    if (existing) return converge(existing);
    const privateNetwork = o.vpc ? await this.#privateNetwork(o.vpc) : undefined;
    try {
      const created = await this.api.post<Database>(`/databases/${engine}/instances`, {
        label: o.name,
        region,
        type: o.size ?? 'g6-nanode-1',
        engine: `${engine}/${o.version ?? DB_DEFAULT_VERSION[o.engine]}`,
        cluster_size: o.nodes ?? 1,
        allow_list: o.allow,
        ...(privateNetwork ? { private_network: privateNetwork } : {}),
      });
      return this.#toDatabase(created, engine);
    } catch (error) {
      // A 5xx or a lost connection may still have made it: look for it before reporting.
      if (!outcomeUnknown(error)) throw error;
      const found = (await this.#all()).find((d) => d.name === o.name);
      if (found) return converge(found);
      throw error;
    }
  }

  async get(id: string): Promise<ManagedDatabase | null> {
    const d = await this.api.get<Database | null>(this.#path(id), { accept: [404] });
    if (!d) return null;
    const engine = id.split('/')[0]!;
    // https://techdocs.akamai.com/linode-api/reference/get-databases-mysql-instance-credentials (once the cluster is up)
    const creds =
      DB_STATES[d.status] === 'online'
        ? await this.api.get<{ username: string; password: string }>(`${this.#path(id)}/credentials`)
        : undefined;
    return this.#toDatabase(d, engine, creds);
  }

  async list(filter: { buildId?: string } = {}): Promise<ManagedDatabase[]> {
    return (await this.#all()).filter((d) =>
      filter.buildId === undefined ? d.name.startsWith('adt-') || d.buildId !== '' : d.buildId === filter.buildId,
    );
  }

  async waitUntilOnline(id: string, options: WaitOptions = {}): Promise<ManagedDatabase> {
    return pollUntil(
      DRIVER_NAME,
      `database ${id} active`,
      async () => {
        const d = await this.get(id);
        if (!d) throw fail('NOT_FOUND', `database ${id} is gone`);
        if (d.state === 'error') throw fail('DATABASE_FAILED', `database ${id} is not usable (failed, degraded or suspended)`);
        return d.state === 'online' && d.host ? d : null;
      },
      { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 15_000 },
    );
  }

  // https://techdocs.akamai.com/linode-api/reference/put-databases-mysql-instance (and .../postgresql)
  async setAllowList(id: string, sources: string[]): Promise<void> {
    validateAllowList(sources, 'allow');
    await this.api.put(this.#path(id), { allow_list: sources });
  }

  async getAllowList(id: string): Promise<string[]> {
    return (await this.api.get<Database>(this.#path(id))).allow_list ?? [];
  }

  // https://techdocs.akamai.com/linode-api/reference/delete-databases-mysql-instance
  async destroy(id: string): Promise<void> {
    await this.api.delete(this.#path(id), { accept: [404] });
  }
}

/** Registry entry point: the compute driver; `.firewall`, `.dns(zone)` and `.databases` share its client. */
export default function linodeDriver(o: LinodeDatabaseOptions) {
  const api = linodeClient(o);
  const compute = new LinodeCompute(o, api);
  return Object.assign(compute, {
    firewall: new LinodeFirewall(api, o),
    databases: new LinodeDatabases(o, api),
    dns: (zone: string, defaultTtl?: number) => new LinodeDns({ ...o, zone, defaultTtl }, api),
  });
}
