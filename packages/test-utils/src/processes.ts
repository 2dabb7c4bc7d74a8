/**
 * Processes and ports of a test's own: killing what it started (by PID, never by name), and a
 * port that a service limited to 16-bit signed ports (apt-cacher-ng) can listen on.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { processAlive, sleep } from '@adt/core';

/**
 * Kills processes the test started (each one's process group, then the process), by PID; gone ones
 * are fine. Waits (bounded: 2.5 s) until they are gone.
 */
export async function killPids(pids: readonly number[]): Promise<void> {
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {}
    }
  }
  for (let i = 0; i < 50 && pids.some(processAlive); i++) await sleep(50);
}

/**
 * A TCP port free on every address right now, at most 32767: the package mirror (apt-cacher-ng)
 * cannot listen higher, and freePort() answers from the kernel's ephemeral range above it.
 * Bounded: 50 random tries in 20000-32767.
 */
export async function freeLowPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000-32767 after 50 tries');
}

/**
 * Starts argv detached (its own process group, no stdio) and returns its PID, for
 * {@link killPids} in the cleanup. For a service the test runs in the background (a listener
 * inside a server: `startDetached(await cloud.execArgv(id, ['setsid', ...listenerArgv([443])]))`).
 */
export function startDetached(argv: readonly string[]): number {
  const [file, ...args] = argv;
  if (!file) throw new RangeError('startDetached: empty argv');
  const child = spawn(file, args, { detached: true, stdio: 'ignore' });
  // A file that cannot be run is reported by the missing PID below, not by an unhandled 'error' event.
  child.once('error', () => {});
  child.unref();
  if (child.pid === undefined) throw new Error(`startDetached: ${file} could not be started`);
  return child.pid;
}
