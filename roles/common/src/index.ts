export { openDatastore, datastoreSettings, DEFAULT_DATASTORE_ENV } from './datastore.ts';
export { runMain, usage } from './main.ts';
export { configWrapper, COMMANDS } from './configwrapper.ts';
export type { Command, Io } from './configwrapper.ts';
export { firewallSettings } from './setup-firewall.ts';
export { whoAmI, interfaceAddress, steps, waitFor } from './host.ts';
export type { Self } from './host.ts';
