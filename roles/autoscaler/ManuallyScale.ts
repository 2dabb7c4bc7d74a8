#!/usr/bin/env -S sh -c 'exec "$(dirname "$(readlink -f "$0")")/../../node_modules/.bin/tsx" "$0" "$@"'
/**
 * Sets the desired number of webservers of the whole fleet, split between the autoscalers:
 *
 *   roles/autoscaler/ManuallyScale.ts 4      (on an autoscaler, or on the build machine with its settings)
 *
 * The scaling loops follow within a tick. A count that is not a whole number from 0 to the
 * configured maximum is refused (exit 2), and nothing changes.
 */
import { keys } from '@adt/configstore';
import { openDatastore, runMain, usage } from '@adt/role-common';
import { parseDesired, splitDesired } from '@adt/scaling';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.length !== 1 || args[0] === '--help') throw usage('usage: roles/autoscaler/ManuallyScale.ts <webservers>   (a whole number from 0 to the configured maximum)');
  const store = openDatastore();
  const settings = await store.get(keys.scaling);
  if (!settings) throw usage(`${keys.scaling.path} is not in the datastore: this deployment is not in production mode`);
  let total: number;
  try {
    total = parseDesired(args[0]!, settings.maxWebservers);
  } catch (e) {
    throw usage(`ManuallyScale: ${(e as Error).message}`);
  }
  const split = splitDesired(total, settings.autoscalers);
  for (const [i, n] of split.entries()) await store.put(keys.desiredWebservers(i + 1), n);
  process.stdout.write(`${new Date().toISOString()} desired webservers: ${total} (${split.map((n, i) => `autoscaler ${i + 1}: ${n}`).join(', ')})\n`);
  return 0;
}

void runMain(main);
