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
 * Unbacked, addresses are strings in answers, never used.
 *
 * Backed (`backing`, see `backing.ts`): an instance is the backing cloud's server, created (before
 * the `POST /instance` answers its operation) with the instance's name (a toolkit name: role and
 * build parsed from it), its decoded `user-data`, the public keys of its `ssh-keys` (and
 * `ssh-key`), its label keys as tags, and the backing's stock image for the Debian 12 template or
 * the backing's image of one of this account's templates; its state and `public-ip` are the
 * server's, read again on every GET (a server gone is an instance gone). Its private address is
 * where the driver reads Exoscale's: the lease of a managed private network it is attached to
 * (`GET /private-network/{id}` `leases`). The backing's servers are all on its private network, so
 * every backed instance is attached from its creation to the one managed network
 * (EXOSCALE_FAKE_NETWORK, `start-ip`/`end-ip`/`netmask` of the backing's `privateCidr`), whose
 * leases are the servers' private addresses (an `:attach` to it is answered as done). A security
 * group named `adt-<build>-<role>` (the driver's names) is the backing's native firewall of that
 * build role, which covers every server of the role: made, it applies no rules (a group drops the
 * ingress its rules do not accept); each rule added or deleted applies the group's whole ingress
 * rule set again (one rule per protocol, port range and description, icmpv6 as icmp); deleting the
 * group removes the firewall. An instance may be in its own role's group only, and is created in
 * it when the group exists; a detach is recorded only (the driver detaches to delete the group):
 * the backing's firewall keeps covering the server until the group is deleted. A DNS domain's
 * records are served by the backing (A and TXT, names fully qualified, the TXT text unquoted), a
 * deleted domain is no longer served. A snapshot (`:create-snapshot`) is the backing's snapshot of
 * the instance's server (`compute.snapshot`, named by the snapshot's name): `snapshotting` until the
 * backing has made it, then `ready`, or `error` if it failed (a refusal within the first second,
 * such as a server still running, is the 400 of the `POST`, with the backing's message); a template
 * promoted from it stands for the same backing image, and an instance created from the template is
 * the backing's server from that image (`state.backingImages`: snapshot and template ids -> the
 * backing's images, saved with the state; a snapshot still `snapshotting` when the fake stops is
 * lost with the restart). Deleting a snapshot or a template forgets it only: the backing's image
 * stays (the providers' ComputeProvider has no image deletion). Operations succeed when polled, as
 * unbacked; the work is done before the operation is answered. `exportState`/`importState` save
 * and load the account as JSON (a state without the optional fields loads).
 * Refused with a 400 `{message}` that says why: instance names of other forms, other templates,
 * attaching to another private network (404: there is none), security groups of other names,
 * an instance in another role's group (or created outside its own), egress rules, rules of
 * protocols other than tcp, udp, icmp and icmpv6, rules whose source is a security group, icmp
 * rules of one type or code, DNS records of other types, snapshots when the backing's compute
 * takes none, and managed databases (not backed yet).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseServerName } from '../naming.ts';
import type { InboundRule, Role, Server } from '../types.ts';
import { backingFailure, backingSnapshot, roleOfTag, type BackingRecord, type BackingSnapshotJob, type FakeBacking } from './backing.ts';
import { FakeApi, md5Fingerprint, publicKeyBlob, type FakeRequest, type FakeResponse } from './harness.ts';

type Obj = Record<string, unknown>;

export interface ExoscaleFakeOptions {
  apiKey?: string;
  apiSecret?: string;
  /** GETs of a new instance that answer `starting` before it runs (default 1; unbacked only). */
  bootPolls?: number;
  /** GETs of a new snapshot that answer `snapshotting` before it is ready (default 1; unbacked only). */
  snapshotPolls?: number;
  now?: () => number;
  /**
   * A cloud that runs the instances for real (see `backing.ts` and this file's header): instances
   * are its servers with their addresses, security groups its native firewalls of build roles,
   * domains served by its DNS, snapshots and templates its images. Managed databases are refused.
   */
  backing?: FakeBacking;
  /** Checks a request's credentials instead of the signature with `apiKey`/`apiSecret` (a backed fake takes its cloud's keys). */
  authorize?: (req: FakeRequest) => FakeResponse | null;
}

export const EXOSCALE_FAKE_TYPES = [
  { id: '21624abb-764e-4def-81d7-9fc54b5957fb', family: 'standard', size: 'small', cpus: 2, memory: 2147483648 },
  { id: 'b6cd1ff5-3a2f-4e9d-a4d1-8988c1191fe8', family: 'standard', size: 'medium', cpus: 2, memory: 4294967296 },
];
export const EXOSCALE_FAKE_TEMPLATES = [
  { id: '3d1e7e51-0fa0-46f2-b4f5-c3a5d0a6e4b4', name: 'Linux Debian 12 (Bookworm) 64-bit', family: 'debian' },
];
export const EXOSCALE_FAKE_NETWORK = 'f2c3b5d4-8a1e-4c2b-9d7e-1a2b3c4d5e6f';

interface FakeOperation {
  id: string;
  state: string;
  reference: { id: string; link: string; command: string };
  polls: number;
}
interface FakeInstance extends Obj {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
  polls: number;
  'security-groups': { id: string }[];
  'private-networks'?: { id: string }[];
  'public-ip'?: string;
  /** The backing cloud's server (a backed fake). */
  backing_id?: string;
  /** The server's private address: its lease on the backed private network. */
  private_ip?: string;
}
interface FakeRule extends Obj {
  id: string;
}
interface FakeGroup {
  id: string;
  name: string;
  description: string;
  rules: FakeRule[];
}
interface FakeRecord extends Obj {
  id: string;
  name: string;
  type: string;
  content: string;
  ttl: number;
}
interface FakeDomain {
  id: string;
  'unicode-name': string;
  records: FakeRecord[];
}
interface FakeTemplate extends Obj {
  id: string;
  name: string;
  visibility: string;
}
interface FakeSnapshot extends Obj {
  id: string;
  name: string;
  state: string;
  polls: number;
  instance: { id: string; name: string };
}
interface FakeService extends Obj {
  name: string;
  type: string;
  state: string;
  polls: number;
  'ip-filter': string[];
}

/** The template the backing's stock image stands for. */
const STOCK_TEMPLATE = EXOSCALE_FAKE_TEMPLATES[0]!;
/** The words of a backed fake's refusals (each a 400 `{message}`). */
const NOT_BACKED = 'is not backed by the local cloud';

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
      if (o.authorize) return o.authorize(req);
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
  const backing = o.backing;
  const operations = new Map<string, FakeOperation>();
  const instances = new Map<string, FakeInstance>();
  /** The managed network's leases (unbacked; a backed fake's are its servers' private addresses). */
  const leases: { 'instance-id': string; ip: string }[] = [];
  const groups = new Map<string, FakeGroup>();
  const domains = new Map<string, FakeDomain>();
  const templates = new Map<string, FakeTemplate>(EXOSCALE_FAKE_TEMPLATES.map((t) => [t.id, { ...t, visibility: 'public' }]));
  const snapshots = new Map<string, FakeSnapshot>();
  const services = new Map<string, FakeService>();
  const sshKeys = new Map<string, { name: string; fingerprint: string; publicKey: string }>();
  /** A snapshot's or template's id -> the backing's image it stands for (a backed fake). */
  const backingImages = new Map<string, string>();
  /** The backing's snapshots being taken, by snapshot id (not saved: a restart loses them). */
  const snapshotJobs = new Map<string, BackingSnapshotJob>();
  let n = 0;
  const uuid = () => `${api.nextId().toString(16).padStart(8, '0')}-0000-4000-8000-${String(++n).padStart(12, '0')}`;
  /**
   * A route whose failures of the backing are answered in Exoscale's error shape: the backing
   * refusing what it was asked is a 400, anything else a 500, each with the backing's message.
   */
  const route = (method: string, path: string, handler: Parameters<FakeApi['route']>[2]) =>
    api.route(method, path, async (req, p) => {
      try {
        return await handler(req, p);
      } catch (e) {
        if (!backing) throw e;
        return backingFailure(api, e);
      }
    });

  /** A write's answer: an operation, `pending` until polled once. */
  function operation(refId: string, command: string): FakeResponse {
    const op = { id: uuid(), state: 'pending', reference: { id: refId, link: `/v2/${command}/${refId}`, command }, polls: 0 };
    operations.set(op.id, op);
    return { status: 200, body: { id: op.id, state: op.state, reference: op.reference } };
  }
  // https://openapi-v2.exoscale.com/operation/operation-get-operation
  route('GET', '/operation/:id', (_req, p) => {
    const op = operations.get(p.id!);
    if (!op) return api.error(404, 'Operation not found');
    if (op.state === 'pending' && ++op.polls >= 1) op.state = 'success';
    return { status: 200, body: { id: op.id, state: op.state, reference: op.reference } };
  });
  const view = ({ polls: _p, rules: _r, records: _rec, backing_id: _b, private_ip: _pi, ...rest }: Obj) => rest;

  route('GET', '/instance-type', () => ({ status: 200, body: { 'instance-types': EXOSCALE_FAKE_TYPES } }));
  route('GET', '/template', (req) => {
    const visibility = req.query.get('visibility') ?? 'public';
    if (visibility !== 'public' && visibility !== 'private') return api.error(400, 'visibility must be public or private');
    return { status: 200, body: { templates: [...templates.values()].filter((t) => t.visibility === visibility) } };
  });
  route('GET', '/template/:id', (_req, p) =>
    templates.has(p.id!) ? { status: 200, body: templates.get(p.id!) } : api.error(404, `Template ${p.id} not found`),
  );
  // https://openapi-v2.exoscale.com/operation/operation-delete-template (forgets it only: the backing's image stays)
  route('DELETE', '/template/:id', (_req, p) => {
    const t = templates.get(p.id!);
    if (!t || t.visibility !== 'private') return api.error(404, `Template ${p.id} not found`);
    templates.delete(p.id!);
    backingImages.delete(p.id!);
    return operation(p.id!, 'template');
  });
  // Snapshots: https://openapi-v2.exoscale.com/operation/operation-create-snapshot and the promote/list/get/delete operations.
  route('POST', '/instance/:id:create-snapshot', async (_req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, `Instance ${p.id} not found`);
    const snap: FakeSnapshot = {
      id: uuid(),
      name: `${i.name}-${new Date().toISOString().replace(/[-:]|\..*/g, '')}`,
      state: 'snapshotting',
      'created-at': new Date().toISOString(),
      size: 10,
      instance: { id: i.id, name: i.name },
      polls: 0,
    };
    if (backing) {
      const compute = backing.compute;
      if (!compute.flags.snapshots || !compute.snapshot)
        return api.error(400, `snapshots are not backed by the local cloud: its compute (${compute.name}) takes none`);
      const serverId = i.backing_id;
      if (!serverId) return api.error(400, `instance ${i.name} is no server of the local cloud: its snapshots are not backed`);
      const job = await backingSnapshot(
        () => compute.snapshot!(serverId, snap.name),
        (image) => {
          backingImages.set(snap.id, image);
          snap.state = 'ready';
        },
      );
      if (job.error) return api.error(job.refused ? 400 : 500, `the local cloud: ${job.error}`);
      if (!job.image) snapshotJobs.set(snap.id, job);
    }
    snapshots.set(snap.id, snap);
    return operation(snap.id, 'snapshot');
  });
  route('GET', '/snapshot', () => {
    for (const id of [...snapshotJobs.keys()]) snapshotState(id);
    return { status: 200, body: { snapshots: [...snapshots.values()].map(view) } };
  });
  route('GET', '/snapshot/:id', (_req, p) => {
    const snap = snapshots.get(p.id!);
    if (!snap) return api.error(404, `Snapshot ${p.id} not found`);
    if (backing) snapshotState(snap.id);
    else if (snap.state === 'snapshotting' && ++snap.polls > (o.snapshotPolls ?? 1)) snap.state = 'ready';
    return { status: 200, body: view(snap) };
  });
  route('POST', '/snapshot/:id:promote', (req, p) => {
    const snap = snapshots.get(p.id!);
    if (!snap) return api.error(404, `Snapshot ${p.id} not found`);
    if (backing) snapshotState(snap.id);
    if (snap.state !== 'ready') return api.error(400, `Snapshot ${p.id} is not ready (state ${snap.state})`);
    const b = (req.body ?? {}) as Obj;
    if (typeof b.name !== 'string' || b.name.length < 1 || b.name.length > 255)
      return api.error(400, 'name: required, 1 to 255 characters');
    const image = backingImages.get(snap.id);
    if (backing && !image) return api.error(400, `snapshot ${snap.id} is no image of the local cloud: its templates ${NOT_BACKED}`);
    const t: FakeTemplate = {
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
    if (image) backingImages.set(t.id, image);
    return operation(t.id, 'template');
  });
  // https://openapi-v2.exoscale.com/operation/operation-delete-snapshot (forgets it only: the backing's image stays)
  route('DELETE', '/snapshot/:id', (_req, p) => {
    if (!snapshots.delete(p.id!)) return api.error(404, `Snapshot ${p.id} not found`);
    backingImages.delete(p.id!);
    snapshotJobs.delete(p.id!);
    return operation(p.id!, 'snapshot');
  });
  // SSH keys: https://openapi-v2.exoscale.com/operation/operation-register-ssh-key and list/get/delete.
  const keyView = (k: { name: string; fingerprint: string }) => ({ name: k.name, fingerprint: k.fingerprint });
  route('GET', '/ssh-key', () => ({ status: 200, body: { 'ssh-keys': [...sshKeys.values()].map(keyView) } }));
  route('GET', '/ssh-key/:name', (_req, p) =>
    sshKeys.has(p.name!) ? { status: 200, body: keyView(sshKeys.get(p.name!)!) } : api.error(404, `SSH key ${p.name} not found`),
  );
  route('POST', '/ssh-key', (req) => {
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
  route('DELETE', '/ssh-key/:name', (_req, p) =>
    sshKeys.delete(p.name!) ? operation(p.name!, 'ssh-key') : api.error(404, `SSH key ${p.name} not found`),
  );

  // https://openapi-v2.exoscale.com/operation/operation-create-instance
  route('POST', '/instance', async (req) => {
    const b = req.body as Obj;
    if (!b?.name || !(b['instance-type'] as Obj)?.id || !(b.template as Obj)?.id)
      return api.error(400, 'name, instance-type and template are required');
    if (!EXOSCALE_FAKE_TYPES.some((t) => t.id === (b['instance-type'] as Obj).id)) return api.error(400, 'Invalid instance-type');
    const templateId = (b.template as Obj).id as string;
    if (!templates.has(templateId)) return api.error(400, 'Invalid template');
    if (typeof b['user-data'] === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(b['user-data']))
      return api.error(400, 'user-data must be base64 encoded');
    const sgs = (b['security-groups'] as { id: string }[] | undefined) ?? [];
    for (const g of sgs) if (!groups.has(g.id)) return api.error(400, `Security group ${g.id} not found`);
    const keyRefs = [
      ...((b['ssh-keys'] as { name?: string }[] | undefined) ?? []),
      ...(b['ssh-key'] ? [b['ssh-key'] as { name?: string }] : []),
    ];
    for (const k of keyRefs) if (!sshKeys.has(k?.name ?? '')) return api.error(400, `SSH key ${k?.name} not found`);
    const keyNames = [...new Set(keyRefs.map((k) => k.name!))];
    const labels = (b.labels as Record<string, string>) ?? {};
    let server: Server | null = null;
    if (backing) {
      const name = String(b.name);
      const parsed = parseServerName(name);
      if (!parsed)
        return api.error(400, `name "${name}": the local cloud runs instances named by the toolkit only (role and build in the name)`);
      const image = templateId === STOCK_TEMPLATE.id ? backing.stockImage : backingImages.get(templateId);
      if (!image)
        return api.error(
          400,
          `template ${templates.get(templateId)!.name} ${NOT_BACKED}: ` +
            `it has ${STOCK_TEMPLATE.name} and this account's templates of its snapshots`,
        );
      const own = [...groups.values()].find((g) => sameRole(roleOfTag(g.name), parsed));
      for (const g of sgs)
        if (groups.get(g.id) !== own)
          return api.error(
            400,
            `security group ${groups.get(g.id)!.name} is not that of ${parsed.role} servers of build ${parsed.buildId}: ` +
              `the local cloud's firewalls are per build role`,
          );
      if (own && !sgs.some((g) => g.id === own.id))
        return api.error(
          400,
          `the local cloud's firewall ${own.name} covers every ${parsed.role} server of build ${parsed.buildId}: ` +
            `create the instance in security group ${own.id}`,
        );
      server = await backing.compute.create({
        name,
        role: parsed.role,
        buildId: parsed.buildId,
        userData: Buffer.from((b['user-data'] as string | undefined) ?? '', 'base64').toString('utf8'),
        image,
        sshKeys: [...new Set(keyNames.map((k) => sshKeys.get(k)!.publicKey.trim()))],
        tags: Object.keys(labels),
      });
    }
    const i: FakeInstance = {
      id: uuid(),
      name: b.name as string,
      state: 'starting',
      labels,
      'instance-type': b['instance-type'],
      template: b.template,
      'security-groups': [...sgs],
      'ssh-keys': keyNames.map((name) => keyView(sshKeys.get(name)!)),
      'created-at': new Date().toISOString(),
      polls: 0,
      // The backing's servers are all on its private network: attached from the start.
      ...(server ? { backing_id: server.id, 'private-networks': [{ id: EXOSCALE_FAKE_NETWORK }] } : {}),
    };
    if (server) showServer(i, server);
    instances.set(i.id, i);
    return operation(i.id, 'instance');
  });
  // https://openapi-v2.exoscale.com/operation/operation-list-instances
  route('GET', '/instance', async () => {
    await refreshAll();
    return { status: 200, body: { instances: [...instances.values()].map(view) } };
  });
  // https://openapi-v2.exoscale.com/operation/operation-get-instance
  route('GET', '/instance/:id', async (_req, p) => {
    const i = instances.get(p.id!);
    if (!i || !(await refresh(i))) return api.error(404, `Instance ${p.id} not found`);
    if (!backing && i.state === 'starting' && ++i.polls > (o.bootPolls ?? 1)) {
      i.state = 'running';
      i['public-ip'] = `198.51.100.${++n % 250}`;
    }
    return { status: 200, body: view(i) };
  });
  // https://openapi-v2.exoscale.com/operation/operation-delete-instance
  route('DELETE', '/instance/:id', async (_req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, `Instance ${p.id} not found`);
    if (i.backing_id) await backing?.compute.destroy(i.backing_id);
    instances.delete(i.id);
    for (let x = leases.length - 1; x >= 0; x--) if (leases[x]!['instance-id'] === p.id) leases.splice(x, 1);
    return operation(p.id!, 'instance');
  });

  // Private networks: https://openapi-v2.exoscale.com/operation/operation-get-private-network (one managed network).
  async function networkView(withLeases: boolean): Promise<Obj> {
    if (!backing)
      return {
        id: EXOSCALE_FAKE_NETWORK,
        name: 'adt-vpc',
        'start-ip': '198.18.140.10',
        'end-ip': '198.18.140.250',
        netmask: '255.255.255.0',
        ...(withLeases ? { leases } : {}),
      };
    if (withLeases) await refreshAll();
    return {
      id: EXOSCALE_FAKE_NETWORK,
      name: 'local',
      description: "the local cloud's private network",
      ...cidrRange(backing.privateCidr),
      ...(withLeases
        ? {
            leases: [...instances.values()]
              .filter((i) => i.backing_id && i.private_ip)
              .map((i) => ({ 'instance-id': i.id, ip: i.private_ip! })),
          }
        : {}),
    };
  }
  route('GET', '/private-network', async () => ({ status: 200, body: { 'private-networks': [await networkView(false)] } }));
  route('GET', '/private-network/:id', async (_req, p) =>
    p.id === EXOSCALE_FAKE_NETWORK ? { status: 200, body: await networkView(true) } : api.error(404, 'Private network not found'),
  );
  route('PUT', '/private-network/:id:attach', (req, p) => {
    if (p.id !== EXOSCALE_FAKE_NETWORK) return api.error(404, 'Private network not found');
    const id = ((req.body as Obj)?.instance as { id?: string })?.id ?? '';
    if (!instances.has(id)) return api.error(404, `Instance ${id} not found`);
    // A backed instance is on the network already (its lease is its server's private address).
    if (!backing && !leases.some((l) => l['instance-id'] === id))
      leases.push({ 'instance-id': id, ip: `198.18.140.${10 + leases.length}` });
    const inst = instances.get(id)!;
    const nets = inst['private-networks'] ?? [];
    if (!nets.some((x) => x.id === p.id)) inst['private-networks'] = [...nets, { id: p.id }];
    return operation(p.id, 'private-network');
  });

  // Security groups: https://openapi-v2.exoscale.com/operation/operation-create-security-group and its rules.
  route('POST', '/security-group', async (req) => {
    const b = req.body as { name?: string; description?: string };
    if (!b?.name) return api.error(400, 'name is required');
    if ([...groups.values()].some((g) => g.name === b.name)) return api.error(409, `Security group ${b.name} already exists`);
    if (backing) {
      const r = roleOfTag(b.name);
      if (!r) return api.error(400, `security group "${b.name}" ${NOT_BACKED}: its firewalls are a build role's, named adt-<build>-<role>`);
      // A group accepts only the ingress its rules allow: none yet.
      await backing.firewall.apply(r.buildId, r.role, []);
    }
    const g: FakeGroup = { id: uuid(), name: b.name, description: b.description ?? '', rules: [] };
    groups.set(g.id, g);
    return operation(g.id, 'security-group');
  });
  route('GET', '/security-group', () => ({
    status: 200,
    body: { 'security-groups': [...groups.values()].map((g) => ({ ...view(g as unknown as Obj), rules: g.rules })) },
  }));
  route('GET', '/security-group/:id', (_req, p) => {
    const g = groups.get(p.id!);
    return g ? { status: 200, body: { ...view(g as unknown as Obj), rules: g.rules } } : api.error(404, 'Security group not found');
  });
  route('DELETE', '/security-group/:id', async (_req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, 'Security group not found');
    if ([...instances.values()].some((i) => i['security-groups'].some((x) => x.id === p.id)))
      return api.error(409, 'Security group is in use');
    const r = roleOfTag(g.name);
    if (backing && r) await backing.firewall.remove(r.buildId, r.role);
    groups.delete(p.id!);
    return operation(p.id!, 'security-group');
  });
  route('POST', '/security-group/:id/rules', async (req, p) => {
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
    const bad = backing ? backedRuleProblem(b) : null;
    if (bad) return api.error(400, bad);
    const r = { ...b, id: uuid() };
    await rulesChanged(g, [...g.rules, r]);
    g.rules.push(r);
    return operation(g.id, 'security-group');
  });
  route('DELETE', '/security-group/:id/rules/:rule', async (_req, p) => {
    const g = groups.get(p.id!);
    const i = g?.rules.findIndex((r) => r.id === p.rule) ?? -1;
    if (!g || i < 0) return api.error(404, 'Security group rule not found');
    await rulesChanged(
      g,
      g.rules.filter((_r, j) => j !== i),
    );
    g.rules.splice(i, 1);
    return operation(g.id, 'security-group');
  });
  route('PUT', '/security-group/:id:attach', (req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, 'Security group not found');
    const i = instances.get(((req.body as Obj)?.instance as { id?: string })?.id ?? '');
    if (!i) return api.error(404, 'Instance not found');
    if (backing && !sameRole(roleOfTag(g.name), parseServerName(i.name)))
      return api.error(
        400,
        `instance ${i.name} may join the security group of its own build role only ` +
          `(the local cloud's firewalls are per build role), not ${g.name}`,
      );
    if (!i['security-groups'].some((x) => x.id === g.id)) i['security-groups'].push({ id: g.id });
    return operation(g.id, 'security-group');
  });
  route('PUT', '/security-group/:id:detach', (req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, 'Security group not found');
    const i = instances.get(((req.body as Obj)?.instance as { id?: string })?.id ?? '');
    if (!i) return api.error(404, 'Instance not found');
    i['security-groups'] = i['security-groups'].filter((x) => x.id !== g.id);
    return operation(g.id, 'security-group');
  });

  // DNS: https://openapi-v2.exoscale.com/operation/operation-create-dns-domain and its records.
  route('GET', '/dns-domain', () => ({
    status: 200,
    body: { 'dns-domains': [...domains.values()].map((d) => view(d as unknown as Obj)) },
  }));
  route('POST', '/dns-domain', async (req) => {
    const name = ((req.body as Obj)?.['unicode-name'] as string) ?? '';
    if (!name) return api.error(400, 'unicode-name is required');
    if ([...domains.values()].some((d) => d['unicode-name'] === name)) return api.error(409, `Domain ${name} already exists`);
    const d: FakeDomain = { id: uuid(), 'unicode-name': name, records: [] };
    await serveZone(d, d.records);
    domains.set(d.id, d);
    return operation(d.id, 'dns-domain');
  });
  // https://openapi-v2.exoscale.com/operation/operation-delete-dns-domain (its records with it)
  route('DELETE', '/dns-domain/:id', async (_req, p) => {
    const d = domains.get(p.id!);
    if (!d) return api.error(404, 'Domain not found');
    await backing?.zone(d['unicode-name'], null);
    domains.delete(d.id);
    return operation(d.id, 'dns-domain');
  });
  route('GET', '/dns-domain/:id/record', (_req, p) => {
    const d = domains.get(p.id!);
    return d ? { status: 200, body: { 'dns-domain-records': d.records } } : api.error(404, 'Domain not found');
  });
  route('POST', '/dns-domain/:id/record', async (req, p) => {
    const d = domains.get(p.id!);
    if (!d) return api.error(404, 'Domain not found');
    const b = req.body as { name?: string; type?: string; content?: string; ttl?: number };
    if (b?.name === undefined || !b.type || !b.content) return api.error(400, 'name, type and content are required');
    if (backing && b.type !== 'A' && b.type !== 'TXT')
      return api.error(400, `a ${b.type} record ${NOT_BACKED}: its DNS serves A and TXT records only`);
    const r = { id: uuid(), name: b.name, type: b.type, content: b.content, ttl: b.ttl ?? 3600, priority: 0 };
    await serveZone(d, [...d.records, r]);
    d.records.push(r);
    return operation(r.id, 'dns-domain-record');
  });
  route('DELETE', '/dns-domain/:id/record/:rid', async (_req, p) => {
    const d = domains.get(p.id!);
    const i = d?.records.findIndex((r) => r.id === p.rid) ?? -1;
    if (!d || i < 0) return api.error(404, 'Record not found');
    await serveZone(
      d,
      d.records.filter((_r, j) => j !== i),
    );
    d.records.splice(i, 1);
    return operation(p.rid!, 'dns-domain-record');
  });

  // DBaaS: `rebuilding` for one GET, then `running`.
  for (const [path, type] of [
    ['dbaas-mysql', 'mysql'],
    ['dbaas-postgres', 'pg'],
  ] as const) {
    route('POST', `/${path}/:name`, (req, p) => {
      if (backing) return api.error(400, 'managed databases are not backed by the local cloud yet');
      const b = req.body as Obj;
      if (!b?.plan) return api.error(400, 'plan is required');
      if (services.has(p.name!)) return api.error(409, `Service ${p.name} already exists`);
      const s: FakeService = {
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
    route('GET', `/${path}/:name`, (_req, p) => {
      const s = services.get(p.name!);
      if (!s || s.type !== type) return api.error(404, `Service ${p.name} not found`);
      if (s.state === 'rebuilding' && ++s.polls > 1) s.state = 'running';
      return { status: 200, body: view(s) };
    });
    route('PUT', `/${path}/:name`, (req, p) => {
      const s = services.get(p.name!);
      if (!s || s.type !== type) return api.error(404, `Service ${p.name} not found`);
      const f = (req.body as Obj)?.['ip-filter'] as string[] | undefined;
      if (f) s['ip-filter'] = [...f];
      return operation(s.name, path);
    });
  }
  route('GET', '/dbaas-service', () => ({
    status: 200,
    body: { 'dbaas-services': [...services.values()].map((s) => ({ name: s.name, type: s.type, plan: s.plan, state: s.state })) },
  }));
  route('DELETE', '/dbaas-service/:name', (_req, p) =>
    services.delete(p.name!) ? operation(p.name!, 'dbaas-service') : api.error(404, `Service ${p.name} not found`),
  );

  // --- Internal helpers (a backed fake) ---

  /** Shows a backed instance as its server is: its state, `public-ip` and (as its lease) its private address. */
  function showServer(i: FakeInstance, s: Server): void {
    const states: Record<Server['state'], string> = {
      running: 'running',
      creating: 'starting',
      stopped: 'stopped',
      destroying: 'destroying',
      error: 'error',
    };
    i.state = states[s.state];
    if (s.publicIp) i['public-ip'] = s.publicIp;
    else delete i['public-ip'];
    if (s.privateIp) i.private_ip = s.privateIp;
    else delete i.private_ip;
  }

  /** A backed instance as its server is now (false: the server is gone, and so is the instance). */
  async function refresh(i: FakeInstance): Promise<boolean> {
    if (!backing || !i.backing_id) return true;
    const s = await backing.compute.get(i.backing_id);
    if (!s) {
      instances.delete(i.id);
      return false;
    }
    showServer(i, s);
    return true;
  }

  async function refreshAll(): Promise<void> {
    if (backing) await Promise.all([...instances.values()].map((i) => refresh(i)));
  }

  /** A snapshot's state, brought up to date with the backing's snapshot in progress (`error`: it failed). */
  function snapshotState(id: string): void {
    const s = snapshots.get(id);
    const job = snapshotJobs.get(id);
    if (!job) return;
    if (s && job.error !== undefined) s.state = 'error';
    if (job.error !== undefined || job.image) snapshotJobs.delete(id);
  }

  /** Applies a group's whole ingress rule set (`rules`, as it is about to be) to the backing's firewall of its build role. */
  async function rulesChanged(g: FakeGroup, rules: FakeRule[]): Promise<void> {
    const r = roleOfTag(g.name);
    if (backing && r) await backing.firewall.apply(r.buildId, r.role, inboundRules(rules));
  }

  /** Serves a domain with these records on the backing (names fully qualified, TXT text unquoted). */
  async function serveZone(d: FakeDomain, records: FakeRecord[]): Promise<void> {
    const zone = d['unicode-name'];
    await backing?.zone(
      zone,
      records.map((r): BackingRecord => ({
        name: r.name ? `${r.name}.${zone}` : zone,
        type: r.type,
        content: r.type === 'TXT' ? r.content.replace(/^"(.*)"$/s, '$1') : r.content,
        ttl: r.ttl,
      })),
    );
  }

  /** What the fake holds, to be saved and loaded again (a restarted cloud keeps its account). JSON-safe. */
  function exportState() {
    return {
      ids: api.lastId(),
      n,
      instances: [...instances.values()],
      groups: [...groups.values()],
      domains: [...domains.values()],
      sshKeys: [...sshKeys.values()],
      snapshots: [...snapshots.values()],
      /** This account's templates (the public ones are the fake's own). */
      templates: [...templates.values()].filter((t) => t.visibility === 'private'),
      /** Snapshot or template id -> the backing's image, as pairs. */
      backingImages: [...backingImages.entries()],
      /** Operations not polled to their end yet. */
      operations: [...operations.values()].filter((op) => op.state === 'pending'),
      leases: [...leases],
      services: [...services.values()],
    };
  }
  type Saved = ReturnType<typeof exportState>;
  type Later = 'sshKeys' | 'snapshots' | 'templates' | 'backingImages' | 'operations' | 'leases' | 'services';
  /** Loads a saved state; one without the later fields (keys, snapshots, templates, images, operations, ...) loads too. */
  function importState(x: Omit<Saved, Later> & Partial<Pick<Saved, Later>>): void {
    api.lastId(x.ids);
    n = Math.max(n, x.n);
    for (const i of x.instances) instances.set(i.id, i);
    for (const g of x.groups) groups.set(g.id, g);
    for (const d of x.domains) domains.set(d.id, d);
    for (const k of x.sshKeys ?? []) sshKeys.set(k.name, k);
    for (const t of x.templates ?? []) templates.set(t.id, t);
    for (const [id, image] of x.backingImages ?? []) backingImages.set(id, image);
    // A backed snapshot still `snapshotting` was the backing's snapshot in progress: lost with the restart.
    for (const s of x.snapshots ?? []) if (!backing || s.state !== 'snapshotting' || backingImages.has(s.id)) snapshots.set(s.id, s);
    for (const op of x.operations ?? []) operations.set(op.id, op);
    for (const l of x.leases ?? []) if (!leases.some((y) => y['instance-id'] === l['instance-id'])) leases.push(l);
    for (const s of x.services ?? []) services.set(s.name, s);
  }

  return Object.assign(api, {
    state: { instances, groups, domains, services, leases, operations, snapshots, templates, sshKeys, backingImages },
    exportState,
    importState,
  });
}

function sameRole(a: { buildId: string; role: Role } | null, b: { buildId: string; role: Role } | null): boolean {
  return a !== null && b !== null && a.buildId === b.buildId && a.role === b.role;
}

/** Why a security group rule cannot be held by the backing's firewall (inbound allow rules from networks), or null. */
function backedRuleProblem(b: Obj): string | null {
  if (b['flow-direction'] !== 'ingress') return 'egress rules are not backed by the local cloud: its firewalls leave outbound traffic open';
  const protocol = String(b.protocol);
  if (!['tcp', 'udp', 'icmp', 'icmpv6'].includes(protocol))
    return `protocol ${protocol} ${NOT_BACKED}: its firewalls take tcp, udp, icmp and icmpv6 rules`;
  if (b['security-group'] !== undefined || typeof b.network !== 'string' || !b.network)
    return `a rule whose source is a security group ${NOT_BACKED}: its rules name networks (network)`;
  if (protocol === 'icmp' || protocol === 'icmpv6') {
    const t = b.icmp as { type?: number; code?: number } | undefined;
    if ((t?.type ?? -1) !== -1 || (t?.code ?? -1) !== -1)
      return (
        `an ${protocol} rule of type ${t?.type ?? -1} code ${t?.code ?? -1} ${NOT_BACKED}: ` +
        'its icmp rules take every type and code (-1)'
      );
  }
  return null;
}

/** A group's ingress rules in the providers' shape: one rule per protocol (icmpv6 as icmp), port range and description. */
function inboundRules(rules: FakeRule[]): InboundRule[] {
  const out = new Map<string, InboundRule>();
  for (const r of rules.filter((x) => x['flow-direction'] === 'ingress')) {
    const protocol = (r.protocol === 'icmpv6' ? 'icmp' : r.protocol) as InboundRule['protocol'];
    const a = r['start-port'] as number | undefined;
    const b = r['end-port'] as number | undefined;
    const port = protocol === 'icmp' || a === undefined ? undefined : b === undefined || a === b ? a : ([a, b] as [number, number]);
    const description = typeof r.description === 'string' && r.description ? r.description : undefined;
    const key = `${protocol}|${JSON.stringify(port ?? null)}|${description ?? ''}`;
    const prev = out.get(key);
    if (prev) prev.sources.push(String(r.network));
    else
      out.set(key, {
        protocol,
        ...(port === undefined ? {} : { port }),
        sources: [String(r.network)],
        ...(description ? { description } : {}),
      });
  }
  return [...out.values()];
}

/** A managed network's `start-ip`, `end-ip` and `netmask` spanning an IPv4 range (its network and broadcast addresses left out). */
function cidrRange(cidr: string): { 'start-ip': string; 'end-ip': string; netmask: string } {
  const [ip, bits] = cidr.split('/') as [string, string | undefined];
  const prefix = Number(bits ?? 32);
  const base = ip.split('.').reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (base & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  const dotted = (x: number) => [24, 16, 8, 0].map((s) => (x >>> s) & 255).join('.');
  return prefix >= 31
    ? { 'start-ip': dotted(network), 'end-ip': dotted(broadcast), netmask: dotted(mask) }
    : { 'start-ip': dotted(network + 1), 'end-ip': dotted(broadcast - 1), netmask: dotted(mask) };
}

/** Exoscale's documented 429 body: `{error, retry_after}`; no rate-limit headers are documented. */
export function exoscaleRateLimit(): { status: number; body: unknown } {
  return { status: 429, body: { error: 'Too many requests', retry_after: 1 } };
}
