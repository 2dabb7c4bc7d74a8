/**
 * The embedded S3 server as a long-lived local service: started detached (it must outlive the deploy
 * command, since servers keep using it), found again through its pid file, stopped by PID.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdtError, processAlive, sleep } from '@adt/core';
import { EMBEDDED_CREDENTIALS } from '@adt/configstore/embedded-s3';

export interface S3DaemonOptions {
  /** State directory: data, pid file and log (default /var/lib/adt-local/s3). */
  stateDir: string;
  address: string;
  port: number;
}

export interface S3Daemon {
  endpoint: string;
  pid: number;
  dataDir: string;
  log: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** false when an already-running daemon was reused. */
  started: boolean;
}

const root = resolve(import.meta.dirname, '../../..');

async function answers(endpoint: string): Promise<boolean> {
  try {
    const r = await fetch(endpoint, { signal: AbortSignal.timeout(1000) });
    await r.arrayBuffer();
    return true; // any HTTP answer (s3rver says 403 to an unsigned request) means it is up
  } catch {
    return false;
  }
}

/** The daemon started earlier from `stateDir`, when it still runs and answers; else null. */
export async function attachS3Daemon(stateDir: string, endpoint: string): Promise<{ pid: number } | null> {
  const pidFile = join(stateDir, 's3.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  return processAlive(pid) && (await answers(endpoint)) ? { pid } : null;
}

export async function ensureS3Daemon(o: S3DaemonOptions): Promise<S3Daemon> {
  const dataDir = join(o.stateDir, 'data');
  const pidFile = join(o.stateDir, 's3.pid');
  const log = join(o.stateDir, 's3.log');
  const endpoint = `http://${o.address}:${o.port}`;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const base = { endpoint, dataDir, log, credentials: { ...EMBEDDED_CREDENTIALS } };
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    if (processAlive(pid) && (await answers(endpoint))) return { ...base, pid, started: false };
  }
  if (await answers(endpoint)) {
    throw new AdtError('PORT_TAKEN', `${o.address}:${o.port} is already used by another program: stop it or set ADT_S3_PORT to a free port`, { pkg: 'build', exitCode: 2 });
  }
  const out = openSync(log, 'a', 0o600);
  const child = spawn(join(root, 'node_modules/.bin/tsx'), [join(root, 'roles/build/src/s3-serve.ts'), dataDir, o.address, String(o.port)], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  closeSync(out);
  child.unref();
  writeFileSync(pidFile, String(child.pid), { mode: 0o600 });
  // Bounded wait for the port to answer.
  for (let i = 0; i < 100; i++) {
    if (await answers(endpoint)) return { ...base, pid: child.pid!, started: true };
    if (child.exitCode !== null || !processAlive(child.pid!)) break;
    await sleep(100);
  }
  throw new AdtError('S3_NOT_STARTED', `the embedded S3 server did not start on ${endpoint} within 10 s: see ${log}`, { pkg: 'build' });
}
