/** Driver registry: name -> lazy import (backends are subpath exports, never in the root barrel). */
export const computeDrivers = {
  local: () => import('./drivers/local.ts'),
  memory: () => import('./drivers/memory.ts'),
  digitalocean: () => import('./drivers/digitalocean.ts'),
  linode: () => import('./drivers/linode.ts'),
  vultr: () => import('./drivers/vultr.ts'),
  exoscale: () => import('./drivers/exoscale.ts'),
} as const;

export type ComputeDriverName = keyof typeof computeDrivers;

/**
 * DNS drivers with a factory of their own. The clouds' DNS comes from their driver
 * (`digitaloceanDriver(o).dns(zone)`), sharing its API client.
 */
export const dnsDrivers = {
  powerdns: () => import('./drivers/powerdns.ts'),
  cloudflare: () => import('./drivers/cloudflare.ts'),
  memory: () => import('./drivers/memory-dns.ts'),
} as const;

export type DnsDriverName = keyof typeof dnsDrivers;

/** The fakes of the clouds' APIs (tests, and `deploy --dry-run` through `dryRunFetch`). */
export const apiFakes = {
  digitalocean: () => import('./fakes/digitalocean.ts').then((m) => m.digitaloceanFake),
  linode: () => import('./fakes/linode.ts').then((m) => m.linodeFake),
  vultr: () => import('./fakes/vultr.ts').then((m) => m.vultrFake),
  exoscale: () => import('./fakes/exoscale.ts').then((m) => m.exoscaleFake),
  cloudflare: () => import('./fakes/cloudflare.ts').then((m) => m.cloudflareFake),
  local: () => import('./fakes/local.ts').then((m) => m.localFake),
} as const;

/**
 * The clouds whose API the local cloud can emulate with a backed fake (@adt/localcloud's
 * `emulators.ts`), with the path prefix of their API (the driver's base URL ends with it).
 */
export const EMULATED_APIS = { digitalocean: '/v2', linode: '/v4', vultr: '/v2', exoscale: '/v2' } as const;

export type EmulatedProvider = keyof typeof EMULATED_APIS;
