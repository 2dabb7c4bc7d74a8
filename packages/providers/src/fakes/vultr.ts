/**
 * A Vultr API v2 fake that follows the documented requests and responses
 * (https://www.vultr.com/api/): bearer key, `{error, status}` bodies, cursor pagination
 * (`per_page`, `meta.links.next`), 202 on instance create with `pending` then `active`/`ok` and its
 * `main_ip`, the VPC address under `/instances/{id}/vpcs`, firewall groups and their rules, DNS
 * domains and records, managed databases (`Rebuilding` then `Running`), 204 on deletes. Vultr
 * documents no header on its 429; the fake sends none unless told. Addresses are strings only.
 */
import { bearer, FakeApi, type FakeRequest } from './harness.ts';

type Obj = Record<string, unknown>;

export interface VultrFakeOptions {
  apiKey?: string;
  /** GETs of a new instance that answer `pending` before it is active (default 1). */
  bootPolls?: number;
}

export function vultrFake(o: VultrFakeOptions = {}) {
  const api: FakeApi = new FakeApi({
    prefix: '/v2',
    realBaseUrl: 'https://api.vultr.com/v2',
    errorBody: (status, message) => ({ error: message, status }),
    authorize: (req) => bearer(o.apiKey ?? 'vultr-test-key', () => api.error(401, 'Invalid API token.'))(req),
  });
  const instances = new Map<string, Obj & { id: string; label: string; tags: string[]; status: string; polls: number; vpcIp: string; firewall_group_id: string }>();
  const groups = new Map<string, { id: string; description: string; rules: (Obj & { id: number })[] }>();
  const domains = new Map<string, (Obj & { id: string; name: string; type: string; data: string })[]>();
  const databases = new Map<string, Obj & { id: string; label: string; tag: string; status: string; polls: number; trusted_ips: string[] }>();
  const snapshots = new Map<string, { id: string; status: string; polls: number }>();
  let n = 0;
  const uuid = () => `${api.nextId().toString(16).padStart(8, '0')}-0000-4000-8000-${String(++n).padStart(12, '0')}`;

  /** Cursor pagination: the cursor is the offset, opaque to clients. */
  function list<T>(req: FakeRequest, key: string, items: T[]) {
    const perPage = Number(req.query.get('per_page') ?? 100);
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > 500) return api.error(400, 'per_page must be between 1 and 500');
    const start = req.query.get('cursor') ? Number(Buffer.from(req.query.get('cursor')!, 'base64url').toString()) : 0;
    const slice = items.slice(start, start + perPage);
    const next = start + perPage < items.length ? Buffer.from(String(start + perPage)).toString('base64url') : '';
    return { status: 200, body: { [key]: slice, meta: { total: items.length, links: { next, prev: '' } } } };
  }
  const view = ({ polls: _p, vpcIp: _v, rules: _r, ...rest }: Obj) => rest;

  api.route('POST', '/instances', (req) => {
    const b = req.body as Obj;
    if (!b?.region || !b.plan) return api.error(400, 'region and plan are required');
    if (!b.os_id && !b.snapshot_id && !b.app_id && !b.image_id && !b.iso_id) return api.error(400, 'one of os_id, snapshot_id, app_id, image_id or iso_id is required');
    if (typeof b.user_data === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(b.user_data)) return api.error(400, 'user_data must be base64 encoded');
    if (b.firewall_group_id && !groups.has(b.firewall_group_id as string)) return api.error(400, 'Invalid firewall group');
    const i = { id: uuid(), label: (b.label as string) ?? '', hostname: b.hostname, region: b.region, plan: b.plan, os_id: b.os_id, tags: (b.tags as string[]) ?? [], status: 'pending', power_status: 'running', server_status: 'none', main_ip: '0.0.0.0', internal_ip: '', v6_main_ip: '', date_created: new Date().toISOString(), firewall_group_id: (b.firewall_group_id as string) ?? '', polls: 0, vpcIp: '' };
    instances.set(i.id, i);
    return { status: 202, body: { instance: view(i) } };
  });
  api.route('GET', '/instances', (req) => {
    const tag = req.query.get('tag');
    const label = req.query.get('label');
    return list(req, 'instances', [...instances.values()].filter((i) => (!tag || i.tags.includes(tag)) && (!label || i.label === label)).map(view));
  });
  api.route('GET', '/instances/:id', (_req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, 'Invalid instance-id.');
    if (i.status === 'pending' && ++i.polls > (o.bootPolls ?? 1)) {
      n++;
      Object.assign(i, { status: 'active', server_status: 'ok', main_ip: `198.51.100.${n}`, vpcIp: `198.18.130.${n}` });
    }
    return { status: 200, body: { instance: view(i) } };
  });
  api.route('GET', '/instances/:id/vpcs', (req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, 'Invalid instance-id.');
    return list(req, 'vpcs', i.vpcIp ? [{ id: 'vpc-1', mac_address: '5a:00:04:00:00:01', ip_address: i.vpcIp }] : []);
  });
  api.route('PATCH', '/instances/:id', (req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, 'Invalid instance-id.');
    const b = req.body as Obj;
    if (b?.firewall_group_id !== undefined) {
      if (b.firewall_group_id && !groups.has(b.firewall_group_id as string)) return api.error(400, 'Invalid firewall group');
      i.firewall_group_id = b.firewall_group_id as string;
    }
    return { status: 202, body: { instance: view(i) } };
  });
  api.route('DELETE', '/instances/:id', (_req, p) => (instances.delete(p.id!) ? { status: 204 } : api.error(404, 'Invalid instance-id.')));
  api.route('POST', '/snapshots', (req) => {
    const b = req.body as { instance_id?: string; description?: string };
    if (!b?.instance_id || !instances.has(b.instance_id)) return api.error(400, 'Invalid instance_id');
    const s = { id: uuid(), status: 'pending', polls: 0 };
    snapshots.set(s.id, s);
    return { status: 201, body: { snapshot: { id: s.id, description: b.description, status: s.status } } };
  });
  api.route('GET', '/snapshots/:id', (_req, p) => {
    const s = snapshots.get(p.id!);
    if (!s) return api.error(404, 'Invalid snapshot-id.');
    if (++s.polls > 1) s.status = 'complete';
    return { status: 200, body: { snapshot: { id: s.id, status: s.status } } };
  });

  // Firewall groups; rules with `port` as "22" or "8000:8010" (absent for icmp).
  api.route('POST', '/firewalls', (req) => {
    const g = { id: uuid(), description: ((req.body as Obj)?.description as string) ?? '', rules: [] as (Obj & { id: number })[] };
    groups.set(g.id, g);
    return { status: 201, body: { firewall_group: { id: g.id, description: g.description, date_created: new Date().toISOString(), rule_count: 0, instance_count: 0 } } };
  });
  api.route('GET', '/firewalls', (req) => list(req, 'firewall_groups', [...groups.values()].map((g) => ({ id: g.id, description: g.description, rule_count: g.rules.length }))));
  api.route('DELETE', '/firewalls/:id', (_req, p) => (groups.delete(p.id!) ? { status: 204 } : api.error(404, 'Invalid firewall group.')));
  api.route('GET', '/firewalls/:id/rules', (req, p) => {
    const g = groups.get(p.id!);
    return g ? list(req, 'firewall_rules', g.rules) : api.error(404, 'Invalid firewall group.');
  });
  api.route('POST', '/firewalls/:id/rules', (req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, 'Invalid firewall group.');
    const b = req.body as Obj;
    if (!['v4', 'v6'].includes(b?.ip_type as string)) return api.error(400, 'ip_type must be v4 or v6');
    if (!['tcp', 'udp', 'icmp', 'gre', 'esp', 'ah'].includes(b.protocol as string)) return api.error(400, 'Invalid protocol');
    if ((b.protocol === 'tcp' || b.protocol === 'udp') && !/^\d{1,5}(:\d{1,5})?$/.test(String(b.port ?? ''))) return api.error(400, 'Invalid port');
    if (typeof b.subnet !== 'string' || typeof b.subnet_size !== 'number') return api.error(400, 'subnet and subnet_size are required');
    const r = { id: api.nextId(), type: b.ip_type, ip_type: b.ip_type, action: 'accept', protocol: b.protocol, port: (b.port as string) ?? '', subnet: b.subnet, subnet_size: b.subnet_size, source: '', notes: b.notes ?? '' };
    if (g.rules.some((x) => x.protocol === r.protocol && x.port === r.port && x.subnet === r.subnet && x.subnet_size === r.subnet_size)) return api.error(400, 'Rule already exists');
    g.rules.push(r);
    return { status: 201, body: { firewall_rule: r } };
  });
  api.route('DELETE', '/firewalls/:id/rules/:rule', (_req, p) => {
    const g = groups.get(p.id!);
    const i = g?.rules.findIndex((r) => r.id === Number(p.rule)) ?? -1;
    if (!g || i < 0) return api.error(404, 'Invalid firewall rule.');
    g.rules.splice(i, 1);
    return { status: 204 };
  });

  // DNS: record names relative ('' for the apex).
  api.route('POST', '/domains', (req) => {
    const d = ((req.body as Obj)?.domain as string) ?? '';
    if (!d) return api.error(400, 'domain is required');
    if (domains.has(d)) return api.error(400, 'Domain already exists');
    domains.set(d, []);
    return { status: 200, body: { domain: { domain: d, date_created: new Date().toISOString(), dns_sec: 'disabled' } } };
  });
  api.route('GET', '/domains/:domain', (_req, p) => (domains.has(p.domain!) ? { status: 200, body: { domain: { domain: p.domain, dns_sec: 'disabled' } } } : api.error(404, 'Invalid domain.')));
  api.route('GET', '/domains/:domain/records', (req, p) => {
    const r = domains.get(p.domain!);
    return r ? list(req, 'records', r) : api.error(404, 'Invalid domain.');
  });
  api.route('POST', '/domains/:domain/records', (req, p) => {
    const r = domains.get(p.domain!);
    if (!r) return api.error(404, 'Invalid domain.');
    const b = req.body as { name?: string; type?: string; data?: string; ttl?: number };
    if (b?.name === undefined || !b.type || !b.data) return api.error(400, 'name, type and data are required');
    const rec = { id: uuid(), type: b.type, name: b.name, data: b.data, priority: -1, ttl: b.ttl ?? 300 };
    r.push(rec);
    return { status: 201, body: { record: rec } };
  });
  api.route('DELETE', '/domains/:domain/records/:id', (_req, p) => {
    const r = domains.get(p.domain!);
    const i = r?.findIndex((x) => x.id === p.id) ?? -1;
    if (!r || i < 0) return api.error(404, 'Invalid record.');
    r.splice(i, 1);
    return { status: 204 };
  });

  // Managed databases.
  api.route('POST', '/databases', (req) => {
    const b = req.body as Obj;
    for (const f of ['database_engine', 'database_engine_version', 'region', 'plan', 'label']) if (!b?.[f]) return api.error(400, `${f} is required`);
    const id = uuid();
    const d = {
      id, date_created: new Date().toISOString(), plan: b.plan, label: b.label as string, tag: (b.tag as string) ?? '', database_engine: b.database_engine, database_engine_version: b.database_engine_version, region: b.region,
      status: 'Rebuilding', dbname: 'defaultdb', host: `vultr-prod-${id.slice(0, 8)}-vultr-prod-0000.vultrdb.com`, public_host: `public-vultr-prod-${id.slice(0, 8)}.vultrdb.com`, user: 'vultradmin', password: `fake-${id.slice(0, 8)}-secret`, port: '16751',
      trusted_ips: [...((b.trusted_ips as string[]) ?? [])], polls: 0,
    };
    databases.set(id, d);
    return { status: 202, body: { database: view(d) } };
  });
  api.route('GET', '/databases', (req) => {
    const tag = req.query.get('tag');
    return list(req, 'databases', [...databases.values()].filter((d) => !tag || d.tag === tag).map(view));
  });
  api.route('GET', '/databases/:id', (_req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, 'Invalid database-id.');
    if (d.status === 'Rebuilding' && ++d.polls > 1) d.status = 'Running';
    return { status: 200, body: { database: view(d) } };
  });
  api.route('PUT', '/databases/:id', (req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, 'Invalid database-id.');
    const t = (req.body as { trusted_ips?: string[] })?.trusted_ips;
    if (t) d.trusted_ips = [...t];
    return { status: 202, body: { database: view(d) } };
  });
  api.route('DELETE', '/databases/:id', (_req, p) => (databases.delete(p.id!) ? { status: 204 } : api.error(404, 'Invalid database-id.')));

  return Object.assign(api, { state: { instances, groups, domains, databases } });
}

/** Vultr's 429: `{"error": "Rate limit exceeded", "status": 429}`, no documented wait header. */
export function vultrRateLimit(): { status: number; body: unknown } {
  return { status: 429, body: { error: 'Rate limit exceeded', status: 429 } };
}
