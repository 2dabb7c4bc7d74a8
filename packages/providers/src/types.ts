/**
 * The provider interfaces. One interface per concern, one driver per backend
 * (`src/drivers/<name>.ts`), selected by name through the registry in `_drivers.ts`.
 *
 * Drivers for real clouds (DigitalOcean, Linode, Vultr, Exoscale) and for the local
 * cloud (network namespaces on this machine) implement the same shapes, so the roles
 * never know which cloud they run on.
 */

/** The roles a server can have in a fleet. The role is encoded in the server's name. */
export type Role = 'build' | 'webserver' | 'database' | 'autoscaler' | 'auth';

export type ServerState = 'creating' | 'running' | 'stopped' | 'destroying' | 'error';

/** A server as the provider reports it. */
export interface Server {
  /** Provider-unique identifier (a numeric id on real clouds, the server name locally). */
  id: string;
  /** Name that encodes role and build identifier, see `serverName()` in `naming.ts`. */
  name: string;
  role: Role;
  buildId: string;
  state: ServerState;
  /** Public (internet-facing) IPv4 address, when assigned. */
  publicIp: string | null;
  /** Private (VPC) IPv4 address, when assigned. */
  privateIp: string | null;
  /** Provider tags/labels, `key=value` style or plain words. */
  tags: string[];
  /** When the provider created it (ISO 8601). */
  createdAt: string;
}

export interface CreateServerOptions {
  /** Full server name; build it with `serverName()` so `list` can find it again. */
  name: string;
  role: Role;
  buildId: string;
  /** Provider size/plan slug (ignored by the local cloud). */
  size?: string;
  /** Provider region slug (ignored by the local cloud). */
  region?: string;
  /** Snapshot/image to build from instead of the default OS image, when supported. */
  image?: string;
  /** A script run once at first boot, as cloud-init would run it (a `#!` script). */
  userData: string;
  /**
   * OpenSSH public keys for root's authorized_keys (the build machine's key). Drivers register
   * them with their cloud as it needs (by name, id or fingerprint) or pass them as they are.
   */
  sshKeys?: string[];
  /** Extra tags; drivers add `adt`, `role:<role>` and `build:<buildId>` themselves. */
  tags?: string[];
  /** VPC/private network to attach to, when the provider has several. */
  vpc?: string;
}

export interface ListServersFilter {
  buildId?: string;
  role?: Role;
}

export interface WaitOptions {
  /** Give up after this many milliseconds (default 120 000 on real clouds, 30 000 locally). */
  timeoutMs?: number;
  /** Poll interval in milliseconds. */
  intervalMs?: number;
  signal?: AbortSignal;
}

/** Capability flags, so callers branch on what a driver can do, not on its class. */
export interface ComputeFlags {
  snapshots?: boolean;
  privateNetworking?: boolean;
  /** Images can be listed and found by name (`findImage`), e.g. to reuse a prepared image. */
  images?: boolean;
  /** The cloud shows a server's boot output (`console`). */
  console?: boolean;
}

/** Compute: create, list, inspect and destroy servers. */
export interface ComputeProvider {
  readonly name: string;
  readonly flags: ComputeFlags;
  /** Starts creating a server and returns at once; the server runs `userData` at first boot. */
  create(options: CreateServerOptions): Promise<Server>;
  /** Destroys a server and everything it owns. Destroying an absent server is not an error. */
  destroy(id: string): Promise<void>;
  /** Servers of this provider account (or local cloud), optionally filtered. */
  list(filter?: ListServersFilter): Promise<Server[]>;
  /** One server, or `null` when absent. */
  get(id: string): Promise<Server | null>;
  /** Resolves when the provider reports the server running with its IPs assigned. */
  waitUntilRunning(id: string, options?: WaitOptions): Promise<Server>;
  /** Takes a snapshot usable as `image` for faster builds (when `flags.snapshots`). */
  snapshot?(id: string, name: string, options?: WaitOptions): Promise<string>;
  /** Powers a server off (its disk stays, for a snapshot). */
  powerOff?(id: string): Promise<void>;
  /** An image by id or name (the newest of a name), or null (when `flags.images`). */
  findImage?(ref: string): Promise<{ id: string; name: string } | null>;
  /** The end of a server's boot output, and the user-data's exit code once it ended (when `flags.console`). */
  console?(id: string): Promise<{ log: string; exitCode: number | null }>;
  dispose?(): Promise<void>;
}

export interface DnsRecord {
  /** Fully qualified name without trailing dot, e.g. `www.example.com`. */
  name: string;
  type: 'A';
  content: string;
  ttl: number;
}

/** DNS: round robin is several A records for one name. All methods are idempotent. */
export interface DnsProvider {
  readonly name: string;
  /** Creates the zone when absent (local DNS, or clouds that host zones). */
  ensureZone(zone: string): Promise<void>;
  listA(name: string): Promise<DnsRecord[]>;
  /** Adding an existing record is not an error. */
  addA(name: string, ip: string, ttl?: number): Promise<void>;
  /** Removing an absent record is not an error. */
  removeA(name: string, ip: string): Promise<void>;
  dispose?(): Promise<void>;
}

/** One inbound allow rule. Everything not allowed is denied. */
export interface InboundRule {
  protocol: 'tcp' | 'udp' | 'icmp';
  /** A port or an inclusive range `[from, to]`; absent for icmp. */
  port?: number | [number, number];
  /** Source addresses: IPv4/IPv6 addresses or CIDRs. Never empty for tcp/udp. */
  sources: string[];
  /** Why the rule exists, for people reading `status` or the cloud console. */
  description?: string;
}

/** The cloud-level firewall, applied outside the servers. */
export interface NativeFirewallProvider {
  readonly name: string;
  /**
   * Replaces the inbound rules for every server of `role` in build `buildId`
   * (present and future ones) with exactly `rules`.
   */
  apply(buildId: string, role: Role, rules: InboundRule[]): Promise<void>;
  /** The rules currently applied for that role, or `null` when none were ever applied. */
  get(buildId: string, role: Role): Promise<InboundRule[] | null>;
  /** Removes the firewall of that role (at destroy time). Absent is not an error. */
  remove(buildId: string, role: Role): Promise<void>;
  dispose?(): Promise<void>;
}

export type DatabaseEngine = 'mysql' | 'postgres';

/** A managed database cluster (DBaaS) as the provider reports it. */
export interface ManagedDatabase {
  id: string;
  /** Name that encodes the build (`<buildId>-db` style, see each driver). */
  name: string;
  buildId: string;
  engine: DatabaseEngine;
  state: 'creating' | 'online' | 'error' | 'deleting';
  /** Host names or addresses for clients; the private one is reachable from the VPC only. */
  host: string | null;
  privateHost: string | null;
  port: number | null;
  /** The administrative user and its password, when the provider reports them (store them encrypted). */
  user: string | null;
  password: string | null;
  /** Name of the default database, when the provider creates one. */
  database: string | null;
}

export interface CreateDatabaseOptions {
  name: string;
  buildId: string;
  engine: DatabaseEngine;
  /** Engine major version, e.g. `8` for MySQL (provider default when absent). */
  version?: string;
  /** Provider plan slug. */
  size?: string;
  region?: string;
  /** VPC/private network id to attach to. */
  vpc?: string;
  /** Nodes in the cluster (default 1). */
  nodes?: number;
  /**
   * Who may connect: the VPC's CIDR or the servers' addresses. Never empty, never `0.0.0.0/0`
   * (validated: see `validateAllowList`).
   */
  allow: string[];
}

/** Managed databases: create, find by build, restrict access, destroy. */
export interface ManagedDatabaseProvider {
  readonly name: string;
  create(options: CreateDatabaseOptions): Promise<ManagedDatabase>;
  get(id: string): Promise<ManagedDatabase | null>;
  list(filter?: { buildId?: string }): Promise<ManagedDatabase[]>;
  /** Resolves when the cluster is online (and has its hosts). */
  waitUntilOnline(id: string, options?: WaitOptions): Promise<ManagedDatabase>;
  /** Replaces the allow-list with exactly these addresses/CIDRs (validated as for `create`). */
  setAllowList(id: string, sources: string[]): Promise<void>;
  getAllowList(id: string): Promise<string[]>;
  /** Destroying an absent database is not an error. */
  destroy(id: string): Promise<void>;
  dispose?(): Promise<void>;
}
