/**
 * The first minutes of a server, before its role's own work (every bootstrap starts with `boot`):
 *
 * 1. **Its secrets, once**: the envelope whose link and key the user-data left in a 0600 file is
 *    fetched, opened and deleted (from the bucket and from disk). Its datastore settings and key
 *    go to /etc/adt (0600), its SSH host key replaces the one the image made (the build pinned it),
 *    root's authorized keys are the build machine's, and sshd takes password logins nowhere.
 * 2. **Its packages**: what the role installs from Debian's archive (@adt/launch's list), only
 *    those missing, with services kept from starting on their own (the role starts its own
 *    instances with its own configuration), and their distribution units disabled where systemd
 *    runs.
 * 3. **Progress the build can follow**: each step is logged and written to the datastore as an
 *    object of its own (`boot/<name>/<nnn>`); a failure is written too (`boot/<name>/failed`, with
 *    the end of the log), then the bootstrap exits non-zero.
 *
 * `--prepare-image` (an image builder: no secrets) installs the packages, removes what makes a
 * machine itself (host keys, machine id, cloud-init state, logs, apt lists, the bundle) and powers
 * off, so the cloud can snapshot it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { execaRunner, outputTail, retry, tailFile } from '@adt/core';
import { keys, type ConfigStore } from '@adt/configstore';
import { CODE_DIR, ENVELOPE_FILE, openEnvelope, rolePackages } from '@adt/launch';
import type { Role } from '@adt/providers';
import { DEFAULT_DATASTORE_ENV, openDatastore } from './datastore.ts';
import { whoAmI, type Self } from './host.ts';
import { usage } from './main.ts';

const run = execaRunner({ timeoutMs: 120_000 });
/** Where the role's secrets (an autoscaler's cloud access) are kept on the server (0600). */
export const SECRETS_FILE = '/etc/adt/secrets.json';
const KEY_FILE = '/etc/adt/datastore.key';
const BOOT_LOG = '/var/log/cloud-init-output.log';

async function writePrivate(path: string, content: string, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, content, { mode });
  await chmod(path, mode);
}

const SAFE = /^[A-Za-z0-9._:/@+=,-]*$/;

/** A dotenv file of settings (values checked: nothing a shell or dotenv would read differently). */
function envFile(vars: Record<string, string>): string {
  for (const [k, v] of Object.entries(vars)) {
    if (!/^ADT_[A-Z0-9_]+$/.test(k) || !SAFE.test(v)) throw new Error(`envelope: setting ${k} has characters unsafe in a settings file`);
  }
  return `${Object.entries(vars)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

async function reloadSshd(): Promise<void> {
  const pid = existsSync('/run/sshd.pid') ? Number(readFileSync('/run/sshd.pid', 'utf8').trim()) : 0;
  if (pid > 0) {
    process.kill(pid, 'SIGHUP');
    return;
  }
  await run.run(['systemctl', 'reload', 'ssh'], { nothrow: true });
}

/**
 * Takes the server's secrets from its envelope (once). Returns what it did: `received`, or
 * `kept` when they were taken earlier (a bootstrap run again by hand).
 */
export async function receiveSecrets(say: (line: string) => void): Promise<'received' | 'kept'> {
  if (!existsSync(ENVELOPE_FILE)) {
    if (existsSync(DEFAULT_DATASTORE_ENV)) return 'kept';
    throw new Error(`${ENVELOPE_FILE} is missing and this server has no ${DEFAULT_DATASTORE_ENV}: it was not launched by the toolkit`);
  }
  const { url, deleteUrl, key } = JSON.parse(readFileSync(ENVELOPE_FILE, 'utf8')) as { url: string; deleteUrl: string; key: string };
  const body = await retry(
    async () => {
      const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
      if (r.status === 403 || r.status === 404) throw Object.assign(new Error(`HTTP ${r.status}`), { final: true });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return Buffer.from(await r.arrayBuffer());
    },
    { attempts: 6, baseMs: 1000, maxMs: 10_000, retryable: (e) => !(e as { final?: boolean }).final },
  ).catch((e: Error) => {
    throw new Error(
      `this server's envelope could not be fetched (${e.message}): ` +
        'its link expired or it was taken already; the server must be created again',
    );
  });
  const e = openEnvelope(body, key, hostname());
  await writePrivate(DEFAULT_DATASTORE_ENV, envFile({ ...e.datastoreEnv, ADT_DATASTORE_KEY_FILE: KEY_FILE }));
  await writePrivate(KEY_FILE, `${e.datastoreKey}\n`);
  if (e.secrets) await writePrivate(SECRETS_FILE, `${JSON.stringify(e.secrets)}\n`);
  // Its SSH identity: the host key the build pinned, root's keys, no passwords.
  for (const f of await readdir('/etc/ssh')) if (/^ssh_host_.*_key(\.pub)?$/.test(f)) await unlink(`/etc/ssh/${f}`);
  await writePrivate('/etc/ssh/ssh_host_ed25519_key', e.sshHostKey.privateKey);
  await writePrivate('/etc/ssh/ssh_host_ed25519_key.pub', `${e.sshHostKey.publicKey}\n`, 0o644);
  await writePrivate(
    '/etc/ssh/sshd_config.d/adt.conf',
    [
      '# Written by the Agile Deployment Toolkit: keys only, the host key the build pinned.',
      'HostKey /etc/ssh/ssh_host_ed25519_key',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      '',
    ].join('\n'),
    0o644,
  );
  await writePrivate('/root/.ssh/authorized_keys', `${e.authorizedKeys.join('\n')}\n`);
  await reloadSshd().catch((err: Error) => say(`sshd not reloaded: ${err.message}`));
  // The envelope is of no use to anyone from now on: gone from the bucket and from this disk.
  const deleted = await fetch(deleteUrl, { method: 'DELETE', signal: AbortSignal.timeout(30_000) }).then(
    (r) => r.ok || r.status === 404,
    () => false,
  );
  await rm(ENVELOPE_FILE, { force: true });
  if (!deleted) say("the envelope's object was not deleted (the build deletes it once this server is ready)");
  return 'received';
}

/** The packages of `role` missing on this server, installed; returns their names. */
export async function installRolePackages(role: Role): Promise<string[]> {
  const wanted = rolePackages(role);
  const missing: string[] = [];
  for (const p of wanted) {
    const r = await run.run(['dpkg-query', '-W', '-f=${Status}', p], { nothrow: true });
    if (!r.stdout.includes('install ok installed')) missing.push(p);
  }
  if (!missing.length) return [];
  // Debian starts a package's service at install; ours run with their own configuration, so none may start now.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy)
    await writeFile(policy, '#!/bin/sh\n# Written by the Agile Deployment Toolkit while it installs packages.\nexit 101\n', {
      mode: 0o755,
    });
  try {
    const apt = execaRunner();
    const env = { DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'l' };
    // Each try bounded: an answer lost between a mirror and apt can hang apt-get with nothing to read
    // (seen on the local cloud's mirror: an update stuck for 15 minutes); a stopped try is tried again.
    const network = ['-o', 'Acquire::http::Timeout=60', '-o', 'Acquire::Retries=2'];
    await retry(() => apt.run(['apt-get', 'update', '-q', ...network], { env, timeoutMs: 240_000 }), {
      attempts: 3,
      baseMs: 5000,
      maxMs: 20_000,
    });
    const install = ['install', '-y', '-q', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confold', ...network, ...missing];
    const tryInstall = async () => {
      // A try stopped in the middle may have left dpkg with packages to configure.
      await apt.run(['dpkg', '--configure', '-a'], { env, nothrow: true, timeoutMs: 600_000 });
      return apt.run(['apt-get', ...install], { env, timeoutMs: 900_000 });
    };
    await retry(tryInstall, { attempts: 3, baseMs: 5000, maxMs: 20_000 }).catch((e: { result?: { stdout: string; stderr: string } }) => {
      throw new Error(`apt-get install ${missing.join(' ')} failed: ${e.result ? outputTail(e.result, 4) : String(e)}`);
    });
  } finally {
    if (ownPolicy) await rm(policy, { force: true });
  }
  // Where systemd runs (a real cloud's VM), the distribution's units of what we run ourselves stay off.
  if (existsSync('/run/systemd/system')) {
    await run.run(['systemctl', 'disable', '--now', 'nginx', 'apache2', 'php8.2-fpm', 'mariadb'], { nothrow: true });
  }
  return missing;
}

/**
 * An image builder's last steps: what makes this machine itself goes (a server made from the
 * image makes its own), then it powers off so the cloud can snapshot it.
 */
export async function generaliseAndPowerOff(say: (line: string) => void): Promise<never> {
  await run.run(['apt-get', 'clean'], { nothrow: true });
  const gone = [
    '/var/lib/apt/lists',
    '/var/lib/cloud/instance',
    '/var/lib/cloud/instances',
    '/var/lib/cloud/data',
    '/var/lib/cloud/seed',
    '/var/lib/adt',
    '/root/.ssh/authorized_keys',
    '/etc/adt',
    // The bundle: a server made from the image unpacks its own. The runtime stays (it is the same Node).
    ...(await readdir(CODE_DIR).catch(() => [] as string[])).filter((n) => n !== 'runtime').map((n) => `${CODE_DIR}/${n}`),
  ];
  for (const p of gone) await rm(p, { recursive: true, force: true });
  await mkdir('/var/lib/apt/lists/partial', { recursive: true });
  for (const f of await readdir('/etc/ssh')) if (/^ssh_host_/.test(f)) await unlink(`/etc/ssh/${f}`);
  await writeFile('/etc/machine-id', '');
  for (const f of await readdir('/var/log').catch(() => [] as string[])) {
    if (f !== 'cloud-init-output.log') await rm(`/var/log/${f}`, { recursive: true, force: true });
  }
  say('generalised (host keys, machine id, cloud-init state, apt lists, logs removed); powering off');
  // The cloud-init output goes last: this very process writes into it.
  await run.run(['sh', '-c', 'sleep 1; : > /var/log/cloud-init-output.log; poweroff'], { nothrow: true });
  // poweroff ends this process with the machine.
  await new Promise((r) => setTimeout(r, 60_000));
  throw new Error('poweroff did not stop this server');
}

/** Progress of a bootstrap: each step logged with its time, and (once the datastore is reachable) written to it. */
export function bootProgress(role: string) {
  const started = Date.now();
  const name = hostname();
  const done: Record<string, string> = {};
  let store: ConfigStore | null = null;
  let n = 0;
  let last = 'started';
  const write = async (step: string, seconds: number) => {
    if (!store) return;
    await store.put(keys.bootStep(name, n++), { at: new Date().toISOString(), step, seconds }).catch(() => {});
  };
  return {
    get lastStep() {
      return last;
    },
    /** From now on, steps go to the datastore too. */
    attach(s: ConfigStore) {
      store = s;
    },
    async step(step: string) {
      const seconds = Number(((Date.now() - started) / 1000).toFixed(1));
      done[step] = `${seconds}s`;
      last = step;
      process.stdout.write(`${new Date().toISOString()} [${role}] ${step} (${seconds}s)\n`);
      await write(step, seconds);
    },
    steps: () => ({ ...done }),
    /** Records the failure for the build (best effort), with the end of this server's boot log. */
    async failed(error: Error) {
      let s = store;
      try {
        s ??= existsSync(DEFAULT_DATASTORE_ENV) ? openDatastore() : null;
      } catch {}
      await s
        ?.put(keys.bootFailure(name), { at: new Date().toISOString(), lastStep: last, error: error.message, log: tailFile(BOOT_LOG, 20) })
        .catch(() => {});
    },
  };
}

export interface BootContext {
  store: ConfigStore;
  self: Self;
  /** Logs a step and writes it to the datastore (the build shows it as it happens). */
  step(step: string): Promise<void>;
}

/**
 * Every role's bootstrap: its secrets, its packages, then `body` (the role's own work), then
 * `ready/<role>/<name>` with the steps' times. With `--prepare-image`: the packages, then a
 * generalised power-off (an image builder). A failure is written to the datastore, then thrown.
 */
export async function runBootstrap(role: Role, argv: string[], body: (b: BootContext) => Promise<void>): Promise<number> {
  const unknown = argv.filter((a) => a !== '--prepare-image');
  if (unknown.length) throw usage(`bootstrap [--prepare-image]: unknown argument ${unknown.join(' ')}`);
  const progress = bootProgress(role);
  try {
    if (argv.includes('--prepare-image')) {
      const installed = await installRolePackages(role);
      await progress.step(installed.length ? `installed ${installed.join(', ')}` : 'packages present');
      return await generaliseAndPowerOff((line) => void progress.step(line));
    }
    const secrets = await receiveSecrets((line) => void progress.step(line));
    const store = openDatastore();
    progress.attach(store);
    const self = await whoAmI();
    await progress.step(`bootstrap started on ${self.name} (${self.publicIp}, ${self.privateIp}); secrets ${secrets}`);
    const installed = await installRolePackages(role);
    await progress.step(installed.length ? `installed ${installed.join(', ')}` : 'packages present');
    await body({ store, self, step: (s) => progress.step(s) });
    await progress.step('ready');
    await store.put(keys.ready(role, self.name), { at: new Date().toISOString(), steps: progress.steps() });
    return 0;
  } catch (e) {
    await progress.failed(e as Error);
    throw e;
  }
}
