/**
 * Waiting for servers to be ready, the same way on every cloud: each server writes its bootstrap's
 * steps to the datastore as it goes (`boot/<name>/<nnn>`), then `ready/<role>/<name>`; a failed
 * bootstrap writes `boot/<name>/failed` with the end of its log. The wait shows each step as it
 * comes, and stops, naming the server, the last step it finished and its log's end, when it failed
 * or is not ready in time. Where the cloud shows a server's boot output (`console`), a failure
 * before the bootstrap could reach the datastore (a download that failed) is seen there.
 */
import { keys, type BootFailure, type BootStep, type ConfigStore } from '@adt/configstore';
import { AdtError, sleep } from '@adt/core';
import type { ComputeProvider, Server } from '@adt/providers';
import type { FleetRole } from '@adt/firewall';

export interface Booting {
  role: FleetRole;
  server: Server;
  /** Steps seen so far (the next to read). */
  seen: number;
  lastStep: string;
  deadline: number;
  /** Kept from an earlier run (its earlier steps are not shown again). */
  kept: boolean;
  readyAt?: number;
}

export function booting(role: FleetRole, server: Server, timeoutSeconds: number, kept = false): Booting {
  return { role, server, seen: 0, lastStep: kept ? 'kept' : 'created', deadline: Date.now() + timeoutSeconds * 1000, kept };
}

const fail = (code: string, message: string) => new AdtError(code, message, { pkg: 'fleet', driver: 'readiness' });

/** Whether a server's bootstrap failed, and how (for the keep/replace rule and the wait). */
export async function bootFailure(store: ConfigStore, compute: ComputeProvider, s: Server): Promise<BootFailure | null> {
  const recorded = await store.get(keys.bootFailure(s.name));
  if (recorded) return recorded;
  if (s.state === 'error' || s.state === 'stopped') {
    return {
      at: new Date().toISOString(),
      lastStep: '(unknown)',
      error: `the cloud reports it ${s.state}`,
      log: await consoleTail(compute, s),
    };
  }
  if (compute.console && compute.flags.console) {
    const c = await compute.console(s.id).catch(() => null);
    if (c && c.exitCode !== null && c.exitCode !== 0) {
      return {
        at: new Date().toISOString(),
        lastStep: '(before its bootstrap)',
        error: `its user-data exited with code ${c.exitCode}`,
        log: c.log,
      };
    }
  }
  return null;
}

async function consoleTail(compute: ComputeProvider, s: Server): Promise<string> {
  if (!compute.console || !compute.flags.console) return '';
  return (await compute.console(s.id).catch(() => null))?.log ?? '';
}

const indent = (text: string, n = 15) =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .slice(-n)
    .map((l) => `    ${l}`)
    .join('\n');

export interface WaitOptions {
  /** Prints a line of progress. */
  say(line: string): void;
  /** Called on every poll (the local cloud's firewall render, a dry run's simulated servers). */
  onTick?: () => Promise<void>;
  /** How a person reads a server's log, for messages (e.g. roles/build/ExecuteOnWebserver -- ...). */
  logHint(role: FleetRole): string;
  intervalMs?: number;
}

/** Waits until every server is ready, showing their steps; bounded per server by its deadline. */
export async function waitReady(store: ConfigStore, compute: ComputeProvider, servers: Booting[], o: WaitOptions): Promise<void> {
  const pending = new Set(servers);
  const label = (b: Booting) => (servers.filter((x) => x.role === b.role).length > 1 ? b.server.name : b.role);
  for (const b of servers) {
    // A kept server's earlier steps were shown by the run that made it.
    if (b.kept) b.seen = (await store.list(keys.bootPrefix(b.server.name))).filter((k) => /\/\d{3}$/.test(k)).length;
  }
  for (;;) {
    await o.onTick?.();
    for (const b of [...pending]) {
      for (;;) {
        const step = await store.get<BootStep>(keys.bootStep(b.server.name, b.seen));
        if (!step) break;
        b.seen++;
        b.lastStep = step.step;
        o.say(`      ${label(b)}: ${step.step} (${step.seconds}s)`);
      }
      if (await store.exists(keys.ready(b.role, b.server.name))) {
        b.readyAt = Date.now();
        pending.delete(b);
        continue;
      }
      const current = (await compute.get(b.server.id)) ?? { ...b.server, state: 'error' as const };
      const failure = await bootFailure(store, compute, current);
      if (failure) {
        throw fail(
          'SERVER_FAILED',
          `the ${b.role} server ${b.server.name} stopped before it was ready: ${failure.error}; ` +
            `last step it finished: "${failure.lastStep === '(unknown)' ? b.lastStep : failure.lastStep}".\n` +
            `Last lines of its log (${o.logHint(b.role)}):\n${indent(failure.log) || '    (none)'}`,
        );
      }
      if (Date.now() > b.deadline) {
        const log = await consoleTail(compute, current);
        throw fail(
          'SERVER_TIMEOUT',
          `the ${b.role} server ${b.server.name} was not ready in time (READY_TIMEOUT); last step it finished: "${b.lastStep}".\n` +
            `Last lines of its log (${o.logHint(b.role)}):\n` +
            (indent(log) || '    (not available from the cloud: connect to it and read /var/log/cloud-init-output.log)'),
        );
      }
    }
    if (pending.size === 0) return;
    await sleep(o.intervalMs ?? 500);
  }
}
