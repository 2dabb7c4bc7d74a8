/**
 * A Cloudflare API v4 fake for zones and DNS records, following the documented envelope
 * (`{success, errors:[{code, message}], messages, result, result_info}`), bearer tokens, page
 * pagination (`page`, `per_page`, `result_info.total_pages`; an empty page past the end), the
 * `name.exact` / `type` filters, error 81058 for an identical record, and 429 with `retry-after`.
 * Proxied records are stored with TTL 1 (automatic), as Cloudflare does.
 */
import { bearer, FakeApi, pageOf, type FakeRequest } from './harness.ts';

interface Record {
  id: string;
  zone_id: string;
  type: string;
  name: string;
  content: string;
  ttl: number;
  proxied: boolean;
  comment?: string;
}

export function cloudflareFake(o: { token?: string } = {}) {
  const api: FakeApi = new FakeApi({
    prefix: '/client/v4',
    realBaseUrl: 'https://api.cloudflare.com/client/v4',
    errorBody: (status, message) => ({
      success: false,
      errors: [{ code: status === 401 ? 10000 : status === 429 ? 971 : status === 404 ? 7003 : 1000, message }],
      messages: [],
      result: null,
    }),
    authorize: (req) => bearer(o.token ?? 'cf-test-token', () => api.error(401, 'Authentication error'))(req),
  });
  const zones = new Map<string, { id: string; name: string; status: string; account: { id: string } }>();
  const records = new Map<string, Record>();
  const id = () => api.nextId().toString(16).padStart(32, '0');
  const ok = (result: unknown, extra: object = {}) => ({
    status: 200,
    body: { success: true, errors: [], messages: [], result, ...extra },
  });
  const fail = (status: number, code: number, message: string) => ({
    status,
    body: { success: false, errors: [{ code, message }], messages: [], result: null },
  });

  function paged<T>(req: FakeRequest, items: T[]) {
    const perPage = Math.min(5000, Number(req.query.get('per_page') ?? 100));
    const page = Number(req.query.get('page') ?? 1);
    const { items: slice, pages } = pageOf(items, page, perPage);
    return ok(slice, { result_info: { page, per_page: perPage, count: slice.length, total_count: items.length, total_pages: pages } });
  }

  api.route('GET', '/zones', (req) => {
    const name = req.query.get('name');
    return paged(
      req,
      [...zones.values()].filter((z) => !name || z.name === name),
    );
  });
  api.route('POST', '/zones', (req) => {
    const b = req.body as { name?: string; account?: { id?: string }; type?: string };
    if (!b?.name || !b.account?.id) return fail(400, 1001, 'name and account.id are required');
    if ([...zones.values()].some((z) => z.name === b.name)) return fail(400, 1061, `${b.name} already exists`);
    const z = { id: id(), name: b.name, status: 'pending', account: { id: b.account.id } };
    zones.set(z.id, z);
    return ok(z);
  });
  api.route('GET', '/zones/:zone/dns_records', (req, p) => {
    if (!zones.has(p.zone!)) return fail(404, 7003, 'Could not route to /zones/x/dns_records, perhaps your object identifier is invalid?');
    const type = req.query.get('type');
    const exact = req.query.get('name.exact') ?? req.query.get('name');
    return paged(
      req,
      [...records.values()].filter((r) => r.zone_id === p.zone && (!type || r.type === type) && (!exact || r.name === exact)),
    );
  });
  api.route('POST', '/zones/:zone/dns_records', (req, p) => {
    const zone = zones.get(p.zone!);
    if (!zone) return fail(404, 7003, 'Could not route to /zones/x/dns_records, perhaps your object identifier is invalid?');
    const b = req.body as Partial<Record>;
    if (!b?.type || !b.name || !b.content) return fail(400, 9000, 'DNS record type, name and content are required');
    if (b.name !== zone.name && !b.name.endsWith(`.${zone.name}`))
      return fail(400, 9007, 'Content for A record is invalid. Must be in the zone.');
    const ttl = b.proxied ? 1 : (b.ttl ?? 1);
    if (ttl !== 1 && (ttl < 60 || ttl > 86400))
      return fail(400, 9021, 'Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.');
    if ([...records.values()].some((r) => r.zone_id === zone.id && r.type === b.type && r.name === b.name && r.content === b.content))
      return fail(400, 81058, 'An identical record already exists.');
    const r: Record = {
      id: id(),
      zone_id: zone.id,
      type: b.type,
      name: b.name,
      content: b.content,
      ttl,
      proxied: b.proxied ?? false,
      ...(b.comment ? { comment: b.comment } : {}),
    };
    records.set(r.id, r);
    return ok(r);
  });
  api.route('DELETE', '/zones/:zone/dns_records/:id', (_req, p) => {
    const r = records.get(p.id!);
    if (!r || r.zone_id !== p.zone) return fail(404, 81044, 'Record does not exist.');
    records.delete(r.id);
    return ok({ id: r.id });
  });

  /** Adds a zone as if the user had added it in the dashboard; returns its id. */
  function addZone(name: string): string {
    const z = { id: id(), name, status: 'active', account: { id: 'acc' } };
    zones.set(z.id, z);
    return z.id;
  }
  return Object.assign(api, { state: { zones, records }, addZone });
}
