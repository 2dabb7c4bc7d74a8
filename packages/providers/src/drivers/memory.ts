/**
 * Compute and native firewall in memory, for unit tests of the layers above (the autoscaler's
 * loop, the build) and dry runs. Servers "boot" at once unless `bootMs` says otherwise.
 */
import { errorFactory } from '@adt/core';
import { nameMatches, parseServerName } from '../naming.ts';
import { validateAllowList } from '../rules.ts';
import { ApiError } from '../http.ts';
import type {
  ComputeProvider,
  CreateDatabaseOptions,
  ManagedDatabase,
  ManagedDatabaseProvider,
  CreateServerOptions,
  InboundRule,
  ListServersFilter,
  NativeFirewallProvider,
  Role,
  Server,
  WaitOptions,
} from '../types.ts';

export const DRIVER_NAME = 'memory';
const fail = errorFactory('providers', DRIVER_NAME);

export interface MemoryComputeOptions {
  /** First two octets of the fake public and private addresses (default 198.18 / 198.19). */
  publicPrefix?: string;
  privatePrefix?: string;
  /** Clock (ms), injectable. */
  now?: () => number;
  /** Images `create` accepts (others are refused as a cloud would, HTTP 404); absent: any. */
  images?: string[];
}

export class MemoryCompute implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: false, privateNetworking: true };
  readonly servers = new Map<string, Server & { userData: string; image: string | null }>();
  readonly #o: MemoryComputeOptions;
  #n = 0;

  constructor(options: MemoryComputeOptions = {}) {
    this.#o = options;
  }

  async create(o: CreateServerOptions): Promise<Server> {
    const parsed = parseServerName(o.name);
    if (!parsed || parsed.role !== o.role || parsed.buildId !== o.buildId)
      throw fail('BAD_NAME', `server name "${o.name}" must come from serverName()`, { exitCode: 2 });
    if (this.servers.has(o.name)) throw fail('NAME_TAKEN', `a server named ${o.name} exists`, { exitCode: 2 });
    if (!o.userData.startsWith('#!'))
      throw fail('BAD_USER_DATA', `user-data of ${o.name} must be a script starting with "#!"`, { exitCode: 2 });
    if (o.image && this.#o.images && !this.#o.images.includes(o.image))
      throw new ApiError(DRIVER_NAME, 'NOT_FOUND', `POST /servers: HTTP 404: image ${o.image} not found`, { status: 404 });
    const n = ++this.#n;
    const server = {
      id: o.name,
      name: o.name,
      role: o.role,
      buildId: o.buildId,
      state: 'running' as const,
      publicIp: `${this.#o.publicPrefix ?? '198.18'}.${Math.floor(n / 250)}.${(n % 250) + 2}`,
      privateIp: `${this.#o.privatePrefix ?? '198.19'}.${Math.floor(n / 250)}.${(n % 250) + 2}`,
      tags: ['adt', `role:${o.role}`, `build:${o.buildId}`, ...(o.tags ?? [])],
      createdAt: new Date((this.#o.now ?? Date.now)()).toISOString(),
      userData: o.userData,
      image: o.image ?? null,
    };
    this.servers.set(o.name, server);
    return strip(server);
  }

  async destroy(id: string): Promise<void> {
    this.servers.delete(id);
  }

  async list(filter: ListServersFilter = {}): Promise<Server[]> {
    return [...this.servers.values()].filter((s) => nameMatches(s.name, filter)).map(strip);
  }

  async get(id: string): Promise<Server | null> {
    const s = this.servers.get(id);
    return s ? strip(s) : null;
  }

  async waitUntilRunning(id: string, _o?: WaitOptions): Promise<Server> {
    const s = await this.get(id);
    if (!s) throw fail('NOT_FOUND', `no server ${id}`);
    return s;
  }
}

function strip(s: Server & { userData?: string; image?: string | null }): Server {
  const { userData: _u, image: _i, ...rest } = s;
  return { ...rest, tags: [...rest.tags] };
}

export class MemoryNativeFirewall implements NativeFirewallProvider {
  readonly name = DRIVER_NAME;
  readonly rules = new Map<string, InboundRule[]>();
  async apply(buildId: string, role: Role, rules: InboundRule[]) {
    this.rules.set(`${buildId}/${role}`, structuredClone(rules));
  }
  async get(buildId: string, role: Role) {
    const r = this.rules.get(`${buildId}/${role}`);
    return r ? structuredClone(r) : null;
  }
  async remove(buildId: string, role: Role) {
    this.rules.delete(`${buildId}/${role}`);
  }
}

/** Managed databases in memory: online at once, allow-lists validated like every driver's. */
export class MemoryDatabases implements ManagedDatabaseProvider {
  readonly name = DRIVER_NAME;
  readonly databases = new Map<string, ManagedDatabase & { allow: string[] }>();

  async create(o: CreateDatabaseOptions): Promise<ManagedDatabase> {
    validateAllowList(o.allow, 'allow');
    const existing = [...this.databases.values()].find((d) => d.name === o.name);
    if (existing) {
      existing.allow = [...o.allow];
      return strip2(existing);
    }
    const db = {
      id: `mem-${this.databases.size + 1}`,
      name: o.name,
      buildId: o.buildId,
      engine: o.engine,
      state: 'online' as const,
      host: `${o.name}.db.invalid`,
      privateHost: `private-${o.name}.db.invalid`,
      port: o.engine === 'postgres' ? 5432 : 3306,
      user: 'admin',
      password: 'memory-only',
      database: 'defaultdb',
      allow: [...o.allow],
    };
    this.databases.set(db.id, db);
    return strip2(db);
  }

  async get(id: string) {
    const d = this.databases.get(id);
    return d ? strip2(d) : null;
  }

  async list(filter: { buildId?: string } = {}) {
    return [...this.databases.values()].filter((d) => !filter.buildId || d.buildId === filter.buildId).map(strip2);
  }

  async waitUntilOnline(id: string): Promise<ManagedDatabase> {
    const d = await this.get(id);
    if (!d) throw fail('NOT_FOUND', `no database ${id}`);
    return d;
  }

  async setAllowList(id: string, sources: string[]) {
    validateAllowList(sources, 'allow');
    const d = this.databases.get(id);
    if (!d) throw fail('NOT_FOUND', `no database ${id}`);
    d.allow = [...sources];
  }

  async getAllowList(id: string) {
    return [...(this.databases.get(id)?.allow ?? [])];
  }

  async destroy(id: string) {
    this.databases.delete(id);
  }
}

function strip2(d: ManagedDatabase & { allow?: string[] }): ManagedDatabase {
  const { allow: _a, ...rest } = d;
  return { ...rest };
}

export default function memoryDriver(options: MemoryComputeOptions = {}): MemoryCompute {
  return new MemoryCompute(options);
}
