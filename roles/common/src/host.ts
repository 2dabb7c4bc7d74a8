/**
 * What a server's bootstrap needs to know about itself and to tell the fleet: its addresses and
 * name, step-by-step progress with times (the readiness pipeline), and bounded waits.
 */
import { hostname } from 'node:os';
import { execaRunner, sleep } from '@adt/core';
import { keys, type ConfigStore, type Readiness } from '@adt/configstore';

/** The IPv4 address of an interface (`eth0` public, `eth1` private in the local cloud). */
export async function interfaceAddress(dev: string): Promise<string | null> {
  const r = await execaRunner().run(['ip', '-4', '-o', 'addr', 'show', 'dev', dev], { nothrow: true });
  return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1] ?? null;
}

export interface Self {
  name: string;
  publicIp: string;
  privateIp: string;
}

export async function whoAmI(): Promise<Self> {
  const [publicIp, privateIp] = await Promise.all([interfaceAddress('eth0'), interfaceAddress('eth1')]);
  if (!publicIp || !privateIp) throw new Error(`cannot find this server's addresses (eth0: ${publicIp}, eth1: ${privateIp})`);
  return { name: hostname(), publicIp, privateIp };
}

/** Progress of a bootstrap: each step logged with its time, and recorded for the readiness key. */
export function steps(role: string) {
  const started = Date.now();
  const done: Record<string, string> = {};
  return {
    step(name: string) {
      done[name] = `${((Date.now() - started) / 1000).toFixed(1)}s`;
      process.stdout.write(`${new Date().toISOString()} [${role}] ${name} (${done[name]})\n`);
    },
    async ready(store: ConfigStore, self: Self) {
      this.step('ready');
      const r: Readiness = { at: new Date().toISOString(), steps: done };
      await store.put(keys.ready(role, self.name), r);
    },
  };
}

/** Polls `fn` until it returns a value (not null/false), at most `timeoutMs`; throws naming `what`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | false>, timeoutMs: number, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}
