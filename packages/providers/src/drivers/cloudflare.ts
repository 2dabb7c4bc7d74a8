/**
 * Cloudflare DNS with the official `cloudflare` package (https://github.com/cloudflare/cloudflare-typescript),
 * as the issue asks: round robin is several A records for one name; records are proxied (the
 * visitor reaches Cloudflare, and the webservers' firewall admits only Cloudflare's ranges) unless
 * `proxied: false`.
 *
 * - TTL: a proxied record's TTL is always "automatic" (1) at Cloudflare; unproxied records take the
 *   TTL asked for (Cloudflare's minimum is 60 s, 30 s on Enterprise).
 * - Retries: the package retries 429, 408, 409 and 5xx itself, honouring `retry-after` (up to
 *   `maxRetries`, default 4 here). A repeated create of a record cannot make a duplicate: Cloudflare
 *   refuses an identical record (error 81058), which `addA` treats as done.
 * - Errors carry Cloudflare's own `errors[].message`; the token is never part of a message.
 */
import Cloudflare from 'cloudflare';
import { errorFactory, isAdtError } from '@adt/core';
import type { DnsProvider, DnsRecord } from '../types.ts';

export const DRIVER_NAME = 'cloudflare';
const fail = errorFactory('providers', DRIVER_NAME);

export interface CloudflareDnsOptions {
  /** An API token with Zone:DNS:Edit on the zone (and Zone:Zone:Edit for `ensureZone` to create one). Never logged. */
  apiToken: string;
  /** The zone, e.g. `example.com`. */
  zone: string;
  /** Needed only for `ensureZone` to create a missing zone. */
  accountId?: string;
  /** Records proxied through Cloudflare (default true). */
  proxied?: boolean;
  /** TTL of unproxied records in seconds (default 60). */
  defaultTtl?: number;
  /** API base URL (default Cloudflare's; a fake's URL in tests). */
  baseUrl?: string;
  maxRetries?: number;
  fetch?: typeof fetch;
}

interface CfError {
  code?: number;
  message?: string;
}

/** Turns the package's errors into ours: status, Cloudflare's codes and messages, what to do. */
function explain(what: string, error: unknown): Error {
  if (error instanceof Cloudflare.APIError) {
    const errors = ((error as unknown as { errors?: CfError[] }).errors ?? [])
      .map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim())
      .join('; ');
    const status = error.status;
    const hint = status === 401 || status === 403 ? ' (check the API token: it needs Zone:DNS:Edit on this zone)' : '';
    return fail(
      status === 429 ? 'RATE_LIMITED' : status === 401 || status === 403 ? 'UNAUTHORIZED' : 'API_ERROR',
      `${what}: HTTP ${status ?? '-'}${errors ? `: ${errors}` : ''}${hint}`,
      { exitCode: status === 400 ? 2 : 1 },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return fail('API_UNREACHABLE', `${what}: ${message}`, { cause: error });
}

export class CloudflareDns implements DnsProvider {
  readonly name = DRIVER_NAME;
  readonly #o: CloudflareDnsOptions;
  #client: Cloudflare | null = null;
  #zoneId: string | null = null;

  constructor(o: CloudflareDnsOptions) {
    this.#o = o;
  }

  /** The package's client (created on first use). */
  getInstance(): Cloudflare {
    if (!this.#o.apiToken) throw fail('NO_TOKEN', 'CLOUDFLARE_API_TOKEN: an API token is required', { exitCode: 2 });
    this.#client ??= new Cloudflare({
      apiToken: this.#o.apiToken,
      // Always explicit: the package would otherwise read CLOUDFLARE_BASE_URL from the environment.
      baseURL: this.#o.baseUrl ?? 'https://api.cloudflare.com/client/v4',
      maxRetries: this.#o.maxRetries ?? 4,
      ...(this.#o.fetch ? { fetch: this.#o.fetch } : {}),
    });
    return this.#client;
  }

  async #zone(create = false): Promise<string> {
    if (this.#zoneId) return this.#zoneId;
    const zone = this.#o.zone.replace(/\.$/, '').toLowerCase();
    try {
      // https://developers.cloudflare.com/api/resources/zones/methods/list/
      for await (const z of this.getInstance().zones.list({ name: zone })) {
        if (z.name === zone) return (this.#zoneId = z.id);
      }
      if (!create)
        throw fail(
          'NO_ZONE',
          `zone ${zone} is not in this Cloudflare account (add it, or give CLOUDFLARE_ACCOUNT_ID to let ensureZone create it)`,
          { exitCode: 2 },
        );
      if (!this.#o.accountId)
        throw fail('NO_ACCOUNT', `zone ${zone} does not exist and no account id was given to create it`, { exitCode: 2 });
      // https://developers.cloudflare.com/api/resources/zones/methods/create/
      const z = await this.getInstance().zones.create({ account: { id: this.#o.accountId }, name: zone, type: 'full' });
      return (this.#zoneId = z.id);
    } catch (error) {
      if (isAdtError(error)) throw error;
      throw explain(`zone ${zone}`, error);
    }
  }

  #fqdn(name: string): string {
    const n = name.toLowerCase().replace(/\.$/, '');
    const z = this.#o.zone.toLowerCase().replace(/\.$/, '');
    if (n !== z && !n.endsWith(`.${z}`)) throw fail('WRONG_ZONE', `"${name}" is not in the zone ${z}`, { exitCode: 2 });
    return n;
  }

  async ensureZone(zone: string): Promise<void> {
    if (zone.replace(/\.$/, '').toLowerCase() !== this.#o.zone.replace(/\.$/, '').toLowerCase())
      throw fail('WRONG_ZONE', `this driver manages ${this.#o.zone}, not ${zone}`, { exitCode: 2 });
    await this.#zone(true);
  }

  async #records(fqdn: string): Promise<{ id: string; content: string; ttl: number }[]> {
    const zoneId = await this.#zone();
    const out: { id: string; content: string; ttl: number }[] = [];
    try {
      // https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/list/
      for await (const r of this.getInstance().dns.records.list({ zone_id: zoneId, type: 'A', name: { exact: fqdn }, per_page: 100 })) {
        if (r.type === 'A' && r.name === fqdn && r.content) out.push({ id: r.id, content: r.content, ttl: r.ttl });
      }
    } catch (error) {
      throw explain(`list A records of ${fqdn}`, error);
    }
    return out;
  }

  async listA(name: string): Promise<DnsRecord[]> {
    const fqdn = this.#fqdn(name);
    return (await this.#records(fqdn)).map((r) => ({ name: fqdn, type: 'A', content: r.content, ttl: r.ttl }));
  }

  async addA(name: string, ip: string, ttl = this.#o.defaultTtl ?? 60): Promise<void> {
    const fqdn = this.#fqdn(name);
    if ((await this.#records(fqdn)).some((r) => r.content === ip)) return;
    const proxied = this.#o.proxied ?? true;
    try {
      // https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/create/
      await this.getInstance().dns.records.create({
        zone_id: await this.#zone(),
        type: 'A',
        name: fqdn,
        content: ip,
        proxied,
        ttl: proxied ? 1 : Math.max(60, ttl),
        comment: 'adt webserver',
      });
    } catch (error) {
      // 81058: "An identical record already exists" (e.g. a retried create that had succeeded).
      if (error instanceof Cloudflare.APIError && ((error as unknown as { errors?: CfError[] }).errors ?? []).some((e) => e.code === 81058))
        return;
      throw explain(`add ${fqdn} A ${ip}`, error);
    }
  }

  async removeA(name: string, ip: string): Promise<void> {
    const fqdn = this.#fqdn(name);
    for (const r of (await this.#records(fqdn)).filter((x) => x.content === ip)) {
      try {
        // https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/delete/
        await this.getInstance().dns.records.delete(r.id, { zone_id: await this.#zone() });
      } catch (error) {
        if (error instanceof Cloudflare.NotFoundError) continue;
        throw explain(`remove ${fqdn} A ${ip}`, error);
      }
    }
  }

  async dispose(): Promise<void> {
    this.#client = null;
  }
}

/** Registry entry point (convention: a default-exported factory). */
export default function cloudflareDriver(o: CloudflareDnsOptions): CloudflareDns {
  return new CloudflareDns(o);
}
