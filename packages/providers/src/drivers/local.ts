/**
 * The local cloud (@adt/localcloud: this machine as a small cloud) through its HTTP API, as the
 * other drivers reach their cloud's API: compute (servers, images, snapshots, the console), its
 * native firewall, and its DNS (PowerDNS, whose API the cloud hands to the account token). The
 * build machine holds the account token; an autoscaler holds a token scoped to its build's
 * webservers. Requests go through the one API client (retries, errors with the cloud's message).
 *
 * API: see packages/localcloud/src/api.ts (and its README).
 */
import { errorFactory, pollUntil } from '@adt/core';
import { createApiClient } from '../http.ts';
import { validateRule } from '../rules.ts';
import { parseServerName } from '../naming.ts';
import powerdnsDriver from './powerdns.ts';
import type {
  ComputeProvider,
  CreateServerOptions,
  DnsProvider,
  InboundRule,
  ListServersFilter,
  NativeFirewallProvider,
  Role,
  Server,
  WaitOptions,
} from '../types.ts';

export const DRIVER_NAME = 'local';
const fail = errorFactory('providers', DRIVER_NAME);

export interface LocalDriverOptions {
  /** The API's base URL, e.g. http://198.18.1.1:9701 (without /v1). */
  url: string;
  /** The account token, or a scoped one (never logged). */
  token: string;
  /** Image of new servers when a create names none (default `debian-12`, the cloud's stock image). */
  image?: string;
  /** Per-request timeout (default 60 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  baseDelayMs?: number;
  maxDelayMs?: number;
  attempts?: number;
}

/** The cloud's own description (`GET /v1/cloud`). */
export interface LocalCloudInfo {
  id: string;
  publicCidr: string;
  privateCidr: string;
  buildMachine: { publicIp: string; privateIp: string };
  outsiderIp: string;
  nameserver: string;
  stockImage: string;
  version: string;
}

/** The cloud's services (`GET /v1/services`, account token only). */
export interface LocalServices {
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  dns: { apiUrl: string; apiKey: string; nameserver: string; port: number };
  smtp: { host: string; port: number; mailDir: string };
  mirror: { proxy: string } | null;
}

export interface LocalImage {
  id: string;
  name: string;
  kind: 'stock' | 'snapshot';
  parent: string | null;
  createdAt: string;
  bytes: number;
}

export interface LocalAcme {
  directoryUrl: string;
  httpsCaPem: string;
  rootPem: string;
  dnsServer: string;
}

export class LocalDriver implements ComputeProvider {
  readonly name = DRIVER_NAME;
  readonly flags = { snapshots: true, privateNetworking: true, images: true, console: true };
  readonly firewall: NativeFirewallProvider;
  readonly #api: ReturnType<typeof createApiClient>;
  readonly #o: LocalDriverOptions;
  #services: Promise<LocalServices> | null = null;

  constructor(o: LocalDriverOptions) {
    if (!o.url || !o.token) throw fail('BAD_OPTIONS', 'url and token are required', { exitCode: 2 });
    this.#o = o;
    this.#api = createApiClient({
      provider: DRIVER_NAME,
      baseUrl: `${o.url.replace(/\/$/, '')}/v1`,
      auth: () => ({ Authorization: `Bearer ${o.token}` }),
      errorMessage: (b) => (b as { message?: string }).message,
      fetch: o.fetch,
      timeoutMs: o.timeoutMs ?? 60_000,
      attempts: o.attempts,
      baseDelayMs: o.baseDelayMs ?? 200,
      maxDelayMs: o.maxDelayMs ?? 3000,
    });
    const api = this.#api;
    const path = (buildId: string, role: Role) => `/firewalls/${encodeURIComponent(buildId)}/${encodeURIComponent(role)}`;
    this.firewall = {
      name: DRIVER_NAME,
      async apply(buildId, role, rules: InboundRule[]) {
        for (const [i, r] of rules.entries()) validateRule(r, `rules[${i}]`);
        await api.put(path(buildId, role), { rules });
      },
      async get(buildId, role) {
        const r = await api.request<{ rules: InboundRule[] }>('GET', path(buildId, role), { accept: [404] });
        return r.status === 404 ? null : r.body.rules;
      },
      async remove(buildId, role) {
        await api.delete(path(buildId, role));
      },
    };
  }

  /** The API's base URL (what an autoscaler's access names). */
  get url(): string {
    return this.#o.url;
  }

  // --- The cloud ---

  /** The cloud's networks, build machine, outsider and stock image. */
  async cloud(): Promise<LocalCloudInfo> {
    return (await this.#api.get<{ cloud: LocalCloudInfo }>('/cloud')).cloud;
  }

  /** The cloud's services and their credentials (account token only; never print them). */
  services(): Promise<LocalServices> {
    this.#services ??= this.#api.get<{ services: LocalServices }>('/services').then((r) => r.services);
    return this.#services;
  }

  /** The cloud's ACME server (started on first use): its directory, the CA of its HTTPS, the root it issues under. */
  async acme(): Promise<LocalAcme> {
    return (await this.#api.post<{ acme: LocalAcme }>('/acme', {}, { idempotent: true })).acme;
  }

  /** The cloud's DNS for `zone` (its PowerDNS, through the API key the cloud hands out). */
  dns(zone: string, ttl?: number): DnsProvider {
    let inner: DnsProvider | null = null;
    const get = async () => {
      if (!inner) {
        const s = await this.services();
        inner = powerdnsDriver({ apiUrl: s.dns.apiUrl, apiKey: s.dns.apiKey, zone, defaultTtl: ttl, fetch: this.#o.fetch });
      }
      return inner;
    };
    return {
      name: 'powerdns',
      ensureZone: async (z) => (await get()).ensureZone(z),
      listA: async (n) => (await get()).listA(n),
      addA: async (n, ip, t) => (await get()).addA(n, ip, t ?? ttl),
      removeA: async (n, ip) => (await get()).removeA(n, ip),
      dispose: async () => inner?.dispose?.(),
    };
  }

  /** A token for one build and some roles (what an autoscaler gets). Account token only. */
  async createScopedToken(buildId: string, roles: Role[], description?: string): Promise<{ id: string; token: string }> {
    return (await this.#api.post<{ token: { id: string; token: string } }>('/tokens', { buildId, roles, description })).token;
  }

  /** Revokes every scoped token of a build (at destroy). */
  async revokeTokens(buildId: string): Promise<number> {
    return (await this.#api.delete<{ revoked: number }>('/tokens', { query: { buildId } })).revoked;
  }

  /** Tears the cloud down (its networks and services); refused (409) while servers remain. */
  async teardown(): Promise<void> {
    await this.#api.delete('/cloud');
  }

  // --- Compute ---

  async create(o: CreateServerOptions): Promise<Server> {
    const parsed = parseServerName(o.name);
    if (!parsed || parsed.role !== o.role || parsed.buildId !== o.buildId) {
      throw fail('BAD_NAME', `server name "${o.name}" must come from serverName() with role ${o.role} and build ${o.buildId}`, {
        exitCode: 2,
      });
    }
    const body = {
      name: o.name,
      role: o.role,
      buildId: o.buildId,
      userData: o.userData,
      image: o.image ?? this.#o.image,
      sshKeys: o.sshKeys,
      tags: o.tags,
    };
    // Not repeated after a lost answer: the server may exist; the caller's next list sees it.
    return (await this.#api.post<{ server: Server }>('/servers', body, { idempotent: false })).server;
  }

  async destroy(id: string): Promise<void> {
    await this.#api.delete(`/servers/${encodeURIComponent(id)}`);
  }

  async list(f: ListServersFilter = {}): Promise<Server[]> {
    return (await this.#api.get<{ servers: Server[] }>('/servers', { query: { buildId: f.buildId, role: f.role } })).servers;
  }

  async get(id: string): Promise<Server | null> {
    const r = await this.#api.request<{ server: Server }>('GET', `/servers/${encodeURIComponent(id)}`, { accept: [404] });
    return r.status === 404 ? null : r.body.server;
  }

  async waitUntilRunning(id: string, w: WaitOptions = {}): Promise<Server> {
    return pollUntil(
      async () => {
        const s = await this.get(id);
        if (!s) throw fail('NOT_FOUND', `no server ${id}`);
        if (s.state === 'error' || s.state === 'stopped') throw fail('SERVER_FAILED', `server ${id} is ${s.state}`);
        return s.state === 'running' && s.privateIp ? s : null;
      },
      { timeoutMs: w.timeoutMs ?? 180_000, intervalMs: w.intervalMs ?? 250, signal: w.signal, what: `server ${id} to run` },
    );
  }

  /** Powers a server off (every process in it ends; its disk stays). */
  async powerOff(id: string): Promise<void> {
    await this.#api.post(`/servers/${encodeURIComponent(id)}/actions`, { type: 'power_off' }, { idempotent: true });
  }

  /** A snapshot of a stopped server, as a new image named `name`; returns its id. */
  async snapshot(id: string, name: string): Promise<string> {
    return (await this.#api.post<{ image: LocalImage }>(`/servers/${encodeURIComponent(id)}/actions`, { type: 'snapshot', name })).image.id;
  }

  /** The end of a server's user-data output and its exit code once it ended (the cloud's console). */
  async console(id: string): Promise<{ log: string; exitCode: number | null }> {
    return (await this.#api.get<{ console: { log: string; exitCode: number | null } }>(`/servers/${encodeURIComponent(id)}/console`))
      .console;
  }

  async listImages(): Promise<LocalImage[]> {
    return (await this.#api.get<{ images: LocalImage[] }>('/images')).images;
  }

  /** The image of that id or name (the newest of a name), or null. */
  async findImage(ref: string): Promise<LocalImage | null> {
    const r = await this.#api.request<{ image: LocalImage }>('GET', `/images/${encodeURIComponent(ref)}`, { accept: [404] });
    return r.status === 404 ? null : r.body.image;
  }

  async deleteImage(id: string): Promise<void> {
    await this.#api.delete(`/images/${encodeURIComponent(id)}`);
  }

  async dispose(): Promise<void> {}
}

/** Registry entry point (convention: a default-exported factory). */
export default function localDriver(o: LocalDriverOptions): LocalDriver {
  return new LocalDriver(o);
}
