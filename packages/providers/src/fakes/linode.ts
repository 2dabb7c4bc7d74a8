/**
 * A Linode API v4 fake that follows the documented requests and responses
 * (https://techdocs.akamai.com/linode-api/reference/api): bearer token (`Invalid Token` on a bad
 * one), `{errors: [{field, reason}]}` error bodies, `page`/`page_size` pagination (25-500) with
 * `{data, page, pages, results}`, the `X-Filter` header on each list's filterable fields (others
 * refused as the API does: `[X-Filter] Cannot filter on ...`), instances that are `provisioning`
 * and then `running` with a public (198.51.100.x) and a private (192.168.128.x) address or a VPC
 * interface address (in the subnet given, reported by `/ips` and `/vpcs/ips`, not in `ipv4`), firewalls with
 * rules and devices, domains and records, VPCs and subnets, managed MySQL/PostgreSQL, images from
 * disks, and 429 with `Retry-After` and `X-RateLimit-*` headers (`linodeRateLimit`).
 *
 * Guessed where the reference is silent (kept simple, said here):
 * - X-Filter: only exact matches on top-level fields (`tags` matches one tag of the list); the
 *   `+and`/`+or`/`+contains` operators are refused by this fake, not by the API. The filterable
 *   fields per list are those the reference marks (records: `name` only is known to us).
 * - A TTL that is not one Linode keeps is rounded UP to the next kept value (the reference says
 *   "rounded to the nearest"; the driver only sends kept values, so either way it is unchanged).
 * - A database answers `updating` for one GET after its allow-list changes; its private host is
 *   `hosts.secondary` when it is in a VPC; credentials are refused until it is active.
 * - Deleting a firewall detaches its devices; a device can be in one firewall at a time.
 * - `authorized_keys` (write-only, never in an answer) must be public keys on one line each: the
 *   reason of the 400 for one that is not is ours.
 *
 * Backed (`backing`, see `backing.ts`): an instance is the backing cloud's server, created with its
 * label as the name (role and build parsed from it), its decoded `metadata.user_data`, its
 * `authorized_keys` and `linode/debian12` as the cloud's stock image; its state and addresses are
 * the server's, read again on every GET (a server gone is an instance gone). The server's public
 * address is the instance's `ipv4`; its private one is reported as the address of a VPC interface
 * (`/ips` `ipv4.vpc`, `/vpcs/ips`) in a VPC `local-<region>` whose subnet is the backing's private
 * network, because a client tells Linode's private addresses by their range (Linode's private /17),
 * which the backing's are not in. A firewall labelled `adt-<build>-<ws|db|as|au|bm>` is the native
 * firewall of that build's role, which covers every server of the role: so its devices must be
 * instances of that role, and all of them (a new one is created with `firewall_id`). A domain's
 * records are served by the backing (A and TXT). An image (`POST /images` of an instance's disk)
 * is the backing's snapshot of the instance's server (`compute.snapshot`, named by the label):
 * `creating` until the backing has made it, then `available` (one that failed is gone: 404 with
 * the backing's message; a refusal within the first second, such as a server still running, is
 * the 400 of the `POST`); its id (`private/<n>`) stands for the backing's image
 * (`state.backingImages`, saved with the state), and an instance created from it is the backing's
 * server from that image. `GET /images` lists the account's images (X-Filter on `label`,
 * `is_public`, `type`, `vendor`, `deprecated`, `created_by`, `size`); `DELETE /images/private/<n>`
 * forgets one only: the backing's image stays (the providers' ComputeProvider has no image
 * deletion). An image still `creating` when the fake stops is lost with the restart.
 * Refused with a 400 that says so, as not backed: managed databases, images when the backing's
 * compute takes no snapshots, an image of the swap disk, other images than `linode/debian12` and
 * this account's, labels not of the toolkit's form, other VPCs, firewalls of no build role or with
 * rules the backing cannot hold (an ACCEPT inbound policy, DROP rules, outbound rules, IPENCAP),
 * slave domains, other record types. An image id that is no image of the account is Linode's 400
 * `image`: "image is not valid"; one still `creating` is refused too (guessed message).
 */
import { parseServerName } from '../naming.ts';
import type { InboundRule, Role, Server } from '../types.ts';
import { backingSnapshot, roleOfTag, type BackingRecord, type BackingSnapshotJob, type FakeBacking } from './backing.ts';
import { bearer, FakeApi, pageOf, publicKeyBlob, type FakeRequest, type FakeResponse } from './harness.ts';

export interface LinodeFakeOptions {
  token?: string;
  /** GETs of a new instance that answer `provisioning` before it runs (default 1; unbacked only). */
  bootPolls?: number;
  /**
   * A cloud that runs the instances for real (see `backing.ts` and this file's header): instances
   * are its servers with their addresses, firewalls its native rules, domains served by its DNS,
   * images its snapshots. Managed databases are refused (not backed yet).
   */
  backing?: FakeBacking;
  /** Checks a request's credentials instead of the bearer token `token` (a backed fake takes its cloud's tokens). */
  authorize?: (req: FakeRequest) => FakeResponse | null;
}

type Obj = Record<string, unknown>;
interface FakeInstance extends Obj {
  id: number;
  label: string;
  status: string;
  ipv4: string[];
  tags: string[];
  polls: number;
  private_ip: boolean;
  vpc: { subnet_id: number; vpc_id: number; address: string | null } | null;
  /** The keys root was given (write-only in the API: kept here for tests). */
  authorized_keys: string[];
  /** The backing cloud's server (a backed fake). */
  backing_id?: string;
}
interface FakeFirewall extends Obj {
  id: number;
  label: string;
  rules: Obj;
  devices: number[];
  tags: string[];
}
interface FakeRecord {
  id: number;
  type: string;
  name: string;
  target: string;
  ttl_sec: number;
}
interface FakeDomain {
  id: number;
  domain: string;
  type: string;
  soa_email: string;
  status: string;
  tags: string[];
  records: FakeRecord[];
}
interface FakeVpc {
  id: number;
  label: string;
  region: string;
  description: string;
  subnets: { id: number; label: string; ipv4: string; next: number }[];
  /** The backing cloud's private network (a backed fake's `local-<region>`). */
  backed?: boolean;
}
interface FakeImage {
  id: string;
  label: string;
  status: string;
  polls: number;
  /** Absent in a state saved before they were kept. */
  description?: string;
  created?: string;
}
interface FakeDatabase extends Obj {
  id: number;
  label: string;
  status: string;
  allow_list: string[];
  polls: number;
  kind: string;
}

const TTLS = [0, 30, 120, 300, 3600, 7200, 14400, 28800, 57600, 86400, 172800, 345600, 604800, 1209600, 2419200];
const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d|[12]\d|3[0-2])$/;
const IPV6 = /^[0-9a-fA-F:]+(\/\d{1,3})?$/;
const PORTS = /^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$/;
/** The role codes of the driver's firewall labels (`adt-<build>-ws`: Linode's labels are 3-32 characters). */
const ROLE_OF_CODE: Record<string, Role> = { bm: 'build', ws: 'webserver', db: 'database', as: 'autoscaler', au: 'auth' };
/** The words of a backed fake's refusals (each a 400 with Linode's error body, its status for a request it will not carry out). */
const NOT_BACKED = 'is not backed by the local cloud';

export function linodeFake(o: LinodeFakeOptions = {}) {
  const api: FakeApi = new FakeApi({
    prefix: '/v4',
    realBaseUrl: 'https://api.linode.com/v4',
    errorBody: (_status, message) => ({ errors: [{ reason: message }] }),
    authorize: (req) =>
      o.authorize ? o.authorize(req) : bearer(o.token ?? 'linode-test-token', () => api.error(401, 'Invalid Token'))(req),
  });
  const backing = o.backing;
  const instances = new Map<number, FakeInstance>();
  const firewalls = new Map<number, FakeFirewall>();
  const domains = new Map<number, FakeDomain>();
  const vpcs = new Map<number, FakeVpc>();
  const databases = new Map<number, FakeDatabase>();
  const images = new Map<string, FakeImage>();
  /** An image's id -> the backing's image it stands for (a backed fake). */
  const backingImages = new Map<string, string>();
  /** The backing's snapshots being taken, by image id (not saved: a restart loses them). */
  const imageJobs = new Map<string, BackingSnapshotJob>();
  let n = 0;
  const fieldError = (field: string, reason: string): FakeResponse => ({ status: 400, body: { errors: [{ field, reason }] } });
  const notFound = () => api.error(404, 'Not found');

  /** A paginated list in Linode's shape, with X-Filter on the fields that list documents as filterable. */
  function list<T extends object>(req: FakeRequest, items: T[], filterable: string[] = []): FakeResponse {
    const size = Number(req.query.get('page_size') ?? 100);
    if (!Number.isInteger(size) || size < 25 || size > 500) return fieldError('page_size', 'Must be 25-500');
    const page = Number(req.query.get('page') ?? 1);
    if (!Number.isInteger(page) || page < 1) return fieldError('page', 'Must be a positive integer');
    let filtered = items;
    const raw = req.headers['x-filter'];
    if (raw) {
      let filter: Obj;
      try {
        filter = JSON.parse(raw) as Obj;
      } catch {
        return fieldError('X-Filter', 'Invalid JSON');
      }
      for (const k of Object.keys(filter)) if (!filterable.includes(k)) return fieldError('X-Filter', `Cannot filter on ${k}`);
      filtered = items.filter((it) =>
        Object.entries(filter).every(([k, v]) => {
          const have = (it as Obj)[k];
          return Array.isArray(have) ? have.includes(v) : have === v;
        }),
      );
    }
    const { items: data, pages } = pageOf(filtered, page, size);
    return { status: 200, body: { data, page, pages, results: filtered.length } };
  }

  const instanceView = ({
    polls: _p,
    vpc: _v,
    private_ip: _pi,
    user_data: _u,
    authorized_keys: _k,
    backing_id: _b,
    ...rest
  }: FakeInstance) => rest;

  // --- Instances: https://techdocs.akamai.com/linode-api/reference/post-linode-instance

  api.route('POST', '/linode/instances', async (req) => {
    const b = req.body as Obj;
    for (const f of ['region', 'type']) if (!b?.[f]) return fieldError(f, `${f} is required`);
    if (b.image && !b.root_pass) return fieldError('root_pass', 'root_pass is required when deploying from an Image');
    if (typeof b.root_pass === 'string' && (b.root_pass.length < 11 || b.root_pass.length > 128))
      return fieldError('root_pass', 'Length must be 11-128 characters');
    const label = b.label as string;
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9_.-]){1,62}[a-zA-Z0-9]$/.test(label ?? ''))
      return fieldError('label', 'Label must be 3-64 characters, letters, numbers, dashes, underscores, periods');
    if ([...instances.values()].some((i) => i.label === label)) return fieldError('label', 'Label must be unique among your Linodes');
    const tags = (b.tags as string[] | undefined) ?? [];
    for (const t of tags) if (t.length < 3 || t.length > 50) return fieldError('tags', `Tag "${t}": length must be 3-50 characters`);
    const ud = (b.metadata as { user_data?: string } | undefined)?.user_data;
    if (ud !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(ud)) return fieldError('metadata.user_data', 'Must be base64 encoded');
    if (b.interface_generation !== undefined && !['legacy_config', 'linode'].includes(b.interface_generation as string))
      return fieldError('interface_generation', 'Must be legacy_config or linode');
    if (b.firewall_id !== undefined && !firewalls.has(b.firewall_id as number)) return fieldError('firewall_id', 'Firewall not found');
    const keys = b.authorized_keys ?? [];
    if (!Array.isArray(keys)) return fieldError('authorized_keys', 'Must be a list of public SSH keys');
    for (const [i, k] of keys.entries())
      if (typeof k !== 'string' || !publicKeyBlob(k)) return fieldError(`authorized_keys[${i}]`, 'Must be a public SSH key on one line');
    let vpc: FakeInstance['vpc'] = null;
    const ifaces = b.interfaces as { purpose?: string; subnet_id?: number }[] | undefined;
    if (ifaces !== undefined) {
      if (b.interface_generation === 'linode')
        return fieldError('interfaces', 'this fake only knows configuration-profile interfaces (interface_generation legacy_config)');
      if (!Array.isArray(ifaces) || ifaces.length > 3) return fieldError('interfaces', 'Up to 3 interfaces');
      for (const [i, f] of ifaces.entries()) {
        if (!['public', 'vlan', 'vpc'].includes(f?.purpose ?? ''))
          return fieldError(`interfaces[${i}].purpose`, 'Purpose must be public, vlan, or vpc');
        if (f.purpose === 'public' && i !== 0)
          return fieldError(`interfaces[${i}].purpose`, 'The public interface must be the first (eth0)');
        if (f.purpose === 'vpc') {
          if (vpc) return fieldError(`interfaces[${i}]`, 'Only one VPC interface is allowed');
          const owner = [...vpcs.values()].find((v) => v.subnets.some((s) => s.id === f.subnet_id));
          if (!owner) return fieldError(`interfaces[${i}].subnet_id`, 'Subnet not found');
          if (owner.region !== b.region)
            return fieldError(`interfaces[${i}].subnet_id`, 'The VPC must be in the same region as the Linode');
          vpc = { subnet_id: f.subnet_id!, vpc_id: owner.id, address: null };
        }
      }
    }
    let server: Server | null = null;
    if (backing) {
      const parsed = parseServerName(label);
      if (!parsed) return fieldError('label', `the local cloud runs instances labelled by the toolkit only (role and build in the label)`);
      const image = b.image === 'linode/debian12' ? backing.stockImage : backingImages.get(String(b.image));
      if (!image) {
        const pending = images.get(String(b.image));
        if (pending?.status === 'creating')
          return fieldError('image', `Image ${pending.id} is ${pending.status}: instances are made from available ones`);
        if (/^private\/\d+$/.test(String(b.image))) return fieldError('image', 'image is not valid');
        return fieldError(
          'image',
          `image ${JSON.stringify(b.image ?? null)} ${NOT_BACKED}: it has linode/debian12 and this account's images`,
        );
      }
      if (vpc && !vpcs.get(vpc.vpc_id)?.backed)
        return fieldError('interfaces', `VPC ${vpc.vpc_id} ${NOT_BACKED}: its servers are on one private network, VPC local-${b.region}`);
      const own = [...firewalls.values()].find((f) => sameRole(roleOfFirewall(f.label), parsed));
      if (b.firewall_id !== undefined && firewalls.get(b.firewall_id as number) !== own)
        return fieldError('firewall_id', `firewall ${b.firewall_id} is not that of ${parsed.role} servers of build ${parsed.buildId}`);
      if (own && b.firewall_id === undefined)
        return fieldError(
          'firewall_id',
          `the local cloud's firewall ${own.label} covers every ${parsed.role} server of build ${parsed.buildId}: ` +
            `create it with firewall_id ${own.id}`,
        );
      server = await backing.compute.create({
        name: label,
        role: parsed.role,
        buildId: parsed.buildId,
        userData: Buffer.from(ud ?? '', 'base64').toString('utf8'),
        image,
        sshKeys: [...new Set((keys as string[]).map((k) => k.trim()))],
        tags,
      });
      vpc ??= backedVpc(String(b.region));
    }
    const id = api.nextId();
    const i: FakeInstance = {
      id,
      label,
      region: b.region,
      type: b.type,
      image: b.image ?? null,
      status: 'provisioning',
      ipv4: [],
      ipv6: null,
      tags,
      created: new Date().toISOString().slice(0, 19),
      updated: new Date().toISOString().slice(0, 19),
      group: '',
      hypervisor: 'kvm',
      interface_generation: b.interface_generation ?? 'legacy_config',
      polls: 0,
      private_ip: b.private_ip === true,
      vpc,
      user_data: ud,
      authorized_keys: keys as string[],
      ...(server ? { backing_id: server.id } : {}),
    };
    if (server) showServer(i, server);
    instances.set(id, i);
    if (typeof b.firewall_id === 'number') firewalls.get(b.firewall_id)!.devices.push(id);
    return { status: 200, body: instanceView(i) };
  });
  api.route('GET', '/linode/instances', async (req) => {
    await refreshAll();
    return list(req, [...instances.values()].map(instanceView), ['id', 'label', 'region', 'image', 'group', 'tags']);
  });
  api.route('GET', '/linode/instances/:id', async (_req, p) => {
    const i = instances.get(Number(p.id));
    if (!i || !(await refresh(i))) return notFound();
    if (!backing && i.status === 'provisioning' && ++i.polls > (o.bootPolls ?? 1)) {
      n++;
      i.status = 'running';
      i.ipv4 = [`198.51.100.${n}`, ...(i.private_ip ? [`192.168.128.${n + 1}`] : [])];
      if (i.vpc) {
        const subnet = vpcs.get(i.vpc.vpc_id)!.subnets.find((s) => s.id === i.vpc!.subnet_id)!;
        i.vpc.address = `${subnet.ipv4.split('/')[0]!.split('.').slice(0, 3).join('.')}.${subnet.next++}`;
      }
    }
    return { status: 200, body: instanceView(i) };
  });
  // https://techdocs.akamai.com/linode-api/reference/get-linode-ips
  api.route('GET', '/linode/instances/:id/ips', async (_req, p) => {
    const i = instances.get(Number(p.id));
    if (!i || !(await refresh(i))) return notFound();
    const address = (a: string, pub: boolean) => ({
      address: a,
      gateway: pub ? '198.51.100.254' : null,
      subnet_mask: pub ? '255.255.255.0' : '255.255.128.0',
      prefix: pub ? 24 : 17,
      type: 'ipv4',
      public: pub,
      rdns: null,
      linode_id: i.id,
      region: i.region,
    });
    return {
      status: 200,
      body: {
        ipv4: {
          public: i.ipv4.filter((a) => !a.startsWith('192.168.')).map((a) => address(a, true)),
          private: i.ipv4.filter((a) => a.startsWith('192.168.')).map((a) => address(a, false)),
          shared: [],
          reserved: [],
          vpc: i.vpc?.address ? [vpcIpView(i)] : [],
        },
        ipv6: null,
      },
    };
  });
  api.route('DELETE', '/linode/instances/:id', async (_req, p) => {
    const i = instances.get(Number(p.id));
    if (!i) return notFound();
    if (i.backing_id) await backing?.compute.destroy(i.backing_id);
    drop(i);
    return { status: 200, body: {} };
  });
  api.route('GET', '/linode/instances/:id/disks', (req, p) =>
    instances.has(Number(p.id))
      ? list(
          req,
          [
            { id: Number(p.id) * 10, label: 'Debian 12 Disk', filesystem: 'ext4', status: 'ready' },
            { id: Number(p.id) * 10 + 1, label: 'Swap', filesystem: 'swap', status: 'ready' },
          ],
          ['id', 'label'],
        )
      : notFound(),
  );

  // --- Images: https://techdocs.akamai.com/linode-api/reference/post-image

  const imageView = (img: FakeImage) => ({
    id: img.id,
    label: img.label,
    description: img.description ?? '',
    created: img.created ?? '2026-01-01T00:00:00',
    updated: img.created ?? '2026-01-01T00:00:00',
    type: 'manual',
    is_public: false,
    size: 2500,
    total_size: 2500,
    created_by: 'adt',
    vendor: null,
    deprecated: false,
    expiry: null,
    eol: null,
    status: img.status,
    capabilities: [],
    tags: [],
    regions: [],
  });
  /** An image whose backing snapshot failed is gone (its job kept the reason, answered once). */
  const imageFailure = (id: string): string | null => {
    const job = imageJobs.get(id);
    if (job?.error === undefined) {
      if (job?.image) imageJobs.delete(id);
      return null;
    }
    images.delete(id);
    imageJobs.delete(id);
    return job.error;
  };
  api.route('POST', '/images', async (req) => {
    const b = req.body as { disk_id?: number; label?: string; description?: string };
    if (!b?.disk_id) return fieldError('disk_id', 'disk_id is required');
    const instance = [...instances.values()].find((i) => i.id * 10 === b.disk_id || i.id * 10 + 1 === b.disk_id);
    if (!instance) return fieldError('disk_id', 'Disk not found');
    if (b.label !== undefined && b.label.length > 50) return fieldError('label', 'Length must be 1-50 characters');
    const img: FakeImage = {
      id: `private/${api.nextId()}`,
      label: b.label ?? '',
      status: 'creating',
      polls: 0,
      description: b.description ?? '',
      created: new Date().toISOString().slice(0, 19),
    };
    // Answered as made: `creating` (a backing may be done before the answer).
    const body = imageView(img);
    if (backing) {
      const compute = backing.compute;
      if (!compute.flags.snapshots || !compute.snapshot)
        return api.error(400, `images are not backed by the local cloud: its compute (${compute.name}) takes no snapshots`);
      if (b.disk_id !== instance.id * 10)
        return fieldError('disk_id', `an image of the swap disk ${NOT_BACKED}: image Linode ${instance.id}'s disk ${instance.id * 10}`);
      if (!instance.backing_id)
        return fieldError('disk_id', `Linode ${instance.id} is no server of the local cloud: its disk ${NOT_BACKED}`);
      const serverId = instance.backing_id;
      const job = await backingSnapshot(
        () => compute.snapshot!(serverId, img.label || img.id.replace('/', '-')),
        (image) => {
          backingImages.set(img.id, image);
          img.status = 'available';
        },
      );
      if (job.error)
        return job.refused ? fieldError('disk_id', `the local cloud: ${job.error}`) : api.error(500, `the local cloud: ${job.error}`);
      if (!job.image) imageJobs.set(img.id, job);
    }
    images.set(img.id, img);
    return { status: 200, body };
  });
  // https://techdocs.akamai.com/linode-api/reference/get-images (the account's images here, no public ones)
  api.route('GET', '/images', (req) => {
    for (const id of [...imageJobs.keys()]) imageFailure(id);
    return list(req, [...images.values()].map(imageView), ['label', 'is_public', 'type', 'vendor', 'deprecated', 'created_by', 'size']);
  });
  // https://techdocs.akamai.com/linode-api/reference/get-image
  api.route('GET', '/images/:scope/:id', (_req, p) => {
    const id = `${p.scope}/${p.id}`;
    const failed = imageFailure(id);
    if (failed !== null) return api.error(404, `Not found: the local cloud could not make image ${id}: ${failed}`);
    const img = images.get(id);
    if (!img) return notFound();
    if (!backing && img.status === 'creating' && ++img.polls > 1) img.status = 'available';
    return { status: 200, body: imageView(img) };
  });
  // https://techdocs.akamai.com/linode-api/reference/delete-image (forgets it only: the backing's image stays)
  api.route('DELETE', '/images/:scope/:id', (_req, p) => {
    const id = `${p.scope}/${p.id}`;
    if (!images.delete(id)) return notFound();
    backingImages.delete(id);
    imageJobs.delete(id);
    return { status: 200, body: {} };
  });

  // --- VPCs: https://techdocs.akamai.com/linode-api/reference/post-vpc

  const vpcIpView = (i: FakeInstance) => ({
    address: i.vpc!.address,
    address_range: null,
    vpc_id: i.vpc!.vpc_id,
    subnet_id: i.vpc!.subnet_id,
    region: i.region,
    linode_id: i.id,
    config_id: i.id + 7000,
    interface_id: i.id + 9000,
    active: i.status === 'running',
    nat_1_1: null,
    gateway: null,
    prefix: 24,
    subnet_mask: '255.255.255.0',
  });
  const vpcView = (v: FakeVpc) => ({
    id: v.id,
    label: v.label,
    region: v.region,
    description: v.description,
    subnets: v.subnets.map(({ next: _n, ...s }) => ({
      ...s,
      linodes: [...instances.values()].filter((i) => i.vpc?.subnet_id === s.id).map((i) => ({ id: i.id, interfaces: [] })),
    })),
  });
  api.route('POST', '/vpcs', (req) => {
    const b = req.body as { label?: string; region?: string; description?: string; subnets?: { label?: string; ipv4?: string }[] };
    if (!b?.label || !/^[a-zA-Z0-9-]{1,64}$/.test(b.label))
      return fieldError('label', 'Label must be 1-64 ASCII letters, digits and dashes');
    if (!b.region) return fieldError('region', 'region is required');
    const subnets: FakeVpc['subnets'] = [];
    for (const [i, s] of (b.subnets ?? []).entries()) {
      if (!s?.label || !IPV4_CIDR.test(s.ipv4 ?? '')) return fieldError(`subnets[${i}]`, 'a label and an IPv4 range are required');
      subnets.push({ id: api.nextId(), label: s.label, ipv4: s.ipv4!, next: 2 });
    }
    const v: FakeVpc = { id: api.nextId(), label: b.label, region: b.region, description: b.description ?? '', subnets };
    vpcs.set(v.id, v);
    return { status: 200, body: vpcView(v) };
  });
  api.route('GET', '/vpcs', (req) => list(req, [...vpcs.values()].map(vpcView), ['id', 'label', 'region']));
  // https://techdocs.akamai.com/linode-api/reference/get-vpcs-ips
  api.route('GET', '/vpcs/ips', async (req) => {
    await refreshAll();
    return list(req, [...instances.values()].filter((i) => i.vpc?.address).map(vpcIpView), ['vpc_id', 'linode_id', 'region']);
  });

  // --- Firewalls: label 3-32 characters; rules replaced as a whole; devices attached one by one.

  const checkRules = (rules: Obj | undefined): [string, string] | null => {
    for (const [dir, list] of [
      ['inbound', rules?.inbound],
      ['outbound', rules?.outbound],
    ] as const) {
      for (const [i, r] of ((list as Obj[] | null | undefined) ?? []).entries()) {
        const at = `rules.${dir}[${i}]`;
        if (!['ACCEPT', 'DROP'].includes(r.action as string)) return [`${at}.action`, 'Must be ACCEPT or DROP'];
        if (!['TCP', 'UDP', 'ICMP', 'IPENCAP'].includes(r.protocol as string))
          return [`${at}.protocol`, `${r.protocol} is not a valid protocol`];
        if ((r.protocol === 'ICMP' || r.protocol === 'IPENCAP') && r.ports !== undefined)
          return [`${at}.ports`, `Ports are not allowed for the ${r.protocol} protocol`];
        if (r.ports !== undefined && !PORTS.test(String(r.ports)))
          return [`${at}.ports`, 'Must be a port, a range of ports or a comma-separated list of them'];
        if (r.label !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,30}[a-zA-Z0-9]$/.test(String(r.label)))
          return [`${at}.label`, 'Length must be 3-32 characters: letters, numbers, -, _ and .'];
        if (r.description !== undefined && String(r.description).length > 100)
          return [`${at}.description`, 'Length must be 1-100 characters'];
        const a = r.addresses as { ipv4?: string[]; ipv6?: string[] } | undefined;
        for (const ip of a?.ipv4 ?? [])
          if (!IPV4_CIDR.test(ip))
            return [`${at}.addresses.ipv4`, `${ip} is not a valid IPv4 address range (a prefix such as /32 is required)`];
        for (const ip of a?.ipv6 ?? []) if (!IPV6.test(ip)) return [`${at}.addresses.ipv6`, `${ip} is not a valid IPv6 address or range`];
        if (!(a?.ipv4?.length || a?.ipv6?.length)) return [`${at}.addresses`, 'At least one address is required'];
      }
      const policy = rules?.[`${dir}_policy`];
      if (policy !== undefined && !['ACCEPT', 'DROP'].includes(policy as string)) return [`rules.${dir}_policy`, 'Must be ACCEPT or DROP'];
    }
    return null;
  };
  const entity = (id: number) => ({ id, type: 'linode', label: instances.get(id)?.label ?? '', url: `/v4/linode/instances/${id}` });
  const firewallView = (f: FakeFirewall) => {
    const { devices, ...rest } = f;
    return { ...rest, entities: devices.map(entity) };
  };
  const inOtherFirewall = (id: number, except?: number) => [...firewalls.values()].some((f) => f.id !== except && f.devices.includes(id));
  api.route('POST', '/networking/firewalls', async (req) => {
    const b = req.body as Obj;
    const label = b?.label as string;
    if (!label || label.length < 3 || label.length > 32) return fieldError('label', 'Length must be 3-32 characters');
    if ([...firewalls.values()].some((f) => f.label === label)) return fieldError('label', 'Label must be unique');
    const bad = checkRules(b.rules as Obj);
    if (bad) return fieldError(...bad);
    const linodes = (b.devices as { linodes?: number[] } | undefined)?.linodes ?? [];
    for (const id of linodes) {
      if (!instances.has(id)) return fieldError('devices.linodes', `Linode ${id} not found`);
      if (inOtherFirewall(id)) return fieldError('devices.linodes', `Linode ${id} already has an enabled firewall`);
    }
    const rules = { inbound: [], inbound_policy: 'ACCEPT', outbound: [], outbound_policy: 'ACCEPT', ...(b.rules as Obj), version: 1 };
    if (backing) {
      const role = roleOfFirewall(label);
      if (!role)
        return fieldError(
          'label',
          `a firewall of no build role ${NOT_BACKED}: label it adt-<build>-<ws|db|as|au|bm> (its role's firewall)`,
        );
      const inbound = backedRules(rules);
      if (typeof inbound === 'string') return fieldError('rules', inbound);
      const bad = devicesProblem(role, linodes, true);
      if (bad) return fieldError('devices.linodes', bad);
      await backing.firewall.apply(role.buildId, role.role, inbound);
    }
    const f: FakeFirewall = {
      id: api.nextId(),
      label,
      status: 'enabled',
      rules,
      tags: (b.tags as string[]) ?? [],
      devices: [...linodes],
      created: new Date().toISOString().slice(0, 19),
    };
    firewalls.set(f.id, f);
    return { status: 200, body: firewallView(f) };
  });
  api.route('GET', '/networking/firewalls', (req) => list(req, [...firewalls.values()].map(firewallView), ['id', 'label', 'tags']));
  api.route('GET', '/networking/firewalls/:id', (_req, p) => {
    const f = firewalls.get(Number(p.id));
    return f ? { status: 200, body: firewallView(f) } : notFound();
  });
  api.route('GET', '/networking/firewalls/:id/rules', (_req, p) => {
    const f = firewalls.get(Number(p.id));
    return f ? { status: 200, body: f.rules } : notFound();
  });
  api.route('PUT', '/networking/firewalls/:id/rules', async (req, p) => {
    const f = firewalls.get(Number(p.id));
    if (!f) return notFound();
    const b = req.body as Obj;
    const bad = checkRules(b);
    if (bad) return fieldError(bad[0].replace(/^rules\./, ''), bad[1]);
    const next = { ...f.rules, ...b, version: Number((f.rules as { version?: number }).version ?? 1) + 1 };
    const role = roleOfFirewall(f.label);
    if (backing && role) {
      const inbound = backedRules(next);
      if (typeof inbound === 'string') return fieldError('rules', inbound);
      await backing.firewall.apply(role.buildId, role.role, inbound);
    }
    f.rules = next;
    return { status: 200, body: f.rules };
  });
  api.route('GET', '/networking/firewalls/:id/devices', (req, p) => {
    const f = firewalls.get(Number(p.id));
    if (!f) return notFound();
    return list(
      req,
      f.devices.map((d) => ({ id: d + 5000, entity: entity(d), created: '2025-01-01T00:00:00', updated: '2025-01-01T00:00:00' })),
    );
  });
  api.route('POST', '/networking/firewalls/:id/devices', (req, p) => {
    const f = firewalls.get(Number(p.id));
    if (!f) return notFound();
    const b = req.body as { id?: number; type?: string };
    if (b?.type !== 'linode') return fieldError('type', 'this fake attaches Linodes only');
    if (!instances.has(b.id ?? -1)) return fieldError('id', 'Linode not found');
    if (f.devices.includes(b.id!)) return fieldError('id', 'Device is already assigned to this Firewall');
    if (inOtherFirewall(b.id!, f.id)) return fieldError('id', 'This Linode already has an enabled firewall');
    const role = roleOfFirewall(f.label);
    const bad = backing && role ? devicesProblem(role, [b.id!], false) : null;
    if (bad) return fieldError('id', bad);
    f.devices.push(b.id!);
    return { status: 200, body: { id: b.id! + 5000, entity: entity(b.id!) } };
  });
  api.route('DELETE', '/networking/firewalls/:id', async (_req, p) => {
    const f = firewalls.get(Number(p.id));
    if (!f) return notFound();
    const role = roleOfFirewall(f.label);
    if (backing && role) await backing.firewall.remove(role.buildId, role.role);
    firewalls.delete(f.id);
    return { status: 200, body: {} };
  });

  // --- Domains and records: record names are relative ('' for the apex).

  const domainView = ({ records: _r, ...d }: FakeDomain) => d;
  api.route('GET', '/domains', (req) => list(req, [...domains.values()].map(domainView), ['id', 'domain', 'group', 'tags']));
  api.route('POST', '/domains', async (req) => {
    const b = req.body as { domain?: string; type?: string; soa_email?: string };
    if (!b?.domain) return fieldError('domain', 'domain is required');
    if (!['master', 'slave'].includes(b.type ?? '')) return fieldError('type', 'Must be master or slave');
    if (backing && b.type !== 'master') return fieldError('type', `a slave domain ${NOT_BACKED}: it serves master domains only`);
    if (b.type === 'master' && !b.soa_email) return fieldError('soa_email', 'soa_email is required for master domains');
    if ([...domains.values()].some((d) => d.domain === b.domain)) return fieldError('domain', 'Domain already exists');
    const d: FakeDomain = {
      id: api.nextId(),
      domain: b.domain,
      type: b.type!,
      soa_email: b.soa_email ?? '',
      status: 'active',
      tags: [],
      records: [],
    };
    await serveZone(d, d.records);
    domains.set(d.id, d);
    return { status: 200, body: domainView(d) };
  });
  // https://techdocs.akamai.com/linode-api/reference/delete-domain (its records with it)
  api.route('DELETE', '/domains/:id', async (_req, p) => {
    const d = domains.get(Number(p.id));
    if (!d) return notFound();
    await backing?.zone(d.domain, null);
    domains.delete(d.id);
    return { status: 200, body: {} };
  });
  api.route('GET', '/domains/:id/records', (req, p) => {
    const d = domains.get(Number(p.id));
    return d ? list(req, d.records, ['name']) : notFound();
  });
  api.route('POST', '/domains/:id/records', async (req, p) => {
    const d = domains.get(Number(p.id));
    if (!d) return notFound();
    const b = req.body as { type?: string; name?: string; target?: string; ttl_sec?: number };
    if (!['A', 'AAAA', 'NS', 'MX', 'CNAME', 'TXT', 'SRV', 'PTR', 'CAA'].includes(b?.type ?? ''))
      return fieldError('type', 'type is required');
    if (backing && b.type !== 'A' && b.type !== 'TXT')
      return fieldError('type', `a ${b.type} record ${NOT_BACKED}: it serves A and TXT records only`);
    if (!b.target) return fieldError('target', 'target is required');
    if (b.type === 'A' && !/^(\d{1,3}\.){3}\d{1,3}$/.test(b.target)) return fieldError('target', 'Must be an IPv4 address');
    if ((b.name ?? '').length > 100) return fieldError('name', 'Record name must be 100 characters or less');
    const ttl = TTLS.find((t) => t >= (b.ttl_sec ?? 0)) ?? 2419200;
    const r = { id: api.nextId(), type: b.type!, name: b.name ?? '', target: b.target, ttl_sec: ttl };
    await serveZone(d, [...d.records, r]);
    d.records.push(r);
    return { status: 200, body: r };
  });
  api.route('DELETE', '/domains/:id/records/:rid', async (_req, p) => {
    const d = domains.get(Number(p.id));
    const i = d?.records.findIndex((r) => r.id === Number(p.rid)) ?? -1;
    if (!d || i < 0) return notFound();
    await serveZone(
      d,
      d.records.filter((_r, j) => j !== i),
    );
    d.records.splice(i, 1);
    return { status: 200, body: {} };
  });

  // --- Managed databases: `provisioning` for one GET, then `active`.

  const dbView = ({ polls: _p, kind: _k, ...rest }: FakeDatabase) => rest;
  for (const kind of ['mysql', 'postgresql']) {
    const find = (id: string | undefined) => {
      const d = databases.get(Number(id));
      return d && d.kind === kind ? d : null;
    };
    api.route('POST', `/databases/${kind}/instances`, (req) => {
      if (backing) return api.error(400, `managed databases are not backed by the local cloud yet`);
      const b = req.body as Obj;
      for (const f of ['label', 'region', 'type', 'engine']) if (!b?.[f]) return fieldError(f, `${f} is required`);
      const label = b.label as string;
      if (!/^[a-zA-Z][a-zA-Z0-9_-]{2,31}$/.test(label))
        return fieldError('label', 'Label must be 3-32 characters: letters, numbers, - and _, starting with a letter');
      if ([...databases.values()].some((d) => d.label === label)) return fieldError('label', 'Label must be unique');
      if (!new RegExp(`^${kind}/\\d+$`).test(String(b.engine))) return fieldError('engine', `engine must be ${kind}/<major version>`);
      if (b.cluster_size !== undefined && ![1, 2, 3].includes(b.cluster_size as number))
        return fieldError('cluster_size', 'Must be 1, 2 or 3');
      const allow = (b.allow_list as string[]) ?? [];
      for (const a of allow)
        if (!/^[\d.]+(\/\d+)?$|^[0-9a-f:]+(\/\d+)?$/i.test(a)) return fieldError('allow_list', `${a} is not a valid IP address or range`);
      const pn = b.private_network as { vpc_id?: number; subnet_id?: number; public_access?: boolean } | undefined;
      if (pn) {
        const v = vpcs.get(pn.vpc_id ?? -1);
        if (!v || !v.subnets.some((s) => s.id === pn.subnet_id)) return fieldError('private_network', 'VPC subnet not found');
      }
      const id = api.nextId();
      const host = `a${id}-akamai-prod-1-default.g2a.akamaidb.net`;
      const d: FakeDatabase = {
        id,
        label,
        region: b.region,
        type: b.type,
        engine: kind,
        version: String(b.engine).split('/')[1],
        status: 'provisioning',
        cluster_size: b.cluster_size ?? 1,
        allow_list: [...allow],
        hosts: { primary: host, secondary: pn ? `private-${host}` : null },
        port: kind === 'mysql' ? 3306 : 5432,
        ssl_connection: true,
        private_network: pn ?? null,
        created: new Date().toISOString().slice(0, 19),
        polls: 0,
        kind,
      };
      databases.set(id, d);
      return { status: 200, body: dbView(d) };
    });
    api.route('GET', `/databases/${kind}/instances`, (req) =>
      list(req, [...databases.values()].filter((d) => d.kind === kind).map(dbView), ['label', 'region', 'status']),
    );
    api.route('GET', `/databases/${kind}/instances/:id`, (_req, p) => {
      const d = find(p.id);
      if (!d) return notFound();
      if ((d.status === 'provisioning' || d.status === 'updating') && ++d.polls > 1) {
        d.status = 'active';
        d.polls = 0;
      }
      return { status: 200, body: dbView(d) };
    });
    api.route('GET', `/databases/${kind}/instances/:id/credentials`, (_req, p) => {
      const d = find(p.id);
      if (!d) return notFound();
      if (d.status === 'provisioning') return fieldError('status', 'Credentials are available once the database is active');
      return { status: 200, body: { username: 'akmadmin', password: `fake-${d.id}-secret` } };
    });
    api.route('PUT', `/databases/${kind}/instances/:id`, (req, p) => {
      const d = find(p.id);
      if (!d) return notFound();
      const allow = (req.body as { allow_list?: string[] })?.allow_list;
      if (allow !== undefined) {
        if (!Array.isArray(allow)) return fieldError('allow_list', 'Must be a list of addresses');
        for (const a of allow)
          if (!/^[\d.]+(\/\d+)?$|^[0-9a-f:]+(\/\d+)?$/i.test(a)) return fieldError('allow_list', `${a} is not a valid IP address or range`);
        d.allow_list = [...allow];
        if (d.status === 'active') d.status = 'updating';
      }
      return { status: 200, body: dbView(d) };
    });
    api.route('DELETE', `/databases/${kind}/instances/:id`, (_req, p) => {
      const d = find(p.id);
      if (!d) return notFound();
      databases.delete(d.id);
      return { status: 200, body: {} };
    });
  }

  // --- Internal helpers (a backed fake) ---

  /** Shows a backed instance as its server is: state, the public address in `ipv4`, the private one as its VPC address. */
  function showServer(i: FakeInstance, s: Server): void {
    const states: Record<Server['state'], string> = {
      running: 'running',
      creating: 'provisioning',
      stopped: 'offline',
      destroying: 'deleting',
      error: 'offline',
    };
    i.status = states[s.state];
    i.ipv4 = s.publicIp ? [s.publicIp] : [];
    if (i.vpc) i.vpc.address = s.privateIp;
  }

  /** A backed instance as its server is now (false: the server is gone, and so is the instance). */
  async function refresh(i: FakeInstance): Promise<boolean> {
    if (!backing || !i.backing_id) return true;
    const s = await backing.compute.get(i.backing_id);
    if (!s) {
      drop(i);
      return false;
    }
    showServer(i, s);
    return true;
  }

  async function refreshAll(): Promise<void> {
    if (backing) await Promise.all([...instances.values()].map((i) => refresh(i)));
  }

  function drop(i: FakeInstance): void {
    instances.delete(i.id);
    for (const f of firewalls.values()) f.devices = f.devices.filter((d) => d !== i.id);
  }

  /** The VPC (and its one subnet) that stands for the backing's private network in a region, made at first use. */
  function backedVpc(region: string): NonNullable<FakeInstance['vpc']> {
    let v = [...vpcs.values()].find((x) => x.backed && x.region === region);
    if (!v) {
      v = {
        id: api.nextId(),
        label: `local-${region}`.slice(0, 64),
        region,
        description: "the local cloud's private network",
        subnets: [{ id: api.nextId(), label: 'private', ipv4: backing!.privateCidr, next: 0 }],
        backed: true,
      };
      vpcs.set(v.id, v);
    }
    return { vpc_id: v.id, subnet_id: v.subnets[0]!.id, address: null };
  }

  /**
   * Why these devices cannot be in the firewall of a build's role, or null. The backing's firewall
   * covers every server of the role: each device must be one, and a new firewall must have them all.
   */
  function devicesProblem(role: { buildId: string; role: Role }, ids: number[], all: boolean): string | null {
    for (const id of ids) {
      const p = parseServerName(instances.get(id)?.label ?? '');
      if (!sameRole(role, p))
        return `Linode ${id} is not a ${role.role} server of build ${role.buildId}: the local cloud's firewalls are per build role`;
    }
    const missing = all
      ? [...instances.values()].filter((i) => !ids.includes(i.id) && sameRole(role, parseServerName(i.label))).map((i) => i.id)
      : [];
    return missing.length
      ? `the local cloud's firewall covers every ${role.role} server of build ${role.buildId}: attach ${missing.join(', ')} too`
      : null;
  }

  /** Serves a domain with these records on the backing (FQDNs; a TTL of 0 is the domain's default). */
  async function serveZone(d: FakeDomain, records: FakeRecord[]): Promise<void> {
    if (!backing) return;
    const out: BackingRecord[] = records.map((r) => ({
      name: r.name ? `${r.name}.${d.domain}` : d.domain,
      type: r.type,
      content: r.target,
      // Guessed: Linode's default TTL of a domain (ttl_sec 0) is a day.
      ttl: r.ttl_sec || 86400,
    }));
    await backing.zone(d.domain, out);
  }

  /** What a backed fake holds, to be saved and loaded again (a restarted cloud keeps its account). JSON-safe. */
  function exportState() {
    return {
      ids: api.lastId(),
      n,
      instances: [...instances.values()],
      firewalls: [...firewalls.values()],
      domains: [...domains.values()],
      vpcs: [...vpcs.values()],
      images: [...images.values()],
      /** Image id -> the backing's image, as pairs. */
      backingImages: [...backingImages.entries()],
    };
  }
  type Saved = ReturnType<typeof exportState>;
  /** Loads a saved state; one saved before images were kept (no `images`, `backingImages`) loads too. */
  function importState(x: Omit<Saved, 'images' | 'backingImages'> & Partial<Pick<Saved, 'images' | 'backingImages'>>): void {
    api.lastId(x.ids);
    n = x.n;
    for (const i of x.instances) instances.set(i.id, i);
    for (const f of x.firewalls) firewalls.set(f.id, f);
    for (const d of x.domains) domains.set(d.id, d);
    for (const v of x.vpcs) vpcs.set(v.id, v);
    for (const [id, image] of x.backingImages ?? []) backingImages.set(id, image);
    // A backed image still `creating` was the backing's snapshot in progress: lost with the restart.
    for (const img of x.images ?? []) if (!backing || img.status !== 'creating' || backingImages.has(img.id)) images.set(img.id, img);
  }

  return Object.assign(api, {
    state: { instances, firewalls, domains, vpcs, databases, images, backingImages },
    exportState,
    importState,
  });
}

/** The build role a firewall's label names: the driver's `adt-<build>-<ws|db|as|au|bm>`, or `adt-<build>-<role>`. */
function roleOfFirewall(label: string): { buildId: string; role: Role } | null {
  const m = /^adt-([a-z0-9]{1,24})-(bm|ws|db|as|au)$/.exec(label);
  return m ? { buildId: m[1]!, role: ROLE_OF_CODE[m[2]!]! } : roleOfTag(label);
}

function sameRole(a: { buildId: string; role: Role } | null, b: { buildId: string; role: Role } | null): boolean {
  return a !== null && b !== null && a.buildId === b.buildId && a.role === b.role;
}

/**
 * A firewall's rules as the backing's inbound rules, or why they cannot be: the backing accepts
 * exactly its rules and drops the rest inbound, and leaves outbound open.
 */
function backedRules(rules: Obj): InboundRule[] | string {
  if (rules.inbound_policy !== 'DROP')
    return `inbound_policy ${rules.inbound_policy} ${NOT_BACKED}: its firewalls drop what their rules do not accept (DROP)`;
  if (rules.outbound_policy !== 'ACCEPT' || ((rules.outbound as unknown[] | null) ?? []).length)
    return `outbound rules are not backed by the local cloud: outbound_policy ACCEPT and no outbound rules`;
  const out: InboundRule[] = [];
  for (const [i, r] of ((rules.inbound as Obj[] | null) ?? []).entries()) {
    if (r.action !== 'ACCEPT') return `inbound[${i}]: a ${r.action} rule ${NOT_BACKED} (its rules accept)`;
    const protocol = String(r.protocol).toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'icmp') return `inbound[${i}]: protocol ${r.protocol} ${NOT_BACKED}`;
    const a = r.addresses as { ipv4?: string[]; ipv6?: string[] } | undefined;
    const sources = [...(a?.ipv4 ?? []), ...(a?.ipv6 ?? [])];
    const description = r.description === undefined ? {} : { description: String(r.description) };
    if (protocol === 'icmp') {
      out.push({ protocol, sources, ...description });
      continue;
    }
    // No ports: all of them. A list is one rule per port or range.
    for (const part of r.ports === undefined ? ['1-65535'] : String(r.ports).split(',')) {
      const [from, to] = part.split('-').map(Number) as [number, number | undefined];
      out.push({ protocol, port: to === undefined || to === from ? from : [from, to], sources, ...description });
    }
  }
  return out;
}

/** What a 429 from Linode carries: `Retry-After` (seconds) and the `X-RateLimit-*` headers (reset in epoch seconds). */
export function linodeRateLimit(retryAfterSeconds = 0): { status: number; headers: Record<string, string> } {
  return {
    status: 429,
    headers: {
      'retry-after': String(retryAfterSeconds),
      'x-ratelimit-limit': '800',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + retryAfterSeconds),
    },
  };
}
