/**
 * Sets the desired number of webservers of the whole fleet, split between the autoscalers:
 *
 *   roles/autoscaler/ManuallyScale.ts 4      (on an autoscaler, or on the build machine with its settings)
 *
 * The scaling loops follow within a tick. A count that is not a whole number from 0 to the
 * configured maximum is refused (exit 2), and nothing changes.
 */
import { logLine, openDatastore, usage } from '@adt/role-common';
import { describeSplit, setDesiredWebservers } from '@adt/scaling';

/** `ManuallyScale.ts <webservers>`. */
export async function manuallyScaleMain(args: string[]): Promise<number> {
  if (args.length !== 1 || args[0] === '--help')
    throw usage('usage: roles/autoscaler/ManuallyScale.ts <webservers>   (a whole number from 0 to the configured maximum)');
  const store = openDatastore();
  const { total, split } = await setDesiredWebservers(store, args[0]!, 'ManuallyScale');
  logLine(`desired webservers: ${total} (${describeSplit(split)})`);
  return 0;
}
