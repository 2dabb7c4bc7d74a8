/**
 * One way to run a daemon of ours: started detached (it outlives the command that started it),
 * its PID in `<dir>/<name>.pid`, its output appended to `<dir>/<name>.log` (or to a log of its
 * own), found again by a later process through the pid file (only while that PID still runs the
 * same program: PIDs are reused), and stopped by PID. Used for the local cloud's services (its
 * API, PowerDNS, pebble, the package mirror) and MariaDB.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, fstatSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AdtError } from './errors.ts';
import { processAlive, stopProcess } from './process.ts';
import { sleep } from './retry.ts';
import type { Argv } from './runner.ts';

export interface DaemonSpec {
  /** Short name: the pid file and log are `<name>.pid`, `<name>.log` in `dir`. */
  name: string;
  /** Directory of the pid file and log (created, mode 0700). */
  dir: string;
  /** The program and its arguments. No secrets here: command lines are visible to every user in `ps`. */
  argv: Argv;
  /** The file its output is appended to (default `<dir>/<name>.log`): a daemon's own log, when it has one. */
  log?: string;
  /** Extra environment (merged over this process's). */
  env?: Record<string, string>;
  cwd?: string;
  /** Resolves true once the daemon serves (e.g. its port answers). */
  up: () => Promise<boolean>;
  /** Bound of the wait for `up` after a start (default 15 000 ms). */
  startTimeoutMs?: number;
  /**
   * Whether a live PID from the pid file is this daemon, from its command line (NUL-separated
   * arguments joined by spaces). Default: the command line contains `argv[0]`'s last path segment.
   */
  identify?: (cmdline: string) => boolean;
  /** When the port is taken by another program: what to change, for the message. */
  conflictHint?: string;
}

export interface Daemon {
  pid: number;
  /** Its log file. */
  log: string;
  /** False when one already running was found and kept. */
  started: boolean;
}

/** A process's command line (arguments joined by spaces), or '' when it is gone. */
export function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function pidFile(dir: string, name: string) {
  return join(dir, `${name}.pid`);
}

/** The PID of daemon `name` started from `dir` while it still runs that program; else null. */
export function daemonPid(dir: string, name: string, identify?: (cmdline: string) => boolean): number | null {
  const file = pidFile(dir, name);
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!processAlive(pid)) return null;
  const cmdline = commandLineOf(pid);
  if (!cmdline) return null;
  return !identify || identify(cmdline) ? pid : null;
}

/** The last `n` lines of a file (bounded read of its end), or '' when it is absent. */
export function tailFile(path: string, n = 15, maxBytes = 64 * 1024): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-n)
      .join('\n');
  } finally {
    closeSync(fd);
  }
}

/**
 * Starts the daemon, or returns the one already running (and answering) from `dir`. A stale one
 * (running but not answering, e.g. on another port) is stopped first. Throws when the port is
 * taken by another program, or when the new one does not answer in time (naming its log's end).
 */
export async function startDaemon(spec: DaemonSpec): Promise<Daemon> {
  mkdirSync(spec.dir, { recursive: true, mode: 0o700 });
  const log = spec.log ?? join(spec.dir, `${spec.name}.log`);
  const program = spec.argv[0].split('/').pop()!;
  const identify = spec.identify ?? ((c: string) => c.includes(program));
  const running = daemonPid(spec.dir, spec.name, identify);
  if (running && (await spec.up())) return { pid: running, log, started: false };
  if (running) await stopProcess(running, { timeoutMs: 5000 });
  if (await spec.up()) {
    throw new AdtError(
      'PORT_TAKEN',
      `the ${spec.name} service's address is already used by another program${spec.conflictHint ? `: ${spec.conflictHint}` : ''}`,
      {
        pkg: 'core',
        driver: 'daemon',
        exitCode: 2,
      },
    );
  }
  const out = openSync(log, 'a', 0o600);
  const child = spawn(spec.argv[0], spec.argv.slice(1), {
    detached: true,
    stdio: ['ignore', out, out],
    cwd: spec.cwd,
    env: { ...process.env, ...spec.env },
  });
  closeSync(out);
  child.unref();
  const pid = child.pid;
  if (!pid)
    throw new AdtError('NOT_STARTED', `the ${spec.name} service could not be started (${spec.argv[0]})`, { pkg: 'core', driver: 'daemon' });
  writeFileSync(pidFile(spec.dir, spec.name), String(pid), { mode: 0o600 });
  const timeoutMs = spec.startTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await spec.up()) return { pid, log, started: true };
    if (!processAlive(pid)) break;
    await sleep(100);
  }
  const alive = processAlive(pid);
  if (alive) await stopProcess(pid, { timeoutMs: 5000 });
  rmSync(pidFile(spec.dir, spec.name), { force: true });
  const tail = tailFile(log, 8);
  throw new AdtError(
    'NOT_STARTED',
    `the ${spec.name} service ${alive ? `did not answer within ${timeoutMs / 1000} s` : 'exited at start'}; the end of ${log}:\n${tail}`,
    { pkg: 'core', driver: 'daemon' },
  );
}

/** Stops daemon `name` of `dir` by PID (SIGTERM, bounded wait, SIGKILL) and removes its pid file. False when none ran. */
export async function stopDaemon(
  dir: string,
  name: string,
  o: { timeoutMs?: number; identify?: (cmdline: string) => boolean } = {},
): Promise<boolean> {
  const pid = daemonPid(dir, name, o.identify);
  rmSync(pidFile(dir, name), { force: true });
  if (!pid) return false;
  await stopProcess(pid, { timeoutMs: o.timeoutMs ?? 10_000 });
  return true;
}
