/** Driver registry: name -> lazy import (backends are subpath exports, never in the root barrel). */
export const computeDrivers = {
  local: () => import('./drivers/local.ts'),
} as const;

export type ComputeDriverName = keyof typeof computeDrivers;
