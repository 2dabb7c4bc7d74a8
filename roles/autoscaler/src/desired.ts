/** Setting the desired number of webservers: one implementation for ManuallyScale.ts and roles/build/AdjustScaling. */
import { keys, type ConfigStore } from '@adt/configstore';
import { usage } from '@adt/role-common';
import { parseDesired, splitDesired } from '@adt/scaling';

/**
 * Checks `input` (a whole number from 0 to the configured maximum) and writes the split between the
 * autoscalers; throws a usage error (exit 2) naming what is allowed, changing nothing.
 */
export async function setDesiredWebservers(
  store: ConfigStore,
  input: string,
  command: string,
): Promise<{ total: number; split: number[]; intervalSeconds: number }> {
  const settings = await store.get(keys.scaling);
  if (!settings) throw usage(`${command}: this deployment is not in production mode (no ${keys.scaling.path} in its datastore)`);
  let total: number;
  try {
    total = parseDesired(input, settings.maxWebservers);
  } catch (e) {
    throw usage(`${command}: ${(e as Error).message}`);
  }
  const split = splitDesired(total, settings.autoscalers);
  for (const [i, n] of split.entries()) await store.put(keys.desiredWebservers(i + 1), n);
  return { total, split, intervalSeconds: settings.probeIntervalSeconds };
}

export const describeSplit = (split: number[]) => split.map((n, i) => `autoscaler ${i + 1}: ${n}`).join(', ');
