export type {
  Role,
  ServerState,
  Server,
  CreateServerOptions,
  ListServersFilter,
  WaitOptions,
  ComputeFlags,
  ComputeProvider,
  DnsRecord,
  DnsProvider,
  InboundRule,
  NativeFirewallProvider,
  DatabaseEngine,
  ManagedDatabase,
  CreateDatabaseOptions,
  ManagedDatabaseProvider,
} from './types.ts';
export { serverName, parseServerName, nameMatches } from './naming.ts';
export type { ServerNameParts, ParsedServerName } from './naming.ts';
export { computeDrivers, dnsDrivers, apiFakes, EMULATED_APIS } from './_drivers.ts';
export type { ComputeDriverName, DnsDriverName, EmulatedProvider } from './_drivers.ts';
export { createApiClient, retryAfterMs, formatCalls, redactBody, redactUrl, ApiError } from './http.ts';
export type { ApiCall, ApiClient, ApiClientOptions } from './http.ts';
export { validateAllowList, validateRule } from './rules.ts';
