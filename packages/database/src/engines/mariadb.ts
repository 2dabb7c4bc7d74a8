/**
 * MariaDB on one host (a cloud server, or a local-cloud server whose /etc, /var and /run are its own):
 * its configuration file, first-time initialisation, start (detached, no systemd needed), readiness,
 * provisioning and stop. Commands are argv arrays run by the injected Runner; secrets travel on stdin
 * or in 0600 files, never on a command line.
 */
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir, userInfo } from 'node:os';
import { errorFactory, isAdtError, lastLines, startDaemon, stopProcess, tailFile, type Argv, type Runner } from '@adt/core';
import { provisionSql, sqlString, type ProvisionSpec } from '../sql.ts';

export const ENGINE_NAME = 'mariadb';
const fail = errorFactory('database', ENGINE_NAME);

export interface MariaDbOptions {
  /** Data directory (default layout: /var/lib/mysql). */
  dataDir: string;
  /** Directory for the socket and pid file (/run/mysqld). */
  runDir: string;
  /** The server's option file written by `writeConfig` (/etc/mysql/mariadb.conf.d/90-adt.cnf or a file of its own). */
  configFile: string;
  /** The error log (/var/log/mysql/error.log). */
  logFile: string;
  /** Address to listen on: the server's private IP (or 127.0.0.1 in tests). */
  bindAddress: string;
  /** TCP port (default 3306). */
  port?: number;
  /** OS user the server runs as (default `mysql`). */
  osUser?: string;
  runner: Runner;
}

/** The option file, as data. */
export function mariadbConfig(o: MariaDbOptions): string {
  return [
    '# Written by the Agile Deployment Toolkit (database role). Changes are overwritten.',
    '[client]',
    `socket = ${join(o.runDir, 'mysqld.sock')}`,
    '',
    '[mysqld]',
    `user = ${o.osUser ?? 'mysql'}`,
    `datadir = ${o.dataDir}`,
    `socket = ${join(o.runDir, 'mysqld.sock')}`,
    `pid-file = ${join(o.runDir, 'mysqld.pid')}`,
    `log-error = ${o.logFile}`,
    `bind-address = ${o.bindAddress}`,
    `port = ${o.port ?? 3306}`,
    '# Hosts are matched by address only (grants name private IPs and CIDRs).',
    'skip-name-resolve',
    '# Hardening: no LOAD DATA LOCAL, no symbolic links out of the data directory.',
    'local-infile = 0',
    'symbolic-links = 0',
    "# SQL's file statements (LOAD DATA INFILE, SELECT ... INTO OUTFILE, LOAD_FILE()) may name only this",
    "# empty directory, root's and closed to the server: they are refused (a restored dump is not trusted).",
    `secure-file-priv = ${noFilesDir(o)}`,
    'character-set-server = utf8mb4',
    'collation-server = utf8mb4_unicode_ci',
    'max_connections = 200',
    '',
  ].join('\n');
}

/** The only directory SQL may name for files: root's, mode 0700, so the server can use none. */
const noFilesDir = (o: MariaDbOptions) => join(o.runDir, 'no-file-access');
const socketOf = (o: MariaDbOptions) => join(o.runDir, 'mysqld.sock');
const pidFileOf = (o: MariaDbOptions) => join(o.runDir, 'mysqld.pid');
/** The daemon's name for startDaemon: its pid file is `<runDir>/mariadbd.pid` (mariadbd writes its own mysqld.pid too). */
const DAEMON = 'mariadbd';

/** argv to create the system tables, as data. Root logs in over the socket as the OS root user only. */
export function initialiseArgv(o: MariaDbOptions): Argv {
  return ['mariadb-install-db', `--defaults-file=${o.configFile}`, '--auth-root-authentication-method=socket', '--skip-test-db'];
}

/** argv of the admin client over the socket (as OS root). */
export function adminArgv(o: MariaDbOptions, ...args: string[]): Argv {
  return ['mariadb-admin', `--defaults-file=${o.configFile}`, ...args];
}

/** argv of the SQL client over the socket (as OS root); statements go on stdin. */
export function clientArgv(o: MariaDbOptions, ...args: string[]): Argv {
  return ['mariadb', `--defaults-file=${o.configFile}`, '--batch', '--skip-column-names', ...args];
}

export async function writeConfig(o: MariaDbOptions): Promise<void> {
  await mkdir(dirname(o.configFile), { recursive: true });
  await writeFile(o.configFile, mariadbConfig(o), { mode: 0o644 });
}

async function owned(path: string, user: string) {
  await mkdir(path, { recursive: true });
  if (userInfo().uid === 0) {
    const { uid, gid } = await lookupUser(user);
    await chown(path, uid, gid);
  }
}

async function lookupUser(user: string): Promise<{ uid: number; gid: number }> {
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith(`${user}:`));
  if (!line) throw fail('NO_OS_USER', `OS user "${user}" does not exist (is mariadb-server installed?)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Writes the config and creates the system tables when the data directory is new. Idempotent. */
export async function initialise(o: MariaDbOptions): Promise<{ created: boolean }> {
  const user = o.osUser ?? 'mysql';
  await writeConfig(o);
  await owned(o.runDir, user);
  await owned(dirname(o.logFile), user);
  await mkdir(noFilesDir(o), { recursive: true, mode: 0o700 });
  if (existsSync(join(o.dataDir, 'mysql'))) return { created: false };
  await owned(o.dataDir, user);
  await o.runner.run(initialiseArgv(o), { timeoutMs: 120_000 });
  return { created: true };
}

export async function isRunning(o: MariaDbOptions): Promise<boolean> {
  const r = await o.runner.run(adminArgv(o, '--connect-timeout=2', 'ping'), { nothrow: true, timeoutMs: 10_000 });
  return r.exitCode === 0;
}

/**
 * Starts mariadbd detached (it outlives this process, like a service; core's startDaemon, its output
 * appended to the error log) and waits until it answers. Returns its PID. Already running: returns
 * the PID from the pid file.
 */
export async function start(o: MariaDbOptions, options: { timeoutMs?: number } = {}): Promise<number> {
  if (await isRunning(o)) return readPid(o);
  const timeoutMs = options.timeoutMs ?? 60_000;
  await mkdir(noFilesDir(o), { recursive: true, mode: 0o700 });
  try {
    const daemon = await startDaemon({
      name: DAEMON,
      dir: o.runDir,
      log: o.logFile,
      argv: ['mariadbd', `--defaults-file=${o.configFile}`],
      up: async () => existsSync(socketOf(o)) && (await isRunning(o)),
      startTimeoutMs: timeoutMs,
    });
    return daemon.pid;
  } catch (e) {
    if (!isAdtError(e) || e.code !== 'NOT_STARTED') throw e;
    throw fail(
      'START_FAILED',
      `mariadbd did not become ready on ${o.bindAddress}:${o.port ?? 3306} within ${timeoutMs / 1000} s; ` +
        `last lines of ${o.logFile}:\n  ${lastLines(tailFile(o.logFile, 5), 5, '\n  ')}`,
      { cause: e },
    );
  }
}

async function readPid(o: MariaDbOptions): Promise<number> {
  const pid = Number((await readFile(pidFileOf(o), 'utf8').catch(() => '')).trim());
  if (!(pid > 0)) throw fail('NO_PID', `no PID in ${pidFileOf(o)}`);
  return pid;
}

/** Stops the server (clean shutdown; SIGKILL after the timeout) and waits for its process to end. */
export async function stop(o: MariaDbOptions, options: { timeoutMs?: number } = {}): Promise<void> {
  let pid: number;
  try {
    pid = await readPid(o);
  } catch {
    return; // not running
  }
  await o.runner.run(adminArgv(o, 'shutdown'), { nothrow: true, timeoutMs: 30_000 });
  // A clean shutdown was asked for; SIGTERM (also clean) then SIGKILL if it still runs.
  await stopProcess(pid, { timeoutMs: options.timeoutMs ?? 30_000 });
  await rm(join(o.runDir, `${DAEMON}.pid`), { force: true });
}

/** The hosts from which `user` exists now. */
export async function userHosts(o: MariaDbOptions, user: string): Promise<string[]> {
  const r = await o.runner.run(clientArgv(o), { input: `SELECT Host FROM mysql.user WHERE User = ${sqlString(user)};\n` });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Makes the application database and user exist exactly as `spec` says (SQL on stdin). */
export async function provision(o: MariaDbOptions, spec: ProvisionSpec): Promise<void> {
  const sql = provisionSql(spec, await userHosts(o, spec.user));
  const r = await o.runner.run(clientArgv(o), { input: sql, nothrow: true });
  if (r.exitCode !== 0) {
    // The client's message names the statement's error, never our input (which holds the password).
    throw fail('PROVISION_FAILED', `provisioning database "${spec.database}" for user "${spec.user}" failed: ${lastLines(r.stderr, 1)}`);
  }
}

export interface ConnectionCheck {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/**
 * Tries to log in over TCP as a client would, with the password in a 0600 option file (not on the
 * command line, not in the environment). Returns null on success, or the server's refusal.
 */
export async function tryConnect(runner: Runner, c: ConnectionCheck): Promise<string | null> {
  const dir = await mkdtemp(join(tmpdir(), 'adt-db-client-'));
  const file = join(dir, 'client.cnf');
  try {
    await writeFile(file, `[client]\nuser=${c.user}\npassword=${c.password.replace(/\\/g, '\\\\')}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    const argv = [
      'mariadb',
      `--defaults-extra-file=${file}`,
      '--protocol=TCP',
      `--host=${c.host}`,
      `--port=${c.port}`,
      '--connect-timeout=5',
      '--batch',
      '--skip-column-names',
    ];
    argv.push(c.database, '-e', 'SELECT 1');
    const r = await runner.run(argv as [string, ...string[]], { nothrow: true, timeoutMs: 20_000 });
    return r.exitCode === 0 && r.stdout.trim() === '1' ? null : r.stderr.trim() || `exit code ${r.exitCode}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
