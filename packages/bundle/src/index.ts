export { buildBundle, bundleInputHash, SERVER_ROLES } from './bundle.ts';
export type { Bundle, BundleOptions } from './bundle.ts';
export { buildRuntime } from './runtime.ts';
export type { Runtime, RuntimeOptions } from './runtime.ts';
