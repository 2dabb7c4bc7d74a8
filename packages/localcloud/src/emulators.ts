/**
 * The clouds' API fakes, backed by this local cloud: `/<provider>/<api prefix>/...` on the cloud's
 * API answers as that provider's API does (@adt/providers' fakes: its documented paths, bodies and
 * errors), while an instance it creates is a real local server that runs the instance's user-data,
 * with the addresses the API reports; its firewalls are the cloud's native rules; its domains are
 * served by the cloud's PowerDNS (A and TXT records: ACME's DNS-01 works through it). So a deploy
 * on DigitalOcean, Linode or Vultr (`EMULATED_APIS` of @adt/providers) can be proven end to end on
 * this machine, through that cloud's driver.
 *
 * Credentials: the cloud's own tokens (the account token: everything; a scoped token: its build's
 * servers of its roles, its build's firewalls, and DNS records, as an autoscaler needs). Each
 * fake's account (instances, keys, firewalls, domains) is saved in `<stateDir>/emulated/<provider>.json` after every change,
 * so it outlives a restart of the cloud's daemon; every request it answered is logged in
 * `<provider>.calls.jsonl` beside it (who, method, path, status: never a body or a header's secret).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EMULATED_APIS, parseServerName, type EmulatedProvider, type Role } from '@adt/providers';
import powerdnsDriver from '@adt/providers/drivers/powerdns';
import type { BackingRecord, FakeBacking } from '@adt/providers/fakes/backing';
import { digitaloceanFake } from '@adt/providers/fakes/digitalocean';
import { linodeFake } from '@adt/providers/fakes/linode';
import { vultrFake } from '@adt/providers/fakes/vultr';
import { checkExoscaleSignature, exoscaleFake } from '@adt/providers/fakes/exoscale';
import type { FakeRequest, FakeResponse } from '@adt/providers/fakes/harness';
import { writeJsonAtomic } from './_files.ts';
import type { LocalCloud } from './cloud.ts';
import type { Principal } from './tokens.ts';

export interface EmulatorOptions {
  cloud: LocalCloud;
  /** The cloud's API base URL (links in answers point there). */
  apiUrl: string;
  /** The cloud's PowerDNS API. */
  dns: { apiUrl: string; apiKey: string };
}

export interface Emulator {
  prefix: string;
  handle(req: FakeRequest, raw: string): Promise<FakeResponse>;
  /** What a scoped token may change through this API (see `scopeProblem`). */
  scope: ScopeRules;
  /**
   * Where the API signs its requests instead of sending a bearer token (Exoscale): why the request's
   * signature with the cloud's token `token` as key and secret is not good, or null.
   */
  verify?(req: FakeRequest, raw: string, token: string): string | null;
  save(): Promise<void>;
  /** Where every request it answered is logged, one JSON line each (what a deploy called, in order). */
  callLog: string;
}

/**
 * Where an API creates, destroys and changes what an autoscaler's work touches: the instance's name
 * (`serverName`) and the firewall's label (`firewallName`) say whose it is.
 */
interface ScopeRules {
  /** POST path that creates an instance, and the body field that names it. */
  create: { path: string; name: string };
  /** An instance's path (DELETE destroys it; PATCH/PUT changes it, as a firewall apply may). */
  instance: RegExp;
  serverName(id: string): string | null;
  /** A DNS record's path (an autoscaler registers and removes its webservers). */
  records: RegExp;
  /** Where SSH keys are registered. */
  keys: string;
  /** A firewall's rules or devices (an autoscaler keeps its build's rules current), and whose it is. */
  firewall: RegExp | null;
  firewallName(id: string): string | null;
}

/** One line of an emulator's call log. */
export interface EmulatedCall {
  at: string;
  /** `account`, or `scoped:<build>` (an autoscaler's token). */
  by: string;
  /** The client's User-Agent (the toolkit's drivers, or lego's). */
  agent: string;
  method: string;
  /** The path under the API's prefix (`/droplets/1001`), and the query. */
  path: string;
  query: string;
  status: number;
}

/** Serves a zone's A and TXT records with PowerDNS, exactly as given (one change at a time per zone). */
function zoneServer(dns: EmulatorOptions['dns']): FakeBacking['zone'] {
  const queues = new Map<string, Promise<unknown>>();
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${dns.apiUrl}/api/v1/servers/localhost${path}`, {
      method,
      headers: { 'X-API-Key': dns.apiKey, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    if (!r.ok && r.status !== 404) throw new Error(`PowerDNS ${method} ${path}: HTTP ${r.status} ${(await r.text()).slice(0, 200)}`);
    return r.status === 204 || r.status === 404 ? null : ((await r.json()) as unknown);
  };
  async function serve(zone: string, records: readonly BackingRecord[] | null) {
    const z = `${zone.replace(/\.$/, '')}.`;
    if (records === null) return void (await call('DELETE', `/zones/${z}`));
    await powerdnsDriver({ apiUrl: dns.apiUrl, apiKey: dns.apiKey, zone }).ensureZone(zone);
    const current = ((await call('GET', `/zones/${z}`)) as { rrsets: { name: string; type: string }[] } | null)?.rrsets ?? [];
    const groups = new Map<string, BackingRecord[]>();
    for (const r of records.filter((x) => x.type === 'A' || x.type === 'TXT')) {
      const k = `${r.name.toLowerCase().replace(/\.$/, '')}.|${r.type}`;
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    const rrsets: unknown[] = current
      .filter((c) => (c.type === 'A' || c.type === 'TXT') && !groups.has(`${c.name}|${c.type}`))
      .map((c) => ({ name: c.name, type: c.type, changetype: 'DELETE' }));
    for (const [k, rs] of groups) {
      const [name, type] = k.split('|');
      rrsets.push({
        name,
        type,
        ttl: Math.min(...rs.map((r) => r.ttl)),
        changetype: 'REPLACE',
        records: rs.map((r) => ({ content: type === 'TXT' ? JSON.stringify(r.content) : r.content, disabled: false })),
      });
    }
    if (rrsets.length) await call('PATCH', `/zones/${z}`, { rrsets });
  }
  return (zone, records) => {
    const next = (queues.get(zone) ?? Promise.resolve()).catch(() => {}).then(() => serve(zone, records));
    queues.set(zone, next);
    return next;
  };
}

/** The backed fakes of this cloud, their accounts loaded from the state dir. */
export function startEmulators(o: EmulatorOptions): Map<EmulatedProvider, Emulator> {
  const dir = join(o.cloud.stateDir, 'emulated');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const backing: FakeBacking = {
    compute: o.cloud,
    firewall: o.cloud.firewall,
    privateCidr: o.cloud.privateCidr,
    stockImage: 'debian-12',
    zone: zoneServer(o.dns),
  };
  // The emulation checks the cloud's tokens itself (serveEmulated), so the fakes take every request it passes.
  const authorize = () => null;
  const out = new Map<EmulatedProvider, Emulator>();
  const add = <S>(
    provider: EmulatedProvider,
    fake: { baseUrl: string; handle: Emulator['handle']; exportState(): S; importState(x: S): void },
    scope: ScopeRules,
    verify?: Emulator['verify'],
  ) => {
    const file = join(dir, `${provider}.json`);
    fake.baseUrl = `${o.apiUrl}/${provider}${EMULATED_APIS[provider]}`;
    if (existsSync(file)) fake.importState(JSON.parse(readFileSync(file, 'utf8')) as S);
    out.set(provider, {
      prefix: EMULATED_APIS[provider],
      handle: (req, raw) => fake.handle(req, raw),
      scope,
      ...(verify ? { verify } : {}),
      save: () => writeJsonAtomic(file, fake.exportState()),
      callLog: join(dir, `${provider}.calls.jsonl`),
    });
  };
  const digitalocean = digitaloceanFake({ backing, authorize });
  add('digitalocean', digitalocean, {
    create: { path: '/droplets', name: 'name' },
    instance: /^\/droplets\/(\d+)$/,
    serverName: (id) => digitalocean.state.droplets.get(Number(id))?.name ?? null,
    records: /^\/domains\/[^/]+\/records(\/\d+)?$/,
    keys: '/account/keys',
    // Its firewalls go by tag: new droplets of a role are in its firewall without a change.
    firewall: null,
    firewallName: () => null,
  });
  const linode = linodeFake({ backing, authorize });
  add('linode', linode, {
    create: { path: '/linode/instances', name: 'label' },
    instance: /^\/linode\/instances\/(\d+)$/,
    serverName: (id) => linode.state.instances.get(Number(id))?.label ?? null,
    records: /^\/domains\/\d+\/records(\/\d+)?$/,
    keys: '/profile/sshkeys',
    firewall: /^\/networking\/firewalls\/(\d+)\/(rules|devices)$/,
    firewallName: (id) => linode.state.firewalls.get(Number(id))?.label ?? null,
  });
  const vultr = vultrFake({ backing, authorize });
  add('vultr', vultr, {
    create: { path: '/instances', name: 'label' },
    instance: /^\/instances\/([^/]+)$/,
    serverName: (id) => vultr.state.instances.get(id)?.label ?? null,
    records: /^\/domains\/[^/]+\/records(\/[^/]+)?$/,
    keys: '/ssh-keys',
    firewall: /^\/firewalls\/([^/]+)\/rules(\/[^/]+)?$/,
    firewallName: (id) => vultr.state.groups.get(id)?.description ?? null,
  });
  const exoscale = exoscaleFake({ backing, authorize });
  add(
    'exoscale',
    exoscale,
    {
      create: { path: '/instance', name: 'name' },
      instance: /^\/instance\/([^/:]+)$/,
      serverName: (id) => exoscale.state.instances.get(id)?.name ?? null,
      records: /^\/dns-domain\/[^/]+\/record(\/[^/]+)?$/,
      keys: '/ssh-key',
      firewall: /^\/security-group\/([^/:]+)(\/rules(\/[^/]+)?|:attach|:detach)$/,
      firewallName: (id) => exoscale.state.groups.get(id)?.name ?? null,
    },
    // The key and the secret are both the cloud's token (the emulation takes the cloud's tokens).
    (req, raw, token) =>
      checkExoscaleSignature(
        req.headers.authorization,
        { method: req.method, fullPath: req.fullPath ?? req.path, query: req.query, rawBody: raw },
        token,
        token,
        Math.floor(Date.now() / 1000),
      ),
  );
  return out;
}

/** The cloud's token a request carries: a bearer token, or (Exoscale's signed requests, under `/exoscale/`) the key it was signed with. */
export function requestToken(req: IncomingMessage, pathname: string): string | undefined {
  const auth = req.headers.authorization ?? '';
  const bearer = /^Bearer (\S+)$/.exec(auth)?.[1];
  if (bearer || !pathname.startsWith('/exoscale/')) return bearer;
  return /^EXO2-HMAC-SHA256 (?:[^,]*,)*?credential=([^,\s]+)/.exec(auth)?.[1];
}

/**
 * What a scoped token may do through an emulated API: read; create, change and destroy its build's
 * servers of its roles; change its build's firewalls; change DNS records and register SSH keys (an
 * autoscaler's work). Null: allowed.
 */
export function scopeProblem(p: Principal, e: Pick<Emulator, 'scope'>, req: FakeRequest): string | null {
  if (p.kind === 'account' || req.method === 'GET') return null;
  const s = e.scope;
  const may = (name: string | null) => {
    const n = name ? parseServerName(name) : null;
    return n !== null && n.buildId === p.buildId && p.roles.includes(n.role as Role);
  };
  if (req.method === 'POST' && req.path === s.create.path)
    return may(String((req.body as Record<string, unknown> | undefined)?.[s.create.name] ?? ''))
      ? null
      : `this token creates ${p.roles.join(', ')} servers of build ${p.buildId} only`;
  const instance = s.instance.exec(req.path);
  if (instance)
    return may(s.serverName(instance[1]!)) ? null : `this token changes ${p.roles.join(', ')} servers of build ${p.buildId} only`;
  const firewall = s.firewall?.exec(req.path);
  if (firewall)
    return new RegExp(`^adt-${p.buildId}-`).test(s.firewallName(firewall[1]!) ?? '')
      ? null
      : `this token changes the firewalls of build ${p.buildId} only`;
  if (s.records.test(req.path) || (req.method === 'POST' && req.path === s.keys)) return null;
  return 'this needs the account token (a scoped token may not)';
}

/** Answers a request under `/<provider>/...` of the cloud's API. */
export async function serveEmulated(
  e: Emulator,
  p: Principal,
  token: string,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rest: string,
  log?: (line: string) => void,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  const send = (r: FakeResponse) => {
    const text = r.body === undefined ? '' : JSON.stringify(r.body);
    res.writeHead(r.status, { ...(text ? { 'content-type': 'application/json' } : {}), ...r.headers }).end(text);
  };
  const path = rest.startsWith(e.prefix) ? rest.slice(e.prefix.length) || '/' : rest;
  let handled = false;
  const answer = async (): Promise<FakeResponse> => {
    if (!rest.startsWith(`${e.prefix}/`) && rest !== e.prefix)
      return { status: 404, body: { id: 'not_found', message: `no route ${rest}` } };
    let body: unknown;
    try {
      body = raw ? (JSON.parse(raw) as unknown) : undefined;
    } catch {
      return { status: 400, body: { id: 'bad_request', message: 'malformed JSON body' } };
    }
    const fr: FakeRequest = {
      method: req.method ?? 'GET',
      path,
      query: url.searchParams,
      body,
      headers: { ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) },
      fullPath: url.pathname,
    };
    const bad = e.verify?.(fr, raw, token);
    if (bad) return { status: 403, body: { message: bad } };
    const denied = scopeProblem(p, e, fr);
    if (denied) return { status: 403, body: { id: 'forbidden', message: denied } };
    handled = true;
    return e.handle(fr, raw);
  };
  const r = await answer();
  // Every request answered, refusals included (a scoped token's refusals are what an operator looks for).
  const call: EmulatedCall = {
    at: new Date().toISOString(),
    by: p.kind === 'account' ? 'account' : `scoped:${p.buildId}`,
    agent: String(req.headers['user-agent'] ?? ''),
    method: req.method ?? 'GET',
    path,
    query: url.searchParams.toString(),
    status: r.status,
  };
  await appendFile(e.callLog, `${JSON.stringify(call)}\n`, { mode: 0o600 });
  if (handled && call.method !== 'GET') {
    await e.save();
    log?.(`emulated ${call.method} ${url.pathname} -> ${r.status}`);
  }
  send(r);
}
