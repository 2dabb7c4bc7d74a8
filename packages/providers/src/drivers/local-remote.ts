/**
 * Compute through the local cloud's HTTP API (`local-api.ts`): what an autoscaler inside the local
 * cloud uses, as it would use a real cloud's API. Transient failures (connection refused, 5xx, 429)
 * are retried with backoff for reads and deletes; a create is not retried after the request was
 * sent (it may have happened), the caller's next list sees it.
 */
import { errorFactory, retry, sleep } from '@adt/core';
import type { ComputeProvider, CreateServerOptions, ListServersFilter, Server, WaitOptions } from '../types.ts';

export const DRIVER_NAME = 'local-remote';
const fail = errorFactory('providers', DRIVER_NAME);

export interface LocalRemoteOptions {
  /** The API's base URL, e.g. http://198.18.1.1:9701 */
  url: string;
  /** Bearer token (never logged). */
  token: string;
  /** Per-request timeout in ms (default 60 000: a create sets up a namespace). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

class Transient extends Error {}

export default function localRemoteDriver(o: LocalRemoteOptions): ComputeProvider {
  const doFetch = o.fetch ?? fetch;
  const base = o.url.replace(/\/$/, '');

  async function call<T>(method: string, path: string, body?: unknown, retryable = true): Promise<T | null> {
    const once = async () => {
      let res: Response;
      try {
        res = await doFetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${o.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(o.timeoutMs ?? 60_000),
        });
      } catch (e) {
        throw new Transient(`${method} ${path}: ${(e as Error).message}`);
      }
      const text = await res.text();
      if (res.status === 204) return null;
      if (res.status === 404 && method === 'GET') return null;
      let parsed: { id?: string; message?: string } & Record<string, unknown> = {};
      try {
        parsed = JSON.parse(text);
      } catch {}
      if (res.status >= 500 || res.status === 429)
        throw new Transient(`${method} ${path}: HTTP ${res.status} ${parsed.message ?? ''}`.trim());
      if (!res.ok)
        throw fail(
          res.status === 401 ? 'AUTH_FAILED' : res.status === 403 ? 'FORBIDDEN' : 'API_ERROR',
          `${method} ${path}: HTTP ${res.status} ${parsed.id ?? ''}: ${parsed.message ?? text.slice(0, 200)}`,
          { exitCode: res.status === 422 ? 2 : 1 },
        );
      return parsed as T;
    };
    try {
      return await retry(once, { attempts: retryable ? 5 : 1, baseMs: 200, maxMs: 3000, retryable: (e) => e instanceof Transient });
    } catch (e) {
      if (e instanceof Transient) throw fail('UNREACHABLE', `the local cloud API at ${base}: ${e.message}`);
      throw e;
    }
  }

  const query = (f: ListServersFilter) => {
    const q = new URLSearchParams();
    if (f.buildId) q.set('buildId', f.buildId);
    if (f.role) q.set('role', f.role);
    const s = q.toString();
    return s ? `?${s}` : '';
  };

  return {
    name: DRIVER_NAME,
    flags: { snapshots: false, privateNetworking: true },
    async create(c: CreateServerOptions) {
      const r = await call<{ server: Server }>('POST', '/v1/servers', c, false);
      return r!.server;
    },
    async destroy(id: string) {
      await call('DELETE', `/v1/servers/${encodeURIComponent(id)}`);
    },
    async list(f: ListServersFilter = {}) {
      const r = await call<{ servers: Server[] }>('GET', `/v1/servers${query(f)}`);
      return r?.servers ?? [];
    },
    async get(id: string) {
      const r = await call<{ server: Server }>('GET', `/v1/servers/${encodeURIComponent(id)}`);
      return r?.server ?? null;
    },
    async waitUntilRunning(id: string, w: WaitOptions = {}) {
      const deadline = Date.now() + (w.timeoutMs ?? 60_000);
      while (Date.now() < deadline) {
        w.signal?.throwIfAborted();
        const s = await this.get(id);
        if (!s) throw fail('NOT_FOUND', `no server ${id}`);
        if (s.state === 'error') throw fail('SERVER_FAILED', `server ${id} is in error`);
        if (s.state === 'running' && s.privateIp) return s;
        await sleep(w.intervalMs ?? 500);
      }
      throw fail('TIMEOUT', `server ${id} was not running within ${(w.timeoutMs ?? 60_000) / 1000} s`);
    },
  };
}
