/**
 * What every command of the build machine starts with: its deployment (the file named by --config,
 * over ADT_<NAME> variables, over the defaults) and the fleet opened on it (@adt/fleet), closed when
 * the command is done. Where built role bundles are kept on this machine.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { AdtError } from '@adt/core';
import { openFleet, readDeployment, type Deployment, type Fleet } from '@adt/fleet';

/** The toolkit's checkout (the role bundle is made from it). */
export const ROOT = resolve(import.meta.dirname, '../../..');

/** Where built bundles and Node runtimes are kept (ADT_CACHE_DIR, else ~/.cache/adt). */
export function cacheDir(): string {
  return process.env.ADT_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'adt');
}

/** The name of a role's helper: `helperName('ExecuteOn', 'webserver')` is `ExecuteOnWebserver`. */
export function helperName(verb: 'ExecuteOn' | 'ConnectTo' | 'CopyTo' | 'CopyFrom', role: string): string {
  return `${verb}${role[0]!.toUpperCase()}${role.slice(1)}`;
}

export function deploymentOf(values: { config?: string }): Deployment {
  return readDeployment(values.config, process.env);
}

/**
 * Runs `fn` with the deployment's fleet. `attach` (the helpers): the running local cloud only; a
 * cloud that does not run means nothing was deployed (exit 2).
 */
export async function withFleet<T>(d: Deployment, transport: 'apply' | 'dry-run' | 'attach', fn: (f: Fleet) => Promise<T>): Promise<T> {
  const f = await openFleet(d, transport);
  if (!f) {
    throw new AdtError(
      'NOT_RUNNING',
      `the local cloud "${d.local.cloudId}" is not running (nothing of build ${d.buildId} is deployed): deploy first`,
      {
        pkg: 'build',
        exitCode: 2,
      },
    );
  }
  try {
    return await fn(f);
  } finally {
    await f.close();
  }
}
