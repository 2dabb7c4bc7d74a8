/**
 * A server of the fleet announcing itself, and being forgotten: one implementation for the roles'
 * bootstraps (register), the build and the autoscalers (forget, before a server is destroyed).
 * The registrations are what the fleet follows: the firewalls let a server in while it is
 * registered, the database accepts the webservers registered under `webserverips/`.
 *
 * | role | registered under |
 * |---|---|
 * | webserver | `webserverips/<private ip>`, then `webserverpublicips/<public ip>` |
 * | database | `databaseip/<private ip>` |
 * | autoscaler | `autoscalerips/<private ip>` |
 * | auth | `authip/<private ip>` |
 */
import type { ConfigStore } from './store.ts';
import { keys, type KeyFamily, type Registration } from './keys.ts';
import { ErrorCodes, storeError } from './errors.ts';

/** The roles whose servers register in the datastore. */
export type RegisteredRole = 'webserver' | 'database' | 'autoscaler' | 'auth';

/** A server as the registry knows it (a provider's `Server` fits). */
export interface ServerIdentity {
  /** The server's name (its host name). */
  name: string;
  role: string;
  /** Its address on the private network (VPC); null or absent when it has none (yet). */
  privateIp?: string | null;
  /** Its internet-facing address; null or absent when it has none (yet). */
  publicIp?: string | null;
}

type Address = 'privateIp' | 'publicIp';

/** The families each role registers in, in the order it writes them, and by which address. */
const REGISTRATIONS: Record<RegisteredRole, { family: KeyFamily<Registration>; by: Address }[]> = {
  webserver: [
    { family: keys.webserverIps, by: 'privateIp' },
    { family: keys.webserverPublicIps, by: 'publicIp' },
  ],
  database: [{ family: keys.databaseIps, by: 'privateIp' }],
  autoscaler: [{ family: keys.autoscalerIps, by: 'privateIp' }],
  auth: [{ family: keys.authIps, by: 'privateIp' }],
};

/** Every family a server of any role may be registered in, by its private address, then by its public one. */
const ALL_FAMILIES: { family: KeyFamily<Registration>; by: Address }[] = [
  { family: keys.webserverIps, by: 'privateIp' },
  { family: keys.autoscalerIps, by: 'privateIp' },
  { family: keys.databaseIps, by: 'privateIp' },
  { family: keys.authIps, by: 'privateIp' },
  { family: keys.webserverPublicIps, by: 'publicIp' },
];

/**
 * Registers a server of `role` under its role's keys (see the table above), each holding its name,
 * role, both addresses and the time. Throws INVALID_VALUE (exit 2) for a role that does not register
 * or when an address the role registers by is missing, before writing anything.
 */
export async function registerServer(store: ConfigStore, server: ServerIdentity): Promise<void> {
  if (!Object.hasOwn(REGISTRATIONS, server.role))
    throw storeError(ErrorCodes.INVALID_VALUE, `role "${server.role}": only ${Object.keys(REGISTRATIONS).join(', ')} servers register`, {
      exitCode: 2,
    });
  const keysToWrite = REGISTRATIONS[server.role as RegisteredRole].map(({ family, by }) => {
    const ip = server[by];
    if (!ip)
      throw storeError(ErrorCodes.INVALID_VALUE, `${server.role} ${server.name}: no ${ADDRESS_NAMES[by]} to register by`, { exitCode: 2 });
    return family.key(ip);
  });
  const registration: Registration = {
    name: server.name,
    role: server.role,
    ...(server.privateIp ? { privateIp: server.privateIp } : {}),
    ...(server.publicIp ? { publicIp: server.publicIp } : {}),
    at: new Date().toISOString(),
  };
  for (const k of keysToWrite) await store.put(k, registration);
}

/**
 * Forgets a server: deletes its registrations under its addresses in every family (whatever role it
 * registered as), then its readiness key `ready/<role>/<name>`. Call it before the server is
 * destroyed, while its addresses are still its own: the firewalls stop letting it in at their next
 * reconcile. Absent keys are not an error.
 */
export async function forgetServer(store: ConfigStore, server: ServerIdentity): Promise<void> {
  for (const { family, by } of ALL_FAMILIES) {
    const ip = server[by];
    if (ip) await store.delete(family.key(ip));
  }
  await store.delete(keys.ready(server.role, server.name));
}

// --- Internal helpers ---

const ADDRESS_NAMES: Record<Address, string> = { privateIp: 'private address', publicIp: 'public address' };
