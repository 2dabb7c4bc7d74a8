/** Small process and port helpers shared by the roles, the local cloud and the tests. */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Whether a process with this PID runs (signal 0 probes without signalling). A zombie (ended, not
 * yet reaped by its parent) does not: it runs nothing any more.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // No /proc (or it just went): the signal probe said it exists.
    return true;
  }
}

/** A TCP port free on `address` right now (the kernel's choice; another process may take it later). */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, address, resolve);
  });
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The PID in a pid file when that process is alive, else null. */
export async function livePidFromFile(pidFile: string): Promise<number | null> {
  const { readFile } = await import('node:fs/promises');
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  return processAlive(pid) ? pid : null;
}

/** Waits (bounded) until a pid file names a live process; null when it did not happen in time. */
export async function waitForPidFile(pidFile: string, timeoutMs = 5000): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pid = await livePidFromFile(pidFile);
    if (pid || Date.now() > deadline) return pid;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Stops a process: `signal` (default SIGTERM), a bounded wait for it to exit, then SIGKILL.
 * A process that is already gone is fine.
 */
export async function stopProcess(pid: number, options: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<void> {
  if (!processAlive(pid)) return;
  try {
    process.kill(pid, options.signal ?? 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  while (Date.now() < deadline && processAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  if (processAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}
