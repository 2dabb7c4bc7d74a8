/**
 * A Vultr deploy, proven on this machine (`_emulated.ts`): PROVIDER=vultr with EMULATOR=local,
 * cloud `tvu` on 198.19.64.0/24 + 198.19.65.0/24, through the Vultr driver and the local cloud's
 * emulation of Vultr's API v2 (instances with their user-data, firewall groups by description with
 * one rule per source, the domain by name).
 */
import { parseServerName } from '@adt/providers';
import { emulatedCloudSuite } from './_emulated.ts';

interface Instance {
  id: string;
  label: string;
  status: string;
  power_status: string;
  main_ip: string;
}
interface Group {
  id: string;
  description: string;
}

const groups = async (get: <T>(path: string) => Promise<T>) =>
  (await get<{ firewall_groups: Group[] }>('/firewalls?per_page=500')).firewall_groups.filter((g) => g.description.startsWith('adt-tvu1-'));

emulatedCloudSuite({
  provider: 'vultr',
  cloudId: 'tvu',
  net: 64,
  instances: async (get) =>
    (await get<{ instances: Instance[] }>('/instances?per_page=500')).instances
      .map((i) => ({ i, n: parseServerName(i.label) }))
      .filter(({ n }) => n?.buildId === 'tvu1')
      .map(({ i, n }) => ({
        id: i.id,
        name: i.label,
        role: n!.role,
        running: i.status === 'active' && i.power_status === 'running',
        publicIp: i.main_ip,
      })),
  firewalls: async (get) => (await groups(get)).map((g) => g.description),
  expectedFirewalls: ['adt-tvu1-autoscaler', 'adt-tvu1-database', 'adt-tvu1-webserver'],
  siteRecords: async (get) =>
    (await get<{ records: { type: string; name: string; data: string }[] }>('/domains/tvu.test/records?per_page=500')).records
      .filter((r) => r.type === 'A' && r.name === 'www')
      .map((r) => r.data)
      .sort(),
  databaseSources: async (get) => {
    const db = (await groups(get)).find((g) => g.description === 'adt-tvu1-database');
    if (!db) return [];
    const rules = (
      await get<{ firewall_rules: { port: string; subnet: string; subnet_size: number }[] }>(`/firewalls/${db.id}/rules?per_page=500`)
    ).firewall_rules;
    return rules.filter((r) => r.port === '3306' && r.subnet_size === 32).map((r) => r.subnet);
  },
});
