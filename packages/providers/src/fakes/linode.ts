/**
 * A Linode API v4 fake that follows the documented requests and responses
 * (https://techdocs.akamai.com/linode-api/reference/api): bearer token, `{errors: [{field, reason}]}`
 * error bodies, `page`/`page_size` pagination (25-500) with `{data, page, pages, results}`, the
 * `X-Filter` header (exact matches on top-level fields; `tags` matches one tag), instances that
 * are `provisioning` and then `running` with a public and a private (192.168.128.0/17) address,
 * firewalls with rules and devices, domains and records, managed MySQL/PostgreSQL, 429 with
 * `Retry-After` and `X-RateLimit-*` headers. The addresses are strings in answers, never used.
 */
import { bearer, FakeApi, pageOf, type FakeRequest } from './harness.ts';

export interface LinodeFakeOptions {
  token?: string;
  /** GETs of a new instance that answer `provisioning` before it runs (default 1). */
  bootPolls?: number;
}

type Obj = Record<string, unknown>;

export function linodeFake(o: LinodeFakeOptions = {}) {
  const api: FakeApi = new FakeApi({
    prefix: '/v4',
    realBaseUrl: 'https://api.linode.com/v4',
    errorBody: (_status, message) => ({ errors: [{ reason: message }] }),
    authorize: (req) => bearer(o.token ?? 'linode-test-token', () => api.error(401, 'Invalid Token'))(req),
  });
  const instances = new Map<number, Obj & { id: number; label: string; status: string; ipv4: string[]; tags: string[]; polls: number; firewall_id?: number }>();
  const firewalls = new Map<number, Obj & { id: number; label: string; rules: Obj; devices: number[] }>();
  const domains = new Map<number, { id: number; domain: string; type: string; soa_email: string; status: string; records: { id: number; type: string; name: string; target: string; ttl_sec: number }[] }>();
  const databases = new Map<number, Obj & { id: number; label: string; status: string; engine: string; allow_list: string[]; polls: number; kind: string }>();
  let n = 0;
  const fieldError = (field: string, reason: string) => ({ status: 400, body: { errors: [{ field, reason }] } });

  /** Paginated list with X-Filter, in Linode's shape. */
  function list<T extends Obj>(req: FakeRequest, items: T[]) {
    const size = Number(req.query.get('page_size') ?? 100);
    if (!Number.isInteger(size) || size < 25 || size > 500) return fieldError('page_size', 'Must be 25-500');
    const page = Number(req.query.get('page') ?? 1);
    let filtered = items;
    const raw = req.headers['x-filter'];
    if (raw) {
      let filter: Obj;
      try {
        filter = JSON.parse(raw) as Obj;
      } catch {
        return fieldError('X-Filter', 'Invalid JSON');
      }
      filtered = items.filter((it) => Object.entries(filter).every(([k, v]) => (k === 'tags' ? (it.tags as string[] | undefined)?.includes(String(v)) : it[k] === v)));
    }
    const { items: data, pages } = pageOf(filtered, page, size);
    return { status: 200, body: { data, page, pages, results: filtered.length } };
  }

  const view = ({ polls: _p, kind: _k, devices: _d, ...rest }: Obj) => rest;
  const ttls = [0, 30, 120, 300, 3600, 7200, 14400, 28800, 57600, 86400, 172800, 345600, 604800, 1209600, 2419200];

  api.route('POST', '/linode/instances', (req) => {
    const b = req.body as Obj;
    for (const f of ['region', 'type']) if (!b?.[f]) return fieldError(f, `${f} is required`);
    if (b.image && !b.root_pass) return fieldError('root_pass', 'root_pass is required when deploying from an Image');
    const label = b.label as string;
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9_.-]){1,62}[a-zA-Z0-9]$/.test(label ?? '')) return fieldError('label', 'Label must be 3-64 characters, letters, numbers, dashes, underscores, periods');
    if ([...instances.values()].some((i) => i.label === label)) return fieldError('label', 'Label must be unique among your Linodes');
    const ud = (b.metadata as { user_data?: string } | undefined)?.user_data;
    if (ud !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(ud)) return fieldError('metadata.user_data', 'Must be base64 encoded');
    if (b.firewall_id !== undefined && !firewalls.has(b.firewall_id as number)) return fieldError('firewall_id', 'Firewall not found');
    const id = api.nextId();
    const i = { id, label, region: b.region, type: b.type, image: b.image, status: 'provisioning', ipv4: [] as string[], ipv6: null, tags: (b.tags as string[]) ?? [], created: new Date().toISOString().slice(0, 19), polls: 0, private_ip: b.private_ip === true, user_data: ud };
    instances.set(id, i);
    if (typeof b.firewall_id === 'number') firewalls.get(b.firewall_id)!.devices.push(id);
    return { status: 200, body: view(i) };
  });
  api.route('GET', '/linode/instances', (req) => list(req, [...instances.values()].map(view)));
  api.route('GET', '/linode/instances/:id', (_req, p) => {
    const i = instances.get(Number(p.id));
    if (!i) return api.error(404, 'Not found');
    if (i.status === 'provisioning' && ++i.polls > (o.bootPolls ?? 1)) {
      n++;
      i.status = 'running';
      i.ipv4 = [`198.51.100.${n}`, ...(i.private_ip ? [`192.168.128.${n + 1}`] : [])];
    }
    return { status: 200, body: view(i) };
  });
  api.route('DELETE', '/linode/instances/:id', (_req, p) => {
    if (!instances.delete(Number(p.id))) return api.error(404, 'Not found');
    for (const f of firewalls.values()) f.devices = f.devices.filter((d) => d !== Number(p.id));
    return { status: 200, body: {} };
  });
  api.route('GET', '/linode/instances/:id/disks', (req, p) => (instances.has(Number(p.id)) ? list(req, [{ id: Number(p.id) * 10, label: 'Debian 12 Disk', filesystem: 'ext4' }, { id: Number(p.id) * 10 + 1, label: 'Swap', filesystem: 'swap' }]) : api.error(404, 'Not found')));
  const images = new Map<string, { id: string; status: string; polls: number }>();
  api.route('POST', '/images', (req) => {
    const b = req.body as { disk_id?: number; label?: string };
    if (!b?.disk_id) return fieldError('disk_id', 'disk_id is required');
    const img = { id: `private/${api.nextId()}`, status: 'creating', polls: 0 };
    images.set(img.id, img);
    return { status: 200, body: { id: img.id, label: b.label, status: img.status } };
  });
  api.route('GET', '/images/:scope/:id', (_req, p) => {
    const img = images.get(`${p.scope}/${p.id}`);
    if (!img) return api.error(404, 'Not found');
    if (++img.polls > 1) img.status = 'available';
    return { status: 200, body: { id: img.id, status: img.status } };
  });

  // Firewalls: label 3-32 characters; rules replaced as a whole; devices attached one by one.
  const checkRules = (rules: Obj | undefined) => {
    for (const r of ((rules?.inbound as Obj[]) ?? [])) {
      if (!['TCP', 'UDP', 'ICMP', 'IPENCAP'].includes(r.protocol as string)) return `protocol ${r.protocol} is not valid`;
      const a = r.addresses as { ipv4?: string[]; ipv6?: string[] } | undefined;
      for (const ip of a?.ipv4 ?? []) if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(ip)) return `${ip} is not a valid IPv4 address range`;
      if (!(a?.ipv4?.length || a?.ipv6?.length)) return 'at least one address is required';
    }
    return null;
  };
  api.route('POST', '/networking/firewalls', (req) => {
    const b = req.body as Obj;
    const label = b?.label as string;
    if (!label || label.length < 3 || label.length > 32) return fieldError('label', 'Length must be 3-32 characters');
    if ([...firewalls.values()].some((f) => f.label === label)) return fieldError('label', 'Label must be unique');
    const bad = checkRules(b.rules as Obj);
    if (bad) return fieldError('rules.inbound', bad);
    const f = { id: api.nextId(), label, status: 'enabled', rules: b.rules as Obj, tags: (b.tags as string[]) ?? [], devices: [...(((b.devices as { linodes?: number[] })?.linodes) ?? [])], created: new Date().toISOString() };
    firewalls.set(f.id, f);
    return { status: 200, body: view(f) };
  });
  api.route('GET', '/networking/firewalls', (req) => list(req, [...firewalls.values()].map(view)));
  api.route('GET', '/networking/firewalls/:id/rules', (_req, p) => {
    const f = firewalls.get(Number(p.id));
    return f ? { status: 200, body: f.rules } : api.error(404, 'Not found');
  });
  api.route('PUT', '/networking/firewalls/:id/rules', (req, p) => {
    const f = firewalls.get(Number(p.id));
    if (!f) return api.error(404, 'Not found');
    const bad = checkRules(req.body as Obj);
    if (bad) return fieldError('inbound', bad);
    f.rules = req.body as Obj;
    return { status: 200, body: f.rules };
  });
  api.route('GET', '/networking/firewalls/:id/devices', (req, p) => {
    const f = firewalls.get(Number(p.id));
    if (!f) return api.error(404, 'Not found');
    return list(req, f.devices.map((d) => ({ id: d + 5000, entity: { id: d, type: 'linode', label: instances.get(d)?.label ?? '' } })));
  });
  api.route('POST', '/networking/firewalls/:id/devices', (req, p) => {
    const f = firewalls.get(Number(p.id));
    if (!f) return api.error(404, 'Not found');
    const b = req.body as { id?: number; type?: string };
    if (b?.type !== 'linode' || !instances.has(b.id ?? -1)) return fieldError('id', 'Linode not found');
    if (f.devices.includes(b.id!)) return fieldError('id', 'Device is already assigned to this Firewall');
    f.devices.push(b.id!);
    return { status: 200, body: { id: b.id! + 5000, entity: { id: b.id, type: 'linode' } } };
  });
  api.route('DELETE', '/networking/firewalls/:id', (_req, p) => (firewalls.delete(Number(p.id)) ? { status: 200, body: {} } : api.error(404, 'Not found')));

  // Domains and records: record names are relative ('' for the apex); TTLs rounded up to allowed values.
  api.route('GET', '/domains', (req) => list(req, [...domains.values()].map(({ records: _r, ...d }) => d)));
  api.route('POST', '/domains', (req) => {
    const b = req.body as { domain?: string; type?: string; soa_email?: string };
    if (!b?.domain) return fieldError('domain', 'domain is required');
    if (b.type === 'master' && !b.soa_email) return fieldError('soa_email', 'soa_email is required for master domains');
    if ([...domains.values()].some((d) => d.domain === b.domain)) return fieldError('domain', 'Domain already exists');
    const d = { id: api.nextId(), domain: b.domain, type: b.type ?? 'master', soa_email: b.soa_email ?? '', status: 'active', records: [] };
    domains.set(d.id, d);
    const { records: _r, ...rest } = d;
    return { status: 200, body: rest };
  });
  api.route('GET', '/domains/:id/records', (req, p) => {
    const d = domains.get(Number(p.id));
    return d ? list(req, d.records) : api.error(404, 'Not found');
  });
  api.route('POST', '/domains/:id/records', (req, p) => {
    const d = domains.get(Number(p.id));
    if (!d) return api.error(404, 'Not found');
    const b = req.body as { type?: string; name?: string; target?: string; ttl_sec?: number };
    if (!b?.type || b.target === undefined) return fieldError('target', 'target is required');
    const ttl = ttls.find((t) => t >= (b.ttl_sec ?? 0)) ?? 2419200;
    const r = { id: api.nextId(), type: b.type, name: b.name ?? '', target: b.target, ttl_sec: ttl };
    d.records.push(r);
    return { status: 200, body: r };
  });
  api.route('DELETE', '/domains/:id/records/:rid', (_req, p) => {
    const d = domains.get(Number(p.id));
    const i = d?.records.findIndex((r) => r.id === Number(p.rid)) ?? -1;
    if (!d || i < 0) return api.error(404, 'Not found');
    d.records.splice(i, 1);
    return { status: 200, body: {} };
  });

  // Managed databases: `provisioning` for one GET, then `active`.
  for (const kind of ['mysql', 'postgresql']) {
    api.route('POST', `/databases/${kind}/instances`, (req) => {
      const b = req.body as Obj;
      for (const f of ['label', 'region', 'type', 'engine']) if (!b?.[f]) return fieldError(f, `${f} is required`);
      if (!String(b.engine).startsWith(`${kind}/`)) return fieldError('engine', `engine must be ${kind}/<version>`);
      const allow = (b.allow_list as string[]) ?? [];
      for (const a of allow) if (!/^[\d.]+(\/\d+)?$|^[0-9a-f:]+(\/\d+)?$/i.test(a)) return fieldError('allow_list', `${a} is not a valid IP address or range`);
      const id = api.nextId();
      const d = { id, label: b.label as string, region: b.region, type: b.type, engine: kind, version: String(b.engine).split('/')[1], status: 'provisioning', cluster_size: b.cluster_size ?? 1, allow_list: allow, hosts: { primary: `lin-${id}-mysql-primary.servers.linodedb.net`, secondary: null }, port: kind === 'mysql' ? 3306 : 5432, ssl_connection: true, created: new Date().toISOString(), polls: 0, kind };
      databases.set(id, d);
      return { status: 200, body: view(d) };
    });
    api.route('GET', `/databases/${kind}/instances`, (req) => list(req, [...databases.values()].filter((d) => d.kind === kind).map(view)));
    api.route('GET', `/databases/${kind}/instances/:id`, (_req, p) => {
      const d = databases.get(Number(p.id));
      if (!d || d.kind !== kind) return api.error(404, 'Not found');
      if (d.status === 'provisioning' && ++d.polls > 1) d.status = 'active';
      return { status: 200, body: view(d) };
    });
    api.route('GET', `/databases/${kind}/instances/:id/credentials`, (_req, p) => {
      const d = databases.get(Number(p.id));
      return d && d.kind === kind ? { status: 200, body: { username: 'linroot', password: `fake-${d.id}-secret` } } : api.error(404, 'Not found');
    });
    api.route('PUT', `/databases/${kind}/instances/:id`, (req, p) => {
      const d = databases.get(Number(p.id));
      if (!d || d.kind !== kind) return api.error(404, 'Not found');
      const allow = (req.body as { allow_list?: string[] })?.allow_list;
      if (allow) d.allow_list = [...allow];
      return { status: 200, body: view(d) };
    });
    api.route('DELETE', `/databases/${kind}/instances/:id`, (_req, p) => {
      const d = databases.get(Number(p.id));
      if (!d || d.kind !== kind) return api.error(404, 'Not found');
      databases.delete(d.id);
      return { status: 200, body: {} };
    });
  }

  return Object.assign(api, { state: { instances, firewalls, domains, databases } });
}

/** What a 429 from Linode carries (documented rate-limit headers). */
export function linodeRateLimit(retryAfterSeconds = 0): { status: number; headers: Record<string, string> } {
  return { status: 429, headers: { 'retry-after': String(retryAfterSeconds), 'x-ratelimit-limit': '800', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + retryAfterSeconds) } };
}
