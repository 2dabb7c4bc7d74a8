export { computePolicies, fingerprint, normaliseSource, ROLES } from './policy.ts';
export { reconcile, cronLine } from './reconcile.ts';
export type { CronLineOptions, ReconcileOptions, ReconcileResult } from './reconcile.ts';
export { toInboundRules, applyNative, nativePolicies, nativeFingerprints } from './native.ts';
export type { NativeSettings, NativeServer } from './native.ts';
export { datastoreFleetSource, staticFleetSource } from './sources.ts';
export { BUNDLED_CLOUDFLARE, CLOUDFLARE_RANGES_DATE, refreshCloudflareRanges, parseRangeList } from './cloudflare.ts';
export type { CloudflareRanges } from './cloudflare.ts';
export type {
  FleetSnapshot,
  FleetSource,
  FleetRole,
  WebMode,
  ExtraPort,
  PolicyOptions,
  HostRule,
  HostPolicy,
  HostFirewall,
} from './types.ts';
