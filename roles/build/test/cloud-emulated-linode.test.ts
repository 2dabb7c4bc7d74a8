/**
 * A Linode deploy, proven on this machine (`_emulated.ts`): PROVIDER=linode with EMULATOR=local,
 * cloud `tli` on 198.19.62.0/24 + 198.19.63.0/24, through the Linode driver and the local cloud's
 * emulation of Linode's API v4 (instances with their metadata user-data, firewalls by label with
 * their devices, the domain by id), with IMAGES=prepared: the roles' images made through Linode's
 * private images, the servers and the autoscaler's webservers created from them.
 */
import { parseServerName } from '@adt/providers';
import { emulatedCloudSuite } from './_emulated.ts';

interface Instance {
  id: number;
  label: string;
  status: string;
  ipv4: string[];
}

emulatedCloudSuite({
  provider: 'linode',
  cloudId: 'tli',
  net: 62,
  // Each role's image made once through Linode's images (a disk of a powered-off builder), webservers the autoscaler makes from it.
  extra: ['IMAGES=prepared'],
  instances: async (get) =>
    (await get<{ data: Instance[] }>('/linode/instances?page_size=500')).data
      .map((i) => ({ i, n: parseServerName(i.label) }))
      .filter(({ n }) => n?.buildId === 'tli1')
      .map(({ i, n }) => ({ id: String(i.id), name: i.label, role: n!.role, running: i.status === 'running', publicIp: i.ipv4[0] ?? '' })),
  firewalls: async (get) => (await get<{ data: { label: string }[] }>('/networking/firewalls')).data.map((x) => x.label),
  expectedFirewalls: ['adt-tli1-as', 'adt-tli1-db', 'adt-tli1-ws'],
  siteRecords: async (get) => {
    const zone = (await get<{ data: { id: number; domain: string }[] }>('/domains')).data.find((d) => d.domain === 'tli.test');
    if (!zone) return [];
    return (await get<{ data: { type: string; name: string; target: string }[] }>(`/domains/${zone.id}/records?page_size=500`)).data
      .filter((r) => r.type === 'A' && r.name === 'www')
      .map((r) => r.target)
      .sort();
  },
  databaseSources: async (get) => {
    const fw = (await get<{ data: { id: number; label: string }[] }>('/networking/firewalls')).data.find((x) => x.label === 'adt-tli1-db');
    if (!fw) return [];
    const rules = await get<{ inbound: { ports?: string; addresses: { ipv4?: string[] } }[] }>(`/networking/firewalls/${fw.id}/rules`);
    return rules.inbound
      .filter((r) => r.ports === '3306')
      .flatMap((r) => r.addresses.ipv4 ?? [])
      .map((a) => a.replace(/\/32$/, ''));
  },
});
