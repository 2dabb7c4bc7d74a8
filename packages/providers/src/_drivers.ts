/** Driver registry: name -> lazy import (backends are subpath exports, never in the root barrel). */
export const computeDrivers = {
  local: () => import('./drivers/local.ts'),
  'local-remote': () => import('./drivers/local-remote.ts'),
  memory: () => import('./drivers/memory.ts'),
} as const;

export type ComputeDriverName = keyof typeof computeDrivers;

export const dnsDrivers = {
  powerdns: () => import('./drivers/powerdns.ts'),
  memory: () => import('./drivers/memory-dns.ts'),
} as const;

export type DnsDriverName = keyof typeof dnsDrivers;
