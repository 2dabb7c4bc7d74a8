/**
 * `supervise <command> [args...]`: keeps another command of the same program running (the
 * autoscaler's scaling service, the authentication app), restarting it when it exits, with a
 * growing pause (1 s doubling to 60 s, back to 1 s after it ran 5 minutes). SIGTERM stops both.
 * A "service restarted on failure" without systemd on the host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { sleep } from '@adt/core';
import { logLine, usage } from './main.ts';

export async function superviseMain(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || !/^[A-Za-z][A-Za-z0-9-]*$/.test(command))
    throw usage('usage: supervise <command> [args...]   (a command of this program)');
  let child: ChildProcess | null = null;
  let stopping = false;
  process.on('SIGTERM', () => {
    stopping = true;
    child?.kill('SIGTERM');
  });
  let pause = 1000;
  while (!stopping) {
    const started = Date.now();
    // The same program (process.argv[1], with the same loader flags) running the other command.
    child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, command, ...rest], { stdio: 'inherit' });
    const code = await new Promise<number | null>((resolve) => child!.on('exit', (c) => resolve(c)));
    if (stopping) break;
    if (Date.now() - started > 300_000) pause = 1000;
    logLine(`${command} exited (${code}); restarting in ${pause / 1000} s`);
    await sleep(pause);
    pause = Math.min(pause * 2, 60_000);
  }
  return 0;
}

/**
 * Starts `command` of this same program (with `args`) as a supervised service, detached (it outlives the
 * bootstrap), its output appended to `logFile` (0600). Returns the supervisor's PID.
 */
export async function startService(command: string, logFile: string, args: string[] = []): Promise<number> {
  return startDetached(process.execPath, [...process.execArgv, process.argv[1]!, 'supervise', command, ...args], logFile);
}

/** Starts `file` with `args`, detached (it outlives this process), its output appended to `logFile` (0600); returns its PID. */
export function startDetached(file: string, args: string[], logFile: string): number {
  mkdirSync(dirname(logFile), { recursive: true });
  const log = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    return child.pid!;
  } finally {
    closeSync(log);
  }
}
