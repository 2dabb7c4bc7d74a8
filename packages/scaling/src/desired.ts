/**
 * Setting the desired number of webservers: one implementation for ManuallyScale.ts (on an
 * autoscaler) and roles/build/AdjustScaling (on the build machine).
 */
import { AdtError } from '@adt/core';
import { keys, type ConfigStore } from '@adt/configstore';
import { parseDesired, splitDesired } from './plan.ts';

/** What {@link setDesiredWebservers} wrote: the total, each autoscaler's share, and how soon the loops follow. */
export interface DesiredWebservers {
  total: number;
  /** Autoscaler 1's share first. */
  split: number[];
  /** The autoscalers' probe interval: they follow within it. */
  intervalSeconds: number;
}

/**
 * Checks `input` (a whole number from 0 to the configured maximum) and writes the split between the
 * autoscalers; throws a usage error (code USAGE, exit 2) naming `command` and what is allowed,
 * changing nothing.
 */
export async function setDesiredWebservers(store: ConfigStore, input: string, command: string): Promise<DesiredWebservers> {
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

/** `autoscaler 1: 2, autoscaler 2: 1`: a split for people. */
export const describeSplit = (split: number[]) => split.map((n, i) => `autoscaler ${i + 1}: ${n}`).join(', ');

// --- Internal helpers ---

const usage = (message: string) => new AdtError('USAGE', message, { pkg: 'scaling', driver: 'desired', exitCode: 2 });
