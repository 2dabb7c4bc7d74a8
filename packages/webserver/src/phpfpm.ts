/**
 * php-fpm with a configuration of its own: one pool, its own socket, pid file and log, no
 * environment passed to PHP, only `.php` executed. Builders are pure; the lifecycle runs argv arrays.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorFactory, lastLines, livePidFromFile, stopProcess, waitForPidFile, type Runner } from '@adt/core';

const fail = errorFactory('webserver', 'php-fpm');

export interface PhpFpmOptions {
  /** Our php-fpm config (e.g. /etc/php/8.2/fpm/adt-fpm.conf). */
  confFile: string;
  pidFile: string;
  logFile: string;
  /** The pool's socket (e.g. /run/php/adt-fpm.sock). */
  socket: string;
  /** Pool user and group (default www-data). */
  user?: string;
  /** Most PHP workers (default 10). */
  maxChildren?: number;
  /** The php-fpm binary (default php-fpm8.2, Debian 12's). */
  binary?: string;
  runner: Runner;
}

export function phpFpmConfig(o: Omit<PhpFpmOptions, 'runner'>): string {
  const user = o.user ?? 'www-data';
  const max = o.maxChildren ?? 10;
  if (!Number.isInteger(max) || max < 1 || max > 500) throw fail('BAD_OPTION', `maxChildren ${max}: use 1-500`, { exitCode: 2 });
  return `; Written by the Agile Deployment Toolkit (webserver role). Changes are overwritten.
[global]
pid = ${o.pidFile}
error_log = ${o.logFile}
daemonize = yes

[adt]
user = ${user}
group = ${user}
listen = ${o.socket}
listen.owner = ${user}
listen.group = ${user}
listen.mode = 0660
pm = dynamic
pm.max_children = ${max}
pm.start_servers = ${Math.min(2, max)}
pm.min_spare_servers = 1
pm.max_spare_servers = ${Math.min(3, max)}
pm.max_requests = 500
clear_env = yes
security.limit_extensions = .php
php_admin_flag[allow_url_include] = off
php_admin_flag[display_errors] = off
php_admin_flag[log_errors] = on
php_admin_value[upload_max_filesize] = 64M
php_admin_value[post_max_size] = 64M
php_admin_value[session.cookie_httponly] = 1
php_admin_value[session.cookie_secure] = 1
`;
}

export async function writePhpFpmConfig(o: PhpFpmOptions): Promise<void> {
  await mkdir(dirname(o.confFile), { recursive: true });
  await mkdir(dirname(o.socket), { recursive: true });
  await mkdir(dirname(o.pidFile), { recursive: true });
  await writeFile(o.confFile, phpFpmConfig(o), { mode: 0o644 });
  const test = await o.runner.run([o.binary ?? 'php-fpm8.2', '-t', '-y', o.confFile], { nothrow: true });
  if (test.exitCode !== 0) throw fail('BAD_CONFIG', `php-fpm rejects ${o.confFile}: ${lastLines(test.stderr, 2)}`);
}

/** Starts php-fpm (it daemonizes) or reloads it (SIGUSR2) when running. Returns the master PID. */
export async function startOrReloadPhpFpm(o: PhpFpmOptions): Promise<number> {
  const running = await livePidFromFile(o.pidFile);
  if (running) {
    process.kill(running, 'SIGUSR2');
    return running;
  }
  await o.runner.run([o.binary ?? 'php-fpm8.2', '-y', o.confFile]);
  const pid = await waitForPidFile(o.pidFile, 5000);
  if (pid) return pid;
  throw fail('START_FAILED', `php-fpm did not write ${o.pidFile} within 5 s: see ${o.logFile}`);
}

export async function stopPhpFpm(o: PhpFpmOptions, timeoutMs = 15_000): Promise<void> {
  const pid = await livePidFromFile(o.pidFile);
  if (pid) await stopProcess(pid, { signal: 'SIGQUIT', timeoutMs });
}
