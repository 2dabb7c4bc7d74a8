/**
 * Who may call the local cloud's API: the account token (the build machine's, like a cloud
 * account's personal token: everything), and scoped tokens made with it for one build and some
 * roles (what an autoscaler gets: its build's webservers, nothing else), as DigitalOcean's custom
 * scopes or Linode's restricted users do. Only SHA-256 digests of tokens are kept; files are 0600.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Role } from '@adt/providers';
import { writeJsonAtomic } from './_files.ts';

export interface TokenScope {
  /** The only build whose servers the token reaches. */
  buildId: string;
  /** Roles it may create and destroy. */
  roles: Role[];
}

/** What a request may do: everything (`account`), or a scope. */
export type Principal = { kind: 'account' } | ({ kind: 'scoped'; id: string } & TokenScope);

interface StoredToken extends TokenScope {
  id: string;
  sha256: string;
  createdAt: string;
  description?: string;
}

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class TokenStore {
  readonly #accountDigest: string;
  readonly #file: string;
  /**
   * Changes of the file, one at a time: two creates at once (a deploy making its autoscalers in
   * parallel) would otherwise each write the list without the other's token.
   */
  #changes: Promise<unknown> = Promise.resolve();

  /** `accountToken`: the account token itself (read from its 0600 file by the daemon). `file`: the scoped tokens. */
  constructor(accountToken: string, file: string) {
    if (accountToken.length < 32) throw new Error('the account token must be at least 32 characters');
    this.#accountDigest = digest(accountToken);
    this.#file = file;
  }

  #load(): StoredToken[] {
    if (!existsSync(this.#file)) return [];
    try {
      return JSON.parse(readFileSync(this.#file, 'utf8')) as StoredToken[];
    } catch {
      return [];
    }
  }

  /** The principal of a bearer token, or null when it is not a token of this cloud. */
  authenticate(token: string | undefined): Principal | null {
    if (!token) return null;
    const d = digest(token);
    if (same(d, this.#accountDigest)) return { kind: 'account' };
    const found = this.#load().find((t) => same(t.sha256, d));
    return found ? { kind: 'scoped', id: found.id, buildId: found.buildId, roles: found.roles } : null;
  }

  /** A new scoped token: its secret is returned once and only its digest kept. */
  async create(scope: TokenScope, description?: string): Promise<{ id: string; token: string }> {
    const token = `adtl_${randomBytes(32).toString('base64url')}`;
    const id = `tok-${randomBytes(6).toString('hex')}`;
    await this.#change(async () => {
      const all = this.#load();
      all.push({ id, sha256: digest(token), buildId: scope.buildId, roles: scope.roles, createdAt: new Date().toISOString(), description });
      await mkdir(dirname(this.#file), { recursive: true, mode: 0o700 });
      await writeJsonAtomic(this.#file, all);
    });
    return { id, token };
  }

  /** Revokes every scoped token of a build (at destroy). Returns how many. */
  revokeBuild(buildId: string): Promise<number> {
    return this.#change(async () => {
      const all = this.#load();
      const kept = all.filter((t) => t.buildId !== buildId);
      if (kept.length !== all.length) await writeJsonAtomic(this.#file, kept);
      return all.length - kept.length;
    });
  }

  /** Runs a read-modify-write of the file after the ones before it (a failed one does not stop the next). */
  #change<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#changes.then(fn, fn);
    this.#changes = next.catch(() => {});
    return next;
  }

  list(): Omit<StoredToken, 'sha256'>[] {
    return this.#load().map(({ sha256: _s, ...t }) => t);
  }
}

/** A new account token (64 characters). */
export function newAccountToken(): string {
  return randomBytes(48).toString('base64url');
}
