/**
 * An Exoscale API v2 fake that follows the documented requests and responses
 * (https://openapi-v2.exoscale.com/): every request's EXO2-HMAC-SHA256 signature is recomputed
 * with the secret and checked (with its expiry), `{message}` error bodies, asynchronous writes that
 * answer an operation (`pending` at first, `success` with its `reference` when polled), lists
 * without pagination, instances `starting` then `running` with a public address, a managed private
 * network with leases, security groups and rules, DNS domains and records, DBaaS MySQL/PostgreSQL
 * with `ip-filter`, instance snapshots (`snapshotting` then `ready`) promoted to private templates
 * that new instances can use, SSH keys (`{name, fingerprint}`, registered by an operation, given to
 * instances by name in `ssh-keys` or the deprecated `ssh-key`). Exoscale documents no header on its
 * 429; the fake sends none unless told. Guessed (undocumented): a key's fingerprint is the MD5 of its
 * blob in colon-separated hex; registering a name that exists is a 409, a malformed key a 400, an
 * instance with an unknown key name a 400.
 * Addresses are strings in answers, never used.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { FakeApi, md5Fingerprint, publicKeyBlob, type FakeRequest, type FakeResponse } from './harness.ts';

type Obj = Record<string, unknown>;

export interface ExoscaleFakeOptions {
  apiKey?: string;
  apiSecret?: string;
  /** GETs of a new instance that answer `starting` before it runs (default 1). */
  bootPolls?: number;
  /** GETs of a new snapshot that answer `snapshotting` before it is ready (default 1). */
  snapshotPolls?: number;
  now?: () => number;
}

export const EXOSCALE_FAKE_TYPES = [
  { id: '21624abb-764e-4def-81d7-9fc54b5957fb', family: 'standard', size: 'small', cpus: 2, memory: 2147483648 },
  { id: 'b6cd1ff5-3a2f-4e9d-a4d1-8988c1191fe8', family: 'standard', size: 'medium', cpus: 2, memory: 4294967296 },
];
export const EXOSCALE_FAKE_TEMPLATES = [
  { id: '3d1e7e51-0fa0-46f2-b4f5-c3a5d0a6e4b4', name: 'Linux Debian 12 (Bookworm) 64-bit', family: 'debian' },
];
export const EXOSCALE_FAKE_NETWORK = 'f2c3b5d4-8a1e-4c2b-9d7e-1a2b3c4d5e6f';

/** Checks an Authorization header the way Exoscale does: null when valid, else why not. */
export function checkExoscaleSignature(
  header: string | undefined,
  req: { method: string; fullPath: string; query: URLSearchParams; rawBody: string },
  key: string,
  secret: string,
  nowSeconds: number,
): string | null {
  const m = /^EXO2-HMAC-SHA256 (.+)$/.exec(header ?? '');
  if (!m) return 'missing or malformed Authorization header';
  const parts = Object.fromEntries(m[1]!.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  if (parts.credential !== key) return 'invalid API key';
  const expires = Number(parts.expires);
  if (!Number.isInteger(expires) || expires < nowSeconds) return 'request expired';
  const names = parts['signed-query-args'] ? parts['signed-query-args'].split(';') : [];
  const message = [
    `${req.method} ${req.fullPath}`,
    req.rawBody,
    names.map((n) => req.query.get(n) ?? '').join(''),
    '',
    String(expires),
  ].join('\n');
  const want = createHmac('sha256', secret).update(message).digest();
  const got = Buffer.from(parts.signature ?? '', 'base64');
  return got.length === want.length && timingSafeEqual(got, want) ? null : 'invalid request signature';
}

export function exoscaleFake(o: ExoscaleFakeOptions = {}) {
  const key = o.apiKey ?? 'EXOtestkey';
  const secret = o.apiSecret ?? 'exo-test-secret';
  const api: FakeApi = new FakeApi({
    prefix: '/v2',
    realBaseUrl: 'https://api-ch-gva-2.exoscale.com/v2',
    errorBody: (_status, message) => ({ message }),
    authorize: (req: FakeRequest, rawBody: string) => {
      const why = checkExoscaleSignature(
        req.headers.authorization,
        { method: req.method, fullPath: req.fullPath ?? `/v2${req.path}`, query: req.query, rawBody },
        key,
        secret,
        Math.floor((o.now ?? Date.now)() / 1000),
      );
      return why ? { status: 403, body: { message: why } } : null;
    },
  });
  const operations = new Map<
    string,
    { id: string; state: string; reference: { id: string; link: string; command: string }; polls: number }
  >();
  const instances = new Map<
    string,
    Obj & { id: string; name: string; state: string; labels: Record<string, string>; polls: number; 'security-groups': { id: string }[] }
  >();
  const leases: { 'instance-id': string; ip: string }[] = [];
  const groups = new Map<string, { id: string; name: string; description: string; rules: (Obj & { id: string })[] }>();
  const domains = new Map<
    string,
    { id: string; 'unicode-name': string; records: (Obj & { id: string; name: string; type: string; content: string; ttl: number })[] }
  >();
  const templates = new Map<string, Obj & { id: string; name: string; visibility: string }>(
    EXOSCALE_FAKE_TEMPLATES.map((t) => [t.id, { ...t, visibility: 'public' }]),
  );
  const snapshots = new Map<
    string,
    Obj & { id: string; name: string; state: string; polls: number; instance: { id: string; name: string } }
  >();
  const services = new Map<string, Obj & { name: string; type: string; state: string; polls: number; 'ip-filter': string[] }>();
  const sshKeys = new Map<string, { name: string; fingerprint: string; publicKey: string }>();
  let n = 0;
  const uuid = () => `${api.nextId().toString(16).padStart(8, '0')}-0000-4000-8000-${String(++n).padStart(12, '0')}`;

  /** A write's answer: an operation, `pending` until polled once. */
  function operation(refId: string, command: string): FakeResponse {
    const op = { id: uuid(), state: 'pending', reference: { id: refId, link: `/v2/${command}/${refId}`, command }, polls: 0 };
    operations.set(op.id, op);
    return { status: 200, body: { id: op.id, state: op.state, reference: op.reference } };
  }
  api.route('GET', '/operation/:id', (_req, p) => {
    const op = operations.get(p.id!);
    if (!op) return api.error(404, 'Operation not found');
    if (op.state === 'pending' && ++op.polls >= 1) op.state = 'success';
    return { status: 200, body: { id: op.id, state: op.state, reference: op.reference } };
  });
  const view = ({ polls: _p, rules: _r, records: _rec, ...rest }: Obj) => rest;

  api.route('GET', '/instance-type', () => ({ status: 200, body: { 'instance-types': EXOSCALE_FAKE_TYPES } }));
  api.route('GET', '/template', (req) => {
    const visibility = req.query.get('visibility') ?? 'public';
    if (visibility !== 'public' && visibility !== 'private') return api.error(400, 'visibility must be public or private');
    return { status: 200, body: { templates: [...templates.values()].filter((t) => t.visibility === visibility) } };
  });
  api.route('GET', '/template/:id', (_req, p) =>
    templates.has(p.id!) ? { status: 200, body: templates.get(p.id!) } : api.error(404, `Template ${p.id} not found`),
  );
  api.route('DELETE', '/template/:id', (_req, p) => {
    const t = templates.get(p.id!);
    if (!t || t.visibility !== 'private') return api.error(404, `Template ${p.id} not found`);
    templates.delete(p.id!);
    return operation(p.id!, 'template');
  });
  // Snapshots: https://openapi-v2.exoscale.com/operation/operation-create-snapshot and the promote/list/get/delete operations.
  api.route('POST', '/instance/:id:create-snapshot', (_req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, `Instance ${p.id} not found`);
    const snap = {
      id: uuid(),
      name: `${i.name}-${new Date().toISOString().replace(/[-:]|\..*/g, '')}`,
      state: 'snapshotting',
      'created-at': new Date().toISOString(),
      size: 10,
      instance: { id: i.id, name: i.name },
      polls: 0,
    };
    snapshots.set(snap.id, snap);
    return operation(snap.id, 'snapshot');
  });
  api.route('GET', '/snapshot', () => ({ status: 200, body: { snapshots: [...snapshots.values()].map(view) } }));
  api.route('GET', '/snapshot/:id', (_req, p) => {
    const snap = snapshots.get(p.id!);
    if (!snap) return api.error(404, `Snapshot ${p.id} not found`);
    if (snap.state === 'snapshotting' && ++snap.polls > (o.snapshotPolls ?? 1)) snap.state = 'ready';
    return { status: 200, body: view(snap) };
  });
  api.route('POST', '/snapshot/:id:promote', (req, p) => {
    const snap = snapshots.get(p.id!);
    if (!snap) return api.error(404, `Snapshot ${p.id} not found`);
    if (snap.state !== 'ready') return api.error(400, `Snapshot ${p.id} is not ready (state ${snap.state})`);
    const b = (req.body ?? {}) as Obj;
    if (typeof b.name !== 'string' || b.name.length < 1 || b.name.length > 255)
      return api.error(400, 'name: required, 1 to 255 characters');
    const t = {
      id: uuid(),
      name: b.name,
      description: b.description ?? '',
      visibility: 'private',
      'default-user': b['default-user'],
      'ssh-key-enabled': b['ssh-key-enabled'] ?? true,
      'password-enabled': b['password-enabled'] ?? true,
      family: 'other (64-bit)',
      'created-at': new Date().toISOString(),
    };
    templates.set(t.id, t);
    return operation(t.id, 'template');
  });
  api.route('DELETE', '/snapshot/:id', (_req, p) =>
    snapshots.delete(p.id!) ? operation(p.id!, 'snapshot') : api.error(404, `Snapshot ${p.id} not found`),
  );
  // SSH keys: https://openapi-v2.exoscale.com/operation/operation-register-ssh-key and list/get/delete.
  const keyView = (k: { name: string; fingerprint: string }) => ({ name: k.name, fingerprint: k.fingerprint });
  api.route('GET', '/ssh-key', () => ({ status: 200, body: { 'ssh-keys': [...sshKeys.values()].map(keyView) } }));
  api.route('GET', '/ssh-key/:name', (_req, p) =>
    sshKeys.has(p.name!) ? { status: 200, body: keyView(sshKeys.get(p.name!)!) } : api.error(404, `SSH key ${p.name} not found`),
  );
  api.route('POST', '/ssh-key', (req) => {
    const b = req.body as { name?: unknown; 'public-key'?: unknown };
    if (typeof b?.name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$/.test(b.name))
      return api.error(400, 'name: required, ^[a-zA-Z0-9]{1}[a-zA-Z0-9._-]{0,254}$');
    const blob = publicKeyBlob(typeof b['public-key'] === 'string' ? b['public-key'].trim() : '');
    if (!blob) return api.error(400, 'public-key: an OpenSSH public key is required');
    if (sshKeys.has(b.name)) return api.error(409, `SSH key ${b.name} already exists`);
    const fingerprint = md5Fingerprint(blob);
    sshKeys.set(b.name, { name: b.name, fingerprint, publicKey: b['public-key'] as string });
    return operation(b.name, 'ssh-key');
  });
  api.route('DELETE', '/ssh-key/:name', (_req, p) =>
    sshKeys.delete(p.name!) ? operation(p.name!, 'ssh-key') : api.error(404, `SSH key ${p.name} not found`),
  );

  api.route('POST', '/instance', (req) => {
    const b = req.body as Obj;
    if (!b?.name || !(b['instance-type'] as Obj)?.id || !(b.template as Obj)?.id)
      return api.error(400, 'name, instance-type and template are required');
    if (!EXOSCALE_FAKE_TYPES.some((t) => t.id === (b['instance-type'] as Obj).id)) return api.error(400, 'Invalid instance-type');
    if (!templates.has((b.template as Obj).id as string)) return api.error(400, 'Invalid template');
    if (typeof b['user-data'] === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(b['user-data']))
      return api.error(400, 'user-data must be base64 encoded');
    for (const g of (b['security-groups'] as { id: string }[]) ?? [])
      if (!groups.has(g.id)) return api.error(400, `Security group ${g.id} not found`);
    const keyRefs = [
      ...((b['ssh-keys'] as { name?: string }[] | undefined) ?? []),
      ...(b['ssh-key'] ? [b['ssh-key'] as { name?: string }] : []),
    ];
    for (const k of keyRefs) if (!sshKeys.has(k?.name ?? '')) return api.error(400, `SSH key ${k?.name} not found`);
    const i = {
      id: uuid(),
      name: b.name as string,
      state: 'starting',
      labels: (b.labels as Record<string, string>) ?? {},
      'instance-type': b['instance-type'],
      template: b.template,
      'security-groups': [...((b['security-groups'] as { id: string }[]) ?? [])],
      'ssh-keys': [...new Set(keyRefs.map((k) => k.name!))].map((name) => keyView(sshKeys.get(name)!)),
      'created-at': new Date().toISOString(),
      polls: 0,
    };
    instances.set(i.id, i);
    return operation(i.id, 'instance');
  });
  api.route('GET', '/instance', () => ({ status: 200, body: { instances: [...instances.values()].map(view) } }));
  api.route('GET', '/instance/:id', (_req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, `Instance ${p.id} not found`);
    if (i.state === 'starting' && ++i.polls > (o.bootPolls ?? 1)) {
      i.state = 'running';
      i['public-ip'] = `198.51.100.${++n % 250}`;
    }
    return { status: 200, body: view(i) };
  });
  api.route('DELETE', '/instance/:id', (_req, p) => {
    if (!instances.delete(p.id!)) return api.error(404, `Instance ${p.id} not found`);
    for (let i = leases.length - 1; i >= 0; i--) if (leases[i]!['instance-id'] === p.id) leases.splice(i, 1);
    return operation(p.id!, 'instance');
  });
  api.route('GET', '/private-network/:id', (_req, p) =>
    p.id === EXOSCALE_FAKE_NETWORK
      ? {
          status: 200,
          body: { id: p.id, name: 'adt-vpc', 'start-ip': '198.18.140.10', 'end-ip': '198.18.140.250', netmask: '255.255.255.0', leases },
        }
      : api.error(404, 'Private network not found'),
  );
  api.route('PUT', '/private-network/:id:attach', (req, p) => {
    if (p.id !== EXOSCALE_FAKE_NETWORK) return api.error(404, 'Private network not found');
    const id = ((req.body as Obj)?.instance as { id?: string })?.id ?? '';
    if (!instances.has(id)) return api.error(404, `Instance ${id} not found`);
    if (!leases.some((l) => l['instance-id'] === id)) leases.push({ 'instance-id': id, ip: `198.18.140.${10 + leases.length}` });
    const inst = instances.get(id)!;
    const nets = (inst['private-networks'] as { id: string }[] | undefined) ?? [];
    if (!nets.some((x) => x.id === p.id)) inst['private-networks'] = [...nets, { id: p.id }];
    return operation(p.id, 'private-network');
  });

  // Security groups.
  api.route('POST', '/security-group', (req) => {
    const b = req.body as { name?: string; description?: string };
    if (!b?.name) return api.error(400, 'name is required');
    if ([...groups.values()].some((g) => g.name === b.name)) return api.error(409, `Security group ${b.name} already exists`);
    const g = { id: uuid(), name: b.name, description: b.description ?? '', rules: [] };
    groups.set(g.id, g);
    return operation(g.id, 'security-group');
  });
  api.route('GET', '/security-group', () => ({
    status: 200,
    body: { 'security-groups': [...groups.values()].map((g) => ({ ...view(g), rules: g.rules })) },
  }));
  api.route('GET', '/security-group/:id', (_req, p) => {
    const g = groups.get(p.id!);
    return g ? { status: 200, body: { ...view(g), rules: g.rules } } : api.error(404, 'Security group not found');
  });
  api.route('DELETE', '/security-group/:id', (_req, p) => {
    if (!groups.has(p.id!)) return api.error(404, 'Security group not found');
    if ([...instances.values()].some((i) => i['security-groups'].some((x) => x.id === p.id)))
      return api.error(409, 'Security group is in use');
    groups.delete(p.id!);
    return operation(p.id!, 'security-group');
  });
  api.route('POST', '/security-group/:id/rules', (req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, 'Security group not found');
    const b = req.body as Obj;
    if (!['ingress', 'egress'].includes(b?.['flow-direction'] as string)) return api.error(400, 'flow-direction must be ingress or egress');
    if (!['tcp', 'udp', 'icmp', 'icmpv6', 'ah', 'esp', 'gre', 'ipip', 'all'].includes(b.protocol as string))
      return api.error(400, 'Invalid protocol');
    if (b.protocol === 'icmp' && String(b.network ?? '').includes(':'))
      return api.error(400, 'icmp rules take IPv4 networks (icmpv6 for IPv6)');
    if ((b.protocol === 'tcp' || b.protocol === 'udp') && (typeof b['start-port'] !== 'number' || typeof b['end-port'] !== 'number'))
      return api.error(400, 'start-port and end-port are required for tcp and udp');
    if (!b.network && !b['security-group']) return api.error(400, 'network or security-group is required');
    const r = { ...b, id: uuid() };
    g.rules.push(r);
    return operation(g.id, 'security-group');
  });
  api.route('DELETE', '/security-group/:id/rules/:rule', (_req, p) => {
    const g = groups.get(p.id!);
    const i = g?.rules.findIndex((r) => r.id === p.rule) ?? -1;
    if (!g || i < 0) return api.error(404, 'Security group rule not found');
    g.rules.splice(i, 1);
    return operation(g.id, 'security-group');
  });
  api.route('PUT', '/security-group/:id:attach', (req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, 'Security group not found');
    const i = instances.get(((req.body as Obj)?.instance as { id?: string })?.id ?? '');
    if (!i) return api.error(404, 'Instance not found');
    if (!i['security-groups'].some((x) => x.id === g.id)) i['security-groups'].push({ id: g.id });
    return operation(g.id, 'security-group');
  });
  api.route('PUT', '/security-group/:id:detach', (req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, 'Security group not found');
    const i = instances.get(((req.body as Obj)?.instance as { id?: string })?.id ?? '');
    if (!i) return api.error(404, 'Instance not found');
    i['security-groups'] = i['security-groups'].filter((x) => x.id !== g.id);
    return operation(g.id, 'security-group');
  });

  // DNS.
  api.route('GET', '/dns-domain', () => ({ status: 200, body: { 'dns-domains': [...domains.values()].map(view) } }));
  api.route('POST', '/dns-domain', (req) => {
    const name = ((req.body as Obj)?.['unicode-name'] as string) ?? '';
    if (!name) return api.error(400, 'unicode-name is required');
    if ([...domains.values()].some((d) => d['unicode-name'] === name)) return api.error(409, `Domain ${name} already exists`);
    const d = { id: uuid(), 'unicode-name': name, records: [] };
    domains.set(d.id, d);
    return operation(d.id, 'dns-domain');
  });
  api.route('GET', '/dns-domain/:id/record', (_req, p) => {
    const d = domains.get(p.id!);
    return d ? { status: 200, body: { 'dns-domain-records': d.records } } : api.error(404, 'Domain not found');
  });
  api.route('POST', '/dns-domain/:id/record', (req, p) => {
    const d = domains.get(p.id!);
    if (!d) return api.error(404, 'Domain not found');
    const b = req.body as { name?: string; type?: string; content?: string; ttl?: number };
    if (b?.name === undefined || !b.type || !b.content) return api.error(400, 'name, type and content are required');
    const r = { id: uuid(), name: b.name, type: b.type, content: b.content, ttl: b.ttl ?? 3600, priority: 0 };
    d.records.push(r);
    return operation(r.id, 'dns-domain-record');
  });
  api.route('DELETE', '/dns-domain/:id/record/:rid', (_req, p) => {
    const d = domains.get(p.id!);
    const i = d?.records.findIndex((r) => r.id === p.rid) ?? -1;
    if (!d || i < 0) return api.error(404, 'Record not found');
    d.records.splice(i, 1);
    return operation(p.rid!, 'dns-domain-record');
  });

  // DBaaS: `rebuilding` for one GET, then `running`.
  for (const [path, type] of [
    ['dbaas-mysql', 'mysql'],
    ['dbaas-postgres', 'pg'],
  ] as const) {
    api.route('POST', `/${path}/:name`, (req, p) => {
      const b = req.body as Obj;
      if (!b?.plan) return api.error(400, 'plan is required');
      if (services.has(p.name!)) return api.error(409, `Service ${p.name} already exists`);
      const s = {
        name: p.name!,
        type,
        plan: b.plan,
        state: 'rebuilding',
        'ip-filter': [...((b['ip-filter'] as string[]) ?? [])],
        'created-at': new Date().toISOString(),
        polls: 0,
        'connection-info': {
          uri: [`${type === 'pg' ? 'postgres' : 'mysql'}://avnadmin:fake-secret@${p.name}-exoscale.aivencloud.com:21699/defaultdb`],
          params: [
            {
              host: `${p.name}-exoscale.aivencloud.com`,
              port: '21699',
              user: 'avnadmin',
              password: `fake-${p.name}-secret`,
              dbname: 'defaultdb',
            },
          ],
        },
      };
      services.set(s.name, s);
      return operation(s.name, path);
    });
    api.route('GET', `/${path}/:name`, (_req, p) => {
      const s = services.get(p.name!);
      if (!s || s.type !== type) return api.error(404, `Service ${p.name} not found`);
      if (s.state === 'rebuilding' && ++s.polls > 1) s.state = 'running';
      return { status: 200, body: view(s) };
    });
    api.route('PUT', `/${path}/:name`, (req, p) => {
      const s = services.get(p.name!);
      if (!s || s.type !== type) return api.error(404, `Service ${p.name} not found`);
      const f = (req.body as Obj)?.['ip-filter'] as string[] | undefined;
      if (f) s['ip-filter'] = [...f];
      return operation(s.name, path);
    });
  }
  api.route('GET', '/dbaas-service', () => ({
    status: 200,
    body: { 'dbaas-services': [...services.values()].map((s) => ({ name: s.name, type: s.type, plan: s.plan, state: s.state })) },
  }));
  api.route('DELETE', '/dbaas-service/:name', (_req, p) =>
    services.delete(p.name!) ? operation(p.name!, 'dbaas-service') : api.error(404, `Service ${p.name} not found`),
  );

  return Object.assign(api, { state: { instances, groups, domains, services, leases, operations, snapshots, templates, sshKeys } });
}

/** Exoscale's documented 429 body: `{error, retry_after}`; no rate-limit headers are documented. */
export function exoscaleRateLimit(): { status: number; body: unknown } {
  return { status: 429, body: { error: 'Too many requests', retry_after: 1 } };
}
