/**
 * A DigitalOcean API v2 fake that follows the documented requests and responses
 * (https://docs.digitalocean.com/reference/api/digitalocean/): bearer token, `{id, message}` error
 * bodies, 202 on droplet create with status `new` then `active` with its networks, `links.pages.next`
 * pagination with `meta.total`, 204 on deletes, rate-limit headers on every answer and on 429.
 * Account SSH keys: found by id or MD5 fingerprint, 201 on create, 422 "SSH Key is already in use on
 * your account" for a key registered before (as the API answers, under any name), and droplets
 * refuse key identifiers that are not the account's ("... are invalid key identifiers for Droplet
 * creation.", 422). Guessed: the message of a malformed public key.
 *
 * Snapshots: `POST /droplets/{id}/actions` `{type: "snapshot", name}` answers 201 with an action
 * `in-progress`, `GET /actions/{id}` turns `completed` (or `errored`), and the snapshot is then listed
 * under `/droplets/{id}/snapshots` (numeric ids) and `/snapshots` (`resource_type` filter; string
 * ids, as the API gives them), read and deleted by id (204). A droplet is created from one by its id
 * (`image`); an id that is no snapshot of the account is DigitalOcean's 422 "You specified an invalid
 * image for Droplet creation.".
 *
 * Backed (`backing`, see `backing.ts`): a droplet is the backing cloud's server, made from its name (a
 * toolkit name: role and build in it), its user-data, the public keys of its `ssh_keys` and the
 * backing's stock image for `debian-12-x64`; its state and addresses are the server's. Firewalls are
 * the backing's native rules of the build roles their tags name, domains are served with their
 * records, the default VPCs are its private network. A snapshot is the backing's
 * (`compute.snapshot` of the droplet's server, named as asked): the action completes when the
 * backing has made it, and is `errored` if it failed (a refusal within the first second, such as a
 * server still running, is answered as a 422 with the backing's message instead); the snapshot's id
 * stands for the backing's image (`state.backingImages`, saved with the state), and a droplet
 * created from it is the backing's server from that image. Deleting a snapshot forgets it only: the
 * backing's image stays (the providers' ComputeProvider has no image deletion). Refused with a
 * message that says so: snapshots when the backing's compute takes none, other images than
 * `debian-12-x64` and this account's snapshots, names not of the toolkit's form, managed databases.
 */
import { parseServerName } from '../naming.ts';
import type { InboundRule, Server } from '../types.ts';
import { applyTagged, backingSnapshot, type BackingSnapshotJob, type FakeBacking } from './backing.ts';
import { bearer, FakeApi, md5Fingerprint, pageOf, publicKeyBlob, type FakeRequest, type FakeResponse } from './harness.ts';

interface Droplet {
  id: number;
  name: string;
  status: string;
  created_at: string;
  tags: string[];
  region: { slug: string };
  size_slug: string;
  image: unknown;
  vpc_uuid: string | null;
  networks: { v4: { ip_address: string; netmask: string; gateway: string; type: string }[]; v6: unknown[] };
  user_data: string;
  /** The account keys it was given (by id), in root's authorized_keys: not in the API's droplet object. */
  ssh_keys: number[];
  polls: number;
  /** The backing cloud's server (a backed fake). */
  backing_id?: string;
}

export interface FakeSshKey {
  id: number;
  fingerprint: string;
  public_key: string;
  name: string;
}

/** The MD5 fingerprint DigitalOcean gives a public key line (colon-separated hex of the key blob), or null when malformed. */
export function digitaloceanFingerprint(publicKey: string): string | null {
  const text = publicKey.trim();
  const blob = publicKeyBlob(text);
  if (!blob) return null;
  const type = text.split(' ')[0]!;
  const bytes = Buffer.from(blob, 'base64');
  if (bytes.toString('base64') !== blob || bytes.length < 4 + type.length) return null;
  return md5Fingerprint(blob);
}

export interface DigitalOceanFakeOptions {
  token?: string;
  /** How many GETs of a new droplet answer `new` before it turns `active` (default 1). */
  bootPolls?: number;
  /**
   * Called (and awaited before the answer) after a record of a domain was added or deleted, with
   * the domain's records: lets a test serve them from a real DNS server (PowerDNS) that an ACME
   * server asks.
   */
  onRecordsChanged?: (zone: string, records: readonly { type: string; name: string; data: string; ttl: number }[]) => void | Promise<void>;
  /**
   * A cloud that runs the droplets for real (see `backing.ts`): droplets are its servers with their
   * addresses, firewalls its native rules, domains served by its DNS, the default VPC its private
   * network, snapshots its images. Managed databases are refused (not backed yet).
   */
  backing?: FakeBacking;
  /** The IP range of the default VPCs (a backed fake's is its cloud's private network). */
  vpcCidr?: string;
  /** Checks a request's credentials instead of the bearer token `token` (a backed fake takes its cloud's tokens). */
  authorize?: (req: FakeRequest) => FakeResponse | null;
}

const ERROR_IDS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  404: 'not_found',
  422: 'unprocessable_entity',
  429: 'too_many_requests',
  500: 'server_error',
};

export function digitaloceanFake(o: DigitalOceanFakeOptions = {}) {
  const api: FakeApi = new FakeApi({
    prefix: '/v2',
    realBaseUrl: 'https://api.digitalocean.com/v2',
    errorBody: (status, message) => ({ id: ERROR_IDS[status] ?? 'error', message, request_id: 'fake' }),
    authorize: (req) => (o.authorize ? o.authorize(req) : bearer(o.token ?? 'do-test-token', (m) => api.error(401, m))(req)),
  });
  const backing = o.backing;
  const droplets = new Map<number, Droplet>();
  const firewalls = new Map<string, Record<string, unknown> & { id: string; name: string; tags: string[] }>();
  const domains = new Map<string, { id: number; type: string; name: string; data: string; ttl: number }[]>();
  const databases = new Map<
    string,
    Record<string, unknown> & { id: string; name: string; tags: string[]; rules: { type: string; value: string }[]; polls: number }
  >();
  const actions = new Map<
    number,
    {
      id: number;
      status: string;
      polls: number;
      dropletId: number;
      name: string;
      started_at: string;
      region: string;
      job?: BackingSnapshotJob;
    }
  >();
  const snapshots: FakeSnapshot[] = [];
  /** A snapshot's id (as a string) -> the backing's image it stands for (a backed fake). */
  const backingImages = new Map<string, string>();
  const sshKeys = new Map<number, FakeSshKey>();
  let n = 0;

  /** Paginated list in DigitalOcean's shape. */
  function list<T>(req: FakeRequest, key: string, items: T[]) {
    const perPage = Math.min(200, Number(req.query.get('per_page') ?? 20));
    const page = Number(req.query.get('page') ?? 1);
    const { items: slice, pages } = pageOf(items, page, perPage);
    const link = (p: number) => {
      const q = new URLSearchParams(req.query);
      q.set('page', String(p));
      return `${api.baseUrl}${req.path}?${q}`;
    };
    return {
      status: 200,
      body: {
        [key]: slice,
        links: { pages: page < pages ? { next: link(page + 1), last: link(pages) } : {} },
        meta: { total: items.length },
      },
    };
  }

  function dropletView(d: Droplet) {
    const { polls: _p, user_data: _u, ssh_keys: _k, ...view } = d;
    return view;
  }

  // Account SSH keys: https://docs.digitalocean.com/reference/api/digitalocean/#tag/SSH-Keys
  const keyOf = (ref: string | number) =>
    [...sshKeys.values()].find((k) => String(k.id) === String(ref) || k.fingerprint === String(ref)) ?? null;
  api.route('GET', '/account/keys', (req) => list(req, 'ssh_keys', [...sshKeys.values()]));
  api.route('GET', '/account/keys/:ref', (_req, p) => {
    const k = keyOf(p.ref!);
    return k ? { status: 200, body: { ssh_key: k } } : api.error(404, 'The resource you were accessing could not be found.');
  });
  api.route('POST', '/account/keys', (req) => {
    const b = req.body as { name?: unknown; public_key?: unknown };
    if (typeof b?.name !== 'string' || !b.name) return api.error(422, 'Name is required');
    if (typeof b.public_key !== 'string' || !b.public_key) return api.error(422, 'Public Key is required');
    const fingerprint = digitaloceanFingerprint(b.public_key);
    if (!fingerprint) return api.error(422, 'Key invalid, key should be of the format `type key [comment]`');
    if (keyOf(fingerprint)) return api.error(422, 'SSH Key is already in use on your account');
    const k = { id: api.nextId(), fingerprint, public_key: b.public_key, name: b.name };
    sshKeys.set(k.id, k);
    return { status: 201, body: { ssh_key: k } };
  });
  api.route('DELETE', '/account/keys/:ref', (_req, p) => {
    const k = keyOf(p.ref!);
    return k && sshKeys.delete(k.id) ? { status: 204 } : api.error(404, 'The resource you were accessing could not be found.');
  });

  api.route('POST', '/droplets', async (req) => {
    const b = req.body as Record<string, unknown>;
    for (const f of ['name', 'region', 'size', 'image']) if (!b?.[f]) return api.error(422, `${f} is required`);
    const tags = (b.tags as string[] | undefined) ?? [];
    for (const t of tags)
      if (!/^[a-zA-Z0-9_:-]{1,255}$/.test(t))
        return api.error(422, `tag "${t}" may only contain letters, numbers, colons, dashes and underscores`);
    if (typeof b.user_data === 'string' && b.user_data.length > 64 * 1024) return api.error(422, 'user_data must be at most 64 KiB');
    const refs = (b.ssh_keys as (string | number)[] | undefined) ?? [];
    if (!Array.isArray(refs)) return api.error(422, 'ssh_keys must be an array of SSH key ids or fingerprints');
    const unknown = refs.filter((r) => !keyOf(r));
    if (unknown.length) return api.error(422, `${unknown.join(', ')} are invalid key identifiers for Droplet creation.`);
    let backingId: string | undefined;
    if (backing) {
      const parsed = parseServerName(b.name as string);
      if (!parsed)
        return api.error(422, `name "${b.name}": the local cloud runs servers named by the toolkit only (role and build in the name)`);
      const image = backedImage(b.image);
      if (typeof image !== 'string') return image;
      const s = await backing.compute.create({
        name: b.name as string,
        role: parsed.role,
        buildId: parsed.buildId,
        userData: (b.user_data as string) ?? '',
        image,
        sshKeys: [...new Set(refs.map((r) => keyOf(r)!.public_key.trim()))],
        tags,
      });
      backingId = s.id;
    }
    const id = api.nextId();
    const d: Droplet = {
      id,
      ...(backingId ? { backing_id: backingId } : {}),
      name: b.name as string,
      status: 'new',
      created_at: new Date().toISOString(),
      tags,
      region: { slug: b.region as string },
      size_slug: b.size as string,
      image: b.image,
      vpc_uuid: (b.vpc_uuid as string) ?? 'default-vpc',
      networks: { v4: [], v6: [] },
      user_data: (b.user_data as string) ?? '',
      ssh_keys: [...new Set(refs.map((r) => keyOf(r)!.id))],
      polls: 0,
    };
    droplets.set(id, d);
    return {
      status: 202,
      body: { droplet: dropletView(d), links: { actions: [{ id: api.nextId(), rel: 'create', href: `${api.baseUrl}/actions/0` }] } },
    };
  });
  api.route('GET', '/droplets', async (req) => {
    const tag = req.query.get('tag_name');
    const found = [...droplets.values()].filter((d) => !tag || d.tags.includes(tag));
    if (backing) await Promise.all(found.map((d) => refresh(d)));
    return list(req, 'droplets', found.filter((d) => droplets.has(d.id)).map(dropletView));
  });
  api.route('GET', '/droplets/:id', async (_req, p) => {
    const d = droplets.get(Number(p.id));
    if (!d || (backing && !(await refresh(d)))) return api.error(404, 'The resource you were accessing could not be found.');
    if (!backing && d.status === 'new' && ++d.polls > (o.bootPolls ?? 1)) {
      n++;
      d.status = 'active';
      d.networks.v4 = [
        { ip_address: `198.51.100.${n}`, netmask: '255.255.255.0', gateway: '198.51.100.254', type: 'public' },
        { ip_address: `198.18.128.${n + 1}`, netmask: '255.255.240.0', gateway: '198.18.128.1', type: 'private' },
      ];
    }
    return { status: 200, body: { droplet: dropletView(d) } };
  });
  api.route('DELETE', '/droplets/:id', async (_req, p) => {
    const d = droplets.get(Number(p.id));
    if (!d) return api.error(404, 'The resource you were accessing could not be found.');
    if (d.backing_id) await backing?.compute.destroy(d.backing_id);
    droplets.delete(d.id);
    return { status: 204 };
  });
  // https://docs.digitalocean.com/reference/api/digitalocean/#operation/dropletActions_post (type snapshot)
  api.route('POST', '/droplets/:id/actions', async (req, p) => {
    const b = req.body as { type?: string; name?: string };
    const d = droplets.get(Number(p.id));
    if (!d) return api.error(404, 'The resource you were accessing could not be found.');
    if (b?.type !== 'snapshot') return api.error(422, `action type ${b?.type} is not supported by this fake`);
    const a = {
      id: api.nextId(),
      status: 'in-progress',
      polls: 0,
      dropletId: d.id,
      name: b.name ?? 'snapshot',
      started_at: new Date().toISOString(),
      region: d.region.slug,
    };
    if (backing) {
      const compute = backing.compute;
      if (!compute.flags.snapshots || !compute.snapshot)
        return api.error(422, `snapshots are not backed by the local cloud: its compute (${compute.name}) takes none`);
      if (!d.backing_id) return api.error(422, `droplet ${d.id} is not a server of the local cloud: its snapshots are not backed`);
      const serverId = d.backing_id;
      const job = await backingSnapshot(
        () => compute.snapshot!(serverId, a.name),
        (image) => {
          const snap = { id: api.nextId(), name: a.name, dropletId: a.dropletId, region: a.region, created_at: new Date().toISOString() };
          snapshots.push(snap);
          backingImages.set(String(snap.id), image);
        },
      );
      if (job.error) return api.error(job.refused ? 422 : 500, `the local cloud: ${job.error}`);
      actions.set(a.id, { ...a, job });
    } else actions.set(a.id, a);
    return { status: 201, body: { action: actionView(actions.get(a.id)!) } };
  });
  // https://docs.digitalocean.com/reference/api/digitalocean/#operation/actions_get
  api.route('GET', '/actions/:id', (_req, p) => {
    const a = actions.get(Number(p.id));
    if (!a) return api.error(404, 'The resource you were accessing could not be found.');
    if (a.job) a.status = a.job.error ? 'errored' : a.job.image ? 'completed' : 'in-progress';
    else if (a.status === 'in-progress' && ++a.polls > 1) {
      a.status = 'completed';
      snapshots.push({ id: api.nextId(), name: a.name, dropletId: a.dropletId, region: a.region, created_at: new Date().toISOString() });
    }
    return { status: 200, body: { action: actionView(a) } };
  });
  // https://docs.digitalocean.com/reference/api/digitalocean/#operation/droplets_list_snapshots
  api.route('GET', '/droplets/:id/snapshots', (req, p) =>
    list(
      req,
      'snapshots',
      snapshots
        .filter((s) => s.dropletId === Number(p.id))
        .map((s) => ({
          id: s.id,
          name: s.name,
          distribution: 'Debian',
          slug: null,
          public: false,
          regions: [s.region ?? 'lon1'],
          created_at: s.created_at ?? '2026-01-01T00:00:00Z',
          min_disk_size: 25,
          type: 'snapshot',
          size_gigabytes: 2.5,
        })),
    ),
  );
  // https://docs.digitalocean.com/reference/api/digitalocean/#tag/Snapshots (ids are strings there)
  api.route('GET', '/snapshots', (req) => {
    const type = req.query.get('resource_type');
    return list(req, 'snapshots', type && type !== 'droplet' ? [] : snapshots.map(snapshotView));
  });
  api.route('GET', '/snapshots/:id', (_req, p) => {
    const s = snapshots.find((x) => String(x.id) === p.id);
    return s ? { status: 200, body: { snapshot: snapshotView(s) } } : api.error(404, 'The resource you were accessing could not be found.');
  });
  // Forgets the snapshot only: the backing's image stays (ComputeProvider has no image deletion).
  api.route('DELETE', '/snapshots/:id', (_req, p) => {
    const i = snapshots.findIndex((x) => String(x.id) === p.id);
    if (i < 0) return api.error(404, 'The resource you were accessing could not be found.');
    snapshots.splice(i, 1);
    backingImages.delete(p.id!);
    return { status: 204 };
  });

  // Firewalls: POST creates, PUT replaces (name required), tags and droplet_ids attach.
  const firewallBody = (b: Record<string, unknown>) => {
    if (!b?.name) return 'name is required';
    for (const r of (b.inbound_rules as { protocol: string; ports?: string; sources?: { addresses?: string[] } }[]) ?? []) {
      if (r.protocol !== 'icmp' && !r.ports) return 'ports is required for tcp and udp rules';
      if (!r.sources?.addresses?.length) return 'sources must name at least one address';
    }
    return null;
  };
  api.route('POST', '/firewalls', async (req) => {
    const b = req.body as Record<string, unknown>;
    const bad = firewallBody(b);
    if (bad) return api.error(422, bad);
    if ([...firewalls.values()].some((f) => f.name === b.name)) return api.error(409, `a firewall named ${b.name} exists`);
    if (backing) await applyTagged(backing, (b.tags as string[]) ?? [], inboundRules(b));
    const f = {
      ...b,
      id: `fw-${api.nextId()}`,
      name: b.name as string,
      status: 'succeeded',
      tags: (b.tags as string[]) ?? [],
      created_at: new Date().toISOString(),
    };
    firewalls.set(f.id, f);
    return { status: 202, body: { firewall: f } };
  });
  api.route('GET', '/firewalls', (req) => list(req, 'firewalls', [...firewalls.values()]));
  api.route('PUT', '/firewalls/:id', async (req, p) => {
    const f = firewalls.get(p.id!);
    if (!f) return api.error(404, 'The resource you were accessing could not be found.');
    const b = req.body as Record<string, unknown>;
    const bad = firewallBody(b);
    if (bad) return api.error(422, bad);
    if (backing) {
      const tags = (b.tags as string[]) ?? [];
      await applyTagged(
        backing,
        f.tags.filter((t) => !tags.includes(t)),
        null,
      );
      await applyTagged(backing, tags, inboundRules(b));
    }
    const next = { ...b, id: f.id, name: b.name as string, status: 'succeeded', tags: (b.tags as string[]) ?? [] };
    firewalls.set(f.id, next);
    return { status: 200, body: { firewall: next } };
  });
  api.route('DELETE', '/firewalls/:id', async (_req, p) => {
    const f = firewalls.get(p.id!);
    if (!f) return api.error(404, 'The resource you were accessing could not be found.');
    if (backing) await applyTagged(backing, f.tags, null);
    firewalls.delete(f.id);
    return { status: 204 };
  });

  // Domains and records: record names are relative (`www`, `@`); the list filter `name` is the FQDN.
  api.route('GET', '/domains/:zone', (_req, p) =>
    domains.has(p.zone!)
      ? { status: 200, body: { domain: { name: p.zone, ttl: 1800, zone_file: '' } } }
      : api.error(404, 'The resource you were accessing could not be found.'),
  );
  api.route('POST', '/domains', async (req) => {
    const name = (req.body as { name?: string })?.name;
    if (!name) return api.error(422, 'name is required');
    if (domains.has(name)) return api.error(422, `${name} already exists`);
    domains.set(name, []);
    await recordsChanged(name);
    return { status: 201, body: { domain: { name, ttl: 1800, zone_file: null } } };
  });
  api.route('GET', '/domains/:zone/records', (req, p) => {
    const records = domains.get(p.zone!);
    if (!records) return api.error(404, 'The resource you were accessing could not be found.');
    const type = req.query.get('type');
    const fqdn = req.query.get('name');
    const rel = fqdn ? (fqdn === p.zone ? '@' : fqdn.endsWith(`.${p.zone}`) ? fqdn.slice(0, -(p.zone!.length + 1)) : '\0') : null;
    return list(
      req,
      'domain_records',
      records.filter((r) => (!type || r.type === type) && (rel === null || r.name === rel)),
    );
  });
  api.route('POST', '/domains/:zone/records', async (req, p) => {
    const records = domains.get(p.zone!);
    if (!records) return api.error(404, 'The resource you were accessing could not be found.');
    const b = req.body as { type?: string; name?: string; data?: string; ttl?: number };
    if (!b?.type || !b.name || !b.data) return api.error(422, 'type, name and data are required');
    if (b.ttl !== undefined && b.ttl < 30) return api.error(422, 'TTL must be at least 30 seconds');
    // A name with a trailing dot is fully qualified: kept relative to the domain, as DigitalOcean
    // does (lego's DigitalOcean provider sends `_acme-challenge.www.example.com.`).
    let name = b.name;
    if (name.endsWith('.')) {
      const fqdn = name.slice(0, -1);
      if (fqdn !== p.zone && !fqdn.endsWith(`.${p.zone}`)) return api.error(422, `Name ${b.name} is not in the domain ${p.zone}`);
      name = fqdn === p.zone ? '@' : fqdn.slice(0, -(p.zone!.length + 1));
    }
    const r = { id: api.nextId(), type: b.type, name, data: b.data, ttl: b.ttl ?? 1800 };
    records.push(r);
    await recordsChanged(p.zone!);
    return { status: 201, body: { domain_record: r } };
  });
  api.route('DELETE', '/domains/:zone', async (_req, p) => {
    if (!domains.delete(p.zone!)) return api.error(404, 'The resource you were accessing could not be found.');
    await backing?.zone(p.zone!, null);
    return { status: 204 };
  });
  api.route('DELETE', '/domains/:zone/records/:id', async (_req, p) => {
    const records = domains.get(p.zone!);
    const i = records?.findIndex((r) => r.id === Number(p.id)) ?? -1;
    if (!records || i < 0) return api.error(404, 'The resource you were accessing could not be found.');
    records.splice(i, 1);
    await recordsChanged(p.zone!);
    return { status: 204 };
  });

  // Managed databases: `creating` for one GET, then `online` with its connection details.
  api.route('POST', '/databases', (req) => {
    if (backing) return api.error(422, 'managed databases are not backed by the local cloud yet');
    const b = req.body as Record<string, unknown>;
    for (const f of ['name', 'engine', 'region', 'size', 'num_nodes']) if (b?.[f] === undefined) return api.error(422, `${f} is required`);
    if (!['mysql', 'pg', 'redis', 'mongodb'].includes(b.engine as string)) return api.error(422, `engine ${b.engine} is not supported`);
    const id = `db-${api.nextId()}`;
    const d = {
      id,
      name: b.name as string,
      engine: b.engine,
      version: b.version ?? '8',
      status: 'creating',
      region: b.region,
      size: b.size,
      num_nodes: b.num_nodes,
      tags: (b.tags as string[]) ?? [],
      private_network_uuid: b.private_network_uuid ?? null,
      created_at: new Date().toISOString(),
      rules: [] as { type: string; value: string }[],
      polls: 0,
      connection: {
        protocol: b.engine === 'pg' ? 'postgresql' : 'mysql',
        host: `${b.name}-do-user-1-0.db.ondigitalocean.com`,
        port: 25060,
        user: 'doadmin',
        password: `fake-${api.nextId()}-secret`,
        database: 'defaultdb',
        ssl: true,
      },
      private_connection: { host: `private-${b.name}-do-user-1-0.db.ondigitalocean.com`, port: 25060 },
    };
    databases.set(id, d);
    return { status: 201, body: { database: dbView(d) } };
  });
  const dbView = (d: Record<string, unknown>) => {
    const { rules: _r, polls: _p, ...view } = d;
    return view;
  };
  api.route('GET', '/databases', (req) => {
    const tag = req.query.get('tag_name');
    return { status: 200, body: { databases: [...databases.values()].filter((d) => !tag || d.tags.includes(tag)).map(dbView) } };
  });
  api.route('GET', '/databases/:id', (_req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, 'The resource you were accessing could not be found.');
    if (d.status === 'creating' && ++d.polls > 1) d.status = 'online';
    return { status: 200, body: { database: dbView(d) } };
  });
  api.route('PUT', '/databases/:id/firewall', (req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, 'The resource you were accessing could not be found.');
    const rules = (req.body as { rules?: { type: string; value: string }[] })?.rules;
    if (!Array.isArray(rules)) return api.error(422, 'rules is required');
    for (const r of rules)
      if (!['ip_addr', 'droplet', 'k8s', 'tag', 'app'].includes(r.type)) return api.error(422, `rule type ${r.type} is not valid`);
    d.rules = rules.map((r) => ({ ...r }));
    return { status: 204 };
  });
  api.route('GET', '/databases/:id/firewall', (_req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, 'The resource you were accessing could not be found.');
    return {
      status: 200,
      body: { rules: d.rules.map((r, i) => ({ uuid: `rule-${i}`, cluster_uuid: d.id, ...r, created_at: new Date().toISOString() })) },
    };
  });
  api.route('DELETE', '/databases/:id', (_req, p) =>
    databases.delete(p.id!) ? { status: 204 } : api.error(404, 'The resource you were accessing could not be found.'),
  );

  // VPCs: https://docs.digitalocean.com/reference/api/digitalocean/#tag/VPCs (one default per region here).
  api.route('GET', '/vpcs', (req) =>
    list(
      req,
      'vpcs',
      ['ams3', 'blr1', 'fra1', 'lon1', 'nyc1', 'nyc3', 'sfo2', 'sfo3', 'sgp1', 'syd1', 'tor1'].map((region, i) => ({
        id: `default-vpc-${region}`,
        urn: `do:vpc:default-vpc-${region}`,
        name: `default-${region}`,
        description: '',
        region,
        // A backed fake's servers are all on its cloud's private network, whichever the region.
        ip_range: backing?.privateCidr ?? o.vpcCidr ?? `198.18.${128 + i * 16}.0/20`,
        default: true,
        created_at: '2026-01-01T00:00:00Z',
      })),
    ),
  );

  /** A backed droplet as its server is now (false: the server is gone, and so is the droplet). */
  async function refresh(d: Droplet): Promise<boolean> {
    if (!backing || !d.backing_id) return true;
    const s: Server | null = await backing.compute.get(d.backing_id);
    if (!s) {
      droplets.delete(d.id);
      return false;
    }
    d.status = s.state === 'running' ? 'active' : s.state === 'stopped' ? 'off' : s.state === 'creating' ? 'new' : 'archive';
    const net = (ip: string | null, type: string) =>
      ip ? [{ ip_address: ip, netmask: '255.255.255.0', gateway: ip.replace(/\.\d+$/, '.1'), type }] : [];
    d.networks.v4 = [...net(s.publicIp, 'public'), ...net(s.privateIp, 'private')];
    return true;
  }

  /**
   * The backing cloud's image for a droplet's `image`: the stock Debian 12 slug, or a snapshot of this
   * account (by id, a number or its string); else the API's error.
   */
  function backedImage(image: unknown): string | FakeResponse {
    if (image === 'debian-12-x64') return backing!.stockImage;
    const mapped = backingImages.get(String(image));
    if (mapped) return mapped;
    if (/^\d+$/.test(String(image))) return api.error(422, 'You specified an invalid image for Droplet creation.');
    return api.error(
      422,
      `image ${JSON.stringify(image)} is not backed by the local cloud: it has debian-12-x64 and this account's snapshots`,
    );
  }

  const actionView = (a: { id: number; status: string; dropletId: number; started_at: string; region: string }) => ({
    id: a.id,
    status: a.status,
    type: 'snapshot',
    started_at: a.started_at,
    completed_at: a.status === 'in-progress' ? null : new Date().toISOString(),
    resource_id: a.dropletId,
    resource_type: 'droplet',
    region_slug: a.region,
  });
  const snapshotView = (s: FakeSnapshot) => ({
    id: String(s.id),
    name: s.name,
    regions: [s.region ?? 'lon1'],
    created_at: s.created_at ?? '2026-01-01T00:00:00Z',
    resource_id: String(s.dropletId),
    resource_type: 'droplet',
    min_disk_size: 25,
    size_gigabytes: 2.5,
    tags: [],
  });

  async function recordsChanged(zone: string): Promise<void> {
    const records = domains.get(zone) ?? [];
    await o.onRecordsChanged?.(zone, records);
    await backing?.zone(
      zone,
      records.map((r) => ({ name: r.name === '@' ? zone : `${r.name}.${zone}`, type: r.type, content: r.data, ttl: r.ttl })),
    );
  }

  /** What a backed fake holds, to be saved and loaded again (a restarted cloud keeps its account). */
  function exportState() {
    return {
      ids: api.lastId(),
      n,
      droplets: [...droplets.values()],
      firewalls: [...firewalls.values()],
      domains: [...domains.entries()],
      sshKeys: [...sshKeys.values()],
      snapshots,
      /** Snapshot id -> the backing's image, as pairs (JSON-safe). */
      backingImages: [...backingImages.entries()],
    };
  }
  type Saved = ReturnType<typeof exportState>;
  /** Loads a saved state; one saved before snapshots were backed (no `backingImages`) loads too. */
  function importState(x: Omit<Saved, 'backingImages'> & Partial<Pick<Saved, 'backingImages'>>) {
    api.lastId(x.ids);
    n = x.n;
    for (const d of x.droplets) droplets.set(d.id, d);
    for (const f of x.firewalls) firewalls.set(f.id, f);
    for (const [z, r] of x.domains) domains.set(z, r);
    for (const k of x.sshKeys) sshKeys.set(k.id, k);
    snapshots.push(...x.snapshots);
    for (const [id, image] of x.backingImages ?? []) backingImages.set(id, image);
  }

  return Object.assign(api, {
    state: { droplets, firewalls, domains, databases, sshKeys, snapshots, backingImages },
    exportState,
    importState,
  });
}

interface FakeSnapshot {
  id: number;
  name: string;
  dropletId: number;
  /** Absent in a state saved before they were kept. */
  region?: string;
  created_at?: string;
}

/** A DigitalOcean firewall body's inbound rules in the providers' shape. */
function inboundRules(b: Record<string, unknown>): InboundRule[] {
  return ((b.inbound_rules as { protocol: 'tcp' | 'udp' | 'icmp'; ports?: string; sources?: { addresses?: string[] } }[]) ?? []).map(
    (r) => {
      const [from, to] = (r.ports ?? '').split('-').map(Number);
      const port =
        r.protocol === 'icmp' || r.ports === '0' || r.ports === 'all' ? undefined : to ? ([from!, to] as [number, number]) : from;
      return { protocol: r.protocol, ...(port === undefined ? {} : { port }), sources: r.sources?.addresses ?? [] };
    },
  );
}

/** What a 429 from DigitalOcean carries (documented rate-limit headers). */
export function digitaloceanRateLimit(resetInSeconds = 1): { status: number; headers: Record<string, string> } {
  return {
    status: 429,
    headers: {
      'ratelimit-limit': '5000',
      'ratelimit-remaining': '0',
      'ratelimit-reset': String(Math.floor(Date.now() / 1000) + resetInSeconds),
    },
  };
}
