/**
 * A Vultr API v2 fake that follows the documented requests and responses
 * (https://www.vultr.com/api/, cross-checked with Vultr's own Go client govultr and its Terraform
 * provider):
 * - bearer API key; errors `{"error": "...", "status": N}`;
 * - cursor pagination: `per_page` (default 100, at most 500), `cursor` = `meta.links.next`
 *   (an opaque string, empty on the last page), `meta.total`; the managed-database list is not
 *   paginated (`meta` has `total` only);
 * - instances: 202 on create with `status` pending, `main_ip` 0.0.0.0, `internal_ip` '' and a
 *   `default_password`; then active/running/ok with `main_ip`; the VPC address under
 *   `/instances/{id}/vpcs`; PATCH (202) moves an instance into a firewall group; 204 on delete;
 * - snapshots: 201 on create with status pending, then complete; list filtered by `description`;
 * - firewall groups (201) and their rules (201; `port` "22" or "8000:8010", none for icmp;
 *   lower-case protocols, as the Terraform provider insists); 204 on deletes;
 * - DNS domains (200 on create) and records (201; names relative, '' for the apex);
 * - managed databases: 202 on create with status Rebuilding, then Running; PUT (202) replaces
 *   `trusted_ips`; 204 on delete.
 * - SSH keys: cursor-paged list `{ssh_keys: [{id, date_created, name, ssh_key}], meta}`, 201
 *   `{ssh_key}` on create, 204 on delete; instances take their ids in `sshkey_id`.
 *
 * Guessed where the documentation says nothing (kept plausible, said here):
 * - the exact messages of 4xx errors (e.g. 401 "Invalid API token.", 404 "Invalid instance-id.");
 * - a 429 carries no header (Vultr documents none) and the body `{"error": "Rate limit exceeded", ...}`;
 * - a bare address in `trusted_ips` is stored as a /32 (IPv6: /128), after the documented
 *   "CIDR notation (defaults to /32 if excluded)";
 * - a firewall group holds at most `max_rule_count` rules (50 here; govultr's fixtures show 999);
 *   adding a rule that exists already is a 400;
 * - deleting a firewall group that instances are in takes them out of it;
 * - the VPC address appears when the instance turns active.
 * - registering a key that is registered already (the same key, whatever its name or comment) is a
 *   400 "SSH key already exists."; a malformed key a 400 "Invalid SSH key."; an unknown id in
 *   `sshkey_id` a 400 "Invalid SSH key id.".
 * Addresses are strings only (documentation ranges and 198.18/15), never used on the network.
 */
import { randomBytes } from 'node:crypto';
import { bearer, FakeApi, publicKeyBlob, type FakeRequest } from './harness.ts';

type Obj = Record<string, unknown>;

export interface VultrFakeOptions {
  apiKey?: string;
  /** GETs of a new instance that answer `pending` before it is active (default 1). */
  bootPolls?: number;
  /** Rules a firewall group may hold (`max_rule_count`, default 50). */
  maxRuleCount?: number;
}

interface FakeInstance extends Obj {
  id: string;
  label: string;
  tags: string[];
  status: string;
  power_status: string;
  server_status: string;
  main_ip: string;
  internal_ip: string;
  firewall_group_id: string;
  default_password: string;
  user_data: string;
  polls: number;
  vpcIp: string;
  vpcId: string;
  /** The SSH keys (ids) root was given: not in the API's instance object. */
  sshKeyIds: string[];
}
interface FakeRule extends Obj {
  id: number;
  ip_type: string;
  protocol: string;
  port: string;
  subnet: string;
  subnet_size: number;
}
interface FakeDatabase extends Obj {
  id: string;
  label: string;
  tag: string;
  region: string;
  status: string;
  polls: number;
  trusted_ips: string[];
}

const NOT_FOUND = {
  instance: 'Invalid instance-id.',
  group: 'Invalid firewall group.',
  rule: 'Invalid firewall rule.',
  domain: 'Invalid domain.',
  record: 'Invalid record.',
  database: 'Invalid database-id.',
  snapshot: 'Invalid snapshot-id.',
};

export function vultrFake(o: VultrFakeOptions = {}) {
  const api: FakeApi = new FakeApi({
    prefix: '/v2',
    realBaseUrl: 'https://api.vultr.com/v2',
    errorBody: (status, message) => ({ error: message, status }),
    authorize: (req) => bearer(o.apiKey ?? 'vultr-test-key', () => api.error(401, 'Invalid API token.'))(req),
  });
  const instances = new Map<string, FakeInstance>();
  const groups = new Map<string, { id: string; description: string; date_created: string; rules: FakeRule[] }>();
  const domains = new Map<string, { id: string; type: string; name: string; data: string; priority: number; ttl: number }[]>();
  const databases = new Map<string, FakeDatabase>();
  const snapshots = new Map<
    string,
    { id: string; description: string; status: string; date_created: string; polls: number; instanceId: string }
  >();
  const sshKeys = new Map<string, { id: string; date_created: string; name: string; ssh_key: string }>();
  const maxRules = o.maxRuleCount ?? 50;
  let n = 0;
  const uuid = () => `${api.nextId().toString(16).padStart(8, '0')}-0000-4000-8000-${String(++n).padStart(12, '0')}`;
  const now = () => new Date().toISOString();

  /** Cursor pagination: the cursor is an offset, opaque to clients (base64url, like Vultr's encoded strings). */
  function list<T>(req: FakeRequest, key: string, items: T[]) {
    const perPage = Number(req.query.get('per_page') ?? 100);
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > 500) return api.error(400, 'per_page must be between 1 and 500');
    const cursor = req.query.get('cursor');
    const start = cursor ? Number(Buffer.from(cursor, 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0) return api.error(400, 'Invalid cursor');
    const slice = items.slice(start, start + perPage);
    const link = (at: number) => Buffer.from(String(at)).toString('base64url');
    return {
      status: 200,
      body: {
        [key]: slice,
        meta: {
          total: items.length,
          links: {
            next: start + perPage < items.length ? link(start + perPage) : '',
            prev: start > 0 ? link(Math.max(0, start - perPage)) : '',
          },
        },
      },
    };
  }
  const instanceView = (
    { polls: _p, vpcIp: _v, vpcId: _i, user_data: _u, default_password: pw, sshKeyIds: _k, ...rest }: FakeInstance,
    withPassword = false,
  ) => ({ ...rest, ...(withPassword ? { default_password: pw } : {}) });
  const isBase64 = (s: string) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0;
  const isStrings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');

  // --- Instances ---
  api.route('POST', '/instances', (req) => {
    const b = req.body as Obj;
    if (!b?.region || !b.plan) return api.error(400, 'region and plan are required');
    if (!b.os_id && !b.snapshot_id && !b.app_id && !b.image_id && !b.iso_id)
      return api.error(400, 'one of os_id, snapshot_id, app_id, image_id or iso_id is required');
    if (b.snapshot_id && !snapshots.has(b.snapshot_id as string)) return api.error(400, 'Invalid snapshot_id');
    if (b.user_data !== undefined && (typeof b.user_data !== 'string' || !isBase64(b.user_data)))
      return api.error(400, 'user_data must be base64 encoded');
    if (b.tags !== undefined && !isStrings(b.tags)) return api.error(400, 'tags must be an array of strings');
    if (b.attach_vpc !== undefined && !isStrings(b.attach_vpc)) return api.error(400, 'attach_vpc must be an array of VPC ids');
    if (b.sshkey_id !== undefined && !isStrings(b.sshkey_id)) return api.error(400, 'sshkey_id must be an array of SSH key ids');
    if ((b.sshkey_id as string[] | undefined)?.some((id) => !sshKeys.has(id))) return api.error(400, 'Invalid SSH key id.');
    if (b.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,61}[a-zA-Z0-9])?$/.test(String(b.hostname)))
      return api.error(400, 'Invalid hostname');
    if (b.firewall_group_id && !groups.has(b.firewall_group_id as string)) return api.error(400, 'Invalid firewall group');
    const vpc = (b.attach_vpc as string[] | undefined)?.[0] ?? (b.enable_vpc === true ? 'vpc-region-default' : '');
    const i: FakeInstance = {
      id: uuid(),
      os: 'Debian 12 x64 (bookworm)',
      ram: 2048,
      disk: 55,
      main_ip: '0.0.0.0',
      vcpu_count: 1,
      region: b.region,
      plan: b.plan,
      date_created: now(),
      status: 'pending',
      allowed_bandwidth: 2,
      netmask_v4: '',
      gateway_v4: '0.0.0.0',
      power_status: 'running',
      server_status: 'none',
      v6_network: '',
      v6_main_ip: '',
      v6_network_size: 0,
      label: (b.label as string) ?? '',
      internal_ip: '',
      kvm: '',
      hostname: b.hostname ?? '',
      os_id: b.os_id ?? 0,
      app_id: 0,
      image_id: '',
      snapshot_id: b.snapshot_id ?? '',
      firewall_group_id: (b.firewall_group_id as string) ?? '',
      features: [],
      tags: (b.tags as string[]) ?? [],
      default_password: randomBytes(12).toString('base64url'),
      user_data: (b.user_data as string) ?? '',
      polls: 0,
      vpcIp: '',
      vpcId: vpc,
      sshKeyIds: [...((b.sshkey_id as string[] | undefined) ?? [])],
    };
    instances.set(i.id, i);
    return { status: 202, body: { instance: instanceView(i, true) } };
  });
  api.route('GET', '/instances', (req) => {
    const tag = req.query.get('tag');
    const label = req.query.get('label');
    return list(
      req,
      'instances',
      [...instances.values()].filter((i) => (!tag || i.tags.includes(tag)) && (!label || i.label === label)).map((i) => instanceView(i)),
    );
  });
  api.route('GET', '/instances/:id', (_req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, NOT_FOUND.instance);
    if (i.status === 'pending' && ++i.polls > (o.bootPolls ?? 1)) {
      n++;
      Object.assign(i, {
        status: 'active',
        server_status: 'ok',
        main_ip: `198.51.100.${(n % 250) + 1}`,
        netmask_v4: '255.255.254.0',
        gateway_v4: '198.51.100.254',
        vpcIp: i.vpcId ? `198.18.130.${(n % 250) + 1}` : '',
      });
    }
    return { status: 200, body: { instance: instanceView(i) } };
  });
  api.route('GET', '/instances/:id/vpcs', (req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, NOT_FOUND.instance);
    return list(req, 'vpcs', i.vpcIp ? [{ id: i.vpcId, mac_address: '5a:01:04:00:00:01', ip_address: i.vpcIp }] : []);
  });
  api.route('PATCH', '/instances/:id', (req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, NOT_FOUND.instance);
    const b = req.body as Obj;
    if (b?.firewall_group_id !== undefined) {
      if (b.firewall_group_id && !groups.has(b.firewall_group_id as string)) return api.error(400, 'Invalid firewall group');
      i.firewall_group_id = b.firewall_group_id as string;
    }
    if (b?.tags !== undefined) {
      if (!isStrings(b.tags)) return api.error(400, 'tags must be an array of strings');
      i.tags = b.tags as string[];
    }
    if (b?.label !== undefined) i.label = String(b.label);
    return { status: 202, body: { instance: instanceView(i) } };
  });
  api.route('DELETE', '/instances/:id', (_req, p) => (instances.delete(p.id!) ? { status: 204 } : api.error(404, NOT_FOUND.instance)));

  // --- SSH keys ---
  const keyBlob = (line: string) => publicKeyBlob(line.trim());
  api.route('GET', '/ssh-keys', (req) => list(req, 'ssh_keys', [...sshKeys.values()]));
  api.route('GET', '/ssh-keys/:id', (_req, p) =>
    sshKeys.has(p.id!) ? { status: 200, body: { ssh_key: sshKeys.get(p.id!) } } : api.error(404, 'Invalid SSH key id.'),
  );
  api.route('POST', '/ssh-keys', (req) => {
    const b = req.body as { name?: unknown; ssh_key?: unknown };
    if (typeof b?.name !== 'string' || !b.name || typeof b.ssh_key !== 'string') return api.error(400, 'name and ssh_key are required');
    const blob = keyBlob(b.ssh_key);
    if (!blob) return api.error(400, 'Invalid SSH key.');
    if ([...sshKeys.values()].some((k) => keyBlob(k.ssh_key) === blob)) return api.error(400, 'SSH key already exists.');
    const k = { id: uuid(), date_created: now(), name: b.name, ssh_key: b.ssh_key };
    sshKeys.set(k.id, k);
    return { status: 201, body: { ssh_key: k } };
  });
  api.route('DELETE', '/ssh-keys/:id', (_req, p) => (sshKeys.delete(p.id!) ? { status: 204 } : api.error(404, 'Invalid SSH key id.')));

  // --- Snapshots ---
  const snapshotView = (s: { id: string; description: string; status: string; date_created: string }) => ({
    id: s.id,
    date_created: s.date_created,
    description: s.description,
    size: 0,
    compressed_size: 0,
    status: s.status,
    os_id: 2136,
    app_id: 0,
  });
  api.route('POST', '/snapshots', (req) => {
    const b = req.body as { instance_id?: string; description?: string };
    if (!b?.instance_id || !instances.has(b.instance_id)) return api.error(400, 'Invalid instance_id');
    const s = { id: uuid(), description: b.description ?? '', status: 'pending', date_created: now(), polls: 0, instanceId: b.instance_id };
    snapshots.set(s.id, s);
    return { status: 201, body: { snapshot: snapshotView(s) } };
  });
  api.route('GET', '/snapshots', (req) => {
    const d = req.query.get('description');
    return list(req, 'snapshots', [...snapshots.values()].filter((s) => d === null || s.description === d).map(snapshotView));
  });
  api.route('GET', '/snapshots/:id', (_req, p) => {
    const s = snapshots.get(p.id!);
    if (!s) return api.error(404, NOT_FOUND.snapshot);
    if (s.status === 'pending' && ++s.polls > 1) s.status = 'complete';
    return { status: 200, body: { snapshot: snapshotView(s) } };
  });

  // --- Firewall groups and rules ---
  const groupView = (g: { id: string; description: string; date_created: string; rules: FakeRule[] }) => ({
    id: g.id,
    description: g.description,
    date_created: g.date_created,
    date_modified: g.date_created,
    instance_count: [...instances.values()].filter((i) => i.firewall_group_id === g.id).length,
    rule_count: g.rules.length,
    max_rule_count: maxRules,
  });
  api.route('POST', '/firewalls', (req) => {
    const description = (req.body as Obj)?.description;
    if (description !== undefined && typeof description !== 'string') return api.error(400, 'description must be a string');
    const g = { id: uuid(), description: description ?? '', date_created: now(), rules: [] as FakeRule[] };
    groups.set(g.id, g);
    return { status: 201, body: { firewall_group: groupView(g) } };
  });
  api.route('GET', '/firewalls', (req) => list(req, 'firewall_groups', [...groups.values()].map(groupView)));
  api.route('GET', '/firewalls/:id', (_req, p) => {
    const g = groups.get(p.id!);
    return g ? { status: 200, body: { firewall_group: groupView(g) } } : api.error(404, NOT_FOUND.group);
  });
  api.route('DELETE', '/firewalls/:id', (_req, p) => {
    if (!groups.delete(p.id!)) return api.error(404, NOT_FOUND.group);
    for (const i of instances.values()) if (i.firewall_group_id === p.id) i.firewall_group_id = '';
    return { status: 204 };
  });
  api.route('GET', '/firewalls/:id/rules', (req, p) => {
    const g = groups.get(p.id!);
    return g ? list(req, 'firewall_rules', g.rules) : api.error(404, NOT_FOUND.group);
  });
  api.route('POST', '/firewalls/:id/rules', (req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, NOT_FOUND.group);
    const b = req.body as Obj;
    if (!['v4', 'v6'].includes(b?.ip_type as string)) return api.error(400, 'ip_type must be v4 or v6');
    if (!['tcp', 'udp', 'icmp', 'gre', 'esp', 'ah'].includes(b.protocol as string)) return api.error(400, 'Invalid protocol');
    const tcpUdp = b.protocol === 'tcp' || b.protocol === 'udp';
    const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(String(b.port ?? ''));
    if (tcpUdp && (!m || Number(m[1]) < 1 || Number(m[2] ?? m[1]) > 65535 || Number(m[2] ?? m[1]) < Number(m[1])))
      return api.error(400, 'Invalid port');
    if (!tcpUdp && b.port) return api.error(400, 'port applies to TCP and UDP only');
    if (typeof b.subnet !== 'string' || typeof b.subnet_size !== 'number') return api.error(400, 'subnet and subnet_size are required');
    if ((b.ip_type === 'v4') !== !b.subnet.includes(':')) return api.error(400, 'subnet does not match ip_type');
    if (b.subnet_size < 0 || b.subnet_size > (b.ip_type === 'v4' ? 32 : 128)) return api.error(400, 'Invalid subnet_size');
    if (g.rules.length >= maxRules) return api.error(400, `Firewall group has reached the maximum number of rules (${maxRules})`);
    const r: FakeRule = {
      id: api.nextId(),
      type: b.ip_type,
      ip_type: b.ip_type as string,
      action: 'accept',
      protocol: b.protocol as string,
      port: tcpUdp ? String(b.port) : '',
      subnet: b.subnet,
      subnet_size: b.subnet_size,
      source: '',
      notes: (b.notes as string) ?? '',
    };
    if (
      g.rules.some(
        (x) =>
          x.ip_type === r.ip_type &&
          x.protocol === r.protocol &&
          x.port === r.port &&
          x.subnet === r.subnet &&
          x.subnet_size === r.subnet_size,
      )
    )
      return api.error(400, 'Rule already exists');
    g.rules.push(r);
    return { status: 201, body: { firewall_rule: r } };
  });
  api.route('DELETE', '/firewalls/:id/rules/:rule', (_req, p) => {
    const g = groups.get(p.id!);
    const i = g?.rules.findIndex((r) => r.id === Number(p.rule)) ?? -1;
    if (!g || i < 0) return api.error(404, NOT_FOUND.rule);
    g.rules.splice(i, 1);
    return { status: 204 };
  });

  // --- DNS ---
  api.route('POST', '/domains', (req) => {
    const d = (req.body as Obj)?.domain;
    if (typeof d !== 'string' || !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(d)) return api.error(400, 'Invalid domain');
    if (domains.has(d.toLowerCase())) return api.error(400, 'Domain already exists');
    domains.set(d.toLowerCase(), []);
    return { status: 200, body: { domain: { domain: d.toLowerCase(), date_created: now(), dns_sec: 'disabled' } } };
  });
  api.route('GET', '/domains', (req) =>
    list(
      req,
      'domains',
      [...domains.keys()].map((domain) => ({ domain, date_created: now(), dns_sec: 'disabled' })),
    ),
  );
  api.route('GET', '/domains/:domain', (_req, p) =>
    domains.has(p.domain!)
      ? { status: 200, body: { domain: { domain: p.domain, date_created: now(), dns_sec: 'disabled' } } }
      : api.error(404, NOT_FOUND.domain),
  );
  api.route('GET', '/domains/:domain/records', (req, p) => {
    const r = domains.get(p.domain!);
    return r ? list(req, 'records', r) : api.error(404, NOT_FOUND.domain);
  });
  api.route('POST', '/domains/:domain/records', (req, p) => {
    const r = domains.get(p.domain!);
    if (!r) return api.error(404, NOT_FOUND.domain);
    const b = req.body as { name?: unknown; type?: unknown; data?: unknown; ttl?: unknown };
    if (typeof b?.name !== 'string' || typeof b.type !== 'string' || typeof b.data !== 'string')
      return api.error(400, 'name, type and data are required');
    if (b.name.endsWith(p.domain!) || b.name.endsWith('.')) return api.error(400, 'name must be relative to the domain');
    if (b.type === 'A' && !/^(\d{1,3}\.){3}\d{1,3}$/.test(b.data)) return api.error(400, 'Invalid IPv4 address');
    if (b.ttl !== undefined && (!Number.isInteger(b.ttl) || (b.ttl as number) < 1)) return api.error(400, 'Invalid ttl');
    const rec = { id: uuid(), type: b.type, name: b.name, data: b.data, priority: -1, ttl: (b.ttl as number | undefined) ?? 300 };
    r.push(rec);
    return { status: 201, body: { record: rec } };
  });
  api.route('DELETE', '/domains/:domain/records/:id', (_req, p) => {
    const r = domains.get(p.domain!);
    const i = r?.findIndex((x) => x.id === p.id) ?? -1;
    if (!r || i < 0) return api.error(404, NOT_FOUND.record);
    r.splice(i, 1);
    return { status: 204 };
  });

  // --- Managed databases ---
  const cidr = (s: string) => (s.includes('/') ? s : `${s}/${s.includes(':') ? 128 : 32}`);
  const dbView = ({ polls: _p, ...rest }: FakeDatabase) => rest;
  api.route('POST', '/databases', (req) => {
    const b = req.body as Obj;
    for (const f of ['database_engine', 'database_engine_version', 'region', 'plan', 'label'])
      if (!b?.[f]) return api.error(400, `${f} is required`);
    if (!['mysql', 'pg', 'valkey', 'kafka'].includes(b.database_engine as string)) return api.error(400, 'Invalid database_engine');
    if (b.trusted_ips !== undefined && !isStrings(b.trusted_ips)) return api.error(400, 'trusted_ips must be an array of IP addresses');
    const id = uuid();
    const pg = b.database_engine === 'pg';
    const d: FakeDatabase = {
      id,
      date_created: now(),
      plan: b.plan,
      plan_disk: 25,
      plan_ram: 1024,
      plan_vcpus: 1,
      plan_replicas: 0,
      region: b.region as string,
      database_engine: b.database_engine,
      database_engine_version: b.database_engine_version,
      vpc_id: (b.vpc_id as string) ?? '',
      status: 'Rebuilding',
      label: b.label as string,
      tag: (b.tag as string) ?? '',
      dbname: 'defaultdb',
      host: `vultr-prod-${id.slice(0, 8)}-vultr-prod-0000.vultrdb.com`,
      ...(b.vpc_id ? { public_host: `public-vultr-prod-${id.slice(0, 8)}-vultr-prod-0000.vultrdb.com` } : {}),
      port: pg ? '16751' : '16752',
      user: 'vultradmin',
      password: randomBytes(12).toString('base64url'),
      maintenance_dow: 'sunday',
      maintenance_time: '06:00',
      latest_backup: '',
      trusted_ips: ((b.trusted_ips as string[] | undefined) ?? []).map(cidr),
      ca_certificate: '',
      polls: 0,
    };
    databases.set(id, d);
    return { status: 202, body: { database: dbView(d) } };
  });
  api.route('GET', '/databases', (req) => {
    const tag = req.query.get('tag');
    const label = req.query.get('label');
    const region = req.query.get('region');
    const found = [...databases.values()]
      .filter((d) => (!tag || d.tag === tag) && (!label || d.label === label) && (!region || d.region === region))
      .map(dbView);
    return { status: 200, body: { databases: found, meta: { total: found.length } } };
  });
  api.route('GET', '/databases/:id', (_req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, NOT_FOUND.database);
    if (d.status === 'Rebuilding' && ++d.polls > 1) d.status = 'Running';
    return { status: 200, body: { database: dbView(d) } };
  });
  api.route('PUT', '/databases/:id', (req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, NOT_FOUND.database);
    const t = (req.body as Obj)?.trusted_ips;
    if (t !== undefined) {
      if (!isStrings(t)) return api.error(400, 'trusted_ips must be an array of IP addresses');
      d.trusted_ips = (t as string[]).map(cidr);
    }
    return { status: 202, body: { database: dbView(d) } };
  });
  api.route('DELETE', '/databases/:id', (_req, p) => (databases.delete(p.id!) ? { status: 204 } : api.error(404, NOT_FOUND.database)));

  return Object.assign(api, { state: { instances, groups, domains, databases, snapshots, sshKeys } });
}

/**
 * What a 429 from Vultr carries: `{"error": "...", "status": 429}` and no wait header (Vultr
 * documents only "more than 30 requests per second ... may return HTTP status code 429").
 */
export function vultrRateLimit(): { status: number; body: unknown } {
  return { status: 429, body: { error: 'Rate limit exceeded', status: 429 } };
}
