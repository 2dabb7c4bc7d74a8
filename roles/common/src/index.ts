export { openDatastore, datastoreSettings, DEFAULT_DATASTORE_ENV } from './datastore.ts';
export { runMain, usage } from './main.ts';
export { configWrapper, COMMANDS } from './configwrapper.ts';
export type { Command, Io } from './configwrapper.ts';
export { firewallSettings } from './setup-firewall.ts';
export { whoAmI, interfaceAddress, steps, waitFor, ensurePackages, startPeriodicJobs } from './host.ts';
export type { Self, Needed } from './host.ts';
