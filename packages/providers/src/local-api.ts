/**
 * The local cloud's HTTP API: what a real cloud's API is to the autoscalers, for the local cloud.
 * Servers in the local cloud cannot create namespaces themselves, so the build machine serves
 * Compute over HTTP on its private address, and the `local-remote` driver calls it, like the cloud
 * drivers call their provider's API.
 *
 *   GET    /v1/servers?buildId=&role=   -> 200 { servers: Server[] }
 *   GET    /v1/servers/:id              -> 200 { server } | 404
 *   POST   /v1/servers  { name, role, buildId, userData, size?, region?, tags? } -> 201 { server }
 *   DELETE /v1/servers/:id              -> 204
 *
 * Every request carries `Authorization: Bearer <token>` (compared in constant time). Errors are
 * `{ id, message }` with the HTTP status (the shape DigitalOcean's API uses). Only the roles in
 * `roles` may be created or destroyed through it (an autoscaler manages webservers, nothing else),
 * and only servers of `buildId`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { isAdtError } from '@adt/core';
import type { ComputeProvider, CreateServerOptions, Role } from './types.ts';

export interface LocalApiOptions {
  /** The cloud the API drives (a LocalCloud in the build machine's namespaces). */
  compute: ComputeProvider;
  address: string;
  port: number;
  /** Bearer token callers must present (at least 32 characters). */
  token: string;
  /** The only build whose servers the API may touch. */
  buildId: string;
  /** Roles that may be created and destroyed (default webserver). */
  roles?: Role[];
  /** Largest request body in bytes (default 256 KiB: user-data is small). */
  maxBodyBytes?: number;
}

export interface LocalApi {
  url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  readonly status: number;
  readonly id: string;
  constructor(status: number, id: string, message: string) {
    super(message);
    this.status = status;
    this.id = id;
  }
}

function send(res: ServerResponse, status: number, body?: unknown) {
  res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

async function readJson(req: IncomingMessage, max: number): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new HttpError(413, 'too_large', `request body over ${max} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'bad_request', 'the body must be a JSON object');
  }
}

export async function serveLocalApi(o: LocalApiOptions): Promise<LocalApi> {
  if (o.token.length < 32) throw new Error('token: at least 32 characters');
  const expected = Buffer.from(`Bearer ${o.token}`);
  const roles = o.roles ?? ['webserver'];
  const max = o.maxBodyBytes ?? 256 * 1024;

  const authorised = (req: IncomingMessage) => {
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const ours = async (id: string) => {
    const s = await o.compute.get(id);
    if (!s || s.buildId !== o.buildId) throw new HttpError(404, 'not_found', `no server ${id} in build ${o.buildId}`);
    return s;
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (!authorised(req)) throw new HttpError(401, 'unauthorized', 'a valid bearer token is required');
    const url = new URL(req.url ?? '/', 'http://local');
    const m = /^\/v1\/servers(?:\/([A-Za-z0-9-]{1,64}))?$/.exec(url.pathname);
    if (!m) throw new HttpError(404, 'not_found', `no route ${req.method} ${url.pathname}`);
    const id = m[1];
    if (req.method === 'GET' && !id) {
      const role = url.searchParams.get('role') ?? undefined;
      const servers = await o.compute.list({ buildId: o.buildId, role: role as Role | undefined });
      return send(res, 200, { servers });
    }
    if (req.method === 'GET' && id) return send(res, 200, { server: await ours(id) });
    if (req.method === 'POST' && !id) {
      const b = await readJson(req, max);
      if (typeof b.role !== 'string' || !roles.includes(b.role as Role))
        throw new HttpError(
          403,
          'forbidden',
          `role "${String(b.role)}" may not be created through this API (allowed: ${roles.join(', ')})`,
        );
      if (b.buildId !== o.buildId) throw new HttpError(403, 'forbidden', `build "${String(b.buildId)}" is not this API's (${o.buildId})`);
      if (typeof b.name !== 'string' || typeof b.userData !== 'string')
        throw new HttpError(422, 'unprocessable_entity', 'name and userData are required strings');
      const options: CreateServerOptions = {
        name: b.name,
        role: b.role as Role,
        buildId: o.buildId,
        userData: b.userData,
        tags: Array.isArray(b.tags) ? b.tags.map(String) : undefined,
      };
      return send(res, 201, { server: await o.compute.create(options) });
    }
    if (req.method === 'DELETE' && id) {
      const s = await o.compute.get(id);
      if (s && s.buildId === o.buildId) {
        if (!roles.includes(s.role)) throw new HttpError(403, 'forbidden', `a ${s.role} server may not be destroyed through this API`);
        await o.compute.destroy(id);
      }
      return send(res, 204);
    }
    throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) return send(res, e.status, { id: e.id, message: e.message });
      // A provider error that names bad input (exit code 2) is the caller's; anything else is ours.
      if (isAdtError(e) && e.exitCode === 2) return send(res, 422, { id: 'unprocessable_entity', message: e.message });
      send(res, 500, { id: 'server_error', message: (e as Error).message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.address, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${o.address}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
