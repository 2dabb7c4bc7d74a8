export type {
  Role, ServerState, Server, CreateServerOptions, ListServersFilter, WaitOptions, ComputeFlags, ComputeProvider,
  DnsRecord, DnsProvider, InboundRule, NativeFirewallProvider,
} from './types.ts';
export { serverName, parseServerName, nameMatches } from './naming.ts';
export type { ServerNameParts, ParsedServerName } from './naming.ts';
export { computeDrivers } from './_drivers.ts';
export type { ComputeDriverName } from './_drivers.ts';
