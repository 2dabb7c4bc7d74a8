/**
 * The config datastore shared by every machine of a deployment: JSON values and empty markers in
 * one bucket, secrets encrypted at rest, object ages, and leases (the original's lock files, done right).
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes, storeError, PreconditionFailed } from './errors.ts';
import { isAdtError } from '@adt/core';
import { validateKey, validatePrefix } from './_validate.ts';
import { decrypt, encrypt, isEncrypted } from './crypto.ts';
import { isSecretKey, keys as K, type Key, type KeyFamily, type JsonValue, type LeaseRecord } from './keys.ts';
import type { ObjectDriver, StoredObject } from './types.ts';

export interface WriteBudget {
  /** Writes allowed to one object... */
  writes: number;
  /** ...within this many seconds. */
  perSeconds: number;
}

/**
 * DigitalOcean Spaces, the tightest of the supported backends, allows about 5 PUTs per object per
 * 5 minutes (https://docs.digitalocean.com/products/spaces/details/limits/). AWS S3 allows 3,500
 * writes/s per prefix; the embedded server has no limit.
 */
export const SPACES_WRITE_BUDGET: WriteBudget = Object.freeze({ writes: 5, perSeconds: 300 });

export interface ConfigStoreOptions {
  /** Where objects live: `s3Driver(...)` or, in unit tests, `memoryDriver()`. */
  driver: ObjectDriver;
  /** The deployment's 32-byte key for secret values. Without it, secret keys are refused. */
  secretKey?: Uint8Array;
  /**
   * Writes per object this process allows itself, to stay under the backend's limit (default
   * `SPACES_WRITE_BUDGET`; `null` for none). A write past it throws WRITE_BUDGET_EXCEEDED instead of
   * being throttled by the backend. Also bounds the shortest lease TTL (see `minLeaseTtlSeconds`).
   */
  writeBudget?: WriteBudget | null;
  /** Without conditional writes: how long a lease contender waits before reading back (default 1 500 ms). */
  leaseSettleMs?: number;
}

/** A lease held by this process. Pass it to `renew` and `release`. */
export interface Lease {
  readonly name: string;
  readonly owner: string;
  readonly token: string;
  readonly ttlSeconds: number;
  /** Entity tag of our write, for conditional renew/release. */
  readonly etag: string;
  /** When it expires unless renewed (server clock). */
  readonly expiresAt: Date;
  /** `conditional`: exclusive (If-None-Match/If-Match). `settle`: best effort, see README. */
  readonly mode: 'conditional' | 'settle';
}

export interface LeaseHolder {
  owner: string;
  expiresInSeconds: number;
}

// Last-Modified has one-second resolution; a lease counts as expired only one second after
// its nominal expiry, so a holder never loses it early.
const EXPIRY_SLACK_MS = 1000;

export class ConfigStore {
  readonly driver: ObjectDriver;
  readonly #secretKey: Uint8Array | undefined;
  readonly #budget: WriteBudget | null;
  readonly #writeLog = new Map<string, number[]>();
  readonly #settleMs: number;
  #conditional: Promise<boolean> | undefined;

  constructor(options: ConfigStoreOptions) {
    this.driver = options.driver;
    if (options.secretKey && options.secretKey.length !== 32) {
      throw storeError('NO_SECRET_KEY', 'secretKey must be 32 bytes (AES-256)', { exitCode: 2 });
    }
    this.#secretKey = options.secretKey;
    this.#budget = options.writeBudget === undefined ? SPACES_WRITE_BUDGET : options.writeBudget;
    this.#settleMs = options.leaseSettleMs ?? 1500;
  }

  get bucket(): string {
    return this.driver.bucket;
  }

  // --- Values ---

  /**
   * Stores a JSON value, or an empty marker when `value` is omitted. Keys under `credentials/` and
   * `secrets/` are encrypted with the deployment key.
   */
  async put<T>(key: Key<T> | string, value?: T): Promise<void> {
    const path = pathOf(key);
    await this.#write(path, this.#encode(path, value));
  }

  /** Writes only when the stored value differs (write on change, not on a timer). Returns whether it wrote. */
  async putIfChanged<T>(key: Key<T> | string, value?: T): Promise<boolean> {
    const path = pathOf(key);
    const current = await this.driver.read(path);
    if (current) {
      const existing = this.#decodeOrNull(path, current);
      if (existing !== undefined && stableJson(existing) === stableJson(value === undefined ? true : value)) return false;
    }
    await this.#write(path, this.#encode(path, value));
    return true;
  }

  /** The value at `key`: `null` when absent, `true` for an empty marker. */
  async get<T = JsonValue>(key: Key<T> | string): Promise<T | null> {
    const path = pathOf(key);
    const obj = await this.driver.read(path);
    return obj ? (this.#decode(path, obj) as T) : null;
  }

  /**
   * The value at `key`, which must be there: absent, it throws `MISSING_KEY` naming the key and
   * who writes it (`writtenBy`, e.g. "the build, before it creates servers").
   */
  async require<T = JsonValue>(key: Key<T> | string, writtenBy = 'the build'): Promise<T> {
    const value = await this.get<T>(key);
    if (value === null)
      throw storeError(ErrorCodes.MISSING_KEY, `${pathOf(key)} is missing from the datastore (${this.bucket}): ${writtenBy} writes it`);
    return value;
  }

  /** Several required keys at once; every missing one named in one error. */
  async requireAll<const K extends readonly Key<unknown>[]>(
    list: K,
    writtenBy = 'the build',
  ): Promise<{ [I in keyof K]: K[I] extends Key<infer T> ? T : never }> {
    const values = await Promise.all(list.map((k) => this.get(k)));
    const missing = list.filter((_, i) => values[i] === null).map((k) => k.path);
    if (missing.length) {
      throw storeError(
        ErrorCodes.MISSING_KEY,
        `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing from the datastore (${this.bucket}): ` +
          `${writtenBy} writes ${missing.length > 1 ? 'them' : 'it'}`,
      );
    }
    return values as { [I in keyof K]: K[I] extends Key<infer T> ? T : never };
  }

  async exists(key: Key<unknown> | string): Promise<boolean> {
    return (await this.driver.head(pathOf(key))) !== null;
  }

  /** Seconds since the last write of `key` (server clock), or `null` when absent. */
  async age(key: Key<unknown> | string): Promise<number | null> {
    const meta = await this.driver.head(pathOf(key));
    if (!meta) return null;
    return Math.max(0, Math.floor((this.driver.now() - meta.lastModified.getTime()) / 1000));
  }

  async delete(key: Key<unknown> | string): Promise<void> {
    await this.driver.remove([pathOf(key)]);
  }

  /** Every key under `prefix` (all pages). `''` lists the whole bucket. */
  async list(prefix: string | KeyFamily<unknown>): Promise<string[]> {
    return this.driver.list(validatePrefix(typeof prefix === 'string' ? prefix : prefix.prefix));
  }

  /** The arguments of a key family present in the store, e.g. every webserver IP: `listOf(keys.webserverIps)`. */
  async listOf(family: KeyFamily<unknown>): Promise<string[]> {
    const found = await this.driver.list(family.prefix);
    return found.map((k) => family.parse(k)).filter((v): v is string => v !== null);
  }

  /** Deletes every key under `prefix`; returns how many. An empty prefix is refused: use `emptyBucket`. */
  async deletePrefix(prefix: string | KeyFamily<unknown>): Promise<number> {
    const p = validatePrefix(typeof prefix === 'string' ? prefix : prefix.prefix);
    if (p === '') throw storeError('INVALID_KEY', 'deletePrefix("") would delete everything: call emptyBucket() for that', { exitCode: 2 });
    const found = await this.driver.list(p);
    await this.driver.remove(found);
    return found.length;
  }

  /** Creates the deployment's bucket when it does not exist. */
  async ensureBucket(): Promise<void> {
    await this.driver.ensureBucket();
  }

  /** Deletes every object: a new build starts from an empty bucket. Returns how many were deleted. */
  async emptyBucket(): Promise<number> {
    const found = await this.driver.list('');
    await this.driver.remove(found);
    this.#writeLog.clear();
    return found.length;
  }

  /** Deletes every object and then the bucket itself (destroying a build). */
  async deleteBucket(): Promise<number> {
    if (!(await this.driver.bucketExists())) return 0;
    const removed = await this.emptyBucket();
    await this.driver.deleteBucket();
    return removed;
  }

  // --- Leases ---

  /** The shortest lease TTL that fits the write budget when renewed at half its TTL (60 s at least). */
  minLeaseTtlSeconds(): number {
    if (!this.#budget) return 1;
    // Renewing every ttl/2 writes 2*window/ttl times a window; keep one write spare for the release.
    return Math.max(60, Math.ceil((2 * this.#budget.perSeconds) / Math.max(1, this.#budget.writes - 1)));
  }

  /** Whether the backend honours conditional writes: configured, or probed once and remembered. */
  conditionalWrites(): Promise<boolean> {
    const flag = this.driver.flags.conditionalWrites;
    if (flag !== 'detect') return Promise.resolve(flag);
    this.#conditional ??= this.#probeConditionalWrites().catch((e) => {
      this.#conditional = undefined;
      throw e;
    });
    return this.#conditional;
  }

  /**
   * Takes lease `name` for `ttlSeconds` on behalf of `owner`, or returns `null` when someone else
   * holds it. An expired or released lease is taken over. The same owner acquiring again renews.
   */
  async acquire(name: string, ttlSeconds: number, owner: string): Promise<Lease | null> {
    const path = K.leases.key(name).path;
    this.#checkLeaseArgs(ttlSeconds, owner);
    const record = (): LeaseRecord => ({
      owner,
      token: randomBytes(12).toString('hex'),
      ttlSeconds,
      state: 'held',
      acquiredAt: new Date(this.driver.now()).toISOString(),
    });

    if (await this.conditionalWrites()) {
      // Bounded: each round either wins, loses to a live holder, or races a concurrent change.
      for (let round = 0; round < 5; round++) {
        const rec = record();
        try {
          const { etag } = await this.#write(path, jsonBytes(rec), { ifNoneMatch: '*' });
          return this.#lease(name, rec, etag, 'conditional');
        } catch (e) {
          if (!(e instanceof PreconditionFailed)) throw e;
        }
        const current = await this.driver.read(path);
        if (!current) continue; // deleted in between: try creating again
        const held = this.#leaseRecord(path, current);
        if (held && held.state === 'held' && held.owner !== owner && !this.#expired(current, held)) return null;
        try {
          const { etag } = await this.#write(path, jsonBytes(rec), { ifMatch: current.etag });
          return this.#lease(name, rec, etag, 'conditional');
        } catch (e) {
          if (e instanceof PreconditionFailed) return null; // someone else took it first
          throw e;
        }
      }
      return null;
    }

    // Fallback for backends that ignore conditional writes: write, let concurrent writers land,
    // read back; the last writer wins and every contender sees the same winner. Exclusive as long
    // as every contender's read-write-read completes within the settle time (see README).
    const before = await this.driver.read(path);
    if (before) {
      const held = this.#leaseRecord(path, before);
      if (held && held.state === 'held' && held.owner !== owner && !this.#expired(before, held)) return null;
    }
    const rec = record();
    await this.#write(path, jsonBytes(rec));
    await new Promise((r) => setTimeout(r, this.#settleMs));
    const after = await this.driver.read(path);
    const won = after ? this.#leaseRecord(path, after) : null;
    if (!after || !won || won.token !== rec.token) return null;
    return this.#lease(name, rec, after.etag, 'settle');
  }

  /** Extends a held lease by its TTL. Throws LEASE_LOST when it expired and someone else took it. */
  async renew(lease: Lease): Promise<Lease> {
    const path = K.leases.key(lease.name).path;
    const rec: LeaseRecord = {
      owner: lease.owner,
      token: lease.token,
      ttlSeconds: lease.ttlSeconds,
      state: 'held',
      acquiredAt: new Date(this.driver.now()).toISOString(),
    };
    if (lease.mode === 'conditional') {
      try {
        const { etag } = await this.#write(path, jsonBytes(rec), { ifMatch: lease.etag });
        return this.#lease(lease.name, rec, etag, 'conditional');
      } catch (e) {
        if (e instanceof PreconditionFailed) throw lost(lease);
        throw e;
      }
    }
    const current = await this.driver.read(path);
    const held = current ? this.#leaseRecord(path, current) : null;
    if (!held || held.token !== lease.token) throw lost(lease);
    const { etag } = await this.#write(path, jsonBytes(rec));
    return this.#lease(lease.name, rec, etag, 'settle');
  }

  /**
   * Gives a lease back. Only its holder may: anyone else gets LEASE_NOT_OWNED and the lease stays.
   * The object stays too, marked released (deleting it could delete a successor's lease).
   */
  async release(lease: Lease): Promise<void> {
    const path = K.leases.key(lease.name).path;
    const current = await this.driver.read(path);
    const held = current ? this.#leaseRecord(path, current) : null;
    if (!current || !held || held.state !== 'held' || held.token !== lease.token || held.owner !== lease.owner) {
      throw storeError(
        'LEASE_NOT_OWNED',
        `lease "${lease.name}" is not held by "${lease.owner}"` +
          `${held && held.state === 'held' ? ` (holder: "${held.owner}")` : ''}: not released`,
      );
    }
    const rec: LeaseRecord = { ...held, state: 'released' };
    try {
      await this.#write(path, jsonBytes(rec), lease.mode === 'conditional' ? { ifMatch: current.etag } : {});
    } catch (e) {
      if (e instanceof PreconditionFailed)
        throw storeError('LEASE_NOT_OWNED', `lease "${lease.name}" changed hands while being released: not released`);
      throw e;
    }
  }

  /** Who holds lease `name` now, or `null` when it is free (absent, released or expired). */
  async holder(name: string): Promise<LeaseHolder | null> {
    const path = K.leases.key(name).path;
    const current = await this.driver.read(path);
    const held = current ? this.#leaseRecord(path, current) : null;
    if (!current || !held || held.state !== 'held' || this.#expired(current, held)) return null;
    const expires = current.lastModified.getTime() + held.ttlSeconds * 1000;
    return { owner: held.owner, expiresInSeconds: Math.max(0, Math.round((expires - this.driver.now()) / 1000)) };
  }

  /**
   * Runs `fn` while holding lease `name`, renewing it at half its TTL and releasing it afterwards.
   * Returns `{ acquired: false }` without running `fn` when someone else holds it. `fn` gets an
   * AbortSignal that fires if the lease is lost.
   */
  async withLease<T>(
    name: string,
    ttlSeconds: number,
    owner: string,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<{ acquired: true; value: T } | { acquired: false }> {
    let lease = await this.acquire(name, ttlSeconds, owner);
    if (!lease) return { acquired: false };
    const lostLease = new AbortController();
    let renewing: Promise<unknown> = Promise.resolve();
    const timer = setInterval(
      () => {
        renewing = this.renew(lease!).then(
          (l) => (lease = l),
          (e) => lostLease.abort(e),
        );
      },
      (ttlSeconds * 1000) / 2,
    );
    let value: T;
    try {
      value = await fn(lostLease.signal);
    } catch (e) {
      clearInterval(timer);
      await renewing;
      // The work failed: still give the lease back, but the work's error is the one to report.
      if (!lostLease.signal.aborted) await this.release(lease).catch((releaseError) => Object.assign(e as object, { releaseError }));
      throw e;
    }
    clearInterval(timer);
    await renewing;
    if (lostLease.signal.aborted) throw lostLease.signal.reason;
    await this.release(lease);
    return { acquired: true, value };
  }

  // --- Internal helpers ---

  async #write(path: string, body: Uint8Array, conditions: { ifNoneMatch?: '*'; ifMatch?: string } = {}) {
    this.#spendBudget(path);
    return this.driver.write(path, body, {
      contentType: body.length === 0 ? 'application/x-empty' : isEncrypted(body) ? 'application/octet-stream' : 'application/json',
      ...conditions,
    });
  }

  #spendBudget(path: string) {
    if (!this.#budget) return;
    const now = Date.now();
    const windowStart = now - this.#budget.perSeconds * 1000;
    const log = (this.#writeLog.get(path) ?? []).filter((t) => t > windowStart);
    if (log.length >= this.#budget.writes) {
      throw storeError(
        'WRITE_BUDGET_EXCEEDED',
        `write to "${path}" refused: ${this.#budget.writes} writes per ${this.#budget.perSeconds} s per object ` +
          'is the configured budget (the backend would throttle); write on change, or lengthen lease TTLs',
      );
    }
    log.push(now);
    this.#writeLog.set(path, log);
  }

  #encode(path: string, value: unknown): Uint8Array {
    if (value === undefined) {
      if (isSecretKey(path))
        throw storeError('INVALID_VALUE', `"${path}" is a secret key: it needs a value, not an empty marker`, { exitCode: 2 });
      return new Uint8Array();
    }
    assertJson(value, path);
    const plain = jsonBytes(value);
    if (!isSecretKey(path)) return plain;
    if (!this.#secretKey)
      throw storeError(
        'NO_SECRET_KEY',
        `"${path}" is a secret: configure the deployment key (secretKey) to write it; it is never stored in clear`,
      );
    return encrypt(plain, this.#secretKey, path);
  }

  #decode(path: string, obj: StoredObject): unknown {
    if (obj.body.length === 0) return true;
    let bytes: Uint8Array = obj.body;
    if (isEncrypted(bytes)) {
      if (!this.#secretKey)
        throw storeError('NO_SECRET_KEY', `"${path}" is encrypted: configure the deployment key (secretKey) to read it`);
      bytes = decrypt(bytes, this.#secretKey, path);
    } else if (isSecretKey(path)) {
      throw storeError(
        'CORRUPT_VALUE',
        `"${path}" is a secret key but is stored unencrypted (written by another tool?): rewrite it with the toolkit`,
      );
    }
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      // Never echo the parser's message: it quotes the content, which may be a secret.
      throw storeError('CORRUPT_VALUE', `"${path}" does not hold valid JSON (${bytes.length} bytes)`);
    }
  }

  #decodeOrNull(path: string, obj: StoredObject): unknown {
    try {
      return this.#decode(path, obj);
    } catch (e) {
      if (isAdtError(e) && e.code === 'CORRUPT_VALUE') return undefined;
      throw e;
    }
  }

  #leaseRecord(path: string, obj: StoredObject): LeaseRecord | null {
    const v = this.#decodeOrNull(path, obj) as Partial<LeaseRecord> | undefined;
    if (!v || typeof v !== 'object' || typeof v.owner !== 'string' || typeof v.token !== 'string' || typeof v.ttlSeconds !== 'number')
      return null;
    return v as LeaseRecord;
  }

  #expired(obj: StoredObject, rec: LeaseRecord): boolean {
    return this.driver.now() > obj.lastModified.getTime() + rec.ttlSeconds * 1000 + EXPIRY_SLACK_MS;
  }

  #lease(name: string, rec: LeaseRecord, etag: string, mode: Lease['mode']): Lease {
    return {
      name,
      owner: rec.owner,
      token: rec.token,
      ttlSeconds: rec.ttlSeconds,
      etag,
      expiresAt: new Date(this.driver.now() + rec.ttlSeconds * 1000),
      mode,
    };
  }

  #checkLeaseArgs(ttlSeconds: number, owner: string) {
    const min = this.minLeaseTtlSeconds();
    if (!Number.isFinite(ttlSeconds) || ttlSeconds < min || ttlSeconds > 86_400) {
      throw storeError(
        'INVALID_VALUE',
        `lease ttl ${ttlSeconds} s: use ${min}-86400 s (the minimum follows the write budget of ` +
          `${this.#budget ? `${this.#budget.writes} writes per ${this.#budget.perSeconds} s` : 'none'})`,
        { exitCode: 2 },
      );
    }
    if (typeof owner !== 'string' || owner.length === 0 || owner.length > 256) {
      throw storeError('INVALID_VALUE', 'lease owner must be a non-empty string of at most 256 characters', { exitCode: 2 });
    }
  }

  async #probeConditionalWrites(): Promise<boolean> {
    const probe = `.adt/probe-conditional-writes-${randomBytes(6).toString('hex')}`;
    try {
      await this.driver.write(probe, jsonBytes({ probe: 1 }), { ifNoneMatch: '*' });
      try {
        await this.driver.write(probe, jsonBytes({ probe: 2 }), { ifNoneMatch: '*' });
        return false; // second create-only write succeeded: If-None-Match is ignored
      } catch (e) {
        if (!(e instanceof PreconditionFailed)) throw e;
      }
      try {
        await this.driver.write(probe, jsonBytes({ probe: 3 }), { ifMatch: '"0000000000000000000000000000dead"' });
        return false; // If-Match with a wrong tag succeeded: ignored
      } catch (e) {
        if (!(e instanceof PreconditionFailed)) throw e;
      }
      return true;
    } finally {
      await this.driver.remove([probe]).catch(() => {});
    }
  }
}

// --- Internal helpers ---

function pathOf(key: Key<unknown> | string): string {
  return validateKey(typeof key === 'string' ? key : key.path);
}

function jsonBytes(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function lost(lease: Lease) {
  return storeError('LEASE_LOST', `lease "${lease.name}" of "${lease.owner}" expired and was taken over before renewal`);
}

function assertJson(value: unknown, path: string, at = '$'): void {
  const bad = (what: string) => storeError('INVALID_VALUE', `value for "${path}" is not JSON: ${what} at ${at}`, { exitCode: 2 });
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw bad('a non-finite number');
    return;
  }
  if (Array.isArray(value)) return value.forEach((v, i) => assertJson(v, path, `${at}[${i}]`));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) throw bad(`undefined`);
      assertJson(v, path, `${at}.${k}`);
    }
    return;
  }
  throw bad(typeof value === 'object' ? 'an object that is not plain' : `a ${typeof value}`);
}

/** JSON with sorted object keys, to compare values regardless of key order. */
function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, val) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => (a < b ? -1 : 1)))
      : val,
  );
}
