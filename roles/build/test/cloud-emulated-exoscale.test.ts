/**
 * An Exoscale deploy, proven on this machine (`_emulated.ts`): PROVIDER=exoscale with
 * EMULATOR=local, cloud `tex` on 198.19.68.0/24 + 198.19.69.0/24, through the Exoscale driver and
 * the local cloud's emulation of Exoscale's API v2: every request signed (EXO2-HMAC-SHA256, the
 * cloud's token as key and secret) and checked, instances with their user-data, security groups as
 * the cloud's native rules, the domain by id, private addresses as the managed private network's
 * leases.
 */
import { parseServerName } from '@adt/providers';
import { exoscaleClient } from '@adt/providers/drivers/exoscale';
import { emulatedCloudSuite } from './_emulated.ts';

interface Instance {
  id: string;
  name: string;
  state: string;
  'public-ip'?: string;
}
interface Group {
  id: string;
  name: string;
}

const groups = async (get: <T>(path: string) => Promise<T>) =>
  (await get<{ 'security-groups': Group[] }>('/security-group'))['security-groups'].filter((g) => g.name.startsWith('adt-tex1-'));

emulatedCloudSuite({
  provider: 'exoscale',
  cloudId: 'tex',
  net: 68,
  client: (baseUrl, token) => {
    const api = exoscaleClient({ apiKey: token, apiSecret: token, baseUrl });
    return (path) => api.get(path);
  },
  instances: async (get) =>
    (await get<{ instances: Instance[] }>('/instance')).instances
      .map((i) => ({ i, n: parseServerName(i.name) }))
      .filter(({ n }) => n?.buildId === 'tex1')
      .map(({ i, n }) => ({ id: i.id, name: i.name, role: n!.role, running: i.state === 'running', publicIp: i['public-ip'] ?? '' })),
  firewalls: async (get) => (await groups(get)).map((g) => g.name),
  expectedFirewalls: ['adt-tex1-autoscaler', 'adt-tex1-database', 'adt-tex1-webserver'],
  siteRecords: async (get) => {
    const zone = (await get<{ 'dns-domains': { id: string; 'unicode-name': string }[] }>('/dns-domain'))['dns-domains'].find(
      (d) => d['unicode-name'] === 'tex.test',
    );
    if (!zone) return [];
    return (await get<{ 'dns-domain-records': { type: string; name: string; content: string }[] }>(`/dns-domain/${zone.id}/record`))[
      'dns-domain-records'
    ]
      .filter((r) => r.type === 'A' && r.name === 'www')
      .map((r) => r.content)
      .sort();
  },
  databaseSources: async (get) => {
    const db = (await groups(get)).find((g) => g.name === 'adt-tex1-database');
    if (!db) return [];
    const rules = (
      await get<{ rules?: { 'flow-direction': string; 'start-port'?: number; network?: string }[] }>(`/security-group/${db.id}`)
    ).rules;
    return (rules ?? [])
      .filter((r) => r['flow-direction'] === 'ingress' && r['start-port'] === 3306 && r.network?.endsWith('/32'))
      .map((r) => r.network!.replace(/\/32$/, ''));
  },
});
