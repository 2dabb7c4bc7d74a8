/**
 * One HTTP client for every cloud API driver (DigitalOcean, Linode, Vultr, Exoscale): JSON in and
 * out, authentication headers that are never logged, rate limits and transient failures retried
 * with backoff, and errors that carry the provider's own message.
 *
 * Retry policy:
 * - HTTP 429 is always retried (the request was refused, not carried out), after the time the
 *   provider asks for (`Retry-After`, or a reset time in `RateLimit-Reset` / `X-RateLimit-Reset`),
 *   capped by `maxDelayMs`.
 * - HTTP 5xx, timeouts and connection errors are retried only for idempotent requests (GET, PUT,
 *   DELETE, and requests marked `idempotent`). A POST that failed that way may or may not have
 *   happened: it is reported, and the drivers that create things look for what they meant to
 *   create before trying again (`recover`).
 * - Other 4xx are never retried; the error names the call and quotes the provider's message.
 *
 * Dry run: give the driver a recording `fetch` (see `FakeApi.dryRunFetch`): the driver runs its
 * normal code and the caller prints the exact calls it would make (`formatCalls`).
 */
import { AdtError, sleep, backoffDelay } from '@adt/core';

/** One API call as a person reads it: no credentials. */
export interface ApiCall {
  method: string;
  url: string;
  body?: unknown;
}

export interface ApiClientOptions {
  /** Provider name for messages and errors, e.g. `digitalocean`. */
  provider: string;
  /** Base URL, e.g. `https://api.digitalocean.com/v2` (no trailing slash needed). */
  baseUrl: string;
  /** Headers that authenticate a request (a bearer token). Computed per request, never logged. */
  auth?: (request: { method: string; url: string; body: string | undefined }) => Record<string, string> | Promise<Record<string, string>>;
  /** Extracts the provider's error message from a parsed error body. */
  errorMessage?: (body: unknown) => string | undefined;
  /** Attempts per request including the first (default 5). */
  attempts?: number;
  /** First backoff delay (default 500 ms) and cap of one delay (default 30 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Timeout of one attempt (default 30 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Told about each retry (for progress lines); gets no credentials. */
  onRetry?: (info: { call: ApiCall; status: number | null; attempt: number; delayMs: number; reason: string }) => void;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Safe to repeat after a 5xx or a lost connection (default: true for GET, PUT, DELETE, HEAD). */
  idempotent?: boolean;
  /** Statuses that are an answer, not an error (e.g. 404 for "absent"): returned as `null` body. */
  accept?: number[];
  /** Extra request headers (e.g. Linode's `X-Filter`); never credentials, which come from `auth`. */
  headers?: Record<string, string>;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** An API call that failed: an AdtError (stable `code`, exit code) with the HTTP status and the provider's message. */
export class ApiError extends AdtError {
  readonly status: number | null;
  readonly providerMessage: string | undefined;
  constructor(
    provider: string,
    code: string,
    message: string,
    o: { status: number | null; providerMessage?: string; cause?: unknown; exitCode?: 1 | 2 },
  ) {
    super(code, message, { pkg: 'providers', driver: provider, cause: o.cause, exitCode: o.exitCode });
    this.name = 'ApiError';
    this.status = o.status;
    this.providerMessage = o.providerMessage;
  }
}

export function createApiClient(o: ApiClientOptions) {
  const doFetch = o.fetch ?? fetch;
  const attempts = Math.max(1, o.attempts ?? 5);
  const baseMs = o.baseDelayMs ?? 500;
  const maxMs = o.maxDelayMs ?? 30_000;
  const base = o.baseUrl.replace(/\/$/, '');

  function urlOf(path: string, query?: RequestOptions['query']): string {
    const u = new URL(path.startsWith('http') ? path : `${base}${path.startsWith('/') ? '' : '/'}${path}`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  async function request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const url = urlOf(path, options.query);
    const call: ApiCall = { method, url, ...(options.body === undefined ? {} : { body: options.body }) };
    const idempotent = options.idempotent ?? IDEMPOTENT.has(method);
    const text = options.body === undefined ? undefined : JSON.stringify(options.body);
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        const headers: Record<string, string> = {
          Accept: 'application/json',
          ...options.headers,
          ...(await o.auth?.({ method, url, body: text })),
        };
        if (text !== undefined) headers['Content-Type'] = 'application/json';
        res = await doFetch(url, { method, headers, body: text, signal: AbortSignal.timeout(o.timeoutMs ?? 30_000) });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (!idempotent || attempt >= attempts) {
          throw new ApiError(
            o.provider,
            'API_UNREACHABLE',
            `${method} ${redactUrl(url)}: ${reason}` +
              (idempotent ? ` (after ${attempt} attempts)` : ' (not retried: the request may or may not have been carried out)'),
            { status: null, cause: error },
          );
        }
        const delayMs = backoffDelay(attempt, baseMs, maxMs);
        o.onRetry?.({ call: redactCall(call), status: null, attempt, delayMs, reason });
        await sleep(delayMs);
        continue;
      }
      const raw = await res.text();
      let body: unknown = null;
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          body = raw;
        }
      }
      if (res.ok || options.accept?.includes(res.status))
        return { status: res.status, body: (res.ok ? body : null) as T, headers: res.headers };
      const providerMessage =
        (typeof body === 'object' && body !== null ? o.errorMessage?.(body) : undefined) ??
        (typeof body === 'string' ? body.slice(0, 300) : undefined);
      const retryable = res.status === 429 || ((res.status >= 500 || res.status === 408) && idempotent);
      if (!retryable || attempt >= attempts) {
        const code =
          res.status === 429
            ? 'RATE_LIMITED'
            : res.status === 401 || res.status === 403
              ? 'UNAUTHORIZED'
              : res.status === 404
                ? 'NOT_FOUND'
                : res.status >= 500
                  ? 'API_UNAVAILABLE'
                  : 'API_ERROR';
        const hint =
          res.status === 401 || res.status === 403
            ? ' (check the API token and its permissions)'
            : res.status >= 500 && !idempotent
              ? ' (not retried: the request may or may not have been carried out)'
              : attempt > 1
                ? ` (after ${attempt} attempts)`
                : '';
        throw new ApiError(
          o.provider,
          code,
          `${method} ${redactUrl(url)}: HTTP ${res.status}${providerMessage ? `: ${providerMessage}` : ''}${hint}`,
          { status: res.status, providerMessage, exitCode: res.status === 400 || res.status === 422 ? 2 : 1 },
        );
      }
      const asked = res.status === 429 ? retryAfterMs(res.headers) : null;
      const delayMs = Math.min(maxMs, asked ?? backoffDelay(attempt, baseMs, maxMs));
      o.onRetry?.({ call: redactCall(call), status: res.status, attempt, delayMs, reason: providerMessage ?? `HTTP ${res.status}` });
      await sleep(delayMs);
    }
  }

  return {
    provider: o.provider,
    request,
    url: urlOf,
    get: <T>(path: string, options?: RequestOptions) => request<T>('GET', path, options).then((r) => r.body),
    post: <T>(path: string, body?: unknown, options?: RequestOptions) => request<T>('POST', path, { ...options, body }).then((r) => r.body),
    put: <T>(path: string, body?: unknown, options?: RequestOptions) => request<T>('PUT', path, { ...options, body }).then((r) => r.body),
    patch: <T>(path: string, body?: unknown, options?: RequestOptions) =>
      request<T>('PATCH', path, { ...options, body }).then((r) => r.body),
    delete: <T>(path: string, options?: RequestOptions) => request<T>('DELETE', path, options).then((r) => r.body),
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;

/**
 * How long a 429 asks us to wait, in ms: `Retry-After` (seconds or an HTTP date), else a reset
 * time (`RateLimit-Reset`, `X-RateLimit-Reset`: epoch seconds, or seconds from now when small).
 */
export function retryAfterMs(headers: Headers, now = Date.now()): number | null {
  const after = headers.get('retry-after');
  if (after) {
    if (/^\d+(\.\d+)?$/.test(after.trim())) return Math.round(Number(after) * 1000);
    const at = Date.parse(after);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  for (const name of ['ratelimit-reset', 'x-ratelimit-reset']) {
    const v = headers.get(name);
    if (v && /^\d+$/.test(v.trim())) {
      const n = Number(v);
      return n > 1e9 ? Math.max(0, n * 1000 - now) : n * 1000;
    }
  }
  return null;
}

/** Query parameters that look like credentials are hidden in messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    for (const k of [...u.searchParams.keys()]) if (/token|key|secret|signature|password/i.test(k)) u.searchParams.set(k, 'REDACTED');
    return u.toString();
  } catch {
    return url;
  }
}

function redactCall(call: ApiCall): ApiCall {
  return { ...call, url: redactUrl(call.url) };
}

/** Formats recorded calls for `--dry-run`, one per line with the body as compact JSON. */
export function formatCalls(calls: ApiCall[]): string[] {
  return calls.map((c) => `${c.method} ${redactUrl(c.url)}${c.body === undefined ? '' : ` ${JSON.stringify(redactBody(c.body))}`}`);
}

/** User-data and passwords in request bodies are shown by size only. */
export function redactBody(body: unknown): unknown {
  if (Array.isArray(body)) return body.map(redactBody);
  if (typeof body !== 'object' || body === null) return body;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (/^(user_data|userData|user-data|root_pass|password|secret|token)$/i.test(k) && typeof v === 'string')
      out[k] = /^<\d+ bytes, not shown>$/.test(v) ? v : `<${v.length} bytes, not shown>`;
    else out[k] = redactBody(v);
  }
  return out;
}
