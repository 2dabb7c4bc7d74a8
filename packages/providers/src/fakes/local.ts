/**
 * A fake of the local cloud's API (packages/localcloud/src/api.ts) for dry runs and unit tests: the
 * same paths, bodies and `{ id, message }` errors, as a fresh local cloud answers, and the few
 * calls of PowerDNS's API (the cloud's DNS) that the `powerdns` driver makes. A server turns
 * `running` on its second read; images: the stock one, and snapshots taken through the fake.
 */
import { bearer, FakeApi } from './harness.ts';

export interface LocalFakeOptions {
  token?: string;
  publicCidr?: string;
  privateCidr?: string;
  cloudId?: string;
  /** Ports of its services, as the real cloud's settings give them. */
  s3Port?: number;
  smtpPort?: number;
  mirrorPort?: number;
}

interface FakeServer {
  id: string;
  name: string;
  role: string;
  buildId: string;
  state: string;
  publicIp: string;
  privateIp: string;
  tags: string[];
  createdAt: string;
  image: string;
  polls: number;
}

export function localFake(o: LocalFakeOptions = {}) {
  const pub = (o.publicCidr ?? '198.18.0.0/24').replace(/\.0\/24$/, '');
  const priv = (o.privateCidr ?? '198.18.1.0/24').replace(/\.0\/24$/, '');
  const api: FakeApi = new FakeApi({
    prefix: '/v1',
    realBaseUrl: `http://${priv}.1:9701/v1`,
    errorBody: (_status, message) => ({ id: 'error', message }),
    authorize: (req) => (req.path.startsWith('/api/v1/') ? null : bearer(o.token ?? 'local-test-token', (m) => api.error(401, m))(req)),
  });
  const servers = new Map<string, FakeServer>();
  const firewalls = new Map<string, unknown[]>();
  const images = new Map<string, { id: string; name: string; kind: string; parent: string | null; createdAt: string; bytes: number }>([
    [
      'debian-12',
      { id: 'debian-12-stock', name: 'debian-12', kind: 'stock', parent: null, createdAt: '2026-01-01T00:00:00.000Z', bytes: 214_000_000 },
    ],
  ]);
  const zones = new Map<string, Map<string, { content: string; ttl: number }[]>>();
  let n = 1;
  const view = (s: FakeServer) => {
    const { polls: _p, ...rest } = s;
    return rest;
  };
  const findImage = (ref: string) => images.get(ref) ?? [...images.values()].find((i) => i.id === ref || i.name === ref);

  api
    .route('GET', '/cloud', () => ({
      status: 200,
      body: {
        cloud: {
          id: o.cloudId ?? 'adt',
          publicCidr: `${pub}.0/24`,
          privateCidr: `${priv}.0/24`,
          buildMachine: { publicIp: `${pub}.1`, privateIp: `${priv}.1` },
          outsiderIp: `${pub}.254`,
          nameserver: `${pub}.1`,
          stockImage: 'debian-12',
          version: 'fake',
        },
      },
    }))
    .route('GET', '/services', () => ({
      status: 200,
      body: {
        services: {
          s3: { endpoint: `http://${priv}.1:${o.s3Port ?? 9700}`, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
          dns: { apiUrl: `http://${priv}.1:8081`, apiKey: 'fake-pdns-key', nameserver: `${pub}.1`, port: 53 },
          smtp: { host: `${priv}.1`, port: o.smtpPort ?? 2525, mailDir: '/var/lib/adt-local/mail/messages' },
          mirror: { proxy: `http://${priv}.1:${o.mirrorPort ?? 3142}` },
        },
      },
    }))
    .route('POST', '/acme', () => ({
      status: 200,
      body: {
        acme: {
          directoryUrl: 'https://127.0.0.1:14000/dir',
          httpsCaPem: '(the pebble HTTPS CA)',
          rootPem: '(the pebble root)',
          dnsServer: `${pub}.1:53`,
        },
      },
    }))
    .route('POST', '/tokens', (req) => {
      const b = req.body as { buildId?: string; roles?: string[] };
      if (!b?.buildId || !Array.isArray(b.roles) || !b.roles.length) return api.error(422, 'buildId and roles are required');
      return { status: 201, body: { token: { id: `tok-${api.nextId()}`, token: `adtl_fake_${api.nextId()}` } } };
    })
    .route('DELETE', '/tokens', () => ({ status: 200, body: { revoked: 0 } }))
    .route('GET', '/servers', (req) => {
      const buildId = req.query.get('buildId');
      const role = req.query.get('role');
      const list = [...servers.values()].filter((s) => (!buildId || s.buildId === buildId) && (!role || s.role === role));
      return { status: 200, body: { servers: list.map(view) } };
    })
    .route('POST', '/servers', (req) => {
      const b = req.body as Partial<FakeServer> & { userData?: string; image?: string };
      if (!b?.name || !b.role || !b.buildId || typeof b.userData !== 'string')
        return api.error(422, 'name, buildId and userData are required strings');
      if (servers.has(b.name)) return api.error(422, `a server named ${b.name} already exists`);
      const image = findImage(b.image ?? 'debian-12');
      if (!image) return api.error(422, `image "${b.image}" is not in this cloud's images`);
      n++;
      const s: FakeServer = {
        id: b.name,
        name: b.name,
        role: b.role,
        buildId: b.buildId,
        state: 'creating',
        publicIp: `${pub}.${n}`,
        privateIp: `${priv}.${n}`,
        tags: ['adt', `role:${b.role}`, `build:${b.buildId}`, ...(b.tags ?? [])],
        createdAt: new Date().toISOString(),
        image: image.id,
        polls: 0,
      };
      servers.set(s.id, s);
      return { status: 201, body: { server: view(s) } };
    })
    .route('GET', '/servers/:id', (_req, p) => {
      const s = servers.get(p.id!);
      if (!s) return api.error(404, `no server ${p.id}`);
      s.polls++;
      if (s.polls >= 2 && s.state === 'creating') s.state = 'running';
      // An image builder (role build) powers itself off once its packages are in.
      if (s.polls >= 4 && s.role === 'build' && s.state === 'running') s.state = 'stopped';
      return { status: 200, body: { server: view(s) } };
    })
    .route('DELETE', '/servers/:id', (_req, p) => {
      servers.delete(p.id!);
      return { status: 204 };
    })
    .route('GET', '/servers/:id/console', (_req, p) =>
      servers.has(p.id!) ? { status: 200, body: { console: { log: '', exitCode: null } } } : api.error(404, `no server ${p.id}`),
    )
    .route('POST', '/servers/:id/actions', (req, p) => {
      const s = servers.get(p.id!);
      if (!s) return api.error(404, `no server ${p.id}`);
      const b = req.body as { type?: string; name?: string };
      if (b?.type === 'power_off') {
        s.state = 'stopped';
        return { status: 200, body: { server: view(s) } };
      }
      if (b?.type === 'snapshot' && b.name) {
        const image = {
          id: `snap-${api.nextId()}`,
          name: b.name,
          kind: 'snapshot',
          parent: s.image,
          createdAt: new Date().toISOString(),
          bytes: 1,
        };
        images.set(image.id, image);
        return { status: 201, body: { image } };
      }
      return api.error(422, 'type: "power_off" or "snapshot"');
    })
    .route('GET', '/images', () => ({ status: 200, body: { images: [...images.values()] } }))
    .route('GET', '/images/:ref', (_req, p) => {
      const image = findImage(p.ref!);
      return image ? { status: 200, body: { image } } : api.error(404, `no image ${p.ref}`);
    })
    .route('GET', '/firewalls/:buildId/:role', (_req, p) => {
      const rules = firewalls.get(`${p.buildId}/${p.role}`);
      return rules ? { status: 200, body: { rules } } : api.error(404, `no firewall for ${p.buildId}/${p.role}`);
    })
    .route('PUT', '/firewalls/:buildId/:role', (req, p) => {
      const rules = (req.body as { rules?: unknown[] })?.rules ?? [];
      firewalls.set(`${p.buildId}/${p.role}`, rules);
      return { status: 200, body: { rules } };
    })
    .route('DELETE', '/firewalls/:buildId/:role', (_req, p) => {
      firewalls.delete(`${p.buildId}/${p.role}`);
      return { status: 204 };
    })
    .route('DELETE', '/cloud', () =>
      servers.size ? api.error(409, `${servers.size} server(s) remain`) : { status: 202, body: { tearingDown: true } },
    )
    // PowerDNS (the cloud's DNS): what the powerdns driver asks.
    .route('GET', '/api/v1/servers/localhost/zones/:zone', (req, p) => {
      const zone = zones.get(p.zone!.replace(/\.$/, ''));
      if (!zone) return { status: 404, body: { error: 'Could not find domain' } };
      const name = req.query.get('rrset_name');
      const rrsets = [...zone.entries()]
        .filter(([n]) => !name || `${n}.` === name || n === name)
        .map(([n, records]) => ({
          name: `${n}.`,
          type: 'A',
          ttl: records[0]?.ttl ?? 60,
          records: records.map((r) => ({ content: r.content, disabled: false })),
        }));
      return { status: 200, body: { name: `${p.zone}`, rrsets } };
    })
    .route('POST', '/api/v1/servers/localhost/zones', (req) => {
      const name = String((req.body as { name?: string })?.name ?? '').replace(/\.$/, '');
      zones.set(name, new Map());
      return { status: 201, body: { name: `${name}.` } };
    })
    .route('PATCH', '/api/v1/servers/localhost/zones/:zone', (req, p) => {
      const zone = zones.get(p.zone!.replace(/\.$/, ''));
      if (!zone) return { status: 404, body: { error: 'Could not find domain' } };
      for (const r of (req.body as { rrsets?: { name: string; changetype: string; ttl?: number; records?: { content: string }[] }[] })
        ?.rrsets ?? []) {
        const name = r.name.replace(/\.$/, '');
        if (r.changetype === 'DELETE') zone.delete(name);
        else
          zone.set(
            name,
            (r.records ?? []).map((x) => ({ content: x.content, ttl: r.ttl ?? 60 })),
          );
      }
      return { status: 204 };
    });
  return api;
}
