/** The fleet as the config datastore has it: every machine publishes its private IP under its role's key. */
import { keys, type ConfigStore, type Grant } from '@adt/configstore';
import type { FleetSnapshot, FleetSource } from './types.ts';

export function datastoreFleetSource(store: ConfigStore): FleetSource {
  return {
    async snapshot(): Promise<FleetSnapshot> {
      const [buildMachine, webservers, autoscalers, databases, auth, grants] = await Promise.all([
        store.listOf(keys.buildMachineIps),
        store.listOf(keys.webserverIps),
        store.listOf(keys.autoscalerIps),
        store.listOf(keys.databaseIps),
        store.listOf(keys.authIps),
        store.listOf(keys.authorisedIps),
      ]);
      const authorisedClients = (
        await Promise.all(grants.map(async (ip) => ({ ip, grant: await store.get<Grant>(keys.authorisedIps.key(ip)) })))
      ).flatMap(({ ip, grant }) =>
        grant && typeof grant === 'object' && typeof grant.expiresAt === 'string' ? [{ ip, expiresAt: grant.expiresAt }] : [],
      );
      return { buildMachine, webservers, autoscalers, databases, auth, authorisedClients };
    },
  };
}

/** A fixed fleet (tests, dry runs, benchmarks). */
export function staticFleetSource(fleet: FleetSnapshot): FleetSource {
  return { snapshot: async () => structuredClone(fleet) };
}
