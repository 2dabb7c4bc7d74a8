/**
 * Vultr: instances, firewall groups, DNS and managed databases over API v2
 * (https://www.vultr.com/api/), with plain `fetch` through our one API client. Why not an SDK:
 * Vultr publishes no official TypeScript SDK (`@vultr/vultr-node` is a thin, untyped wrapper
 * without retry control; the maintained clients are Go's govultr and the OpenAPI-generated ones);
 * every driver here shares one client for retries, rate limits, redaction and dry runs instead.
 *
 * - Auth: `Authorization: Bearer <API key>`. Errors: `{"error": "...", "status": 400}`.
 * - Pagination: `per_page` (default 100, at most 500) and `cursor`, the value of
 *   `meta.links.next` of the previous page, read until it is empty. The managed-database list is
 *   not paginated (its documented filters are `label`, `tag`, `region`; its `meta` has `total` only).
 * - Rate limit: 30 requests per second per source address; above it the API "may return HTTP 429".
 *   No header is documented on that answer (no Retry-After, no reset time): `http.ts` backs off.
 * - Servers carry the tags `adt`, `adt-role-<role>`, `adt-build-<id>`, `adt-<id>-<role>`; `list`
 *   asks for the build's tag (the API takes one `tag` filter) and checks names exactly.
 * - The native firewall is one firewall group per build and role (description
 *   `adt-<build>-<role>`). New instances of the role are created in it (`firewall_group_id`) when it
 *   exists; `apply` moves the role's existing instances into it. Replacing its rules adds the
 *   missing ones before deleting the extra ones, so the role is never open to more than the old or
 *   the new rules allow, nor closed to both, in between.
 * - Creates that fail with an unknown outcome (5xx, lost connection) look for what they meant to
 *   make before giving up, so nothing is made twice: instances (by name), firewall groups and
 *   rules, snapshots (by description), DNS zones and records, databases (by tag and label), SSH keys.
 * - SSH keys of `create` (`sshKeys`) are account keys: found in `GET /ssh-keys` (by our name
 *   `adt-<sha256 prefix>` or by the key itself), registered when absent (`POST /ssh-keys`), and
 *   given to the instance by id (`sshkey_id`), after the `sshKeyIds` option's.
 * - Images: `snapshot` makes an instance snapshot (named by its description), `findImage` finds the
 *   newest `complete` snapshot of a description, and `create` takes its id as `snapshot_id`.
 */
import { errorFactory } from '@adt/core';
import { createApiClient, type ApiClient } from '../http.ts';
import { nameMatches, parseServerName } from '../naming.ts';
import { validateAllowList, validateRule } from '../rules.ts';
import {
  checkCreate,
  createOnce,
  createOrFind,
  KeyRegistrations,
  pollUntil,
  relativeName,
  roleTag,
  sameKey,
  serverTags,
  unique,
  waitForDatabase,
  waitForServer,
  type PublicKey,
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
  ServerState,
  WaitOptions,
} from '../types.ts';

export const DRIVER_NAME = 'vultr';
const fail = errorFactory('providers', DRIVER_NAME);

/** Debian 12 x64 (bookworm) in `GET /os`. */
export const DEBIAN_12_OS_ID = 2136;

export interface VultrOptions {
  /** An API key (customer portal: Account > API). Sent only as a bearer header, never logged. */
  apiKey: string;
  /** API base URL (default `https://api.vultr.com/v2`; a fake's URL in tests). */
  baseUrl?: string;
  /** Default region id for instances and databases (e.g. `lhr`, `ams`, `ewr`). */
  region?: string;
  /** Default instance plan id (e.g. `vc2-1c-2gb`). */
  size?: string;
  /** Operating system id of new instances when no `image` (snapshot) is given (default 2136, Debian 12 x64). */
  osId?: number;
  /** SSH key ids (`GET /ssh-keys`) to install on new instances, besides those of `create`'s `sshKeys`. */
  sshKeyIds?: string[];
  /** Page size of lists (default 500, the API's maximum). */
  perPage?: number;
  fetch?: typeof fetch;
  /** Backoff of retries (tests make it short). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Told about each retry (for progress lines); gets no credentials. */
  onRetry?: Parameters<typeof createApiClient>[0]['onRetry'];
}

// --- API shapes (only the fields we read) ---

interface Instance {
  id: string;
  label: string;
  status: 'pending' | 'active' | 'suspended' | 'resizing' | string;
  power_status: 'running' | 'stopped' | string;
  server_status: 'none' | 'locked' | 'installingbooting' | 'ok' | string;
  main_ip: string;
  internal_ip: string;
  tags: string[] | null;
  date_created: string;
  firewall_group_id: string;
}
interface Meta {
  meta?: { total?: number; links?: { next?: string; prev?: string } };
}
interface SshKey {
  id: string;
  name: string;
  ssh_key: string;
  date_created: string;
}
interface FirewallGroup {
  id: string;
  description: string;
  max_rule_count?: number;
}
interface FirewallRule {
  id: number;
  ip_type: 'v4' | 'v6';
  action?: string;
  protocol: string;
  port: string;
  subnet: string;
  subnet_size: number;
  source?: string;
  notes: string;
}
interface DnsRecordApi {
  id: string;
  type: string;
  name: string;
  data: string;
  priority: number;
  ttl: number;
}
interface Snapshot {
  id: string;
  description: string;
  status: 'pending' | 'complete' | 'deleted' | string;
  date_created: string;
}
interface Database {
  id: string;
  label: string;
  tag: string;
  status: 'Rebuilding' | 'Rebalancing' | 'Configuring' | 'Running' | string;
  database_engine: string;
  host: string;
  public_host?: string;
  port: string;
  user: string;
  password: string;
  dbname?: string;
  trusted_ips: string[] | null;
}

export function vultrClient(o: VultrOptions): ApiClient {
  if (!o.apiKey) throw fail('NO_TOKEN', 'VULTR_API_KEY: an API key is required', { exitCode: 2 });
  return createApiClient({
    provider: DRIVER_NAME,
    baseUrl: o.baseUrl ?? 'https://api.vultr.com/v2',
    auth: () => ({ Authorization: `Bearer ${o.apiKey}` }),
    // Error bodies: {"error": "Invalid instance-id.", "status": 404}
    errorMessage: (b) => (b as { error?: string }).error,
    fetch: o.fetch,
    baseDelayMs: o.baseDelayMs,
    maxDelayMs: o.maxDelayMs,
    onRetry: o.onRetry,
  });
}

/**
 * Every page of a list: `per_page` and `cursor` from `meta.links.next`, until it is empty (bounded
 * at 1,000 pages; a cursor that comes back twice ends the list rather than looping).
 */
async function listAll<T>(
  api: ApiClient,
  path: string,
  key: string,
  query: Record<string, string | number> = {},
  perPage = 500,
): Promise<T[]> {
  const out: T[] = [];
  const seen = new Set<string>();
  let cursor = '';
  for (let page = 0; page < 1000; page++) {
    const body: Record<string, unknown> & Meta =
      (await api.get<Record<string, unknown> & Meta>(path, {
        query: { ...query, per_page: Math.min(500, perPage), ...(cursor ? { cursor } : {}) },
      })) ?? {};
    out.push(...((body[key] as T[] | undefined) ?? []));
    cursor = body.meta?.links?.next ?? '';
    if (!cursor || seen.has(cursor)) break;
    seen.add(cursor);
  }
  return out;
}

function stateOf(i: Instance): ServerState {
  switch (i.status) {
    case 'pending':
      return 'creating';
    // As Vultr's Terraform provider waits: `status` active, then `power_status` running.
    case 'active':
      return i.power_status === 'running' ? 'running' : i.power_status === 'stopped' ? 'stopped' : 'creating';
    case 'resizing':
      return 'creating';
    case 'suspended':
      return 'stopped';
    default:
      return 'error';
  }
}

function toServer(i: Instance, privateIp?: string | null): Server {
  const p = parseServerName(i.label);
  return {
    id: i.id,
    name: i.label,
    role: p?.role ?? 'webserver',
    buildId: p?.buildId ?? '',
    state: stateOf(i),
    // `main_ip` is 0.0.0.0 until an address is assigned.
    publicIp: i.main_ip && i.main_ip !== '0.0.0.0' ? i.main_ip : null,
    privateIp: privateIp ?? (i.internal_ip && i.internal_ip !== '0.0.0.0' ? i.internal_ip : null),
    tags: i.tags ?? [],
    createdAt: i.date_created,
  };
}

async function findGroup(api: ApiClient, buildId: string, role: Role, perPage?: number): Promise<FirewallGroup | null> {
  // https://www.vultr.com/api/#tag/firewall/operation/list-firewall-groups (no filter: matched by description)
  return (
    (await listAll<FirewallGroup>(api, '/firewalls', 'firewall_groups', {}, perPage)).find(
      (g) => g.description === roleTag(buildId, role),
    ) ?? null
  );
}

export class VultrCompute implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: true, privateNetworking: true, images: true };
  readonly api: ApiClient;
  readonly #o: VultrOptions;
  readonly #keys = new KeyRegistrations<string>();

  constructor(o: VultrOptions, api = vultrClient(o)) {
    this.#o = o;
    this.api = api;
  }

  /**
   * The account key's id of each key, registered once. Vultr documents no answer for a key that is
   * there already (nor whether it refuses one): a 4xx on registering, like an unknown outcome, is
   * looked up again, and only reported when the key is still not there.
   */
  async #keyIds(keys: PublicKey[]): Promise<string[]> {
    const ids: string[] = [];
    // Parallel creates share one lookup-or-register per key.
    for (const k of keys) ids.push(await this.#keys.once(k, () => this.#keyId(k)));
    return ids;
  }

  async #keyId(k: PublicKey): Promise<string> {
    // https://www.vultr.com/api/#tag/ssh/operation/list-ssh-keys (cursor pages)
    const find = async () =>
      (await listAll<SshKey>(this.api, '/ssh-keys', 'ssh_keys', {}, this.#o.perPage)).find(
        (x) => x.name === k.name || sameKey(x.ssh_key, k),
      ) ?? null;
    const key =
      (await find()) ??
      // https://www.vultr.com/api/#tag/ssh/operation/create-ssh-key (201 {ssh_key})
      (await createOrFind(
        async () => (await this.api.post<{ ssh_key: SshKey }>('/ssh-keys', { name: k.name, ssh_key: k.line })).ssh_key,
        find,
        [400, 409, 422],
      ));
    return key.id;
  }

  // https://www.vultr.com/api/#tag/instances/operation/create-instance
  async create(o: CreateServerOptions): Promise<Server> {
    const { size, region, keys } = checkCreate(DRIVER_NAME, o, { size: this.#o.size, region: this.#o.region });
    const sshKeyIds = unique([...(this.#o.sshKeyIds ?? []), ...(await this.#keyIds(keys))]);
    // The role's firewall group, when `apply` made one: the instance is protected from its first packet.
    const group = await findGroup(this.api, o.buildId, o.role, this.#o.perPage);
    const body = {
      region,
      plan: size,
      label: o.name,
      hostname: o.name,
      ...(o.image ? { snapshot_id: o.image } : { os_id: this.#o.osId ?? DEBIAN_12_OS_ID }),
      tags: serverTags(o),
      // Documented as "the user-supplied, base64 encoded user data".
      user_data: Buffer.from(o.userData, 'utf8').toString('base64'),
      // `attach_vpc` takes precedence over `enable_vpc` (which attaches the region's only VPC, made when absent): send one.
      ...(o.vpc ? { attach_vpc: [o.vpc] } : { enable_vpc: true }),
      ...(sshKeyIds.length ? { sshkey_id: sshKeyIds } : {}),
      backups: 'disabled',
      activation_email: false,
      ...(group ? { firewall_group_id: group.id } : {}),
    };
    return createOnce(
      o,
      async () => toServer((await this.api.post<{ instance: Instance }>('/instances', body)).instance),
      (s) => s,
      (f) => this.list(f),
    );
  }

  // https://www.vultr.com/api/#tag/instances/operation/delete-instance (204; 404 when absent)
  async destroy(id: string): Promise<void> {
    await this.api.delete(`/instances/${encodeURIComponent(id)}`, { accept: [404] });
  }

  // https://www.vultr.com/api/#tag/instances/operation/list-instances (`tag` filters by one tag)
  async list(filter: ListServersFilter = {}): Promise<Server[]> {
    const tag = filter.buildId ? `adt-build-${filter.buildId}` : 'adt';
    const all = await listAll<Instance>(this.api, '/instances', 'instances', { tag }, this.#o.perPage);
    return all.filter((i) => nameMatches(i.label, filter)).map((i) => toServer(i));
  }

  // https://www.vultr.com/api/#tag/instances/operation/get-instance
  async get(id: string): Promise<Server | null> {
    const r = await this.api.get<{ instance: Instance } | null>(`/instances/${encodeURIComponent(id)}`, { accept: [404] });
    if (!r) return null;
    let privateIp: string | null = null;
    if (!r.instance.internal_ip && r.instance.status === 'active') {
      // The VPC address is listed apart: https://www.vultr.com/api/#tag/instances/operation/list-instance-vpcs
      const vpcs = await this.api.get<{ vpcs: { id: string; ip_address: string }[] } | null>(`/instances/${encodeURIComponent(id)}/vpcs`, {
        accept: [404],
      });
      privateIp = vpcs?.vpcs?.find((v) => v.ip_address)?.ip_address ?? null;
    }
    return toServer(r.instance, privateIp);
  }

  async waitUntilRunning(id: string, options: WaitOptions = {}): Promise<Server> {
    return waitForServer(
      DRIVER_NAME,
      id,
      (x) => this.get(x),
      options,
      (s) => s.privateIp !== null,
    );
  }

  // https://www.vultr.com/api/#tag/snapshot/operation/create-snapshot, then get-snapshot until `complete`
  async snapshot(id: string, name: string, options: WaitOptions = {}): Promise<string> {
    const started = Date.now();
    const snap = await createOrFind(
      async () => (await this.api.post<{ snapshot: Snapshot }>('/snapshots', { instance_id: id, description: name })).snapshot,
      // https://www.vultr.com/api/#tag/snapshot/operation/list-snapshots (`description` filter)
      async () =>
        (await listAll<Snapshot>(this.api, '/snapshots', 'snapshots', { description: name }, this.#o.perPage)).find(
          (s) => s.description === name && s.status !== 'deleted' && Date.parse(s.date_created) >= started - 300_000,
        ) ?? null,
    );
    await pollUntil(
      DRIVER_NAME,
      `snapshot ${name} of instance ${id}`,
      async () => {
        const s = await this.api.get<{ snapshot: Snapshot }>(`/snapshots/${encodeURIComponent(snap.id)}`);
        if (s.snapshot.status === 'deleted')
          throw fail('SNAPSHOT_FAILED', `snapshot ${name} of instance ${id} was deleted before it completed`);
        return s.snapshot.status === 'complete' ? true : null;
      },
      { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 10_000 },
    );
    return snap.id;
  }

  /**
   * The account's snapshot described exactly `name` (as `snapshot` describes it) that is `complete`
   * (not `pending`, not `deleted`), the newest of several; null when none.
   * https://www.vultr.com/api/#tag/snapshot/operation/list-snapshots (`description` filter, cursor pages)
   */
  async findImage(name: string): Promise<{ id: string; name: string } | null> {
    const snaps = (await listAll<Snapshot>(this.api, '/snapshots', 'snapshots', { description: name }, this.#o.perPage)).filter(
      (s) => s.description === name && s.status === 'complete',
    );
    // Ids are UUIDs (no order): of two made in the same second, the one listed later.
    const newest = snaps.reduce<Snapshot | undefined>(
      (best, s) => (!best || (Date.parse(s.date_created) || 0) >= (Date.parse(best.date_created) || 0) ? s : best),
      undefined,
    );
    return newest ? { id: newest.id, name: newest.description } : null;
  }
}

// --- Firewall rules ---

interface WantedRule {
  ip_type: 'v4' | 'v6';
  protocol: InboundRule['protocol'];
  port?: string;
  subnet: string;
  subnet_size: number;
  notes?: string;
}

function v6ToBigInt(ip: string): bigint {
  const [head, tail] = ip.includes('::') ? (ip.split('::') as [string, string]) : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g)))
    throw fail('BAD_RULE', `"${ip}" is not an IPv6 address`, { exitCode: 2 });
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n);
}

/**
 * A source as Vultr's rule fields: `ip_type`, the network address (`subnet`) and `subnet_size`. A
 * bare address is a /32 (v4) or /128 (v6); host bits are cleared and IPv6 is written in its
 * canonical short form, so what we send and what we read back compare equal.
 */
export function ruleSource(source: string): { ip_type: 'v4' | 'v6'; subnet: string; subnet_size: number } {
  const [ip, bits] = source.split('/') as [string, string | undefined];
  if (ip.includes(':')) {
    const size = bits === undefined ? 128 : Number(bits);
    if (!Number.isInteger(size) || size < 0 || size > 128) throw fail('BAD_RULE', `"${source}": an IPv6 prefix is 0-128`, { exitCode: 2 });
    const mask = size === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - size)) - 1n);
    const n = v6ToBigInt(ip) & mask;
    const full = Array.from({ length: 8 }, (_v, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
    // The WHATWG URL parser writes IPv6 hosts in RFC 5952 form.
    return { ip_type: 'v6', subnet: new URL(`http://[${full}]/`).hostname.slice(1, -1), subnet_size: size };
  }
  const size = bits === undefined ? 32 : Number(bits);
  const octets = ip.split('.').map(Number);
  if (
    octets.length !== 4 ||
    octets.some((x) => !Number.isInteger(x) || x < 0 || x > 255) ||
    !Number.isInteger(size) ||
    size < 0 ||
    size > 32
  ) {
    throw fail('BAD_RULE', `"${source}" is not an IPv4 address or CIDR`, { exitCode: 2 });
  }
  const n = (((octets[0]! << 24) >>> 0) + (octets[1]! << 16) + (octets[2]! << 8) + octets[3]!) >>> 0;
  const masked = size === 0 ? 0 : (n & ((0xffffffff << (32 - size)) >>> 0)) >>> 0;
  return { ip_type: 'v4', subnet: [24, 16, 8, 0].map((s) => (masked >>> s) & 255).join('.'), subnet_size: size };
}

function ruleKey(r: { ip_type: string; protocol: string; port?: string | null; subnet: string; subnet_size: number }): string {
  return `${r.ip_type}|${r.protocol.toLowerCase()}|${r.port ?? ''}|${r.subnet}/${r.subnet_size}`;
}

/** Rules as Vultr stores them: one per source; a range is `from:to`; icmp has no port. */
function wantedRules(rules: InboundRule[]): WantedRule[] {
  const out = new Map<string, WantedRule>();
  for (const r of rules) {
    const sources = r.protocol === 'icmp' && r.sources.length === 0 ? ['0.0.0.0/0', '::/0'] : r.sources;
    const port =
      r.protocol === 'icmp' || r.port === undefined
        ? undefined
        : Array.isArray(r.port)
          ? r.port[0] === r.port[1]
            ? String(r.port[0])
            : `${r.port[0]}:${r.port[1]}`
          : String(r.port);
    for (const src of sources) {
      const w: WantedRule = {
        ...ruleSource(src),
        protocol: r.protocol,
        ...(port === undefined ? {} : { port }),
        ...(r.description ? { notes: r.description.slice(0, 255) } : {}),
      };
      const key = ruleKey(w);
      if (!out.has(key))
        out.set(key, {
          ip_type: w.ip_type,
          protocol: w.protocol,
          ...(port === undefined ? {} : { port }),
          subnet: w.subnet,
          subnet_size: w.subnet_size,
          ...(w.notes ? { notes: w.notes } : {}),
        });
    }
  }
  return [...out.values()];
}

function readKey(r: FirewallRule): string {
  // Read back through the same canonical form (Vultr may spell an address differently).
  try {
    const s = ruleSource(`${r.subnet}/${r.subnet_size}`);
    return ruleKey({ ...r, ...s, port: r.port || '' });
  } catch {
    return `raw|${r.id}`;
  }
}

/** Firewall groups per build and role: https://www.vultr.com/api/#tag/firewall */
export class VultrFirewall implements NativeFirewallProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #perPage: number | undefined;

  constructor(api: ApiClient, options: { perPage?: number } = {}) {
    this.api = api;
    this.#perPage = options.perPage;
  }

  #rules(groupId: string): Promise<FirewallRule[]> {
    // https://www.vultr.com/api/#tag/firewall/operation/list-firewall-group-rules (v4 and v6 together)
    return listAll<FirewallRule>(this.api, `/firewalls/${encodeURIComponent(groupId)}/rules`, 'firewall_rules', {}, this.#perPage);
  }

  async #addRule(groupId: string, rule: WantedRule): Promise<void> {
    const key = ruleKey(rule);
    // https://www.vultr.com/api/#tag/firewall/operation/post-firewalls-firewall-group-id-rules
    await createOrFind(
      () => this.api.post(`/firewalls/${encodeURIComponent(groupId)}/rules`, rule).then(() => true),
      async () => ((await this.#rules(groupId)).some((r) => readKey(r) === key) ? true : null),
    );
  }

  async apply(buildId: string, role: Role, rules: InboundRule[]): Promise<void> {
    for (const [i, rule] of rules.entries()) validateRule(rule, `rules[${i}]`);
    const wanted = wantedRules(rules);
    const description = roleTag(buildId, role);
    // https://www.vultr.com/api/#tag/firewall/operation/create-firewall-group
    const group =
      (await findGroup(this.api, buildId, role, this.#perPage)) ??
      (await createOrFind(
        async () => (await this.api.post<{ firewall_group: FirewallGroup }>('/firewalls', { description })).firewall_group,
        () => findGroup(this.api, buildId, role, this.#perPage),
      ));
    const max = group.max_rule_count;
    if (max && wanted.length > max)
      throw fail(
        'TOO_MANY_RULES',
        `firewall of ${role} in build ${buildId}: ${wanted.length} rules (one per source address), ` +
          `a Vultr firewall group holds at most ${max}`,
        { exitCode: 2 },
      );
    const current = await this.#rules(group.id);
    const have = new Set(current.map(readKey));
    const want = new Set(wanted.map(ruleKey));
    const missing = wanted.filter((r) => !have.has(ruleKey(r)));
    const extra = current.filter((r) => !want.has(readKey(r)));
    // Add first, then delete: the role is never between two rule sets. Only when the group's limit
    // leaves no room are some extra rules deleted before the last additions.
    const room = max ? Math.max(0, max - current.length) : missing.length;
    for (const r of missing.slice(0, room)) await this.#addRule(group.id, r);
    // https://www.vultr.com/api/#tag/firewall/operation/delete-firewall-group-rule
    for (const r of extra) await this.api.delete(`/firewalls/${encodeURIComponent(group.id)}/rules/${r.id}`, { accept: [404] });
    for (const r of missing.slice(room)) await this.#addRule(group.id, r);
    // The role's instances made before the group existed (or moved out of it) join it.
    const instances = await listAll<Instance>(this.api, '/instances', 'instances', { tag: description }, this.#perPage);
    for (const i of instances.filter((x) => nameMatches(x.label, { buildId, role }) && x.firewall_group_id !== group.id)) {
      // https://www.vultr.com/api/#tag/instances/operation/update-instance (202; setting a field twice is harmless)
      await this.api.patch(`/instances/${encodeURIComponent(i.id)}`, { firewall_group_id: group.id }, { idempotent: true });
    }
  }

  async get(buildId: string, role: Role): Promise<InboundRule[] | null> {
    const group = await findGroup(this.api, buildId, role, this.#perPage);
    if (!group) return null;
    const byRule = new Map<string, InboundRule>();
    for (const r of await this.#rules(group.id)) {
      const protocol = r.protocol.toLowerCase() as InboundRule['protocol'];
      const [a, b] = r.port ? r.port.split(':').map(Number) : [];
      const port = a === undefined || Number.isNaN(a) ? undefined : b === undefined || a === b ? a : ([a, b] as [number, number]);
      const key = `${protocol}|${r.port ?? ''}|${r.notes ?? ''}`;
      const source = `${r.subnet}/${r.subnet_size}`;
      const prev = byRule.get(key);
      if (prev) prev.sources.push(source);
      else
        byRule.set(key, {
          protocol,
          ...(port === undefined ? {} : { port }),
          sources: [source],
          ...(r.notes ? { description: r.notes } : {}),
        });
    }
    return [...byRule.values()];
  }

  // https://www.vultr.com/api/#tag/firewall/operation/delete-firewall-group
  async remove(buildId: string, role: Role): Promise<void> {
    const group = await findGroup(this.api, buildId, role, this.#perPage);
    if (group) await this.api.delete(`/firewalls/${encodeURIComponent(group.id)}`, { accept: [404] });
  }
}

export interface VultrDnsOptions extends VultrOptions {
  /** The domain (zone) managed at Vultr, e.g. `example.com`. */
  zone: string;
  /** TTL of new records in seconds (default 60). */
  defaultTtl?: number;
}

/** DNS domains and records: https://www.vultr.com/api/#tag/dns */
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
    // https://www.vultr.com/api/#tag/dns/operation/get-dns-domain (404 when absent)
    const exists = async () => ((await this.api.get(`/domains/${encodeURIComponent(z)}`, { accept: [404] })) ? true : null);
    if (await exists()) return;
    // https://www.vultr.com/api/#tag/dns/operation/create-dns-domain (no `ip`: an empty zone)
    await createOrFind(() => this.api.post('/domains', { domain: z }).then(() => true), exists);
  }

  /** The zone's A records of one name. Vultr's record list has no filter: the whole zone is read. */
  async #records(name: string): Promise<{ fqdn: string; rel: string; records: DnsRecordApi[] }> {
    const fqdn = name.toLowerCase().replace(/\.$/, '');
    const relative = relativeName(fqdn, this.#zone(), DRIVER_NAME);
    // Vultr's names are relative, '' for the apex.
    const rel = relative === '@' ? '' : relative;
    // https://www.vultr.com/api/#tag/dns/operation/list-dns-domain-records
    const all = await listAll<DnsRecordApi>(
      this.api,
      `/domains/${encodeURIComponent(this.#zone())}/records`,
      'records',
      {},
      this.#o.perPage,
    );
    return { fqdn, rel, records: all.filter((x) => x.type === 'A' && x.name.toLowerCase() === rel) };
  }

  async listA(name: string): Promise<DnsRecord[]> {
    const { fqdn, records } = await this.#records(name);
    return records.map((r) => ({ name: fqdn, type: 'A' as const, content: r.data, ttl: r.ttl }));
  }

  async addA(name: string, ip: string, ttl = this.#o.defaultTtl ?? 60): Promise<void> {
    const { rel, records } = await this.#records(name);
    if (records.some((r) => r.data === ip)) return;
    // https://www.vultr.com/api/#tag/dns/operation/create-dns-domain-record
    await createOrFind(
      () => this.api.post(`/domains/${encodeURIComponent(this.#zone())}/records`, { name: rel, type: 'A', data: ip, ttl }).then(() => true),
      async () => ((await this.#records(name)).records.some((r) => r.data === ip) ? true : null),
    );
  }

  async removeA(name: string, ip: string): Promise<void> {
    const { records } = await this.#records(name);
    // https://www.vultr.com/api/#tag/dns/operation/delete-dns-domain-record (204)
    for (const r of records.filter((x) => x.data === ip))
      await this.api.delete(`/domains/${encodeURIComponent(this.#zone())}/records/${encodeURIComponent(r.id)}`, { accept: [404] });
  }
}

/** Managed MySQL/PostgreSQL: https://www.vultr.com/api/#tag/managed-databases */
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
    const find = async () => (await this.list({ buildId: o.buildId })).find((d) => d.name === o.name) ?? null;
    const existing = await find();
    if (existing) {
      await this.setAllowList(existing.id, o.allow);
      return existing;
    }
    // https://www.vultr.com/api/#tag/managed-databases/operation/create-database (202)
    const body = {
      database_engine: o.engine === 'postgres' ? 'pg' : 'mysql',
      database_engine_version: o.version ?? (o.engine === 'postgres' ? '16' : '8'),
      region,
      plan: o.size ?? 'vultr-dbaas-hobbyist-cc-1-25-1',
      label: o.name,
      tag: `adt-build-${o.buildId}`,
      ...(o.vpc ? { vpc_id: o.vpc } : {}),
      // Set at creation: the cluster is never reachable from anywhere else.
      trusted_ips: o.allow,
    };
    let made = true;
    const db = await createOrFind(
      async () => toDatabase((await this.api.post<{ database: Database }>('/databases', body)).database),
      async () => ((made = false), find()),
    );
    // Recovered after an unknown outcome: the request may not have carried the list; set it again.
    if (!made) await this.setAllowList(db.id, o.allow);
    return db;
  }

  // https://www.vultr.com/api/#tag/managed-databases/operation/get-database
  async get(id: string): Promise<ManagedDatabase | null> {
    const r = await this.api.get<{ database: Database } | null>(`/databases/${encodeURIComponent(id)}`, { accept: [404] });
    return r ? toDatabase(r.database) : null;
  }

  // https://www.vultr.com/api/#tag/managed-databases/operation/list-databases (filters label, tag, region; not paginated)
  async list(filter: { buildId?: string } = {}): Promise<ManagedDatabase[]> {
    const tag = filter.buildId ? `adt-build-${filter.buildId}` : undefined;
    const r = await this.api.get<{ databases: Database[] | null }>('/databases', { query: { tag } });
    return (r?.databases ?? []).filter((d) => (tag ? d.tag === tag : d.tag?.startsWith('adt-build-'))).map(toDatabase);
  }

  async waitUntilOnline(id: string, options: WaitOptions = {}): Promise<ManagedDatabase> {
    return waitForDatabase(DRIVER_NAME, id, (x) => this.get(x), options);
  }

  // https://www.vultr.com/api/#tag/managed-databases/operation/update-database (`trusted_ips` replaces the list)
  async setAllowList(id: string, sources: string[]): Promise<void> {
    validateAllowList(sources, 'allow');
    await this.api.put(`/databases/${encodeURIComponent(id)}`, { trusted_ips: sources });
  }

  async getAllowList(id: string): Promise<string[]> {
    const r = await this.api.get<{ database: Database } | null>(`/databases/${encodeURIComponent(id)}`, { accept: [404] });
    if (!r) throw fail('NOT_FOUND', `database ${id} is gone`);
    return r.database.trusted_ips ?? [];
  }

  // https://www.vultr.com/api/#tag/managed-databases/operation/delete-database (204)
  async destroy(id: string): Promise<void> {
    await this.api.delete(`/databases/${encodeURIComponent(id)}`, { accept: [404] });
  }
}

function toDatabase(d: Database): ManagedDatabase {
  return {
    id: d.id,
    name: d.label,
    buildId: d.tag?.startsWith('adt-build-') ? d.tag.slice('adt-build-'.length) : '',
    engine: d.database_engine === 'pg' ? 'postgres' : 'mysql',
    // Documented states: Rebuilding, Rebalancing, Running (Configuring when settings change). Vultr's
    // Terraform provider also waits through "Error" rather than failing, so only Running is online.
    state: d.status === 'Running' ? 'online' : 'creating',
    // `host` is the private host name when the cluster is in a VPC, and `public_host` is then the public one.
    host: d.public_host || d.host || null,
    privateHost: d.public_host ? d.host || null : null,
    port: d.port ? Number(d.port) : null,
    user: d.user || null,
    password: d.password || null,
    database: d.dbname || null,
  };
}

/** Registry entry point: the compute driver; `.firewall`, `.dns(zone)` and `.databases` share its client. */
export default function vultrDriver(o: VultrOptions) {
  const api = vultrClient(o);
  const compute = new VultrCompute(o, api);
  return Object.assign(compute, {
    firewall: new VultrFirewall(api, { perPage: o.perPage }),
    databases: new VultrDatabases(o, api),
    dns: (zone: string, defaultTtl?: number) => new VultrDns({ ...o, zone, defaultTtl }, api),
  });
}
