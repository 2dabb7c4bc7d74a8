/**
 * Long-lived local services of the build machine (the embedded S3 server, the local cloud's API):
 * started detached (they outlive the deploy command, since servers keep using them), found again
 * through their pid file, stopped by PID.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect } from 'node:net';
import { AdtError, processAlive, sleep, stopProcess } from '@adt/core';

const root = resolve(import.meta.dirname, '../../..');

export interface DaemonSpec {
  /** Short name, for files (`<name>.pid`, `<name>.log`) and messages. */
  name: string;
  /** Directory of the pid file and log (created 0700). */
  stateDir: string;
  /** The TypeScript program and its arguments (no secrets: they are visible to `ps`). */
  script: string;
  args: string[];
  /** URL that answers (any HTTP status) once the service is up. */
  endpoint: string;
  /** The setting to change when the port is taken, for the message. */
  portSetting: string;
  /** How to tell it is up (default: any HTTP answer at `endpoint`); e.g. a TCP connect for SMTP. */
  up?: () => Promise<boolean>;
}

/** True when something accepts TCP connections at host:port. */
export function tcpAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 1000 }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.on('timeout', () => (s.destroy(), resolve(false)));
  });
}

export interface Daemon {
  pid: number;
  log: string;
  /** false when an already-running one was reused. */
  started: boolean;
}

export async function answers(endpoint: string): Promise<boolean> {
  try {
    const r = await fetch(endpoint, { signal: AbortSignal.timeout(1000) });
    await r.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** The PID of the daemon started earlier from `stateDir` while that process still runs (whatever its port); else null. */
export function runningDaemon(stateDir: string, name: string): number | null {
  const pidFile = join(stateDir, `${name}.pid`);
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  if (!processAlive(pid)) return null;
  // The pid file is ours only if that process is still our program (PIDs are reused).
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {}
  return cmdline.includes('roles/build/src/') ? pid : null;
}

/** The daemon started earlier, when it still runs and answers on `endpoint`; else null. */
export async function attachDaemon(
  stateDir: string,
  name: string,
  endpoint: string,
  up: () => Promise<boolean> = () => answers(endpoint),
): Promise<{ pid: number } | null> {
  const pid = runningDaemon(stateDir, name);
  return pid && (await up()) ? { pid } : null;
}

export async function ensureDaemon(o: DaemonSpec): Promise<Daemon> {
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const log = join(o.stateDir, `${o.name}.log`);
  const up = o.up ?? (() => answers(o.endpoint));
  const running = await attachDaemon(o.stateDir, o.name, o.endpoint, up);
  if (running) return { pid: running.pid, log, started: false };
  // Running on another address or port (the deployment file changed): replaced.
  const stale = runningDaemon(o.stateDir, o.name);
  if (stale) await stopProcess(stale, { timeoutMs: 5000 });
  if (await up()) {
    throw new AdtError(
      'PORT_TAKEN',
      `${new URL(o.endpoint).host} is already used by another program: stop it or set ${o.portSetting} to a free port`,
      { pkg: 'build', exitCode: 2 },
    );
  }
  const out = openSync(log, 'a', 0o600);
  const child = spawn(join(root, 'node_modules/.bin/tsx'), [join(root, o.script), ...o.args], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  closeSync(out);
  child.unref();
  writeFileSync(join(o.stateDir, `${o.name}.pid`), String(child.pid), { mode: 0o600 });
  // Bounded wait for the port to answer.
  for (let i = 0; i < 150; i++) {
    if (await up()) return { pid: child.pid!, log, started: true };
    if (child.exitCode !== null || !processAlive(child.pid!)) break;
    await sleep(100);
  }
  throw new AdtError('DAEMON_NOT_STARTED', `the ${o.name} service did not start on ${o.endpoint} within 15 s: see ${log}`, {
    pkg: 'build',
  });
}
