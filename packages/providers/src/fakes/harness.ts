/**
 * The harness of the cloud API fakes: a route table over a plain function (request in, response
 * out) that can also listen on loopback as a real HTTP server. Each fake (`fakes/<provider>.ts`)
 * follows its provider's documented paths, bodies, pagination and error shapes; the harness adds
 * what every test needs: a log of the requests, injected failures (a 429 with its rate-limit
 * headers, a 500) and a check of the credentials.
 *
 * The same handler answers dry runs in-process (`dryRunFetch`), so `deploy --dry-run` shows what a
 * fresh account would be asked, without sending anything.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRequest {
  method: string;
  /** Path without the API prefix and query, e.g. `/droplets/12`. */
  path: string;
  query: URLSearchParams;
  body: unknown;
  headers: Record<string, string>;
  /** The whole URL path as sent (with the API prefix), for signature checks. */
  fullPath?: string;
}

export interface FakeResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Handler = (req: FakeRequest, params: Record<string, string>) => FakeResponse | Promise<FakeResponse>;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

export interface InjectedFailure {
  /** Only requests matching this (method and path prefix, e.g. `POST /droplets`) fail. */
  match?: string;
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** Carry the request out, then answer with the failure (a 5xx after the work was done). */
  afterHandling?: boolean;
}

export interface FakeApiOptions {
  /** URL path prefix of the API, e.g. `/v2`. */
  prefix: string;
  /** Checks the credentials of a request: null when good, else the error response. */
  authorize?: (req: FakeRequest, rawBody: string) => FakeResponse | null;
  /** The provider's error body for a status and message. */
  errorBody: (status: number, message: string) => unknown;
  /** The real API's base URL (used in links until `listen` gives the fake's own). */
  realBaseUrl: string;
}

export class FakeApi {
  readonly options: FakeApiOptions;
  readonly log: { method: string; path: string; query: string; body: unknown; status: number }[] = [];
  readonly #routes: Route[] = [];
  readonly #failures: (InjectedFailure & { left: number })[] = [];
  #server: HttpServer | null = null;
  #ids = 1000;
  /** Base URL that links in responses point at (the fake's own once listening). */
  baseUrl: string;

  constructor(options: FakeApiOptions) {
    this.options = options;
    this.baseUrl = options.realBaseUrl;
  }

  /** A new numeric id, unique in this fake. */
  nextId(): number {
    return ++this.#ids;
  }

  /** The last id given (to save a fake's state), or sets it (loading one). */
  lastId(set?: number): number {
    if (set !== undefined) this.#ids = Math.max(this.#ids, set);
    return this.#ids;
  }

  route(method: string, path: string, handler: Handler): this {
    const keys: string[] = [];
    // `/:name` is a parameter; a colon elsewhere is literal (Exoscale's `/security-group/:id:attach`).
    const pattern = new RegExp(`^${path.replace(/\/:(\w+)/g, (_m, k: string) => (keys.push(k), '/([^/]+?)'))}/?$`);
    this.#routes.push({ method, pattern, keys, handler });
    return this;
  }

  /** The next matching request(s) get this response instead of being served. */
  fail(failure: InjectedFailure): void {
    this.#failures.push({ ...failure, left: failure.times ?? 1 });
  }

  error(status: number, message: string): FakeResponse {
    return { status, body: this.options.errorBody(status, message) };
  }

  async handle(req: FakeRequest, rawBody = ''): Promise<FakeResponse> {
    const res = await this.#dispatch(req, rawBody);
    this.log.push({ method: req.method, path: req.path, query: req.query.toString(), body: req.body, status: res.status });
    return res;
  }

  async #dispatch(req: FakeRequest, rawBody: string, checkAuth = true): Promise<FakeResponse> {
    const denied = checkAuth ? this.options.authorize?.(req, rawBody) : null;
    if (denied) return denied;
    const failure = this.#failures.find((f) => f.left > 0 && (!f.match || `${req.method} ${req.path}`.startsWith(f.match)));
    if (failure) {
      failure.left--;
      if (failure.afterHandling) await this.#route(req);
      return {
        status: failure.status,
        body: failure.body ?? this.options.errorBody(failure.status, failure.status === 429 ? 'Too many requests' : 'Server Error'),
        headers: failure.headers,
      };
    }
    return this.#route(req);
  }

  async #route(req: FakeRequest): Promise<FakeResponse> {
    for (const r of this.#routes) {
      if (r.method !== req.method) continue;
      const m = r.pattern.exec(req.path);
      if (!m) continue;
      const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1]!)]));
      return r.handler(req, params);
    }
    return this.error(404, `The resource you were accessing could not be found (${req.method} ${req.path})`);
  }

  /**
   * A `fetch` for dry runs: nothing leaves the process. Each request is recorded in `calls` (method,
   * URL, body; never headers) and answered in-process by this fake, credentials unchecked, as a
   * fresh account would answer. Give it to a driver (or the Cloudflare package) as its `fetch`.
   */
  dryRunFetch(calls: { method: string; url: string; body?: unknown }[]): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input.toString() : input.url);
      const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      const raw = typeof init?.body === 'string' ? init.body : '';
      const body = raw ? (JSON.parse(raw) as unknown) : undefined;
      calls.push({ method, url: url.toString(), ...(body === undefined ? {} : { body }) });
      const path = url.pathname.startsWith(this.options.prefix) ? url.pathname.slice(this.options.prefix.length) || '/' : url.pathname;
      const res = await this.#dispatch({ method, path, query: url.searchParams, body, headers: {} }, raw, false);
      const text = res.body === undefined ? null : JSON.stringify(res.body);
      return new Response(res.status === 204 ? null : text, {
        status: res.status,
        headers: { ...(text ? { 'content-type': 'application/json' } : {}), ...res.headers },
      });
    }) as typeof fetch;
  }

  /** Listens on 127.0.0.1 (an ephemeral port); returns the API's base URL. */
  async listen(): Promise<string> {
    const server = createServer((incoming, outgoing) => {
      void readBody(incoming).then(
        async (raw) => {
          const u = new URL(incoming.url ?? '/', 'http://fake');
          let body: unknown = undefined;
          if (raw) {
            try {
              body = JSON.parse(raw);
            } catch {
              const res = this.error(400, 'malformed JSON body');
              outgoing.writeHead(res.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(res.body));
              return;
            }
          }
          const path = u.pathname.startsWith(this.options.prefix) ? u.pathname.slice(this.options.prefix.length) || '/' : u.pathname;
          const headers = Object.fromEntries(
            Object.entries(incoming.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
          );
          const res = await this.handle(
            { method: incoming.method ?? 'GET', path, query: u.searchParams, body, headers, fullPath: u.pathname },
            raw,
          );
          const text = res.body === undefined ? '' : JSON.stringify(res.body);
          outgoing.writeHead(res.status, { ...(text ? { 'Content-Type': 'application/json' } : {}), ...res.headers }).end(text);
        },
        (error: unknown) => {
          outgoing.writeHead(500).end(String(error));
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${this.options.prefix}`;
    return this.baseUrl;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    if (s) {
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      // Clients keep connections alive: end them, or close would wait for their idle timeout.
      s.closeAllConnections();
      await closed;
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Bearer-token check shared by the fakes of providers that use one. */
export function bearer(token: string, unauthorized: (message: string) => FakeResponse) {
  return (req: FakeRequest): FakeResponse | null =>
    req.headers.authorization === `Bearer ${token}` ? null : unauthorized('Unable to authenticate you');
}

/** Page `items` the way page-numbered APIs do (1-based `page`, `per_page`). */
export function pageOf<T>(items: T[], page: number, perPage: number): { items: T[]; pages: number } {
  const pages = Math.max(1, Math.ceil(items.length / perPage));
  return { items: items.slice((page - 1) * perPage, page * perPage), pages };
}

/**
 * The base64 blob of an OpenSSH public key line as the clouds take one (`<type> <base64>[ comment]`,
 * one line), or null: the fakes' own check, independent of the drivers' (callers trim, or not, as
 * their API does).
 */
export function publicKeyBlob(line: string): string | null {
  return /^(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) ([A-Za-z0-9+/]+={0,2})(?: [^\r\n]*)?$/.exec(line)?.[1] ?? null;
}

/** The MD5 of a key blob (base64) in colon-separated hex: the fingerprint DigitalOcean and Exoscale show. */
export function md5Fingerprint(blob: string): string {
  return createHash('md5')
    .update(Buffer.from(blob, 'base64'))
    .digest('hex')
    .replace(/(..)(?!$)/g, '$1:');
}
