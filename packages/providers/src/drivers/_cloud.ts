/** What the real-cloud drivers share: checks of create options, SSH public keys, tags, polling. Internal. */
import { createHash } from 'node:crypto';
import { errorFactory, isAdtError, pollUntil as poll } from '@adt/core';
import { parseServerName } from '../naming.ts';
import type { CreateServerOptions, ManagedDatabase, Role, Server, WaitOptions } from '../types.ts';

/**
 * The tags every server of ours carries. Plain words with `-` so every provider accepts them
 * (DigitalOcean allows `[a-zA-Z0-9_:-]`, Linode 3-50 characters, Vultr and Exoscale free text).
 */
export function adtTags(role: Role, buildId: string, extra: string[] = []): string[] {
  return ['adt', `adt-role-${role}`, `adt-build-${buildId}`, ...extra];
}

/** The tag (and firewall/group name) of a build's servers of one role: `adt-<build>-<role>`. */
export function roleTag(buildId: string, role: Role): string {
  return `adt-${buildId}-${role}`;
}

/** A new server's tags: ours, its role's, and the caller's. */
export function serverTags(o: CreateServerOptions): string[] {
  return adtTags(o.role, o.buildId, [roleTag(o.buildId, o.role), ...(o.tags ?? [])]);
}

/** An OpenSSH public key of `sshKeys`, checked, with what the clouds identify it by. */
export interface PublicKey {
  /** `<type> <base64>[ <comment>]`, as sent (one line, single spaces). */
  line: string;
  type: string;
  /** The key blob (the base64 field, decoded). */
  blob: Buffer;
  /** MD5 of the blob as colon-separated hex pairs (DigitalOcean's fingerprint, `ssh-keygen -E md5 -l`). */
  md5: string;
  /** `SHA256:<unpadded base64>` of the blob (`ssh-keygen -l`). */
  sha256: string;
  /** A stable name for clouds that register keys by name: `adt-<first 12 hex of SHA-256 of the blob>`. */
  name: string;
}

const KEY_TYPES = ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'];

/**
 * Checks `sshKeys` (exit 2, naming `sshKeys[i]`, before any API call) and returns them parsed, the
 * same key given twice once. A key is one line `<type> <base64 blob> [comment]` whose blob starts
 * with its type (as OpenSSH writes it); anything else (a private key pasted by mistake, two keys on
 * one line, a truncated blob) is refused, and its text is never quoted back.
 */
export function parsePublicKeys(driver: string, keys: readonly string[] | undefined): PublicKey[] {
  const fail = errorFactory('providers', driver);
  const out: PublicKey[] = [];
  for (const [i, raw] of (keys ?? []).entries()) {
    const bad = (why: string) =>
      fail('BAD_SSH_KEY', `sshKeys[${i}]: ${why}; expected an OpenSSH public key on one line (ssh-ed25519 AAAA... comment)`, {
        exitCode: 2,
      });
    if (typeof raw !== 'string') throw bad('not a string');
    if (/PRIVATE KEY/.test(raw)) throw bad('this is a private key (it is never sent anywhere): give its .pub');
    const text = raw.trim();
    if (/[\r\n]/.test(text)) throw bad('more than one line');
    const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?:\s+(\S.*))?$/.exec(text.replace(/[ \t]+/g, ' '));
    if (!m) throw bad('not "<type> <base64>[ comment]"');
    const [, type, b64, comment] = m as unknown as [string, string, string, string | undefined];
    if (!KEY_TYPES.includes(type)) throw bad(`its type is not one of ${KEY_TYPES.join(', ')}`);
    const blob = Buffer.from(b64, 'base64');
    if (blob.toString('base64') !== b64) throw bad('the key is not valid base64');
    const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    if (nameLength !== type.length || blob.subarray(4, 4 + nameLength).toString('latin1') !== type || blob.length <= 4 + nameLength)
      throw bad(`the key's data is not a ${type} key`);
    if (out.some((k) => k.blob.equals(blob))) continue;
    const sha = createHash('sha256').update(blob).digest();
    out.push({
      line: `${type} ${b64}${comment ? ` ${comment}` : ''}`,
      type,
      blob,
      md5: createHash('md5')
        .update(blob)
        .digest('hex')
        .replace(/(..)(?!$)/g, '$1:'),
      sha256: `SHA256:${sha.toString('base64').replace(/=+$/, '')}`,
      name: `adt-${sha.toString('hex').slice(0, 12)}`,
    });
  }
  return out;
}

/** Whether two public key lines hold the same key (comments and spacing aside). */
export function sameKey(a: string, k: PublicKey): boolean {
  const b64 = /^\S+\s+([A-Za-z0-9+/]+={0,2})/.exec(a.trim())?.[1];
  return b64 !== undefined && Buffer.from(b64, 'base64').equals(k.blob);
}

/** `items` without repeats, in their first order. */
export function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** Create options every driver refuses the same way (exit 2, nothing created); the SSH keys parsed. */
export function checkCreate(
  driver: string,
  o: CreateServerOptions,
  defaults: { size?: string; region?: string },
): { size: string; region: string; keys: PublicKey[] } {
  const fail = errorFactory('providers', driver);
  const parsed = parseServerName(o.name);
  if (!parsed || parsed.role !== o.role || parsed.buildId !== o.buildId)
    throw fail('BAD_NAME', `server name "${o.name}" must come from serverName() with role ${o.role} and build ${o.buildId}`, {
      exitCode: 2,
    });
  if (!o.userData.startsWith('#!'))
    throw fail('BAD_USER_DATA', `user-data of ${o.name} must be a script starting with "#!"`, { exitCode: 2 });
  const size = o.size ?? defaults.size;
  const region = o.region ?? defaults.region;
  if (!size) throw fail('NO_SIZE', `${o.name}: a size (plan) is required for ${driver}`, { exitCode: 2 });
  if (!region) throw fail('NO_REGION', `${o.name}: a region is required for ${driver}`, { exitCode: 2 });
  return { size, region, keys: parsePublicKeys(driver, o.sshKeys) };
}

/** Polls `probe` until it returns a value, bounded by `timeoutMs` (core's pollUntil, its timeout said as the drivers say it). */
export async function pollUntil<T>(
  driver: string,
  what: string,
  probe: () => Promise<T | null>,
  options: WaitOptions & { defaultTimeoutMs?: number; defaultIntervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? options.defaultTimeoutMs ?? 600_000;
  try {
    return await poll(probe, {
      timeoutMs,
      intervalMs: options.intervalMs ?? options.defaultIntervalMs ?? 5_000,
      what,
      signal: options.signal,
    });
  } catch (e) {
    // Only this wait's own timeout: an error of the probe (a nested wait's too) goes through as it is.
    if (isAdtError(e) && e.pkg === 'core' && e.code === 'TIMEOUT' && e.message.endsWith(`waiting for ${what}`))
      throw errorFactory('providers', driver)('TIMEOUT', `${what}: not done after ${Math.round(timeoutMs / 1000)} s`, { cause: e });
    throw e;
  }
}

/** The one port spelling most APIs use: `22` or `8000-8100`. */
export function portText(port: number | [number, number] | undefined): string | undefined {
  return port === undefined ? undefined : Array.isArray(port) ? `${port[0]}-${port[1]}` : String(port);
}

/** The inverse of `portText`. */
export function parsePort(text: string | undefined | null): number | [number, number] | undefined {
  if (!text || text === '0' || text === 'all') return undefined;
  const [a, b] = text.split('-').map(Number);
  return b === undefined || a === b ? a : [a!, b];
}

/** `www.example.com` in zone `example.com` -> `www`; the apex -> `@`. */
export function relativeName(name: string, zone: string, driver: string): string {
  const n = name.toLowerCase().replace(/\.$/, '');
  const z = zone.toLowerCase().replace(/\.$/, '');
  if (n === z) return '@';
  if (!n.endsWith(`.${z}`)) throw errorFactory('providers', driver)('WRONG_ZONE', `"${name}" is not in the zone ${z}`, { exitCode: 2 });
  return n.slice(0, -(z.length + 1));
}

/** Whether a failed request may still have been carried out (5xx, timeout, lost connection). */
export function outcomeUnknown(error: unknown): boolean {
  const status = (error as { status?: number | null }).status;
  return status === null || (typeof status === 'number' && status >= 500);
}

/** Waits (bounded, default 5 min) until `get` reports the server running with a public address (and `ready`, when given). */
export function waitForServer(
  driver: string,
  id: string,
  get: (id: string) => Promise<Server | null>,
  options: WaitOptions = {},
  ready: (s: Server) => boolean = () => true,
): Promise<Server> {
  return pollUntil(
    driver,
    `server ${id} running with its addresses`,
    async () => {
      const s = await get(id);
      if (!s) throw errorFactory('providers', driver)('NOT_FOUND', `server ${id} is gone`);
      if (s.state === 'error') throw errorFactory('providers', driver)('SERVER_FAILED', `server ${id} is in error`);
      return s.state === 'running' && s.publicIp && ready(s) ? s : null;
    },
    { ...options, defaultTimeoutMs: 300_000, defaultIntervalMs: 5_000 },
  );
}

/** Waits (bounded, default 30 min) until `get` reports the managed database online. */
export function waitForDatabase(
  driver: string,
  id: string,
  get: (id: string) => Promise<ManagedDatabase | null>,
  options: WaitOptions = {},
): Promise<ManagedDatabase> {
  return pollUntil(
    driver,
    `database ${id} online`,
    async () => {
      const d = await get(id);
      if (!d) throw errorFactory('providers', driver)('NOT_FOUND', `database ${id} is gone`);
      if (d.state === 'error') throw errorFactory('providers', driver)('DATABASE_FAILED', `database ${id} failed`);
      return d.state === 'online' ? d : null;
    },
    { ...options, defaultTimeoutMs: 1_800_000, defaultIntervalMs: 15_000 },
  );
}

/**
 * One registration of each SSH key at a time, per driver instance: creates run in parallel with the
 * same new key (a deploy creates a role's servers together) share the lookup-or-register in flight
 * instead of each registering the key. Nothing is remembered once it settled (a later create looks
 * the key up again, so a key removed from the account meanwhile is registered again).
 */
export class KeyRegistrations<T> {
  #inFlight = new Map<string, Promise<T>>();
  once(key: PublicKey, lookupOrRegister: () => Promise<T>): Promise<T> {
    const pending = this.#inFlight.get(key.name);
    if (pending) return pending;
    const p = lookupOrRegister().finally(() => this.#inFlight.delete(key.name));
    this.#inFlight.set(key.name, p);
    return p;
  }
}

/**
 * Runs a create; when it fails with an unknown outcome (5xx, lost connection), or with one of the
 * statuses in `taken` (the cloud says it exists already: made meanwhile by another deploy), looks
 * for its result before rethrowing.
 */
export async function createOrFind<T>(create: () => Promise<T>, find: () => Promise<T | null>, taken: number[] = []): Promise<T> {
  try {
    return await create();
  } catch (error) {
    const status = (error as { status?: number | null }).status;
    if (!outcomeUnknown(error) && !(typeof status === 'number' && taken.includes(status))) throw error;
    const found = await find();
    if (found !== null) return found;
    throw error;
  }
}

/**
 * Runs a create; when it fails with an unknown outcome (5xx, lost connection), looks for the server
 * by name before giving up, so it is never made twice.
 */
export async function createOnce<T>(
  o: CreateServerOptions,
  create: () => Promise<T>,
  found: (s: Server) => T,
  list: (filter: { buildId: string; role: Role }) => Promise<Server[]>,
): Promise<T> {
  try {
    return await create();
  } catch (error) {
    if (!outcomeUnknown(error)) throw error;
    const s = (await list({ buildId: o.buildId, role: o.role })).find((x) => x.name === o.name);
    if (s) return found(s);
    throw error;
  }
}
