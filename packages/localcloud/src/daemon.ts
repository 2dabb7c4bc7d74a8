/**
 * The local cloud as a service of this machine: one daemon per cloud (`serve.ts`, run detached
 * under a small supervisor that restarts it if it dies) holds the cloud's API and its services:
 * the embedded S3 server, PowerDNS, the mail catcher, the package mirror, and pebble on demand.
 * `ensureLocalCloud` starts it when it is not running (or runs other code or settings than asked),
 * and returns how to reach its API: the URL and the account token (a 0600 file).
 *
 *   <stateDir>/daemon-config.json   what it was started with (0600)
 *   <stateDir>/api/account.token    the account token (0600)
 *   <stateDir>/api/tokens.json      digests of scoped tokens (0600)
 *   <stateDir>/cloud.pid, cloud.log the supervisor and the daemon's log
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { daemonPid, errorFactory, startDaemon, stopDaemon, tailFile } from '@adt/core';
import { newAccountToken } from './tokens.ts';

const fail = errorFactory('localcloud', 'daemon');

/** Everything a local cloud is started with. */
export interface LocalCloudConfig {
  cloudId: string;
  /** The cloud's own state (servers, firewall rules, tokens). */
  stateDir: string;
  publicCidr: string;
  privateCidr: string;
  /** Images (shared by the machine's clouds). */
  imageDir: string;
  ports: { api: number; s3: number; smtp: number; mirror: number; dns: number };
  /** Where each service keeps its data (S3's outlives the cloud: backup buckets stay). */
  dirs: { s3: string; dns: string; acme: string; mail: string; mirror: string };
}

export interface LocalCloudAccess {
  /** The API's base URL (on the build machine's private address). */
  url: string;
  /** The account token (never printed). */
  token: string;
  /** False when a running daemon was kept. */
  started: boolean;
  pid: number;
  log: string;
}

const ROOT = resolve(import.meta.dirname, '../../..');
const SERVE = join(import.meta.dirname, 'serve.ts');

/** A fingerprint of the code the daemon runs: a daemon started from other code is restarted. */
export function codeVersion(): string {
  const h = createHash('sha256');
  for (const dir of [
    import.meta.dirname,
    join(import.meta.dirname, 'services'),
    join(ROOT, 'packages/core/src'),
    // The emulated clouds' APIs are the providers' fakes.
    join(ROOT, 'packages/providers/src/fakes'),
  ]) {
    for (const f of readdirSync(dir)
      .filter((n) => n.endsWith('.ts'))
      .sort())
      h.update(f).update(readFileSync(join(dir, f)));
  }
  return h.digest('hex').slice(0, 16);
}

/** The API's address: the build machine's private address (`.1` of the private network). */
export function apiUrl(c: LocalCloudConfig): string {
  return `http://${c.privateCidr.replace(/\.0\/24$/, '.1')}:${c.ports.api}`;
}

function configFile(c: LocalCloudConfig) {
  return join(c.stateDir, 'daemon-config.json');
}
function tokenFile(c: LocalCloudConfig) {
  return join(c.stateDir, 'api', 'account.token');
}
const identify = (cmdline: string) => cmdline.includes(SERVE) && cmdline.includes('supervise');

async function answers(url: string, token: string, version: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/v1/cloud`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(1500) });
    if (!r.ok) return false;
    const body = (await r.json()) as { cloud?: { version?: string } };
    return body.cloud?.version === version;
  } catch {
    return false;
  }
}

function same(a: string, b: string) {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/**
 * Starts the local cloud's daemon when it is not running, or runs other code or settings than
 * `config`, and returns its API access. Needs root (it makes namespaces). Servers keep running
 * across a restart of the daemon.
 */
export async function ensureLocalCloud(config: LocalCloudConfig): Promise<LocalCloudAccess> {
  if (process.getuid?.() !== 0)
    throw fail('NOT_ROOT', 'the local cloud needs root (it creates network namespaces): run as root', { exitCode: 2 });
  await mkdir(join(config.stateDir, 'api'), { recursive: true, mode: 0o700 });
  let token = existsSync(tokenFile(config)) ? (await readFile(tokenFile(config), 'utf8')).trim() : '';
  if (!token) {
    token = newAccountToken();
    await writeFile(tokenFile(config), token, { mode: 0o600 });
  }
  const wanted = JSON.stringify(config, null, 2);
  const current = await readFile(configFile(config), 'utf8').catch(() => '');
  // Other settings: the running daemon (if any) stops first, so the new one can bind its ports.
  if (current && !same(current, wanted)) await stopDaemon(config.stateDir, 'cloud', { identify, timeoutMs: 15_000 });
  await writeFile(configFile(config), wanted, { mode: 0o600 });
  const url = apiUrl(config);
  const version = codeVersion();
  const d = await startDaemon({
    name: 'cloud',
    dir: config.stateDir,
    argv: [process.execPath, '--import', import.meta.resolve('tsx'), SERVE, 'supervise', configFile(config)],
    cwd: ROOT,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    up: () => answers(url, token, version),
    identify,
    startTimeoutMs: 60_000,
    conflictHint: `the local cloud's API port ${config.ports.api} (CLOUD_API_PORT) or another of its ports is taken`,
  });
  return { url, token, started: d.started, pid: d.pid, log: d.log };
}

/** The running local cloud's API access, without starting anything; null when it does not run. */
export async function attachLocalCloud(
  config: Pick<LocalCloudConfig, 'stateDir' | 'privateCidr' | 'ports'>,
): Promise<LocalCloudAccess | null> {
  const pid = daemonPid(config.stateDir, 'cloud', identify);
  if (!pid || !existsSync(tokenFile(config as LocalCloudConfig))) return null;
  const token = (await readFile(tokenFile(config as LocalCloudConfig), 'utf8')).trim();
  const url = apiUrl(config as LocalCloudConfig);
  return { url, token, started: false, pid, log: join(config.stateDir, 'cloud.log') };
}

/** Stops the daemon (servers keep running); false when it did not run. */
export function stopLocalCloudDaemon(stateDir: string): Promise<boolean> {
  return stopDaemon(stateDir, 'cloud', { identify, timeoutMs: 15_000 });
}

/** The end of the daemon's log, for messages. */
export function localCloudLogTail(stateDir: string, lines = 10): string {
  return tailFile(join(stateDir, 'cloud.log'), lines);
}
