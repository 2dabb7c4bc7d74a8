/**
 * Exoscale: compute instances, security groups, DNS and DBaaS over API v2
 * (https://openapi-v2.exoscale.com/), with plain `fetch` through our one API client and the
 * request signature done here (Exoscale's SDKs are Go/Python/Java; none for TypeScript).
 *
 * - Authentication: `Authorization: EXO2-HMAC-SHA256 credential=<key>[,signed-query-args=<a;b>],
 *   expires=<unix>,signature=<base64 HMAC-SHA256>` over "<METHOD> <path>\n<body>\n<query values in
 *   the order of signed-query-args>\n<headers: none>\n<expires>" (as egoscale signs). The secret
 *   never leaves this process; a signature lives 10 minutes.
 * - Writes are asynchronous: they answer an operation `{id, state, reference}` that is polled
 *   (`GET /operation/{id}`, bounded) until `success`; its `reference.id` is what was made.
 * - Lists are not paginated in API v2 (one answer with every item); filters are applied here.
 * - Tags are instance labels (`adt`, `adt-role-<role>`, ... as keys, value "1").
 * - A security group per build and role (`adt-<build>-<role>`): instances of the role are created
 *   in it, and `apply` attaches the role's existing ones. Rules are replaced add-before-delete.
 * - Private addresses come from a managed private network (`privateNetwork` option): every new
 *   instance is attached to it, and its address is the network's lease for the instance.
 * - Sizes are instance types (`standard.small`) and the image a template name or id, both
 *   resolved to ids through the API.
 * - Snapshots for faster builds: a snapshot of the instance's disk, promoted to a private template
 *   (what `exo compute instance-template register --from-snapshot` does); the template's id is the
 *   image of later instances.
 * - SSH keys of `create` (`sshKeys`) are account keys, referenced by name: found in `GET /ssh-key`
 *   (by our name `adt-<sha256 prefix>`, or by fingerprint), registered when absent (`POST /ssh-key`
 *   `{name, public-key}`, an operation waited for), and given to the instance in `ssh-keys` (the
 *   `sshKey` option's name first; `ssh-key`, one key, is deprecated in the API).
 */
import { createHmac } from 'node:crypto';
import { errorFactory, sleep } from '@adt/core';
import { createApiClient, type ApiClient } from '../http.ts';
import { nameMatches, parseServerName } from '../naming.ts';
import { validateAllowList, validateRule } from '../rules.ts';
import {
  checkCreate,
  createOnce,
  outcomeUnknown,
  createOrFind,
  KeyRegistrations,
  pollUntil,
  waitForDatabase,
  waitForServer,
  relativeName,
  roleTag,
  serverTags,
  unique,
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
  WaitOptions,
} from '../types.ts';

export const DRIVER_NAME = 'exoscale';
const fail = errorFactory('providers', DRIVER_NAME);

export interface ExoscaleOptions {
  /** The API key (EXO...) and its secret. The secret only signs requests: never sent, never logged. */
  apiKey: string;
  apiSecret: string;
  /** The zone, e.g. `ch-gva-2` (it selects the API endpoint). */
  zone?: string;
  /** API base URL (default `https://api-<zone>.exoscale.com/v2`; a fake's URL in tests). */
  baseUrl?: string;
  /** Instance type as family.size (default `standard.small`). */
  size?: string;
  /** Template name or id (default `Linux Debian 12 (Bookworm) 64-bit`). */
  template?: string;
  /** Root disk size in GB (default 10). */
  diskSize?: number;
  /** A managed private network every new instance joins (its private address). */
  privateNetwork?: string;
  /** SSH key name registered at Exoscale, for every new instance besides those of `create`'s `sshKeys`. */
  sshKey?: string;
  fetch?: typeof fetch;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: Parameters<typeof createApiClient>[0]['onRetry'];
  /** Poll interval of asynchronous operations (default 1 s). */
  operationIntervalMs?: number;
  /** Clock (ms), for signatures in tests. */
  now?: () => number;
}

// --- API shapes (only the fields we read) ---

interface Operation {
  id: string;
  state: 'pending' | 'success' | 'failure' | 'timeout';
  reference?: { id: string };
  message?: string;
}
interface Instance {
  id: string;
  name: string;
  state: string;
  'public-ip'?: string;
  labels?: Record<string, string>;
  'created-at': string;
  'private-networks'?: { id: string }[];
  'security-groups'?: { id: string }[];
}
interface SecurityGroup {
  id: string;
  name: string;
  rules?: SgRule[];
}
interface SgRule {
  id: string;
  'flow-direction': 'ingress' | 'egress';
  protocol: string;
  'start-port'?: number;
  'end-port'?: number;
  network?: string;
  description?: string;
}
interface Snapshot {
  id: string;
  name?: string;
  state: string;
  'created-at': string;
  instance?: { id: string };
}
interface Template {
  id: string;
  name: string;
  visibility?: string;
}
interface DnsDomain {
  id: string;
  'unicode-name': string;
}
interface DnsRecordApi {
  id: string;
  name: string;
  type: string;
  content: string;
  ttl: number;
}
interface SshKey {
  name: string;
  fingerprint?: string;
}
interface DbService {
  name: string;
  type: string;
  state: string;
  'ip-filter'?: string[];
  'connection-info'?: { params?: { host?: string; port?: string; user?: string; password?: string; dbname?: string }[] };
}

/**
 * The Authorization header value of a request (egoscale's scheme). Query parameters with one value
 * are signed, sorted by name.
 */
export function exoscaleSignature(
  o: { apiKey: string; apiSecret: string },
  req: { method: string; url: string; body: string | undefined },
  expires: number,
): string {
  const u = new URL(req.url);
  const names = [...new Set([...u.searchParams.keys()])].filter((k) => u.searchParams.getAll(k).length === 1).sort();
  const message = [
    `${req.method} ${u.pathname}`,
    req.body ?? '',
    names.map((k) => u.searchParams.get(k)).join(''),
    '',
    String(expires),
  ].join('\n');
  const signature = createHmac('sha256', o.apiSecret).update(message).digest('base64');
  return [
    'EXO2-HMAC-SHA256 credential=' + o.apiKey,
    ...(names.length ? [`signed-query-args=${names.join(';')}`] : []),
    `expires=${expires}`,
    `signature=${signature}`,
  ].join(',');
}

export function exoscaleClient(o: ExoscaleOptions): ApiClient {
  if (!o.apiKey || !o.apiSecret) throw fail('NO_TOKEN', 'EXOSCALE_API_KEY and EXOSCALE_API_SECRET are required', { exitCode: 2 });
  const zone = o.zone ?? 'ch-gva-2';
  return createApiClient({
    provider: DRIVER_NAME,
    baseUrl: o.baseUrl ?? `https://api-${zone}.exoscale.com/v2`,
    auth: (req) => ({ Authorization: exoscaleSignature(o, req, Math.floor((o.now ?? Date.now)() / 1000) + 600) }),
    // Error bodies: {message}, {error, retry_after} (429), or {title, detail} on newer endpoints.
    errorMessage: (b) => {
      const e = b as { message?: string; error?: string; detail?: string; title?: string };
      return e.message ?? e.error ?? e.detail ?? e.title;
    },
    fetch: o.fetch,
    baseDelayMs: o.baseDelayMs,
    maxDelayMs: o.maxDelayMs,
    onRetry: o.onRetry,
  });
}

/** Waits (bounded) for an asynchronous operation; returns the id of what it made or changed. */
async function settle(api: ApiClient, op: Operation, what: string, intervalMs = 1000): Promise<string> {
  let current = op;
  for (let i = 0; i < 600 && current.state === 'pending'; i++) {
    await sleep(intervalMs);
    current = await api.get<Operation>(`/operation/${encodeURIComponent(op.id)}`);
  }
  if (current.state !== 'success')
    throw fail('OPERATION_FAILED', `${what}: operation ${op.id} ended ${current.state}${current.message ? `: ${current.message}` : ''}`);
  return current.reference?.id ?? '';
}

function labelsOf(tags: string[]): Record<string, string> {
  return Object.fromEntries(tags.map((t) => [t, '1']));
}

export class ExoscaleCompute implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: true, privateNetworking: true };
  readonly api: ApiClient;
  readonly #o: ExoscaleOptions;
  readonly #keys = new KeyRegistrations<string>();
  #typeIds = new Map<string, string>();
  /** Servers created here on a private network: running means having its address too. */
  #wantsPrivate = new Set<string>();
  #templateIds = new Map<string, string>();

  constructor(o: ExoscaleOptions, api = exoscaleClient(o)) {
    this.#o = o;
    this.api = api;
  }

  async #typeId(size: string): Promise<string> {
    if (/^[0-9a-f-]{36}$/.test(size)) return size;
    const cached = this.#typeIds.get(size);
    if (cached) return cached;
    // https://openapi-v2.exoscale.com/operation/operation-list-instance-types
    const types = (await this.api.get<{ 'instance-types': { id: string; family: string; size: string }[] }>('/instance-type'))[
      'instance-types'
    ];
    const t = types.find((x) => `${x.family}.${x.size}` === size);
    if (!t)
      throw fail(
        'BAD_SIZE',
        `instance type "${size}": not offered (family.size, e.g. standard.small; have ${types
          .map((x) => `${x.family}.${x.size}`)
          .slice(0, 8)
          .join(', ')}...)`,
        { exitCode: 2 },
      );
    this.#typeIds.set(size, t.id);
    return t.id;
  }

  async #templateId(template: string): Promise<string> {
    if (/^[0-9a-f-]{36}$/.test(template)) return template;
    const cached = this.#templateIds.get(template);
    if (cached) return cached;
    // https://openapi-v2.exoscale.com/operation/operation-list-templates
    let t: Template | undefined;
    for (const visibility of ['public', 'private']) {
      t = (await this.api.get<{ templates?: Template[] }>('/template', { query: { visibility } })).templates?.find(
        (x) => x.name === template,
      );
      if (t) break;
    }
    if (!t)
      throw fail('BAD_TEMPLATE', `template "${template}" not found (neither a public template nor one of this account's)`, { exitCode: 2 });
    this.#templateIds.set(template, t.id);
    return t.id;
  }

  /** Private addresses of these instances: the leases of the private networks they are attached to. */
  async #privateIps(instances: Instance[]): Promise<Map<string, string>> {
    const networks = new Set(instances.flatMap((i) => (i['private-networks'] ?? []).map((n) => n.id)));
    const out = new Map<string, string>();
    for (const id of networks) {
      // https://openapi-v2.exoscale.com/operation/operation-get-private-network (leases: managed networks only)
      const net = await this.api.get<{ leases?: { 'instance-id': string; ip: string }[] } | null>(
        `/private-network/${encodeURIComponent(id)}`,
        { accept: [404] },
      );
      for (const l of net?.leases ?? []) if (!out.has(l['instance-id'])) out.set(l['instance-id'], l.ip);
    }
    return out;
  }

  #toServer(i: Instance, privateIps: Map<string, string>): Server {
    const p = parseServerName(i.name);
    const states: Record<string, Server['state']> = {
      running: 'running',
      starting: 'creating',
      stopping: 'stopped',
      stopped: 'stopped',
      destroying: 'destroying',
      error: 'error',
    };
    return {
      id: i.id,
      name: i.name,
      role: p?.role ?? 'webserver',
      buildId: p?.buildId ?? '',
      state: states[i.state] ?? 'creating',
      publicIp: i['public-ip'] ?? null,
      privateIp: privateIps.get(i.id) ?? null,
      tags: Object.keys(i.labels ?? {}),
      createdAt: i['created-at'],
    };
  }

  /**
   * The registered name of each key, registered once. Exoscale documents neither the fingerprint's
   * format nor the answer to registering a name or key twice: a key is ours by name, or by an MD5
   * or SHA-256 fingerprint in either spelling; a 4xx on registering, like an unknown outcome, is
   * looked up again and only reported when the key is still not there.
   */
  async #keyNames(keys: PublicKey[]): Promise<string[]> {
    const names: string[] = [];
    // Parallel creates share one lookup-or-register per key.
    for (const k of keys) names.push(await this.#keys.once(k, () => this.#keyName(k)));
    return names;
  }

  async #keyName(k: PublicKey): Promise<string> {
    const ours = (x: SshKey) => {
      const fp = (x.fingerprint ?? '').replace(/^(MD5|SHA256):/i, '');
      return x.name === k.name || fp.toLowerCase() === k.md5 || fp === k.sha256.slice('SHA256:'.length);
    };
    // https://openapi-v2.exoscale.com/operation/operation-list-ssh-keys
    const find = async () => ((await this.api.get<{ 'ssh-keys'?: SshKey[] }>('/ssh-key'))['ssh-keys'] ?? []).find(ours) ?? null;
    const key =
      (await find()) ??
      // https://openapi-v2.exoscale.com/operation/operation-register-ssh-key (an operation)
      (await createOrFind(
        async () => {
          const op = await this.api.post<Operation>('/ssh-key', { name: k.name, 'public-key': k.line });
          try {
            await settle(this.api, op, `register SSH key ${k.name}`, this.#o.operationIntervalMs);
          } catch (error) {
            // An operation that failed or did not end may still have made the key (or found it there).
            const found = await find();
            if (found) return found;
            throw error;
          }
          return { name: k.name };
        },
        find,
        [400, 409],
      ));
    return key.name;
  }

  // https://openapi-v2.exoscale.com/operation/operation-create-instance
  async create(o: CreateServerOptions): Promise<Server> {
    const { size, region, keys } = checkCreate(DRIVER_NAME, o, {
      size: this.#o.size ?? 'standard.small',
      region: this.#o.zone ?? 'ch-gva-2',
    });
    if (region !== (this.#o.zone ?? 'ch-gva-2'))
      throw fail(
        'BAD_REGION',
        `${o.name}: region ${region}, but this driver talks to zone ${this.#o.zone ?? 'ch-gva-2'} (one driver per zone)`,
        { exitCode: 2 },
      );
    const [typeId, templateId, group] = await Promise.all([
      this.#typeId(size),
      this.#templateId(o.image ?? this.#o.template ?? 'Linux Debian 12 (Bookworm) 64-bit'),
      findGroup(this.api, o.buildId, o.role),
    ]);
    // After the type and template are known good: nothing is registered for a create refused on them.
    const sshKeys = unique([...(this.#o.sshKey ? [this.#o.sshKey] : []), ...(await this.#keyNames(keys))]);
    const body = {
      name: o.name,
      'instance-type': { id: typeId },
      template: { id: templateId },
      'disk-size': this.#o.diskSize ?? 10,
      'user-data': Buffer.from(o.userData).toString('base64'),
      labels: labelsOf(serverTags(o)),
      ...(group ? { 'security-groups': [{ id: group.id }] } : {}),
      ...(sshKeys.length ? { 'ssh-keys': sshKeys.map((name) => ({ name })) } : {}),
    };
    const id = await createOnce(
      o,
      async () => settle(this.api, await this.api.post<Operation>('/instance', body), `create ${o.name}`, this.#o.operationIntervalMs),
      (s) => s.id,
      (f) => this.list(f),
    );
    const network = o.vpc ?? this.#o.privateNetwork;
    if (network) {
      this.#wantsPrivate.add(id);
      const attached = (await this.api.get<Instance>(`/instance/${encodeURIComponent(id)}`))['private-networks']?.some(
        (n) => n.id === network,
      );
      // https://openapi-v2.exoscale.com/operation/operation-attach-instance-to-private-network
      if (!attached)
        await settle(
          this.api,
          await this.api.put<Operation>(`/private-network/${encodeURIComponent(network)}:attach`, { instance: { id } }),
          `attach ${o.name} to private network ${network}`,
          this.#o.operationIntervalMs,
        );
    }
    const s = await this.get(id);
    if (!s) throw fail('NOT_FOUND', `instance ${o.name} (${id}) was created but is not found`);
    return s;
  }

  async destroy(id: string): Promise<void> {
    // https://openapi-v2.exoscale.com/operation/operation-delete-instance
    const r = await this.api.request<Operation | null>('DELETE', `/instance/${encodeURIComponent(id)}`, { accept: [404] });
    if (r.body) await settle(this.api, r.body, `delete instance ${id}`, this.#o.operationIntervalMs);
  }

  // https://openapi-v2.exoscale.com/operation/operation-list-instances
  async list(filter: ListServersFilter = {}): Promise<Server[]> {
    const ours = await ourInstances(this.api, filter);
    const ips = await this.#privateIps(ours);
    return ours.map((i) => this.#toServer(i, ips));
  }

  async get(id: string): Promise<Server | null> {
    const i = await this.api.get<Instance | null>(`/instance/${encodeURIComponent(id)}`, { accept: [404] });
    return i ? this.#toServer(i, await this.#privateIps([i])) : null;
  }

  async waitUntilRunning(id: string, options: WaitOptions = {}): Promise<Server> {
    return waitForServer(
      DRIVER_NAME,
      id,
      (x) => this.get(x),
      options,
      (s) => !this.#wantsPrivate.has(id) || Boolean(s.privateIp),
    );
  }

  /**
   * Snapshots the instance's disk and promotes the snapshot to a private template named `name`;
   * returns the template's id (an `image` for `create`). Each step is made once: after an answer
   * with an unknown outcome (5xx, timeout) the snapshot or template is looked for before failing.
   */
  async snapshot(id: string, name: string, options: WaitOptions = {}): Promise<string> {
    const interval = this.#o.operationIntervalMs;
    const existing = await this.#privateTemplate(name);
    if (existing)
      throw fail('SNAPSHOT_EXISTS', `a template named "${name}" already exists (${existing.id}): choose another name or delete it`, {
        exitCode: 2,
      });
    // Snapshots have no name we choose: the ones of this instance before ours tell ours apart.
    // https://openapi-v2.exoscale.com/operation/operation-list-snapshots
    const snapshotsOf = async () =>
      ((await this.api.get<{ snapshots?: Snapshot[] }>('/snapshot')).snapshots ?? []).filter(
        (x) => x.instance?.id === id && x.state !== 'deleted' && x.state !== 'deleting',
      );
    const before = new Set((await snapshotsOf()).map((x) => x.id));
    let snapshotId: string;
    try {
      // https://openapi-v2.exoscale.com/operation/operation-create-snapshot
      snapshotId = await settle(
        this.api,
        await this.api.post<Operation>(`/instance/${encodeURIComponent(id)}:create-snapshot`),
        `snapshot of instance ${id}`,
        interval,
      );
    } catch (error) {
      if (!outcomeUnknown(error)) throw error;
      const made = (await snapshotsOf()).filter((x) => !before.has(x.id));
      if (made.length !== 1) throw error;
      snapshotId = made[0]!.id;
    }
    await pollUntil(
      DRIVER_NAME,
      `snapshot ${snapshotId} of instance ${id}`,
      async () => {
        // https://openapi-v2.exoscale.com/operation/operation-get-snapshot
        const s = await this.api.get<Snapshot | null>(`/snapshot/${encodeURIComponent(snapshotId)}`, { accept: [404] });
        if (!s || s.state === 'deleted' || s.state === 'deleting')
          throw fail('SNAPSHOT_FAILED', `snapshot ${snapshotId} of instance ${id} was deleted before it was ready`);
        if (s.state === 'error') throw fail('SNAPSHOT_FAILED', `snapshot ${snapshotId} of instance ${id} failed`);
        return s.state === 'ready' || s.state === 'exported' ? true : null;
      },
      { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 10_000 },
    );
    const body = {
      name,
      description: `adt: snapshot ${snapshotId} of instance ${id}`,
      'default-user': 'debian',
      'ssh-key-enabled': true,
      'password-enabled': false,
    };
    try {
      // https://openapi-v2.exoscale.com/operation/operation-promote-snapshot-to-template
      const templateId = await settle(
        this.api,
        await this.api.post<Operation>(`/snapshot/${encodeURIComponent(snapshotId)}:promote`, body),
        `template ${name} from snapshot ${snapshotId}`,
        interval,
      );
      this.#templateIds.set(name, templateId);
      return templateId;
    } catch (error) {
      if (!outcomeUnknown(error)) throw error;
      const made = await this.#privateTemplate(name);
      if (!made) throw error;
      return made.id;
    }
  }

  async #privateTemplate(name: string): Promise<Template | null> {
    // https://openapi-v2.exoscale.com/operation/operation-list-templates
    return (
      (await this.api.get<{ templates?: Template[] }>('/template', { query: { visibility: 'private' } })).templates?.find(
        (t) => t.name === name,
      ) ?? null
    );
  }
}

/** The instances of ours (by label and name), as the API lists them. */
async function ourInstances(api: ApiClient, filter: ListServersFilter): Promise<Instance[]> {
  const label = filter.buildId ? `adt-build-${filter.buildId}` : 'adt';
  const all = (await api.get<{ instances?: Instance[] }>('/instance')).instances ?? [];
  return all.filter((i) => i.labels?.[label] !== undefined && nameMatches(i.name, filter));
}

async function findGroup(api: ApiClient, buildId: string, role: Role): Promise<SecurityGroup | null> {
  // https://openapi-v2.exoscale.com/operation/operation-list-security-groups
  const all = (await api.get<{ 'security-groups'?: SecurityGroup[] }>('/security-group'))['security-groups'] ?? [];
  return all.find((g) => g.name === roleTag(buildId, role)) ?? null;
}

function sgKey(r: { protocol: string; 'start-port'?: number; 'end-port'?: number; network?: string }): string {
  return `${r.protocol}|${r['start-port'] ?? ''}|${r['end-port'] ?? ''}|${r.network ?? ''}`;
}

/** Security groups: https://openapi-v2.exoscale.com/operation/operation-create-security-group */
export class ExoscaleFirewall implements NativeFirewallProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: ExoscaleOptions;

  constructor(o: ExoscaleOptions, api: ApiClient) {
    this.#o = o;
    this.api = api;
  }

  async apply(buildId: string, role: Role, rules: InboundRule[]): Promise<void> {
    for (const [i, rule] of rules.entries()) validateRule(rule, `rules[${i}]`);
    const wanted = rules.flatMap((r) =>
      (r.protocol === 'icmp' && r.sources.length === 0 ? ['0.0.0.0/0', '::/0'] : r.sources).map((src) => ({
        'flow-direction': 'ingress' as const,
        protocol: r.protocol === 'icmp' && src.includes(':') ? 'icmpv6' : r.protocol,
        ...(r.port === undefined
          ? {}
          : { 'start-port': Array.isArray(r.port) ? r.port[0] : r.port, 'end-port': Array.isArray(r.port) ? r.port[1] : r.port }),
        network: src.includes('/') ? src : `${src}/${src.includes(':') ? 128 : 32}`,
        ...(r.protocol === 'icmp' ? { icmp: { type: -1, code: -1 } } : {}),
        description: (r.description ?? 'adt').slice(0, 255),
      })),
    );
    const interval = this.#o.operationIntervalMs;
    let group = await findGroup(this.api, buildId, role);
    if (!group) {
      const name = roleTag(buildId, role);
      const id = await settle(
        this.api,
        await this.api.post<Operation>('/security-group', { name, description: `adt: ${role} servers of build ${buildId}` }),
        `create security group ${name}`,
        interval,
      );
      group = { id, name, rules: [] };
    }
    const current = ((await this.api.get<SecurityGroup>(`/security-group/${group.id}`)).rules ?? []).filter(
      (r) => r['flow-direction'] === 'ingress',
    );
    const have = new Set(current.map(sgKey));
    const want = new Set(wanted.map(sgKey));
    for (const r of wanted.filter((x) => !have.has(sgKey(x)))) {
      // https://openapi-v2.exoscale.com/operation/operation-add-rule-to-security-group
      await settle(
        this.api,
        await this.api.post<Operation>(`/security-group/${group.id}/rules`, r),
        `add a rule to ${group.name}`,
        interval,
      );
    }
    for (const r of current.filter((x) => !want.has(sgKey(x)))) {
      const res = await this.api.request<Operation | null>('DELETE', `/security-group/${group.id}/rules/${r.id}`, { accept: [404] });
      if (res.body) await settle(this.api, res.body, `remove a rule of ${group.name}`, interval);
    }
    for (const i of await ourInstances(this.api, { buildId, role })) {
      if (i['security-groups']?.some((g) => g.id === group!.id)) continue;
      // https://openapi-v2.exoscale.com/operation/operation-attach-instance-to-security-group
      await settle(
        this.api,
        await this.api.put<Operation>(`/security-group/${group.id}:attach`, { instance: { id: i.id } }),
        `attach ${i.name} to ${group.name}`,
        interval,
      );
    }
  }

  async get(buildId: string, role: Role): Promise<InboundRule[] | null> {
    const found = await findGroup(this.api, buildId, role);
    if (!found) return null;
    const byRule = new Map<string, InboundRule>();
    for (const r of ((await this.api.get<SecurityGroup>(`/security-group/${found.id}`)).rules ?? []).filter(
      (x) => x['flow-direction'] === 'ingress',
    )) {
      const a = r['start-port'];
      const b = r['end-port'];
      const port = a === undefined ? undefined : b === undefined || a === b ? a : ([a, b] as [number, number]);
      const key = `${r.protocol === 'icmpv6' ? 'icmp' : r.protocol}|${JSON.stringify(port)}`;
      const prev = byRule.get(key);
      if (prev) prev.sources.push(r.network ?? '');
      else
        byRule.set(key, {
          protocol: (r.protocol === 'icmpv6' ? 'icmp' : r.protocol) as InboundRule['protocol'],
          ...(port === undefined ? {} : { port }),
          sources: [r.network ?? ''],
        });
    }
    return [...byRule.values()];
  }

  async remove(buildId: string, role: Role): Promise<void> {
    const found = await findGroup(this.api, buildId, role);
    if (!found) return;
    // A group in use cannot be deleted: detach its instances first.
    const instances = (await this.api.get<{ instances?: Instance[] }>('/instance')).instances ?? [];
    for (const i of instances.filter((x) => x['security-groups']?.some((g) => g.id === found.id))) {
      // https://openapi-v2.exoscale.com/operation/operation-detach-instance-from-security-group
      await settle(
        this.api,
        await this.api.put<Operation>(`/security-group/${found.id}:detach`, { instance: { id: i.id } }),
        `detach ${i.name} from ${found.name}`,
        this.#o.operationIntervalMs,
      );
    }
    const r = await this.api.request<Operation | null>('DELETE', `/security-group/${found.id}`, { accept: [404] });
    if (r.body) await settle(this.api, r.body, `delete ${found.name}`, this.#o.operationIntervalMs);
  }
}

export interface ExoscaleDnsOptions extends ExoscaleOptions {
  /** The domain (zone) at Exoscale DNS, e.g. `example.com`. */
  dnsZone: string;
  /** TTL of new records (default 60). */
  defaultTtl?: number;
}

/** DNS: https://openapi-v2.exoscale.com/operation/operation-create-dns-domain-record */
export class ExoscaleDns implements DnsProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: ExoscaleDnsOptions;

  constructor(o: ExoscaleDnsOptions, api = exoscaleClient(o)) {
    this.#o = o;
    this.api = api;
  }

  async #domain(zone = this.#o.dnsZone): Promise<DnsDomain | null> {
    const z = zone.replace(/\.$/, '').toLowerCase();
    const all = (await this.api.get<{ 'dns-domains'?: DnsDomain[] }>('/dns-domain'))['dns-domains'] ?? [];
    return all.find((d) => d['unicode-name'] === z) ?? null;
  }

  async ensureZone(zone: string): Promise<void> {
    if (await this.#domain(zone)) return;
    // https://openapi-v2.exoscale.com/operation/operation-create-dns-domain
    await settle(
      this.api,
      await this.api.post<Operation>('/dns-domain', { 'unicode-name': zone.replace(/\.$/, '').toLowerCase() }),
      `create DNS domain ${zone}`,
      this.#o.operationIntervalMs,
    );
  }

  async #records(name: string): Promise<{ fqdn: string; rel: string; domain: DnsDomain | null; records: DnsRecordApi[] }> {
    const fqdn = name.toLowerCase().replace(/\.$/, '');
    const rel = relativeName(fqdn, this.#o.dnsZone, DRIVER_NAME);
    const r = rel === '@' ? '' : rel;
    const domain = await this.#domain();
    if (!domain) return { fqdn, rel: r, domain, records: [] };
    const all =
      (await this.api.get<{ 'dns-domain-records'?: DnsRecordApi[] }>(`/dns-domain/${domain.id}/record`))['dns-domain-records'] ?? [];
    return { fqdn, rel: r, domain, records: all.filter((x) => x.type === 'A' && x.name === r) };
  }

  async listA(name: string): Promise<DnsRecord[]> {
    const { fqdn, records } = await this.#records(name);
    return records
      .map((r) => ({ name: fqdn, type: 'A' as const, content: r.content, ttl: r.ttl }))
      .sort((a, b) => a.content.localeCompare(b.content));
  }

  async addA(name: string, ip: string, ttl = this.#o.defaultTtl ?? 60): Promise<void> {
    const { rel, domain, records } = await this.#records(name);
    if (!domain) throw fail('NO_ZONE', `domain ${this.#o.dnsZone} is not at Exoscale DNS: ensureZone first`, { exitCode: 2 });
    if (records.some((r) => r.content === ip)) return;
    await settle(
      this.api,
      await this.api.post<Operation>(`/dns-domain/${domain.id}/record`, { name: rel, type: 'A', content: ip, ttl }),
      `add ${name} A ${ip}`,
      this.#o.operationIntervalMs,
    );
  }

  async removeA(name: string, ip: string): Promise<void> {
    const { domain, records } = await this.#records(name);
    for (const r of records.filter((x) => x.content === ip)) {
      const res = await this.api.request<Operation | null>('DELETE', `/dns-domain/${domain!.id}/record/${r.id}`, { accept: [404] });
      if (res.body) await settle(this.api, res.body, `remove ${name} A ${ip}`, this.#o.operationIntervalMs);
    }
  }
}

const DB_TYPES = { mysql: 'mysql', postgres: 'pg' } as const;
const DB_PATHS = { mysql: 'dbaas-mysql', pg: 'dbaas-postgres' } as const;

/** DBaaS: https://openapi-v2.exoscale.com/operation/operation-create-dbaas-service-mysql */
export class ExoscaleDatabases implements ManagedDatabaseProvider {
  readonly name = DRIVER_NAME;
  readonly api: ApiClient;
  readonly #o: ExoscaleOptions;

  constructor(o: ExoscaleOptions, api = exoscaleClient(o)) {
    this.#o = o;
    this.api = api;
  }

  /** Our ids carry the type: `mysql/<name>`, `pg/<name>`. */
  #path(id: string): string {
    const m = /^(mysql|pg)\/([a-z0-9-]+)$/.exec(id);
    if (!m) throw fail('BAD_ID', `database id "${id}": mysql/<name> or pg/<name>`, { exitCode: 2 });
    return `/${DB_PATHS[m[1] as 'mysql' | 'pg']}/${m[2]}`;
  }

  async create(o: CreateDatabaseOptions): Promise<ManagedDatabase> {
    validateAllowList(o.allow, 'allow');
    if (!/^[a-z][a-z0-9-]{2,62}$/.test(o.name))
      throw fail('BAD_NAME', `database name "${o.name}": 3-63 lowercase letters, digits and dashes, starting with a letter`, {
        exitCode: 2,
      });
    const type = DB_TYPES[o.engine];
    const existing = (await this.list({ buildId: o.buildId })).find((d) => d.name === o.name);
    if (!existing) {
      await settle(
        this.api,
        await this.api.post<Operation>(`/${DB_PATHS[type]}/${o.name}`, {
          plan: o.size ?? 'hobbyist-2',
          'ip-filter': o.allow,
          ...(o.version ? { version: o.version } : {}),
          'termination-protection': false,
        }),
        `create database ${o.name}`,
        this.#o.operationIntervalMs,
      );
    } else await this.setAllowList(existing.id, o.allow);
    const db = await this.get(`${type}/${o.name}`);
    if (!db) throw fail('NOT_FOUND', `database ${o.name} was created but is not found`);
    return db;
  }

  async get(id: string): Promise<ManagedDatabase | null> {
    const d = await this.api.get<DbService | null>(this.#path(id), { accept: [404] });
    if (!d) return null;
    const p = d['connection-info']?.params?.[0];
    return {
      id,
      name: d.name,
      buildId: /^adt-([a-z0-9]+)-/.exec(d.name)?.[1] ?? '',
      engine: id.startsWith('pg/') ? 'postgres' : 'mysql',
      state: d.state === 'running' ? 'online' : d.state === 'rebuilding' || d.state === 'rebalancing' ? 'creating' : 'error',
      host: p?.host ?? null,
      privateHost: null,
      port: p?.port ? Number(p.port) : null,
      user: p?.user ?? null,
      password: p?.password ?? null,
      database: p?.dbname ?? null,
    };
  }

  async list(filter: { buildId?: string } = {}): Promise<ManagedDatabase[]> {
    // https://openapi-v2.exoscale.com/operation/operation-list-dbaas-services
    const all = (await this.api.get<{ 'dbaas-services'?: DbService[] }>('/dbaas-service'))['dbaas-services'] ?? [];
    const ours = all.filter(
      (d) => (d.type === 'mysql' || d.type === 'pg') && d.name.startsWith(filter.buildId ? `adt-${filter.buildId}-` : 'adt-'),
    );
    return (await Promise.all(ours.map((d) => this.get(`${d.type}/${d.name}`)))).filter((x): x is ManagedDatabase => x !== null);
  }

  async waitUntilOnline(id: string, options: WaitOptions = {}): Promise<ManagedDatabase> {
    return waitForDatabase(DRIVER_NAME, id, (x) => this.get(x), options);
  }

  async setAllowList(id: string, sources: string[]): Promise<void> {
    validateAllowList(sources, 'allow');
    // https://openapi-v2.exoscale.com/operation/operation-update-dbaas-service-mysql
    await settle(
      this.api,
      await this.api.put<Operation>(this.#path(id), { 'ip-filter': sources }),
      `allow-list of ${id}`,
      this.#o.operationIntervalMs,
    );
  }

  async getAllowList(id: string): Promise<string[]> {
    return (await this.api.get<DbService>(this.#path(id)))['ip-filter'] ?? [];
  }

  async destroy(id: string): Promise<void> {
    this.#path(id);
    // https://openapi-v2.exoscale.com/operation/operation-delete-dbaas-service
    const r = await this.api.request<Operation | null>('DELETE', `/dbaas-service/${encodeURIComponent(id.split('/')[1]!)}`, {
      accept: [404],
    });
    if (r.body) await settle(this.api, r.body, `delete database ${id}`, this.#o.operationIntervalMs);
  }
}

/** Registry entry point: the compute driver; `.firewall`, `.dns(zone)` and `.databases` share its client. */
export default function exoscaleDriver(o: ExoscaleOptions) {
  const api = exoscaleClient(o);
  const compute = new ExoscaleCompute(o, api);
  return Object.assign(compute, {
    firewall: new ExoscaleFirewall(o, api),
    databases: new ExoscaleDatabases(o, api),
    dns: (zone: string, defaultTtl?: number) => new ExoscaleDns({ ...o, dnsZone: zone, defaultTtl }, api),
  });
}
