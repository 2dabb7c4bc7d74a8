/**
 * The local cloud's HTTP API: what a real cloud's API is to the build machine and the autoscalers,
 * for the local cloud. The `local` driver of @adt/providers is its client.
 *
 *   GET    /v1/cloud                       -> 200 { cloud }       networks, build machine, outsider, version
 *   GET    /v1/services                    -> 200 { services }    S3, DNS, SMTP, package mirror (account token)
 *   POST   /v1/acme                        -> 200 { acme }        starts the cloud's ACME server when needed (account token)
 *   POST   /v1/tokens  { buildId, roles }  -> 201 { token: { id, token } }   a scoped token (account token)
 *   DELETE /v1/tokens?buildId=B            -> 200 { revoked }     (account token)
 *   GET    /v1/servers?buildId=&role=      -> 200 { servers }
 *   GET    /v1/servers/:id                 -> 200 { server } | 404
 *   POST   /v1/servers  { name, role, buildId, userData, image?, sshKeys?, tags? }  -> 201 { server } (state "creating")
 *   DELETE /v1/servers/:id                 -> 204
 *   POST   /v1/servers/:id/actions { type: "power_off" }                -> 200 { server }
 *   POST   /v1/servers/:id/actions { type: "snapshot", name }           -> 201 { image }  (a stopped server)
 *   GET    /v1/servers/:id/console         -> 200 { console: { log, exitCode } }   the user-data output's end
 *   GET    /v1/images                      -> 200 { images }
 *   GET    /v1/images/:ref                 -> 200 { image } | 404       (an id or a name; debian-12 is the stock image)
 *   DELETE /v1/images/:id                  -> 204 (account token)
 *   GET    /v1/firewalls/:buildId/:role    -> 200 { rules } | 404
 *   PUT    /v1/firewalls/:buildId/:role  { rules }  -> 200 { rules } (account token)
 *   DELETE /v1/firewalls/:buildId/:role    -> 204 (account token)
 *   DELETE /v1/cloud                       -> 202 { tearingDown: true } | 409 while servers remain (account token)
 *   ANY    /digitalocean/v2/...            DigitalOcean's API, backed by this cloud (emulators.ts)
 *
 * Every request carries `Authorization: Bearer <token>`. A scoped token sees and touches only its
 * build's servers and creates or destroys only its roles. Errors are `{ id, message }` with the
 * HTTP status (the shape DigitalOcean's API uses); bad input is 422 with what is allowed.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { isAdtError } from '@adt/core';
import { validateRule, type InboundRule, type Role } from '@adt/providers';
import type { LocalCloud, LocalServer } from './cloud.ts';
import type { EmulatedProvider } from '@adt/providers';
import { requestToken, serveEmulated, type startEmulators } from './emulators.ts';
import type { Principal, TokenStore } from './tokens.ts';

const ROLES: Role[] = ['webserver', 'database', 'autoscaler', 'auth', 'build'];

/** The cloud's services, as the API hands them to the account token's holder. */
export interface CloudServices {
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  dns: { apiUrl: string; apiKey: string; nameserver: string; port: number };
  smtp: { host: string; port: number; mailDir: string };
  mirror: { proxy: string } | null;
  /** Starts the cloud's ACME server (pebble) when it is not running; its directory and the roots to trust. */
  acme(): Promise<{ directoryUrl: string; httpsCaPem: string; rootPem: string; dnsServer: string }>;
}

export interface LocalApiOptions {
  cloud: LocalCloud;
  tokens: TokenStore;
  services: CloudServices;
  /** A fingerprint of the code the cloud runs (reported in /v1/cloud). */
  version: string;
  /** Called after `DELETE /v1/cloud` was answered: tears the cloud down and exits. */
  onTeardown?: () => void;
  /** Largest request body in bytes (default 256 KiB: user-data is at most 64 KiB). */
  maxBodyBytes?: number;
  /** The clouds' APIs this cloud emulates, under `/<provider>/` (emulators.ts). */
  emulators?: ReturnType<typeof startEmulators>;
  log?(line: string): void;
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

const forbidden = (m: string) => new HttpError(403, 'forbidden', m);
const invalid = (m: string) => new HttpError(422, 'unprocessable_entity', m);

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

function strings(v: unknown, field: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalid(`${field}: an array of strings`);
  return v as string[];
}

/** The request handler of the API (also usable without a listening server, in tests). */
export function localApiHandler(o: LocalApiOptions) {
  const max = o.maxBodyBytes ?? 256 * 1024;
  const c = o.cloud;

  const account = (p: Principal) => {
    if (p.kind !== 'account') throw forbidden('this needs the account token (a scoped token may not)');
  };
  const visible = (p: Principal, s: LocalServer) => p.kind === 'account' || s.buildId === p.buildId;
  const ours = async (p: Principal, id: string) => {
    const s = await c.get(id);
    if (!s || !visible(p, s))
      throw new HttpError(404, 'not_found', `no server ${id}${p.kind === 'scoped' ? ` in build ${p.buildId}` : ''}`);
    return s;
  };
  const mayManage = (p: Principal, role: Role, buildId: string) => {
    if (p.kind === 'account') return;
    if (buildId !== p.buildId) throw forbidden(`build "${buildId}" is not this token's (${p.buildId})`);
    if (!p.roles.includes(role))
      throw forbidden(`a ${role} server may not be created or destroyed with this token (allowed: ${p.roles.join(', ')})`);
  };

  async function servers(
    p: Principal,
    req: IncomingMessage,
    res: ServerResponse,
    id: string | undefined,
    sub: string | undefined,
    url: URL,
  ) {
    if (req.method === 'GET' && !id) {
      const role = url.searchParams.get('role') ?? undefined;
      const buildId = p.kind === 'scoped' ? p.buildId : (url.searchParams.get('buildId') ?? undefined);
      if (role && !ROLES.includes(role as Role)) throw invalid(`role "${role}": one of ${ROLES.join(', ')}`);
      return send(res, 200, { servers: await c.list({ buildId, role: role as Role | undefined }) });
    }
    if (req.method === 'POST' && !id) {
      const b = await readJson(req, max);
      if (typeof b.role !== 'string' || !ROLES.includes(b.role as Role)) throw invalid(`role: one of ${ROLES.join(', ')}`);
      if (typeof b.buildId !== 'string' || typeof b.name !== 'string' || typeof b.userData !== 'string') {
        throw invalid('name, buildId and userData are required strings');
      }
      mayManage(p, b.role as Role, b.buildId);
      if (b.image !== undefined && typeof b.image !== 'string') throw invalid('image: an image id or name');
      const server = await c.create({
        name: b.name,
        role: b.role as Role,
        buildId: b.buildId,
        userData: b.userData,
        image: b.image as string | undefined,
        sshKeys: strings(b.sshKeys, 'sshKeys'),
        tags: strings(b.tags, 'tags'),
      });
      return send(res, 201, { server });
    }
    if (!id) throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
    if (req.method === 'GET' && !sub) return send(res, 200, { server: await ours(p, id) });
    if (req.method === 'DELETE' && !sub) {
      const s = await c.get(id);
      if (s && visible(p, s)) {
        mayManage(p, s.role, s.buildId);
        await c.destroy(id);
      }
      return send(res, 204);
    }
    if (req.method === 'GET' && sub === 'console') {
      await ours(p, id);
      return send(res, 200, { console: await c.console(id) });
    }
    if (req.method === 'POST' && sub === 'actions') {
      const s = await ours(p, id);
      const b = await readJson(req, max);
      if (b.type === 'power_off') {
        mayManage(p, s.role, s.buildId);
        await c.stop(id);
        return send(res, 200, { server: await c.get(id) });
      }
      if (b.type === 'snapshot') {
        account(p);
        if (typeof b.name !== 'string') throw invalid('name: the snapshot image name');
        const imageId = await c.snapshot(id, b.name);
        return send(res, 201, { image: await c.images.get(imageId) });
      }
      throw invalid('type: "power_off" or "snapshot"');
    }
    throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
  }

  async function images(p: Principal, req: IncomingMessage, res: ServerResponse, ref: string | undefined) {
    if (req.method === 'GET' && !ref) return send(res, 200, { images: await c.images.list() });
    if (req.method === 'GET' && ref) {
      const image = await c.images.get(ref);
      if (!image) throw new HttpError(404, 'not_found', `no image ${ref}`);
      return send(res, 200, { image });
    }
    if (req.method === 'DELETE' && ref) {
      account(p);
      const image = await c.images.get(ref);
      if (image) {
        await c.images.delete(image.id, async (id) => (await c.list()).some((s) => s.image === id));
      }
      return send(res, 204);
    }
    throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on /v1/images`);
  }

  async function firewalls(p: Principal, req: IncomingMessage, res: ServerResponse, buildId: string, role: string) {
    if (!ROLES.includes(role as Role)) throw invalid(`role "${role}": one of ${ROLES.join(', ')}`);
    if (p.kind === 'scoped' && buildId !== p.buildId) throw forbidden(`build "${buildId}" is not this token's`);
    if (req.method === 'GET') {
      const rules = await c.firewall.get(buildId, role as Role);
      if (!rules) throw new HttpError(404, 'not_found', `no firewall for ${buildId}/${role}`);
      return send(res, 200, { rules });
    }
    account(p);
    if (req.method === 'PUT') {
      const b = await readJson(req, max);
      if (!Array.isArray(b.rules)) throw invalid('rules: an array of inbound rules');
      const rules = b.rules as InboundRule[];
      for (const [i, r] of rules.entries()) validateRule(r, `rules[${i}]`);
      await c.firewall.apply(buildId, role as Role, rules);
      return send(res, 200, { rules });
    }
    if (req.method === 'DELETE') {
      await c.firewall.remove(buildId, role as Role);
      return send(res, 204);
    }
    throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on firewalls`);
  }

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://local');
      const token = requestToken(req, url.pathname);
      const p = o.tokens.authenticate(token);
      if (!p) throw new HttpError(401, 'unauthorized', 'a valid bearer token is required');
      const parts = url.pathname.split('/').filter(Boolean);
      const emulator = o.emulators?.get(parts[0] as EmulatedProvider);
      if (emulator) return await serveEmulated(emulator, p, token!, req, res, url, url.pathname.slice(parts[0]!.length + 1), o.log);
      if (parts[0] !== 'v1') throw new HttpError(404, 'not_found', `no route ${req.method} ${url.pathname}`);
      const [, what, a, b] = parts;
      if (parts.some((x) => !/^[A-Za-z0-9._-]{1,64}$/.test(x))) throw new HttpError(404, 'not_found', `no route ${url.pathname}`);
      if (what === 'cloud' && !a) {
        if (req.method === 'GET') {
          return send(res, 200, {
            cloud: {
              id: c.cloudId,
              publicCidr: c.publicCidr,
              privateCidr: c.privateCidr,
              buildMachine: c.buildMachine,
              outsiderIp: c.outsiderIp,
              nameserver: c.nameserver,
              stockImage: 'debian-12',
              version: o.version,
            },
          });
        }
        if (req.method === 'DELETE') {
          account(p);
          const left = await c.list();
          if (left.length) throw new HttpError(409, 'conflict', `${left.length} server(s) remain: ${left.map((s) => s.name).join(', ')}`);
          send(res, 202, { tearingDown: true });
          o.onTeardown?.();
          return;
        }
      }
      if (what === 'services' && !a && req.method === 'GET') {
        account(p);
        return send(res, 200, { services: { s3: o.services.s3, dns: o.services.dns, smtp: o.services.smtp, mirror: o.services.mirror } });
      }
      if (what === 'acme' && !a && req.method === 'POST') {
        account(p);
        return send(res, 200, { acme: await o.services.acme() });
      }
      if (what === 'tokens' && !a) {
        account(p);
        if (req.method === 'POST') {
          const body = await readJson(req, max);
          const roles = strings(body.roles, 'roles') ?? [];
          if (typeof body.buildId !== 'string' || !/^[a-z0-9]{1,24}$/.test(body.buildId))
            throw invalid('buildId: the build the token is for');
          if (!roles.length || !roles.every((r) => ROLES.includes(r as Role))) throw invalid(`roles: some of ${ROLES.join(', ')}`);
          const token = await o.tokens.create(
            { buildId: body.buildId, roles: roles as Role[] },
            typeof body.description === 'string' ? body.description : undefined,
          );
          return send(res, 201, { token });
        }
        if (req.method === 'DELETE') {
          const buildId = url.searchParams.get('buildId');
          if (!buildId) throw invalid('buildId: whose tokens to revoke');
          return send(res, 200, { revoked: await o.tokens.revokeBuild(buildId) });
        }
      }
      if (what === 'servers') return await servers(p, req, res, a, b, url);
      if (what === 'images' && !b) return await images(p, req, res, a);
      if (what === 'firewalls' && a && b && parts.length === 4) return await firewalls(p, req, res, a, b);
      throw new HttpError(404, 'not_found', `no route ${req.method} ${url.pathname}`);
    } catch (e) {
      if (e instanceof HttpError) return send(res, e.status, { id: e.id, message: e.message });
      // An error that names bad input (exit code 2) is the caller's; anything else is ours.
      if (isAdtError(e) && e.exitCode === 2) return send(res, 422, { id: 'unprocessable_entity', message: e.message });
      send(res, 500, { id: 'server_error', message: (e as Error).message });
    }
  };
}

export interface LocalApi {
  url: string;
  server: HttpServer;
  close(): Promise<void>;
}

/** Serves the API on `address:port` (0: a free port). */
export async function serveLocalApi(o: LocalApiOptions & { address: string; port: number }): Promise<LocalApi> {
  const handle = localApiHandler(o);
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.address, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${o.address}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
