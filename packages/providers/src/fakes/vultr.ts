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
 *   read and deleted (204) by id; an instance is created from one by `snapshot_id`;
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
 *
 * Backed (`backing`, see `backing.ts`): an instance is the backing cloud's server, made from its
 * label (a toolkit name: role and build in it), its decoded user-data, the public keys of its
 * `sshkey_id`s and the backing's stock image for Debian 12 (os_id 2136) or the backing's image of
 * its `snapshot_id`; `main_ip` is the server's public address and `internal_ip` (and the VPC
 * address under `/instances/{id}/vpcs`) its private one; a server that is gone makes the instance
 * gone. A firewall group is the backing's firewall of the build role its description names
 * (`adt-<build>-<role>`): made, it applies no rules (a group drops what it does not accept), and
 * each rule added or deleted applies the group's whole rule list again. Domains are served with
 * their A and TXT records. A snapshot is the backing's (`compute.snapshot` of the instance's
 * server, named by the description): `pending` until the backing has made it, then `complete`, or
 * `deleted` if it failed (a refusal within the first second, such as a server still running, is
 * the 400 of the `POST`, with the backing's message); its id stands for the backing's image
 * (`state.backingImages`, saved with the state; one still `pending` when the fake stops is lost
 * with the restart). Deleting a snapshot forgets it only: the backing's image stays (the
 * providers' ComputeProvider has no image deletion). Refused, with a message that says why: labels
 * of other forms, other images, a snapshot not complete yet (guessed message), instances outside
 * a VPC, groups of other descriptions (or a second one of a role), an instance in a group of
 * another role, or out of its role's group, relabelling, rules of protocols other than tcp, udp
 * and icmp, records of other types, snapshots when the backing's compute takes none, and managed
 * databases (not backed yet). Guessed: a failed server's `status` is `error` (Vultr documents none
 * for it).
 */
import { randomBytes } from 'node:crypto';
import { parseServerName } from '../naming.ts';
import type { InboundRule, Server } from '../types.ts';
import { backingFailure, backingSnapshot, roleOfTag, type BackingRecord, type BackingSnapshotJob, type FakeBacking } from './backing.ts';
import { bearer, FakeApi, publicKeyBlob, type FakeRequest, type FakeResponse } from './harness.ts';

type Obj = Record<string, unknown>;

export interface VultrFakeOptions {
  apiKey?: string;
  /** GETs of a new instance that answer `pending` before it is active (default 1). */
  bootPolls?: number;
  /** Rules a firewall group may hold (`max_rule_count`, default 50). */
  maxRuleCount?: number;
  /**
   * A cloud that runs the instances for real (see `backing.ts`): instances are its servers with
   * their addresses, firewall groups its native rules of a build role, domains served by its DNS,
   * VPCs its private network, snapshots its images. Managed databases are refused (not backed yet).
   */
  backing?: FakeBacking;
  /** Checks a request's credentials instead of the bearer key `apiKey` (a backed fake takes its cloud's tokens). */
  authorize?: (req: FakeRequest) => FakeResponse | null;
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
  /** The backing cloud's server (a backed fake). */
  backing_id?: string;
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

type FakeGroup = { id: string; description: string; date_created: string; rules: FakeRule[] };
type FakeRecord = { id: string; type: string; name: string; data: string; priority: number; ttl: number };
type FakeSnapshot = { id: string; description: string; status: string; date_created: string; polls: number; instanceId: string };
type FakeKey = { id: string; date_created: string; name: string; ssh_key: string };

export function vultrFake(o: VultrFakeOptions = {}) {
  const api: FakeApi = new FakeApi({
    prefix: '/v2',
    realBaseUrl: 'https://api.vultr.com/v2',
    errorBody: (status, message) => ({ error: message, status }),
    authorize: (req) =>
      o.authorize ? o.authorize(req) : bearer(o.apiKey ?? 'vultr-test-key', () => api.error(401, 'Invalid API token.'))(req),
  });
  const backing = o.backing;
  const instances = new Map<string, FakeInstance>();
  const groups = new Map<string, FakeGroup>();
  const domains = new Map<string, FakeRecord[]>();
  const databases = new Map<string, FakeDatabase>();
  const snapshots = new Map<string, FakeSnapshot>();
  /** A snapshot's id -> the backing's image it stands for (a backed fake). */
  const backingImages = new Map<string, string>();
  /** The backing's snapshots being taken, by snapshot id (not saved: a restart loses them). */
  const snapshotJobs = new Map<string, BackingSnapshotJob>();
  const sshKeys = new Map<string, FakeKey>();
  /**
   * A route whose failures (the backing's, chiefly) are answered in Vultr's error shape: the
   * backing refusing what it was asked (an error of the caller's, exit code 2, or a 4xx) is a 400,
   * anything else a 500, each with the backing's message.
   */
  const route = (method: string, path: string, handler: Parameters<FakeApi['route']>[2]) =>
    api.route(method, path, async (req, p) => {
      try {
        return await handler(req, p);
      } catch (e) {
        return backingFailure(api, e);
      }
    });
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
    { polls: _p, vpcIp: _v, vpcId: _i, user_data: _u, default_password: pw, sshKeyIds: _k, backing_id: _b, ...rest }: FakeInstance,
    withPassword = false,
  ) => ({ ...rest, ...(withPassword ? { default_password: pw } : {}) });
  const isBase64 = (s: string) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0;
  const isStrings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');

  // --- Instances ---
  route('POST', '/instances', async (req) => {
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
    let backingId: string | undefined;
    if (backing) {
      const label = String(b.label ?? '');
      const parsed = parseServerName(label);
      if (!parsed)
        return api.error(400, `label "${label}": the local cloud runs servers named by the toolkit only (role and build in the name)`);
      let image = backing.stockImage;
      if (b.app_id || b.image_id || b.iso_id || (!b.snapshot_id && b.os_id !== 2136))
        return api.error(400, "the local cloud has Debian 12 x64 (os_id 2136) and this account's snapshots only");
      if (b.snapshot_id) {
        const mapped = backingImages.get(b.snapshot_id as string);
        if (!mapped)
          return api.error(
            400,
            `Snapshot ${b.snapshot_id} is ${snapshotStatus(b.snapshot_id as string)}: instances are made from complete ones`,
          );
        image = mapped;
      }
      if (!vpc)
        return api.error(
          400,
          `the local cloud's servers are all on its private network (${backing.privateCidr}): attach a VPC (enable_vpc or attach_vpc)`,
        );
      const bad = b.firewall_group_id ? groupProblem(label, groups.get(b.firewall_group_id as string)!) : null;
      if (bad) return api.error(400, bad);
      const s = await backing.compute.create({
        name: label,
        role: parsed.role,
        buildId: parsed.buildId,
        userData: Buffer.from((b.user_data as string | undefined) ?? '', 'base64').toString('utf8'),
        image,
        sshKeys: [...new Set(((b.sshkey_id as string[] | undefined) ?? []).map((id) => sshKeys.get(id)!.ssh_key.trim()))],
        tags: (b.tags as string[] | undefined) ?? [],
      });
      backingId = s.id;
    }
    const i: FakeInstance = {
      id: uuid(),
      ...(backingId ? { backing_id: backingId } : {}),
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
  route('GET', '/instances', async (req) => {
    const tag = req.query.get('tag');
    const label = req.query.get('label');
    const found = [...instances.values()].filter((i) => (!tag || i.tags.includes(tag)) && (!label || i.label === label));
    if (backing) await Promise.all(found.map((i) => refresh(i)));
    return list(
      req,
      'instances',
      found.filter((i) => instances.has(i.id)).map((i) => instanceView(i)),
    );
  });
  route('GET', '/instances/:id', async (_req, p) => {
    const i = instances.get(p.id!);
    if (!i || !(await refresh(i))) return api.error(404, NOT_FOUND.instance);
    if (!backing && i.status === 'pending' && ++i.polls > (o.bootPolls ?? 1)) {
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
  route('GET', '/instances/:id/vpcs', async (req, p) => {
    const i = instances.get(p.id!);
    if (!i || !(await refresh(i))) return api.error(404, NOT_FOUND.instance);
    return list(req, 'vpcs', i.vpcIp ? [{ id: i.vpcId, mac_address: '5a:01:04:00:00:01', ip_address: i.vpcIp }] : []);
  });
  route('PATCH', '/instances/:id', (req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, NOT_FOUND.instance);
    const b = req.body as Obj;
    if (b?.firewall_group_id !== undefined) {
      if (b.firewall_group_id && !groups.has(b.firewall_group_id as string)) return api.error(400, 'Invalid firewall group');
      if (backing) {
        const bad = b.firewall_group_id
          ? groupProblem(i.label, groups.get(b.firewall_group_id as string)!)
          : i.firewall_group_id
            ? `instance ${i.label} leaves its role's firewall group only with the group (the local cloud's firewalls are per build role)`
            : null;
        if (bad) return api.error(400, bad);
      }
      i.firewall_group_id = b.firewall_group_id as string;
    }
    if (backing && b?.label !== undefined && String(b.label) !== i.label)
      return api.error(400, `instance ${i.label}: the local cloud's servers keep their names (role and build in them)`);
    if (b?.tags !== undefined) {
      if (!isStrings(b.tags)) return api.error(400, 'tags must be an array of strings');
      i.tags = b.tags as string[];
    }
    if (b?.label !== undefined) i.label = String(b.label);
    return { status: 202, body: { instance: instanceView(i) } };
  });
  route('DELETE', '/instances/:id', async (_req, p) => {
    const i = instances.get(p.id!);
    if (!i) return api.error(404, NOT_FOUND.instance);
    if (i.backing_id) await backing?.compute.destroy(i.backing_id);
    instances.delete(i.id);
    return { status: 204 };
  });

  // --- SSH keys ---
  const keyBlob = (line: string) => publicKeyBlob(line.trim());
  route('GET', '/ssh-keys', (req) => list(req, 'ssh_keys', [...sshKeys.values()]));
  route('GET', '/ssh-keys/:id', (_req, p) =>
    sshKeys.has(p.id!) ? { status: 200, body: { ssh_key: sshKeys.get(p.id!) } } : api.error(404, 'Invalid SSH key id.'),
  );
  route('POST', '/ssh-keys', (req) => {
    const b = req.body as { name?: unknown; ssh_key?: unknown };
    if (typeof b?.name !== 'string' || !b.name || typeof b.ssh_key !== 'string') return api.error(400, 'name and ssh_key are required');
    const blob = keyBlob(b.ssh_key);
    if (!blob) return api.error(400, 'Invalid SSH key.');
    if ([...sshKeys.values()].some((k) => keyBlob(k.ssh_key) === blob)) return api.error(400, 'SSH key already exists.');
    const k = { id: uuid(), date_created: now(), name: b.name, ssh_key: b.ssh_key };
    sshKeys.set(k.id, k);
    return { status: 201, body: { ssh_key: k } };
  });
  route('DELETE', '/ssh-keys/:id', (_req, p) => (sshKeys.delete(p.id!) ? { status: 204 } : api.error(404, 'Invalid SSH key id.')));

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
  route('POST', '/snapshots', async (req) => {
    const b = req.body as { instance_id?: string; description?: string };
    if (!b?.instance_id || !instances.has(b.instance_id)) return api.error(400, 'Invalid instance_id');
    const s = { id: uuid(), description: b.description ?? '', status: 'pending', date_created: now(), polls: 0, instanceId: b.instance_id };
    // Answered as made: `pending` (a backing may be done before the answer).
    const body = { snapshot: snapshotView(s) };
    if (backing) {
      const compute = backing.compute;
      if (!compute.flags.snapshots || !compute.snapshot)
        return api.error(400, `snapshots are not backed by the local cloud: its compute (${compute.name}) takes none`);
      const serverId = instances.get(b.instance_id)!.backing_id;
      if (!serverId) return api.error(400, `instance ${b.instance_id} is no server of the local cloud: its snapshots are not backed`);
      const job = await backingSnapshot(
        () => compute.snapshot!(serverId, s.description || `snapshot-${s.id}`),
        (image) => {
          backingImages.set(s.id, image);
          s.status = 'complete';
        },
      );
      if (job.error) return api.error(job.refused ? 400 : 500, `the local cloud: ${job.error}`);
      if (!job.image) snapshotJobs.set(s.id, job);
    }
    snapshots.set(s.id, s);
    return { status: 201, body };
  });
  route('GET', '/snapshots', (req) => {
    const d = req.query.get('description');
    for (const id of [...snapshotJobs.keys()]) snapshotStatus(id);
    return list(req, 'snapshots', [...snapshots.values()].filter((s) => d === null || s.description === d).map(snapshotView));
  });
  route('GET', '/snapshots/:id', (_req, p) => {
    const s = snapshots.get(p.id!);
    if (!s) return api.error(404, NOT_FOUND.snapshot);
    if (backing) snapshotStatus(s.id);
    else if (s.status === 'pending' && ++s.polls > 1) s.status = 'complete';
    return { status: 200, body: { snapshot: snapshotView(s) } };
  });
  // https://www.vultr.com/api/#tag/snapshot/operation/delete-snapshot (204; forgets it only: the backing's image stays)
  route('DELETE', '/snapshots/:id', (_req, p) => {
    if (!snapshots.delete(p.id!)) return api.error(404, NOT_FOUND.snapshot);
    backingImages.delete(p.id!);
    snapshotJobs.delete(p.id!);
    return { status: 204 };
  });

  // --- Firewall groups and rules ---
  const groupView = (g: FakeGroup) => ({
    id: g.id,
    description: g.description,
    date_created: g.date_created,
    date_modified: g.date_created,
    instance_count: [...instances.values()].filter((i) => i.firewall_group_id === g.id).length,
    rule_count: g.rules.length,
    max_rule_count: maxRules,
  });
  route('POST', '/firewalls', async (req) => {
    const description = (req.body as Obj)?.description;
    if (description !== undefined && typeof description !== 'string') return api.error(400, 'description must be a string');
    if (backing) {
      const r = roleOfTag(description ?? '');
      if (!r)
        return api.error(
          400,
          `firewall group "${description ?? ''}": the local cloud's firewalls are a build role's, described adt-<build>-<role>`,
        );
      if ([...groups.values()].some((x) => x.description === description))
        return api.error(400, `a firewall group ${description} exists (the local cloud has one firewall per build role)`);
      // A group accepts only what its rules allow: none yet.
      await backing.firewall.apply(r.buildId, r.role, []);
    }
    const g: FakeGroup = { id: uuid(), description: description ?? '', date_created: now(), rules: [] };
    groups.set(g.id, g);
    return { status: 201, body: { firewall_group: groupView(g) } };
  });
  route('GET', '/firewalls', (req) => list(req, 'firewall_groups', [...groups.values()].map(groupView)));
  route('GET', '/firewalls/:id', (_req, p) => {
    const g = groups.get(p.id!);
    return g ? { status: 200, body: { firewall_group: groupView(g) } } : api.error(404, NOT_FOUND.group);
  });
  route('DELETE', '/firewalls/:id', async (_req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, NOT_FOUND.group);
    const r = roleOfTag(g.description);
    if (backing && r) await backing.firewall.remove(r.buildId, r.role);
    groups.delete(g.id);
    for (const i of instances.values()) if (i.firewall_group_id === p.id) i.firewall_group_id = '';
    return { status: 204 };
  });
  route('GET', '/firewalls/:id/rules', (req, p) => {
    const g = groups.get(p.id!);
    return g ? list(req, 'firewall_rules', g.rules) : api.error(404, NOT_FOUND.group);
  });
  route('POST', '/firewalls/:id/rules', async (req, p) => {
    const g = groups.get(p.id!);
    if (!g) return api.error(404, NOT_FOUND.group);
    const b = req.body as Obj;
    if (!['v4', 'v6'].includes(b?.ip_type as string)) return api.error(400, 'ip_type must be v4 or v6');
    if (!['tcp', 'udp', 'icmp', 'gre', 'esp', 'ah'].includes(b.protocol as string)) return api.error(400, 'Invalid protocol');
    if (backing && !['tcp', 'udp', 'icmp'].includes(b.protocol as string))
      return api.error(400, `protocol ${b.protocol}: the local cloud's firewalls take tcp, udp and icmp rules only`);
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
    await rulesChanged(g, [...g.rules, r]);
    g.rules.push(r);
    return { status: 201, body: { firewall_rule: r } };
  });
  route('DELETE', '/firewalls/:id/rules/:rule', async (_req, p) => {
    const g = groups.get(p.id!);
    const i = g?.rules.findIndex((r) => r.id === Number(p.rule)) ?? -1;
    if (!g || i < 0) return api.error(404, NOT_FOUND.rule);
    await rulesChanged(
      g,
      g.rules.filter((_r, j) => j !== i),
    );
    g.rules.splice(i, 1);
    return { status: 204 };
  });

  // --- DNS ---
  route('POST', '/domains', async (req) => {
    const d = (req.body as Obj)?.domain;
    if (typeof d !== 'string' || !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(d)) return api.error(400, 'Invalid domain');
    if (domains.has(d.toLowerCase())) return api.error(400, 'Domain already exists');
    await serveZone(d.toLowerCase(), []);
    domains.set(d.toLowerCase(), []);
    return { status: 200, body: { domain: { domain: d.toLowerCase(), date_created: now(), dns_sec: 'disabled' } } };
  });
  route('GET', '/domains', (req) =>
    list(
      req,
      'domains',
      [...domains.keys()].map((domain) => ({ domain, date_created: now(), dns_sec: 'disabled' })),
    ),
  );
  route('GET', '/domains/:domain', (_req, p) =>
    domains.has(p.domain!)
      ? { status: 200, body: { domain: { domain: p.domain, date_created: now(), dns_sec: 'disabled' } } }
      : api.error(404, NOT_FOUND.domain),
  );
  // https://www.vultr.com/api/#tag/dns/operation/delete-dns-domain (204)
  route('DELETE', '/domains/:domain', async (_req, p) => {
    if (!domains.has(p.domain!)) return api.error(404, NOT_FOUND.domain);
    await backing?.zone(p.domain!, null);
    domains.delete(p.domain!);
    return { status: 204 };
  });
  route('GET', '/domains/:domain/records', (req, p) => {
    const r = domains.get(p.domain!);
    return r ? list(req, 'records', r) : api.error(404, NOT_FOUND.domain);
  });
  route('POST', '/domains/:domain/records', async (req, p) => {
    const r = domains.get(p.domain!);
    if (!r) return api.error(404, NOT_FOUND.domain);
    const b = req.body as { name?: unknown; type?: unknown; data?: unknown; ttl?: unknown };
    if (typeof b?.name !== 'string' || typeof b.type !== 'string' || typeof b.data !== 'string')
      return api.error(400, 'name, type and data are required');
    if (b.name.endsWith(p.domain!) || b.name.endsWith('.')) return api.error(400, 'name must be relative to the domain');
    if (b.type === 'A' && !/^(\d{1,3}\.){3}\d{1,3}$/.test(b.data)) return api.error(400, 'Invalid IPv4 address');
    if (b.ttl !== undefined && (!Number.isInteger(b.ttl) || (b.ttl as number) < 1)) return api.error(400, 'Invalid ttl');
    if (backing && b.type !== 'A' && b.type !== 'TXT')
      return api.error(400, `record type ${b.type}: the local cloud's DNS serves A and TXT records only`);
    const rec = { id: uuid(), type: b.type, name: b.name, data: b.data, priority: -1, ttl: (b.ttl as number | undefined) ?? 300 };
    await serveZone(p.domain!, [...r, rec]);
    r.push(rec);
    return { status: 201, body: { record: rec } };
  });
  route('DELETE', '/domains/:domain/records/:id', async (_req, p) => {
    const r = domains.get(p.domain!);
    const i = r?.findIndex((x) => x.id === p.id) ?? -1;
    if (!r || i < 0) return api.error(404, NOT_FOUND.record);
    await serveZone(
      p.domain!,
      r.filter((_x, j) => j !== i),
    );
    r.splice(i, 1);
    return { status: 204 };
  });

  // --- Managed databases ---
  const cidr = (s: string) => (s.includes('/') ? s : `${s}/${s.includes(':') ? 128 : 32}`);
  const dbView = ({ polls: _p, ...rest }: FakeDatabase) => rest;
  route('POST', '/databases', (req) => {
    if (backing) return api.error(400, 'managed databases are not backed by the local cloud yet');
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
  route('GET', '/databases', (req) => {
    const tag = req.query.get('tag');
    const label = req.query.get('label');
    const region = req.query.get('region');
    const found = [...databases.values()]
      .filter((d) => (!tag || d.tag === tag) && (!label || d.label === label) && (!region || d.region === region))
      .map(dbView);
    return { status: 200, body: { databases: found, meta: { total: found.length } } };
  });
  route('GET', '/databases/:id', (_req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, NOT_FOUND.database);
    if (d.status === 'Rebuilding' && ++d.polls > 1) d.status = 'Running';
    return { status: 200, body: { database: dbView(d) } };
  });
  route('PUT', '/databases/:id', (req, p) => {
    const d = databases.get(p.id!);
    if (!d) return api.error(404, NOT_FOUND.database);
    const t = (req.body as Obj)?.trusted_ips;
    if (t !== undefined) {
      if (!isStrings(t)) return api.error(400, 'trusted_ips must be an array of IP addresses');
      d.trusted_ips = (t as string[]).map(cidr);
    }
    return { status: 202, body: { database: dbView(d) } };
  });
  route('DELETE', '/databases/:id', (_req, p) => (databases.delete(p.id!) ? { status: 204 } : api.error(404, NOT_FOUND.database)));

  // --- Backing ---

  /** A snapshot's status, brought up to date with the backing's snapshot in progress (`deleted`: it failed). */
  function snapshotStatus(id: string): string {
    const s = snapshots.get(id);
    const job = snapshotJobs.get(id);
    if (s && job?.error !== undefined) s.status = 'deleted';
    if (job && (job.error !== undefined || job.image)) snapshotJobs.delete(id);
    return s?.status ?? 'absent';
  }

  /** A backed instance as its server is now (false: the server is gone, and so is the instance). */
  async function refresh(i: FakeInstance): Promise<boolean> {
    if (!backing || !i.backing_id) return true;
    const s: Server | null = await backing.compute.get(i.backing_id);
    if (!s) {
      instances.delete(i.id);
      return false;
    }
    const [status, power_status, server_status] =
      s.state === 'running'
        ? ['active', 'running', 'ok']
        : s.state === 'creating'
          ? ['pending', 'running', 'installingbooting']
          : s.state === 'error'
            ? ['error', 'stopped', 'none']
            : ['active', 'stopped', s.state === 'destroying' ? 'locked' : 'ok'];
    Object.assign(i, {
      status,
      power_status,
      server_status,
      // The driver tells the addresses apart by field, not by range (the backing's are all in 198.18/15).
      main_ip: s.publicIp ?? '0.0.0.0',
      netmask_v4: s.publicIp ? '255.255.255.0' : '',
      gateway_v4: s.publicIp ? s.publicIp.replace(/\.\d+$/, '.1') : '0.0.0.0',
      internal_ip: s.privateIp ?? '',
      vpcIp: s.privateIp ?? '',
    });
    return true;
  }

  /** Why the instance labelled `label` may not be in group `g` of a backed fake (null: it may). */
  function groupProblem(label: string, g: FakeGroup): string | null {
    const r = roleOfTag(g.description);
    const n = parseServerName(label);
    return r && n && r.buildId === n.buildId && r.role === n.role
      ? null
      : `instance ${label} may join the firewall group of its own build role only ` +
          `(the local cloud's firewalls are per build role), not ${g.description}`;
  }

  /** Applies a group's whole rule list (`rules`, as it is about to be) to the backing's firewall of its build role. */
  async function rulesChanged(g: FakeGroup, rules: FakeRule[]): Promise<void> {
    const r = roleOfTag(g.description);
    if (backing && r) await backing.firewall.apply(r.buildId, r.role, inboundRules(rules));
  }

  /** Serves a domain's records (as they are about to be) with the backing's DNS: names fully qualified, TXT text unquoted. */
  async function serveZone(zone: string, records: FakeRecord[]): Promise<void> {
    await backing?.zone(
      zone,
      records.map((r): BackingRecord => ({
        name: r.name ? `${r.name}.${zone}` : zone,
        type: r.type,
        content: r.type === 'TXT' ? r.data.replace(/^"(.*)"$/s, '$1') : r.data,
        ttl: r.ttl,
      })),
    );
  }

  /** What a backed fake holds, to be saved and loaded again (a restarted cloud keeps its account). */
  function exportState() {
    return {
      ids: api.lastId(),
      n,
      instances: [...instances.values()],
      groups: [...groups.values()],
      domains: [...domains.entries()],
      sshKeys: [...sshKeys.values()],
      snapshots: [...snapshots.values()],
      /** Snapshot id -> the backing's image, as pairs. */
      backingImages: [...backingImages.entries()],
    };
  }
  type Saved = ReturnType<typeof exportState>;
  /** Loads a saved state; one saved before snapshots were backed (no `backingImages`) loads too. */
  function importState(x: Omit<Saved, 'backingImages'> & Partial<Pick<Saved, 'backingImages'>>) {
    api.lastId(x.ids);
    n = Math.max(n, x.n);
    for (const i of x.instances) instances.set(i.id, i);
    for (const g of x.groups) groups.set(g.id, g);
    for (const [d, r] of x.domains) domains.set(d, r);
    for (const k of x.sshKeys) sshKeys.set(k.id, k);
    for (const [id, image] of x.backingImages ?? []) backingImages.set(id, image);
    // A backed snapshot still `pending` was the backing's snapshot in progress: lost with the restart.
    for (const s of x.snapshots) if (!backing || s.status !== 'pending' || backingImages.has(s.id)) snapshots.set(s.id, s);
  }

  return Object.assign(api, {
    state: { instances, groups, domains, databases, snapshots, sshKeys, backingImages },
    exportState,
    importState,
  });
}

/** A group's rules in the providers' shape: one rule per protocol, port and notes, with its sources. */
function inboundRules(rules: FakeRule[]): InboundRule[] {
  const out = new Map<string, InboundRule>();
  for (const r of rules) {
    const protocol = r.protocol as InboundRule['protocol'];
    const [a, b] = r.port ? r.port.split(':').map(Number) : [];
    const port = a === undefined ? undefined : b === undefined || a === b ? a : ([a, b] as [number, number]);
    const key = `${protocol}|${r.port}|${String(r.notes ?? '')}`;
    const source = `${r.subnet}/${r.subnet_size}`;
    const prev = out.get(key);
    if (prev) prev.sources.push(source);
    else
      out.set(key, {
        protocol,
        ...(port === undefined ? {} : { port }),
        sources: [source],
        ...(r.notes ? { description: String(r.notes) } : {}),
      });
  }
  return [...out.values()];
}

/**
 * What a 429 from Vultr carries: `{"error": "...", "status": 429}` and no wait header (Vultr
 * documents only "more than 30 requests per second ... may return HTTP status code 429").
 */
export function vultrRateLimit(): { status: number; body: unknown } {
  return { status: 429, body: { error: 'Rate limit exceeded', status: 429 } };
}
